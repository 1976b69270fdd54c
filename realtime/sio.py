"""The Socket.IO server: creation, connection auth, and the base of every feature namespace."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any

import socketio
from aiohttp import web
from redis.exceptions import RedisError

from realtime import keys
from realtime.api import COOKIE_NAME
from realtime.db import Unavailable
from realtime.direct import DirectServer, MsgspecJSON
from realtime.errors import AppError, ack_body
from realtime.fanout import RoomChannelRedisManager
from realtime.identity.model import Principal
from realtime.identity.sessions import Watch
from realtime.presence.model import home_scopes
from realtime.ratelimit import Clock, TokenBucket
from realtime.settings import Settings

log = logging.getLogger(__name__)

UNAVAILABLE_MESSAGE = "Service momentanément indisponible : réessayez dans un instant."
SHUTDOWN_MESSAGE = "Le serveur redémarre : reconnexion automatique dans un instant."
SESSION_ENDED_MESSAGE = "Votre session est terminée : identifiez-vous à nouveau."
TOO_MANY_ARGS = "Trop d'arguments pour cet événement."


def create_sio(settings: Settings) -> socketio.AsyncServer:
    manager: socketio.AsyncManager | None = None
    if settings.redis_url:
        channel = f"{settings.redis_prefix}:socketio"
        if settings.sio_channels == "single":  # python-socketio's stock manager
            manager = socketio.AsyncRedisManager(settings.redis_url, channel=channel)
        else:
            manager = RoomChannelRedisManager(settings.redis_url, channel=channel)
    return DirectServer(
        async_mode="aiohttp",
        client_manager=manager,
        json=MsgspecJSON,
        # Several processes or nodes share no Engine.IO session: polling would need sticky
        # sessions, a websocket stays on the process it reached.
        transports=["websocket"] if settings.redis_url or settings.workers > 1
        else ["websocket", "polling"],
        # Large enough that an oversized event gets a clear `too_large` ack from its handler
        # instead of a dropped connection; the per-feature payload limits are lower.
        max_http_buffer_size=max(settings.max_body_bytes, 1024 * 1024),
        # One event at a time per connection: a client's ops are handled in the order sent.
        async_handlers=False,
        ping_interval=20,
        ping_timeout=20,
        logger=False,
        engineio_logger=False,
    )


def token_from(environ: dict[str, Any], auth: Any) -> str | None:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return auth["token"]
    raw = environ.get("HTTP_COOKIE")
    if not raw:
        return None
    try:
        morsel = SimpleCookie(raw).get(COOKIE_NAME)
    except CookieError:
        return None
    return morsel.value if morsel else None


async def authenticate(app: web.Application, environ: dict[str, Any], auth: Any) -> Principal:
    """The connecting user, or a refusal the client sees as `connect_error` with a reason."""
    principal = await app[keys.IDENTITY].authenticate(token_from(environ, auth))
    if principal is None:
        # The client's connect_error carries {"message": …, "data": {"code": …}}.
        raise socketio.exceptions.ConnectionRefusedError(
            "Connexion refusée : identifiez-vous d'abord.", {"code": "unauthorized"}
        )
    return principal


Handler = Callable[..., Awaitable[dict[str, Any] | None]]


def acked(handler: Handler) -> Handler:
    """Turn a handler's result or refusal into the ack convention of DESIGN.md."""

    event = handler.__name__.removeprefix("on_")
    # A client may send any number of arguments: more than the handler takes is `invalid`
    # (a TypeError from the call would otherwise read as an internal error, with a traceback).
    params = list(inspect.signature(handler).parameters.values())[2:]
    most = (None if any(p.kind is p.VAR_POSITIONAL for p in params)
            else sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params))

    @functools.wraps(handler)
    async def wrapper(self: AuthedNamespace, sid: str, *args: Any) -> dict[str, Any]:
        start = time.perf_counter()
        code: str | None = None
        try:
            if most is not None and len(args) > most:
                raise AppError("invalid", TOO_MANY_ARGS)
            result = await handler(self, sid, *args)
        except AppError as err:
            code = err.code
            return ack_body(err)
        except (RedisError, Unavailable) as exc:  # Redis or the database restarting: the
            # client may try again
            code = "unavailable"
            log.warning("event handler: store unreachable",
                        extra={"event": handler.__name__, "error": repr(exc)})
            return ack_body(AppError("unavailable", UNAVAILABLE_MESSAGE))
        except Exception:
            code = "internal"
            log.exception("event handler failed", extra={"event": handler.__name__})
            return ack_body(AppError("internal"))
        finally:  # counted per event (cheap: a cached child and an inc), see metrics.py
            self.app[keys.METRICS].handled(self.namespace, event, code,
                                           time.perf_counter() - start)
        return {"ok": True, **(result or {})}

    return wrapper


class AuthedNamespace(socketio.AsyncNamespace):
    """A namespace that refuses unauthenticated connections and remembers who each sid is."""

    def __init__(self, namespace: str, app: web.Application) -> None:
        super().__init__(namespace)
        self.app = app
        self._watches: dict[str, Watch] = {}  # sid → its registration with the session bus
        # The clock of this namespace's event budgets (`bucket`): a test sets a manual one
        # and advances it, so that a burst is judged at one instant, whatever the machine.
        self.clock: Clock = time.monotonic

    def bucket(self, rate: float, burst: float) -> TokenBucket:
        """A per-connection event budget on this namespace's clock (read at each use, so a
        clock set later applies to connections already open)."""
        return TokenBucket(rate, burst, clock=lambda: self.clock())

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            principal = await authenticate(self.app, environ, auth)
            await self.save_session(sid, {"principal": principal})
            # Registered before `joined`: a session that ends from now on closes this socket.
            self._watches[sid] = self.app[keys.SESSIONS].watch(
                principal.session_id, principal.id, functools.partial(self._session_ended, sid))
            try:
                await self.joined(sid, principal)
            except BaseException:  # refused: no disconnect event will come to forget it
                self._watches.pop(sid).cancel()
                raise
        except (RedisError, Unavailable) as exc:
            # The database or Redis restarting: refused with the reason, which the client
            # hears at once and may retry on (python-socketio answers nothing at all for any
            # other exception, and the client waits for its own timeout).
            log.warning("connection refused: store unreachable",
                        extra={"namespace": self.namespace, "error": repr(exc)})
            raise socketio.exceptions.ConnectionRefusedError(
                UNAVAILABLE_MESSAGE, {"code": "unavailable"}) from exc

    async def trigger_event(self, event: str, *args: Any) -> Any:
        """Every event goes through here: nothing from a connection whose session ended is
        handled (between the end and the socket's close), and a disconnection forgets the
        connection's registration whatever the feature's own `on_disconnect` does."""
        if event == "disconnect":
            watch = self._watches.pop(args[0], None) if args else None
            if watch is not None:
                watch.cancel()
        elif event != "connect" and args:
            watch = self._watches.get(args[0])
            if watch is not None and watch.ended:
                return ack_body(AppError("unauthorized", SESSION_ENDED_MESSAGE))
        return await super().trigger_event(event, *args)

    async def _session_ended(self, sid: str) -> None:
        """The session behind `sid` ended: tell the page why, close this namespace, and the
        whole websocket once it carries no other namespace."""
        server: socketio.AsyncServer = self.server
        eio_sid = server.manager.eio_sid_from_sid(sid, self.namespace)
        try:
            await self.emit("session_ended", {"message": SESSION_ENDED_MESSAGE}, to=sid)
            await self.disconnect(sid)
        except Exception:  # already gone
            log.debug("disconnect of an ended session failed", exc_info=True)
        if eio_sid is None:
            return
        if not any(server.manager.sid_from_eio_sid(eio_sid, ns)
                   for ns in list(server.manager.get_namespaces())):
            with contextlib.suppress(Exception):
                await server.eio.disconnect(eio_sid)

    async def joined(self, sid: str, principal: Principal) -> None:
        """Called once a connection is authenticated; features override it."""

    async def principal(self, sid: str) -> Principal:
        session = await self.get_session(sid)
        principal = session.get("principal")
        if principal is None:
            raise AppError("unauthorized")
        return principal


class HomeNamespace(AuthedNamespace):
    """The default namespace: tells the page who it is connected as (the live status dot)."""

    async def joined(self, sid: str, principal: Principal) -> None:
        await self.emit("session", {"user": principal.user.public()}, to=sid)
        await self.enter_room(sid, f"user:{principal.id}")
        # An open app tab is a device present in its user's school (and a pupil's class).
        for scope in home_scopes(principal):
            await self.app[keys.PRESENCE].enter(scope, principal, sid)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        await self.app[keys.PRESENCE].leave_all(sid)


async def disconnect_everyone(sio: socketio.AsyncServer, reason: str = SHUTDOWN_MESSAGE) -> int:
    """Tell every client why, then close it (graceful shutdown)."""
    closed = 0
    for namespace in list(sio.manager.rooms):
        participants = list(sio.manager.get_participants(namespace, None))
        for sid, _eio_sid in participants:
            try:
                await sio.emit(
                    "server_shutdown", {"message": reason}, to=sid, namespace=namespace
                )
                await sio.disconnect(sid, namespace=namespace)
                closed += 1
            except Exception:  # a client already gone must not stop the others' shutdown
                log.debug("disconnect failed", exc_info=True)
    return closed


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    sio.register_namespace(HomeNamespace("/", app))

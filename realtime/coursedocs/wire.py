"""`/yjs/{doc_id}`: the standard Yjs websocket protocol on a plain aiohttp route.

The stock y-websocket provider connects to `<server>/yjs/<id>` (its `serverUrl` is
`ws://host/yjs`, room name the id) with `?token=…` in `params`, or with the session cookie.

Three steps, kept apart: `authorize` (before the upgrade: who, which document, from which
origin), `serve` (the open socket, until it closes), and the handler that chains them. Once
the socket is upgraded nothing may escape the handler: an exception there would make the
error middleware write an HTTP 500 into a websocket.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable

from aiohttp import WSMsgType, web

from realtime import keys
from realtime.api import current_principal, path_int
from realtime.coursedocs.content import BadUpdate, TooDeep
from realtime.coursedocs.model import DocMeta
from realtime.coursedocs.protocol import ProtocolError
from realtime.coursedocs.room import Connection, Room
from realtime.coursedocs.service import DocService, Throttled
from realtime.errors import AppError
from realtime.identity.model import Principal
from realtime.policy import Action, may
from realtime.presence.model import doc as doc_scope
from realtime.ratelimit import TokenBucket

log = logging.getLogger(__name__)

FOREIGN_ORIGIN = "Connexion refusée : page d'une autre origine."


def same_origin(request: web.Request) -> bool:
    """As Engine.IO decides for Socket.IO (its default `cors_allowed_origins`): a browser's
    `Origin` must be this server's own scheme and host, or the ones a proxy forwarded
    (`X-Forwarded-Proto` / `X-Forwarded-Host`). No `Origin` (not a browser) passes."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    allowed = {f"{request.scheme}://{request.host}"}
    proto = request.headers.get("X-Forwarded-Proto")
    host = request.headers.get("X-Forwarded-Host")
    if proto or host:
        allowed.add(f"{(proto or request.scheme).split(',')[0].strip()}://"
                    f"{(host or request.host).split(',')[0].strip()}")
    return origin in allowed


async def authorize(request: web.Request) -> tuple[Principal, DocMeta]:
    """Before the upgrade: `401` without a session, `403` for a cookie sent by a page of
    another origin (cross-site websocket hijacking), `404` for a document one may not read."""
    token = request.query.get("token")
    if token:
        principal = await request.app[keys.IDENTITY].authenticate(token)
        if principal is None:
            raise AppError("unauthorized")
    else:
        principal = await current_principal(request)
        if not same_origin(request):
            request.app[keys.DOCS].count_refused("origin")
            raise AppError("forbidden", FOREIGN_ORIGIN)
    meta = await request.app[keys.DOCS].visible(principal, path_int(request, "doc_id"))
    return principal, meta


def _refusal(exc: BaseException) -> tuple[str, int, str]:
    """(metric reason, close code, close reason) for a frame the server refuses."""
    if isinstance(exc, (ProtocolError, BadUpdate)):
        return "malformed", 1007, "Message Yjs invalide."
    if isinstance(exc, TooDeep):
        return "structure", 1009, str(exc)
    if isinstance(exc, Throttled):
        return "sync_flood", 1008, str(exc)
    return "internal", 1011, "Erreur interne."


async def serve(request: web.Request, ws: web.WebSocketResponse, service: DocService,
                room: Room, conn: Connection, meta: DocMeta,
                ended: Callable[[], bool] = lambda: False) -> None:
    """Read frames until the socket closes; every refusal is counted and closes the socket
    with its code, none leaves this function. Once `ended()` (the session ended: the
    socket is being closed), nothing more the client sends is handled."""
    settings = request.app[keys.SETTINGS]
    bucket = TokenBucket(settings.docs_frames_per_s, settings.docs_frames_per_s * 4)
    async for msg in ws:
        if ended():
            break
        if msg.type is not WSMsgType.BINARY:
            service.count_refused("text")
            await conn.shut(1003, "Messages Yjs binaires seulement.")
            break
        if not bucket.take():
            service.count_refused("rate")
            await conn.shut(1008, "Trop de messages.")
            break
        try:
            service.handle(room, conn, msg.data)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # pyo3's PanicException is a BaseException
            reason, code, text = _refusal(exc)
            service.count_refused(reason)
            if reason == "internal":
                log.warning("yjs frame failed", extra={"doc_id": meta.id, "error": repr(exc)})
            else:
                log.info("yjs frame refused", extra={"doc_id": meta.id, "reason": reason})
            await conn.shut(code, text)
            break


async def yjs_socket(request: web.Request) -> web.StreamResponse:
    service = request.app[keys.DOCS]
    settings = request.app[keys.SETTINGS]
    principal, meta = await authorize(request)

    ws = web.WebSocketResponse(heartbeat=settings.docs_heartbeat_s,
                               max_msg_size=settings.docs_max_frame_bytes)
    await ws.prepare(request)
    conn = Connection(ws, principal, may(principal, Action.EDIT_DOC, meta.ref()),
                      service.conn_limits, request.transport)
    try:
        room = await service.join(meta, conn)
    except Exception:
        log.warning("yjs join failed", extra={"doc_id": meta.id}, exc_info=True)
        await conn.stop()
        await conn.shut(1011, "Document indisponible.")
        return ws
    # Who has the document open, for other ENT services (GET /api/presence/doc:<id>) and the
    # editor's list: a roster in the presence store, renewed while this websocket lives.
    device = f"yjs-{secrets.token_hex(6)}"
    presence = request.app[keys.PRESENCE]
    # A session that ends (logout, new code, expiry, account disabled) closes this socket.
    watch = request.app[keys.SESSIONS].watch(
        principal.session_id, principal.id,
        lambda: conn.close_soon(1008, "Session terminée : identifiez-vous à nouveau."))
    try:
        await presence.enter(doc_scope(meta.id), principal, device)
        await serve(request, ws, service, room, conn, meta, ended=lambda: watch.ended)
    except Exception:
        log.warning("yjs connection failed", extra={"doc_id": meta.id}, exc_info=True)
    finally:
        watch.cancel()
        service.leave(room, conn)
        try:
            await presence.leave(doc_scope(meta.id), device)
        except Exception:
            log.warning("presence leave failed", extra={"doc_id": meta.id})
        await conn.stop()
        if not ws.closed:
            await conn.shut(1000, "")
    return ws

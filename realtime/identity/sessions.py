"""Ending a session everywhere: every live connection registers here, and a session that ends
(logout, new personal code, expiry, account disabled or deleted) closes them all at once.

A token is checked against the `sessions` table when a connection opens, but a websocket
(Socket.IO or `/yjs`) then lives for hours. So every connection, on every namespace and on
`/yjs`, registers (session id, user id → close) with this process's `SessionBus`:

- `ended(sessions=…, users=…)` closes the matching local connections at once and, with
  Redis, publishes the same message on one channel that every worker and node listens to;
- a periodic recheck (`REALTIME_SESSION_RECHECK`, 5 s by default) asks the database which
  of the watched sessions are no longer valid (revoked, expired, deleted, account disabled)
  and closes those: the safety net for a lost pub/sub message, a session that simply
  expired, and the command line run without Redis (it cannot reach the server otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec
import redis.asyncio as aioredis

from realtime.db import Database
from realtime.redis_client import ResilientPubSub

log = logging.getLogger(__name__)

Close = Callable[[], Awaitable[None] | None]
RECHECK_BATCH = 500


class _Ended(msgspec.Struct, forbid_unknown_fields=True):
    sessions: list[str] = []
    users: list[int] = []


class Watch:
    """One registered connection. `ended` turns true as soon as its session ended: a
    transport checks it before handling anything more the client sends."""

    __slots__ = ("_bus", "close", "ended", "session_id", "user_id")

    def __init__(self, bus: SessionBus, session_id: str | None, user_id: int,
                 close: Close) -> None:
        self._bus = bus
        self.session_id = session_id
        self.user_id = user_id
        self.close = close
        self.ended = False

    def cancel(self) -> None:
        """The connection closed on its own: forget it."""
        self._bus._forget(self)


class _Listener(ResilientPubSub):
    name = "session-bus"

    def __init__(self, redis: aioredis.Redis, channel: str,
                 deliver: Callable[[_Ended], None]) -> None:
        super().__init__(redis)
        self.channel = channel
        self._deliver = deliver

    def _channels(self) -> list[str]:
        return [self.channel]

    def _on_message(self, msg: dict[str, Any]) -> None:
        if msg.get("type") != "message":
            return
        try:
            self._deliver(msgspec.json.decode(msg["data"], type=_Ended))
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("unreadable session-ended message")

    async def start(self) -> None:
        async with self._lock:
            await self._subscribe_locked(self.channel)

    async def close(self) -> None:
        await self._close_pubsub()


class SessionBus:
    """This process's registry of live connections by session and by user."""

    def __init__(self, db: Database, redis: aioredis.Redis | None = None,
                 channel: str = "rt:sessions-ended", recheck_s: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.redis = redis
        self.channel = channel
        self.recheck_s = recheck_s
        self.clock = clock
        self.closed_total = 0  # connections this bus closed (logs, metrics, tests)
        self._by_session: dict[str, set[Watch]] = {}
        self._by_user: dict[int, set[Watch]] = {}
        self._listener = _Listener(redis, channel, self._apply) if redis is not None else None
        self._task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[Any]] = set()

    def counters(self) -> dict[str, int]:
        """For the metrics page (`realtime.metrics.Counted`)."""
        return {"closed_connections": self.closed_total}

    # --- registration ------------------------------------------------------------------

    def watch(self, session_id: str | None, user_id: int, close: Close) -> Watch:
        """Register a live connection; `close` is called once if its session ends.

        The session was checked when the connection authenticated, but it may have ended
        between that check and this registration (the message then found nothing to close):
        the session is looked up once more, now that any later end will find the watch."""
        w = Watch(self, session_id, user_id, close)
        if session_id is not None:
            self._by_session.setdefault(session_id, set()).add(w)
            task = asyncio.ensure_future(self._confirm([session_id]))
            self._closing.add(task)
            task.add_done_callback(self._closed)
        self._by_user.setdefault(user_id, set()).add(w)
        return w

    def _forget(self, w: Watch) -> None:
        for index, key in ((self._by_session, w.session_id), (self._by_user, w.user_id)):
            if key is None:
                continue
            found = index.get(key)  # type: ignore[call-overload]
            if found is not None:
                found.discard(w)
                if not found:
                    del index[key]  # type: ignore[arg-type]

    @property
    def watched(self) -> int:
        return sum(len(s) for s in self._by_user.values())

    # --- ending ------------------------------------------------------------------------

    async def ended(self, sessions: Iterable[str] = (), users: Iterable[int] = ()) -> int:
        """These sessions (and every session of these users) ended: close their connections
        here, and tell every other process. Returns how many were closed here."""
        message = _Ended(sessions=list(sessions), users=list(users))
        closed = self._apply(message)
        if self.redis is not None:
            try:
                await self.redis.publish(self.channel, msgspec.json.encode(message))
            except Exception as exc:  # the periodic recheck still closes them in time
                log.warning("session-ended publish failed", extra={"error": repr(exc)})
        return closed

    def _apply(self, message: _Ended) -> int:
        hit: set[Watch] = set()
        for sid in message.sessions:
            hit |= self._by_session.get(sid, set())
        for uid in message.users:
            hit |= self._by_user.get(uid, set())
        for w in hit:
            self._end(w)
        return len(hit)

    def _end(self, w: Watch) -> None:
        if w.ended:
            return
        w.ended = True
        self._forget(w)
        self.closed_total += 1
        try:
            result = w.close()
        except Exception:
            log.exception("closing a connection of an ended session failed")
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._closing.add(task)
            task.add_done_callback(self._closed)

    def _closed(self, task: asyncio.Task[Any]) -> None:
        self._closing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("closing a connection of an ended session failed",
                        extra={"error": repr(task.exception())})

    # --- the safety net ----------------------------------------------------------------

    async def recheck(self) -> int:
        """Close the connections whose session is no longer valid in the database."""
        return await self._confirm(list(self._by_session))

    async def _confirm(self, watched: list[str]) -> int:
        now = self.clock()
        dead: list[str] = []
        for i in range(0, len(watched), RECHECK_BATCH):
            batch = watched[i:i + RECHECK_BATCH]
            marks = ",".join("?" * len(batch))
            rows = await self.db.fetchall(
                "SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id"
                f" WHERE s.id IN ({marks}) AND s.revoked_at IS NULL AND s.expires_at > ?"
                " AND u.disabled = 0",
                [*batch, now],
            )
            valid = {r["id"] for r in rows}
            dead.extend(sid for sid in batch if sid not in valid)
        if not dead:
            return 0
        closed = self._apply(_Ended(sessions=dead))
        if closed:
            log.info("connections of ended sessions closed", extra={"connections": closed})
        return closed

    async def _rechecks(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_s)
            try:
                await self.recheck()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("session recheck failed")

    async def start(self) -> None:
        if self._listener is not None:
            await self._listener.start()
        if self.recheck_s > 0:
            self._task = asyncio.create_task(self._rechecks(), name="session-recheck")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            await self._listener.close()
        for task in list(self._closing):
            task.cancel()


async def announce_ended(redis_url: str | None, channel: str, sessions: Iterable[str] = (),
                         users: Iterable[int] = ()) -> bool:
    """From outside a server (the command line): tell every running server over Redis.
    Without Redis, their periodic recheck closes the connections within seconds."""
    if not redis_url:
        return False
    from realtime.redis_client import connect

    client = connect(redis_url)
    try:
        await client.publish(channel, msgspec.json.encode(
            _Ended(sessions=list(sessions), users=list(users))))
        return True
    except Exception as exc:
        log.warning("session-ended publish failed", extra={"error": repr(exc)})
        return False
    finally:
        await client.aclose()


def channel_for(redis_prefix: str) -> str:
    return f"{redis_prefix}:sessions-ended"

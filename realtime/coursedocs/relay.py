"""Yjs traffic between processes through Redis pub/sub, when `REDIS_URL` is set.

A process publishes every update it has made durable and every awareness change of its own
connections on `<prefix>:yjs:<doc_id>`; every other process with that document open applies
them and passes them to its local connections. Pub/sub is at-most-once, so SQLite stays the
truth: a room subscribes *before* it loads (nothing committed after the load can be missed
while the connection holds), and when the pub/sub connection had to be reopened every open
room reloads from SQLite and sends its clients what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

UPDATE, AWARENESS = b"u", b"a"
CONFIRM_TIMEOUT_S = 2.0
LISTEN_TIMEOUT_S = 1.0

OnMessage = Callable[[bytes, bytes], None]  # (kind, payload)
OnResync = Callable[[], None]


class Relay:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.node = secrets.token_hex(8).encode()
        self._handlers: dict[int, tuple[OnMessage, OnResync]] = {}
        self._ready: dict[int, asyncio.Event] = {}
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._broken = False
        self._closing = False

    def _channel(self, doc_id: int) -> str:
        return f"{self.prefix}:yjs:{doc_id}"

    async def publish(self, doc_id: int, kind: bytes, payload: bytes) -> None:
        try:
            await self.redis.publish(self._channel(doc_id), self.node + b"\n" + kind + payload)
        except (RedisError, OSError) as exc:  # durable anyway; others catch up on resync
            log.warning("yjs relay publish failed", extra={"error": repr(exc)})

    async def subscribe(self, doc_id: int, on_message: OnMessage, on_resync: OnResync) -> None:
        """Returns once Redis confirmed the subscription (or after a short wait)."""
        async with self._lock:
            self._handlers[doc_id] = (on_message, on_resync)
            ready = self._ready[doc_id] = asyncio.Event()
            if self._pubsub is None:
                self._pubsub = self.redis.pubsub()
            if not self._broken:
                await self._pubsub.subscribe(self._channel(doc_id))
            if self._listener is None or self._listener.done():
                self._listener = asyncio.create_task(self._listen(), name="yjs-relay")
        try:
            await asyncio.wait_for(ready.wait(), CONFIRM_TIMEOUT_S)
        except TimeoutError:
            log.warning("yjs relay subscription not confirmed", extra={"doc_id": doc_id})

    async def unsubscribe(self, doc_id: int) -> None:
        async with self._lock:
            self._handlers.pop(doc_id, None)
            self._ready.pop(doc_id, None)
            if self._pubsub is not None and not self._broken:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(self._channel(doc_id))

    def _on_message(self, msg: dict[str, Any]) -> None:
        channel = msg["channel"].decode() if isinstance(msg["channel"], bytes) else msg["channel"]
        try:
            doc_id = int(channel.rsplit(":", 1)[1])
        except ValueError:
            return
        handlers = self._handlers.get(doc_id)
        if handlers is None:
            return
        if msg["type"] == "subscribe":
            ready = self._ready.get(doc_id)
            if ready is not None and ready.is_set():
                handlers[1]()  # re-subscribed after a lost connection: catch up
            elif ready is not None:
                ready.set()
        elif msg["type"] == "message":
            node, _, rest = msg["data"].partition(b"\n")
            if node != self.node and rest:
                handlers[0](rest[:1], rest[1:])

    async def _listen(self) -> None:
        backoff = 0.1
        while not self._closing:
            try:
                if self._broken:
                    await self._reopen()
                if self._pubsub is None or self._pubsub.connection is None:
                    await asyncio.sleep(LISTEN_TIMEOUT_S)
                else:
                    msg = await self._pubsub.get_message(timeout=LISTEN_TIMEOUT_S)
                    if msg is not None:
                        self._on_message(msg)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the listener must outlive any one failure
                log.warning("yjs relay lost, reconnecting", extra={"error": repr(exc)})
                self._broken = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _reopen(self) -> None:
        async with self._lock:
            old, self._pubsub = self._pubsub, self.redis.pubsub()
            if old is not None:
                with contextlib.suppress(Exception):
                    await old.aclose()
            channels = [self._channel(d) for d in self._handlers]
            if channels:
                await self._pubsub.subscribe(*channels)
            self._broken = False

    async def close(self) -> None:
        self._closing = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()

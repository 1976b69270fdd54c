"""Yjs traffic between processes through Redis pub/sub, when `REDIS_URL` is set.

A process publishes every update it has made durable and every awareness change of its own
connections on `<prefix>:yjs:<doc_id>`; every other process with that document open applies
them and passes them to its local connections. Pub/sub is at-most-once, so SQLite stays the
truth: a room subscribes *before* it loads (nothing committed after the load can be missed
while the connection holds), and when the pub/sub connection had to be reopened every open
room reads from SQLite what was stored after what it knows and sends its clients what it
missed (`DocRooms.catch_up_stored`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from realtime.redis_client import ResilientPubSub

log = logging.getLogger(__name__)

UPDATE, AWARENESS = b"u", b"a"
CONFIRM_TIMEOUT_S = 2.0

OnMessage = Callable[[bytes, bytes], None]  # (kind, payload)
OnResync = Callable[[], None]


class Relay(ResilientPubSub):
    name = "yjs-relay"

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        super().__init__(redis)
        self.prefix = prefix
        self.node = secrets.token_hex(8).encode()
        self._handlers: dict[int, tuple[OnMessage, OnResync]] = {}
        self._ready: dict[int, asyncio.Event] = {}

    def _channel(self, doc_id: int) -> str:
        return f"{self.prefix}:yjs:{doc_id}"

    async def publish(self, doc_id: int, kind: bytes, payload: bytes) -> None:
        message = self.node + b"\n" + kind + payload
        for retries_left in (1, 0):
            try:
                await self.redis.publish(self._channel(doc_id), message)
                return
            except (RedisError, OSError) as exc:  # durable anyway; others catch up on resync
                # Once more: after a Redis restart the first use of a pooled connection
                # fails (it went stale meanwhile), and the others may have resubscribed
                # already, so nothing would make them resync. A Yjs update applied twice
                # changes nothing.
                if not retries_left:
                    log.warning("yjs relay publish failed", extra={"error": repr(exc)})

    async def subscribe(self, doc_id: int, on_message: OnMessage, on_resync: OnResync) -> None:
        """Returns once Redis confirmed the subscription (or after a short wait)."""
        async with self._lock:
            self._handlers[doc_id] = (on_message, on_resync)
            ready = self._ready[doc_id] = asyncio.Event()
            await self._subscribe_locked(self._channel(doc_id))
        try:
            await asyncio.wait_for(ready.wait(), CONFIRM_TIMEOUT_S)
        except TimeoutError:
            log.warning("yjs relay subscription not confirmed", extra={"doc_id": doc_id})

    async def unsubscribe(self, doc_id: int) -> None:
        async with self._lock:
            self._handlers.pop(doc_id, None)
            self._ready.pop(doc_id, None)
            await self._unsubscribe_locked(self._channel(doc_id))

    # --- ResilientPubSub hooks ----------------------------------------------------------

    def _channels(self) -> list[str]:
        return [self._channel(d) for d in self._handlers]

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

    async def close(self) -> None:
        await self._close_pubsub()

"""One way to open a Redis client, for the app and for tools, and one way to listen to
pub/sub through Redis restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from realtime.metrics import counting_pubsub

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64


def connect(url: str, max_connections: int = MAX_CONNECTIONS) -> aioredis.Redis:
    """A client whose pool waits for a free connection under a burst instead of failing
    (redis-py's default pool raises "Too many connections")."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=10, health_check_interval=15
    )
    return aioredis.Redis(connection_pool=pool, decode_responses=False)


class ResilientPubSub:
    """One pub/sub connection shared by every local subscriber of a component, that outlives
    Redis restarts and outages.

    Pub/sub is at-most-once and a connection can die under us. The listener task reads with a
    timeout; on any failure it marks the connection broken and, with backoff, opens a fresh
    one and subscribes every channel again (under the lock that subscribe/unsubscribe take,
    so no channel is lost in between). Redis confirms each SUBSCRIBE with a message the
    subclass sees: a confirmation of a channel already confirmed means "reconnected, you may
    have missed something", and the subclass catches up from its durable source.

    Subclasses give the channel list, handle each message, and may do periodic work after
    each pass of the loop (the streams' head check)."""

    LISTEN_TIMEOUT_S = 0.5
    BACKOFF_S = (0.1, 5.0)  # first and longest wait before reopening
    name = "pubsub"
    reconnects = 0  # successful re-connections, silent ones included (realtime/metrics.py)

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._pubsub: Any = None
        self._broken = False
        self._closing = False
        self._listener: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # --- hooks --------------------------------------------------------------------------

    def _channels(self) -> list[str]:
        """Every channel a reopened connection must subscribe."""
        raise NotImplementedError

    def _on_message(self, msg: dict[str, Any]) -> None:
        """One message or subscribe confirmation; never awaits."""
        raise NotImplementedError

    async def _after_pass(self) -> None:
        """Called after each pass of the listener (a message or a timeout)."""

    def _new_pubsub(self) -> Any:
        """A fresh pub/sub object (redis-py's, counting its own silent re-connections)."""
        return counting_pubsub(self.redis, self)

    # --- for subclasses, holding self._lock ---------------------------------------------

    async def _subscribe_locked(self, channel: str) -> None:
        """Subscribe now, or leave it to the listener's reopen when the connection is
        broken (or breaks under us: Redis restarted)."""
        if not self._broken:
            if self._pubsub is None:
                self._pubsub = self._new_pubsub()
            try:
                await self._pubsub.subscribe(channel)
            except (RedisError, OSError) as exc:
                log.warning("%s subscribe failed, reopening", self.name,
                            extra={"channel": channel, "error": repr(exc)})
                self._broken = True
        self._ensure_listener()

    def _ensure_listener(self) -> None:
        if (self._listener is None or self._listener.done()) and not self._closing:
            self._listener = asyncio.create_task(self._listen(), name=self.name)

    async def _unsubscribe_locked(self, channel: str) -> None:
        if self._pubsub is not None and not self._broken:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(channel)

    # --- the listener -------------------------------------------------------------------

    async def _listen(self) -> None:
        first, longest = self.BACKOFF_S
        backoff = first
        while not self._closing:
            try:
                if self._broken:
                    await self._reopen()
                if self._pubsub is None or self._pubsub.connection is None:
                    await asyncio.sleep(self.LISTEN_TIMEOUT_S)
                else:
                    msg = await self._pubsub.get_message(timeout=self.LISTEN_TIMEOUT_S)
                    if msg is not None:
                        self._on_message(msg)
                await self._after_pass()
                backoff = first
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the listener must outlive any one failure
                log.warning("%s lost, reconnecting", self.name, extra={"error": repr(exc)},
                            exc_info=not isinstance(exc, RedisError | OSError))
                self._broken = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, longest)

    async def _reopen(self) -> None:
        """A fresh connection; its SUBSCRIBE confirmations tell subclasses to catch up."""
        async with self._lock:
            old, self._pubsub = self._pubsub, self._new_pubsub()
            if old is not None:
                with contextlib.suppress(Exception):
                    await old.aclose()
            channels = self._channels()
            if channels:
                await self._pubsub.subscribe(*channels)  # raises while Redis is still down
            self._broken = False
            self.reconnects += 1

    async def _close_pubsub(self) -> None:
        # redis-py's reconnect path can swallow a cancellation: the flag stops it anyway.
        self._closing = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None

"""Socket.IO emits between nodes on one Redis channel per room, not one for everything.

python-socketio's AsyncRedisManager publishes every emit on a single channel: every node
receives and decodes every emit of the cluster, even for a room it has no member of. This
manager publishes an emit to a room on that room's own channel, `<channel>:<namespace>:<room>`,
and a node subscribes to the channel of each room it has a local member of (a connection's own
sid room included, so an emit to a sid on another node still arrives). Everything else —
broadcasts to a whole namespace, cross-node disconnects and room changes, ack callbacks — stays
on the stock channel. docs/performance.md has the measurement that motivated it.

Redis pub/sub stays at-most-once: what must not be lost rides the reliable streams, and
presence watchers check versions; neither trusts this path alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
import socketio

from realtime.internals import redis_client_for
from realtime.metrics import counting_pubsub

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_S = 2.0
RETRY_MAX_S = 5.0


class RoomChannelRedisManager(socketio.AsyncRedisManager):
    name = "aioredis-rooms"

    def __init__(self, url: str, channel: str, **kwargs: Any) -> None:
        super().__init__(url, channel=channel, **kwargs)
        self._wanted: set[str] = set()  # room channels with a local member
        self._subscribed: set[str] = set()
        self._confirmed: dict[str, asyncio.Event] = {}
        self._lock: asyncio.Lock | None = None
        self._publisher: aioredis.Redis | None = None
        self.reconnects = 0  # listener reconnections to Redis (realtime/metrics.py)
        self._opened = False

    def counters(self) -> dict[str, int]:
        """For the metrics page, through the server's `counters()`."""
        return {"reconnects": self.reconnects}

    # --- which rooms have local members -------------------------------------------------

    def room_channel(self, namespace: str | None, room: str) -> str:
        return f"{self.channel}:{namespace or '/'}:{room}"

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        fresh = room is not None and room not in self.rooms.get(namespace, {})
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if fresh:
            self._want(self.room_channel(namespace, room), True)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        if room is not None and room not in self.rooms.get(namespace, {}):
            self._want(self.room_channel(namespace, room), False)

    async def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> Any:
        """Returns once Redis confirmed the room's channel: an emit made elsewhere right
        after this cannot miss the new member (unless pub/sub itself drops it)."""
        result = await super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        channel = self.room_channel(namespace, room)
        event = self._confirmed.get(channel)
        if event is not None and not event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), CONFIRM_TIMEOUT_S)
        return result

    def _want(self, channel: str, wanted: bool) -> None:
        if wanted:
            self._wanted.add(channel)
            self._confirmed.setdefault(channel, asyncio.Event())
        else:
            self._wanted.discard(channel)
            self._confirmed.pop(channel, None)
        with contextlib.suppress(RuntimeError):  # no running loop: the listener catches up
            asyncio.get_running_loop().create_task(self._sync(channel))

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _sync(self, channel: str) -> None:
        async with self._guard():
            pubsub = self.pubsub
            if pubsub is None or not self.connected:
                return  # the listener subscribes every wanted channel when it connects
            try:
                if channel in self._wanted and channel in self._subscribed:
                    event = self._confirmed.get(channel)
                    if event is not None:
                        event.set()  # left and entered again before we got to it
                elif channel in self._wanted:
                    await pubsub.subscribe(channel)
                    self._subscribed.add(channel)
                elif channel not in self._wanted and channel in self._subscribed:
                    self._subscribed.discard(channel)
                    await pubsub.unsubscribe(channel)
            except Exception as exc:  # the listener reconnects and resubscribes
                log.warning("room channel change failed", extra={"error": repr(exc)})

    # --- publishing and listening -------------------------------------------------------

    async def _publish(self, data: Any) -> Any:
        room = data.get("room") if data.get("method") == "emit" else None
        if not isinstance(room, str):
            room = None  # a list of rooms: the stock channel, so nobody gets it twice
        elif self.is_sid_room(data.get("namespace"), room):
            return None  # a connection of this process: already delivered, nobody else has it
        channel = self.channel if room is None else self.room_channel(data.get("namespace"), room)
        for retries_left in (1, 0):
            try:
                if self._publisher is None:
                    self._publisher = redis_client_for(self)
                return await self._publisher.publish(channel, self.json.dumps(data))
            except Exception as exc:
                self._publisher = None
                if not retries_left:
                    log.error("cannot publish to redis", extra={"error": repr(exc)})
        return None

    async def _listen(self) -> AsyncIterator[Any]:
        retry = 0.5
        while True:
            try:
                async with self._guard():  # no room change half-way through a (re)connect
                    # The listener's own connection: publishing never replaces it under us.
                    self.redis = redis_client_for(self)
                    self.pubsub = counting_pubsub(self.redis, self)
                    self._subscribed = set(self._wanted)
                    await self.pubsub.subscribe(self.channel, *self._subscribed)
                    if self._opened:  # subscribed again after a lost connection
                        self.reconnects += 1
                    self._opened = True
                    self.connected = True
                retry = 0.5
                async for message in self.pubsub.listen():
                    kind = message["type"]
                    if kind == "message":
                        yield message["data"]
                    elif kind == "subscribe":
                        channel = message["channel"].decode()
                        event = self._confirmed.get(channel)
                        if event is not None:
                            event.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected = False
                with contextlib.suppress(Exception):
                    await self.redis.aclose()
                log.warning("room channels lost, reconnecting",
                            extra={"error": repr(exc), "retry_s": retry})
                await asyncio.sleep(retry)
                retry = min(retry * 2, RETRY_MAX_S)

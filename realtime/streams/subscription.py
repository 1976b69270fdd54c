"""The one gap-free subscription both stores use.

Live events arrive through a queue (in-process fan-out or Redis pub/sub, which may drop or
duplicate nothing… or anything). The subscription trusts only `seq`: a duplicate is skipped, a
gap is filled from the store's history, and a gap history cannot fill becomes one `Reset`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from realtime.streams.base import Position, Replay, Reset, StreamEvent, Subscription

if TYPE_CHECKING:
    from realtime.streams.base import StreamStore

MAX_QUEUE = 10_000
RETRY_MIN_S = 0.1
RETRY_MAX_S = 2.0

log = logging.getLogger(__name__)


class _Check:
    """"Look at the stream's head": sent after a reconnect or periodically (Redis)."""

    __slots__ = ("force", "head")

    def __init__(self, head: Position | None = None, force: bool = False) -> None:
        self.head = head
        self.force = force


_CLOSED = object()


class QueueSubscription(Subscription):
    def __init__(
        self,
        store: StreamStore,
        stream: str,
        start: Position,
        on_close: Callable[[QueueSubscription], Awaitable[None]],
    ) -> None:
        self.store = store
        self.stream = stream
        self.epoch = start.epoch
        self.last = start.seq
        # The newest event known to be queued in order (or consumed), as (epoch, seq): what
        # `offer` may follow, and what the store may skip decoding (`has`).
        self.tail_epoch = start.epoch
        self.tail = start.seq
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._overflowed = False
        self._closed = False
        self._on_close = on_close

    # --- fed by the store --------------------------------------------------------------

    def push(self, event: StreamEvent) -> None:
        if self._closed:
            return
        if self._queue.qsize() >= MAX_QUEUE:
            # A consumer this far behind reads from history instead of holding memory.
            self._overflowed = True
            return
        if event.epoch == self.tail_epoch and event.seq == self.tail + 1:
            self.tail = event.seq
        self._queue.put_nowait(event)

    def offer(self, event: StreamEvent) -> None:
        """An event this process appended, handed over without waiting for pub/sub to
        bring it back — only when it follows what is already queued, so that it never opens
        a gap (a gap costs a read of history): otherwise pub/sub brings it, as before. The
        copy pub/sub brings later is a duplicate, dropped by seq (or not even decoded: see
        `has`)."""
        if event.epoch == self.tail_epoch and event.seq == self.tail + 1:
            self.push(event)

    def has(self, epoch: str, seq: int) -> bool:
        """This event is queued or consumed already: a copy of it changes nothing."""
        return epoch == self.tail_epoch and seq <= self.tail

    def check(self, head: Position | None = None) -> None:
        if not self._closed:
            self._queue.put_nowait(_Check(head))

    # --- read by the consumer ----------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[StreamEvent | Reset]:
        return self._events()

    async def _events(self) -> AsyncIterator[StreamEvent | Reset]:
        backoff = RETRY_MIN_S
        while not self._closed:
            item = await self._queue.get()
            if item is _CLOSED:
                return
            if self._overflowed:
                self._overflowed = False
                while not self._queue.empty():
                    self._queue.get_nowait()
                item = _Check()
            try:
                if isinstance(item, _Check):
                    head = item.head or await self.store.head(self.stream)
                    if item.force or head.epoch != self.epoch or head.seq > self.last:
                        async for out in self._fill():
                            yield out
                    backoff = RETRY_MIN_S
                    continue
                assert isinstance(item, StreamEvent)
                if item.epoch == self.epoch and item.seq <= self.last:
                    continue  # a duplicate, or already read from history
                if item.epoch == self.epoch and item.seq == self.last + 1:
                    self.last = item.seq
                    self._follow_last()
                    yield item
                    continue
                self.store.gaps += 1  # counted for the metrics
                async for out in self._fill():  # a gap, or a new epoch
                    yield out
                backoff = RETRY_MIN_S
            except Exception as exc:
                # The store is unreachable (Redis restarting): the consumer must outlive it.
                # Nothing was consumed past `last`, so looking again from there later loses
                # nothing and repeats nothing.
                log.warning("stream read failed, retrying", extra={
                    "stream": self.stream, "error": repr(exc), "retry_s": backoff})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MAX_S)
                if not self._closed:
                    self._queue.put_nowait(_Check(force=True))

    async def _fill(self) -> AsyncIterator[StreamEvent | Reset]:
        result = await self.store.resume(self.stream, self.epoch, self.last)
        if isinstance(result, Replay):
            for event in result.events:
                if event.seq > self.last:
                    self.last = event.seq
                    self._follow_last()
                    yield event
        else:
            self.epoch, self.last = result.epoch, result.head
            self._follow_last()
            yield result

    def _follow_last(self) -> None:
        """What was consumed is known too (after a read of history, or a new epoch)."""
        if self.tail_epoch != self.epoch or self.tail < self.last:
            self.tail_epoch, self.tail = self.epoch, self.last

    def catch_up(self) -> None:
        """Queue a resume from the starting position (behind, ahead or in another epoch)."""
        if not self._closed:
            self._queue.put_nowait(_Check(force=True))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(_CLOSED)
        await self._on_close(self)


async def start_subscription(
    store: StreamStore,
    stream: str,
    after: Position | None,
    register: Callable[[QueueSubscription], Awaitable[None]],
    unregister: Callable[[QueueSubscription], Awaitable[None]],
) -> QueueSubscription:
    """Register first, then read the head: nothing appended in between can be missed."""
    placeholder = Position(epoch="", seq=0)
    sub = QueueSubscription(store, stream, placeholder, unregister)
    await register(sub)
    head = await store.head(stream)
    start = after or head
    sub.epoch, sub.last = start.epoch, start.seq
    sub.tail_epoch, sub.tail = start.epoch, start.seq
    if start != head:
        sub.catch_up()
    return sub



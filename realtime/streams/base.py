"""Reliable streams: what must not be lost (board ops, chat messages, a parent's feed).

Each named stream hands out a gap-free `seq` (1, 2, 3, …) and keeps a bounded history.
An `epoch` names one incarnation of a stream's history: if the history is lost or recreated
(the Redis keys vanished, the stream was dropped), the epoch changes, and a client resuming
from an old (epoch, seq) is told to reload a snapshot instead of being given a partial replay.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import msgspec


def fail_group(group: Iterable[asyncio.Future[Any]], waiting: Iterable[asyncio.Future[Any]],
               exc: BaseException) -> None:
    """A grouped append failed (both stores write appends in groups): every caller of the
    group gets the error; a cancellation (the writer itself stopping) also cancels the callers
    still waiting for a later group, whose appends will never be written."""
    for fut in group:
        if not fut.done():
            fut.set_exception(exc if isinstance(exc, Exception)
                              else RuntimeError("stream append cancelled"))
    if not isinstance(exc, Exception):
        for fut in waiting:
            fut.cancel()


class StreamEvent(msgspec.Struct, frozen=True):
    stream: str
    epoch: str
    seq: int
    ts: float
    payload: Any


class Position(msgspec.Struct, frozen=True):
    epoch: str
    seq: int


class Replay(msgspec.Struct, frozen=True, tag="replay"):
    """Every event after the client's seq, in order, none missing."""

    epoch: str
    head: int
    events: list[StreamEvent]


class Reset(msgspec.Struct, frozen=True, tag="reset"):
    """History cannot serve this resume: the client reloads a snapshot at `head`."""

    epoch: str
    head: int
    reason: str  # "epoch_changed" | "history_trimmed" | "ahead_of_stream" | "too_many"


class Subscription(abc.ABC):
    """Gap-free live delivery of a stream's events after a starting position.

    Iterating yields `StreamEvent`s in seq order with no gap. If a gap is detected that history
    can no longer fill (or the epoch changed), it yields one `Reset` and carries on from the
    new head. Use as an async context manager so the subscription is released.
    """

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[StreamEvent | Reset]: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class StreamStore(abc.ABC):
    """One interface, two implementations: SQLite (one process) and Redis (several)."""

    # Plain counters for the metrics (realtime/metrics.py samples them): gaps subscribers
    # found in what pub/sub delivered, and reconnections of the store's listener.
    gaps: int = 0
    reconnects: int = 0

    def counters(self) -> dict[str, int]:
        """For the metrics page (`realtime.metrics.Counted`)."""
        return {"reconnects": self.reconnects, "gaps": self.gaps}

    @abc.abstractmethod
    async def append(self, stream: str, payload: Any) -> StreamEvent:
        """Durably append one event and return it with its seq (after the write is done)."""

    @abc.abstractmethod
    async def head(self, stream: str) -> Position:
        """The stream's epoch and last seq (0 for a stream with no events yet)."""

    @abc.abstractmethod
    async def resume(
        self, stream: str, epoch: str | None, after: int, *, limit: int = 10_000
    ) -> Replay | Reset:
        """Everything after `after` in `epoch`, or a Reset — never a partial replay.

        `epoch=None` means the client has nothing yet: it gets a Reset carrying the head, or,
        when `after == 0` and the whole history is still there, a full Replay.
        More than `limit` missed events is a Reset("too_many").
        """

    @abc.abstractmethod
    async def subscribe(self, stream: str, after: Position | None = None) -> Subscription:
        """Every event after `after` (default: the head now), then live ones, gap-free.

        Registration is done when this returns: an append made afterwards is delivered.
        """

    @abc.abstractmethod
    async def trim(self, now: float | None = None) -> int:
        """Enforce the size and age bounds on every stream; return events removed."""

    @abc.abstractmethod
    async def drop(self, stream: str) -> None:
        """Forget a stream's history; its next incarnation has a new epoch."""

    @abc.abstractmethod
    async def close(self) -> None: ...

"""Reliable streams in the database (SQLite, or PostgreSQL without Redis): durable.

The seq counter and the event are written in one transaction, so a seq is never handed out
without its event, and a restart continues where the database left off. Everything but the
append's transaction is one query text for both engines; the append differs because it is
the hot path: on SQLite a plain `sqlite3` function run on the loop's thread
(`Database.write_batch`), on PostgreSQL one statement per group (`_PG_APPEND`), one round
trip.

Live delivery is in-process: a subscriber hears of its own process's appends and finds
another writer's by the gap they leave (filled from history). Several server processes or
nodes therefore need Redis (`realtime/streams/redis.py`), which `serve` enforces
(`realtime/workers.py`, `realtime/node_guard.py`).
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import msgspec

from realtime.db import Database
from realtime.streams.base import (
    Position,
    Replay,
    Reset,
    StreamEvent,
    StreamStore,
    Subscription,
    fail_group,
)
from realtime.streams.rules import complete_replay, plan_resume
from realtime.streams.subscription import QueueSubscription, start_subscription

if TYPE_CHECKING:
    from realtime.pg import PostgresDatabase

MAX_GROUP = 500  # appends written in one transaction at most
# Transactions begin at most this often (leading edge: an append after a quiet spell is
# written at once): under load, appends that arrive within it share one BEGIN … COMMIT.
GROUP_S = 0.002


def new_epoch() -> str:
    return secrets.token_hex(8)


def _write_batch(
    conn: sqlite3.Connection, plan: list[tuple[str, list[bytes]]], now: float, max_len: int
) -> list[tuple[str, int]]:
    """In aiosqlite's thread, inside an open transaction: for each stream, take `len(rows)`
    seqs in one statement, insert the rows, trim to `max_len`; return (epoch, first seq)."""
    heads: list[tuple[str, int]] = []
    rows: list[tuple[str, int, float, bytes]] = []
    for stream, payloads in plan:
        count = len(payloads)
        row = conn.execute(
            "UPDATE streams SET seq = seq + ? WHERE name = ? RETURNING epoch, seq, trimmed_to",
            (count, stream),
        ).fetchone()
        if row is None:
            epoch, last, trimmed_to = new_epoch(), count, 0
            conn.execute(
                "INSERT INTO streams (name, epoch, seq, trimmed_to) VALUES (?, ?, ?, 0)",
                (stream, epoch, count),
            )
        else:
            epoch, last, trimmed_to = row[0], row[1], row[2]
        first = last - count + 1
        rows.extend((stream, first + i, now, data) for i, data in enumerate(payloads))
        heads.append((epoch, first))
        # Bound by size as we go, in steps of 1 % of the bound (not one row per commit, which
        # would add two statements to every append of a long-lived board).
        if last - max_len > trimmed_to + max_len // 100:
            cut = last - max_len
            conn.execute("DELETE FROM stream_events WHERE stream = ? AND seq <= ?", (stream, cut))
            conn.execute("UPDATE streams SET trimmed_to = ? WHERE name = ?", (cut, stream))
    conn.executemany(
        "INSERT INTO stream_events (stream, seq, ts, payload) VALUES (?, ?, ?, ?)", rows
    )
    return heads


# PostgreSQL: a whole group in one statement, hence one transaction and one round trip.
# `heads` takes `count` seqs per stream (inserting the stream with a new epoch if absent) and
# moves `trimmed_to` by the same size rule as `_write_batch`, in one upsert whose row lock
# serialises the writers of a stream on every node: a second writer waits for the first to
# commit, then adds to the seq it committed (ON CONFLICT DO UPDATE reads the latest row
# version under READ COMMITTED), so seqs stay gap-free across nodes. Rows are locked in
# stream-name order, the same on every node, so two groups sharing streams cannot deadlock.
# `added` inserts the events, numbered back from each stream's new head; `cut` removes the
# history that the size bound dropped, only in the group that moved it. Sub-statements share
# one snapshot: a row another node inserted below the cut meanwhile outlives this DELETE,
# out of every reader's reach (reads start above `trimmed_to`) until the next cut.
_PG_APPEND = """
WITH heads AS (
    INSERT INTO streams AS s (name, epoch, seq, trimmed_to)
    SELECT h.name, h.epoch, h.count, 0
    FROM unnest(?::text[], ?::text[], ?::bigint[]) AS h(name, epoch, count)
    ORDER BY h.name
    ON CONFLICT (name) DO UPDATE SET
        seq = s.seq + excluded.seq,
        trimmed_to = CASE WHEN s.seq + excluded.seq - ? > s.trimmed_to + ?
                          THEN s.seq + excluded.seq - ? ELSE s.trimmed_to END
    RETURNING s.name, s.epoch, s.seq, s.trimmed_to
), added AS (
    INSERT INTO stream_events (stream, seq, ts, payload)
    SELECT e.stream, h.seq - e.back, ?, e.payload
    FROM unnest(?::text[], ?::bigint[], ?::bytea[]) AS e(stream, back, payload)
    JOIN heads h ON h.name = e.stream
), cut AS (
    DELETE FROM stream_events d USING heads h
    WHERE d.stream = h.name AND h.trimmed_to > 0 AND h.trimmed_to = h.seq - ?
      AND d.seq <= h.trimmed_to
)
SELECT name, epoch, seq FROM heads
"""


async def _pg_write_batch(
    db: PostgresDatabase, plan: list[tuple[str, list[bytes]]], now: float, max_len: int,
    size: int,
) -> list[tuple[str, int]]:
    """`_write_batch` on PostgreSQL: (epoch, first seq) per stream of `plan`, committed."""
    names, epochs, counts = [], [], []
    ev_streams: list[str] = []
    ev_back: list[int] = []
    ev_payloads: list[bytes] = []
    for stream, payloads in plan:
        count = len(payloads)
        names.append(stream)
        epochs.append(new_epoch())  # kept only if the stream is new
        counts.append(count)
        ev_streams.extend([stream] * count)
        ev_back.extend(range(count - 1, -1, -1))
        ev_payloads.extend(payloads)
    # A new stream starts at trimmed_to 0: a first group longer than the bound is cut by
    # the next group, as on SQLite.
    rows = await db.write_statement(
        _PG_APPEND,
        (names, epochs, counts, max_len, max_len // 100, max_len, now,
         ev_streams, ev_back, ev_payloads, max_len),
        size=size,
    )
    heads = {r[0]: (r[1], r[2]) for r in rows}
    return [(heads[stream][0], heads[stream][1] - len(payloads) + 1)
            for stream, payloads in plan]


class SqlStreamStore(StreamStore):
    def __init__(
        self,
        db: Database,
        max_len: int,
        max_age_s: int,
        clock: Callable[[], float] = time.time,
        group_s: float = GROUP_S,
    ) -> None:
        self.db = db
        self.max_len = max_len
        self.max_age_s = max_age_s
        self.clock = clock
        self.group_s = group_s
        self._subs: dict[str, set[QueueSubscription]] = {}
        self._queue: list[tuple[str, bytes, Any, asyncio.Future[StreamEvent]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._last_commit = 0.0  # loop time at which the last transaction began

    async def append(self, stream: str, payload: Any) -> StreamEvent:
        """Group commit: appends that arrive while a transaction is being written, or within
        `group_s` of the last one's start, wait for the next one, which writes them all
        (SQLite: one BEGIN … COMMIT, one statement per stream for the counter, one
        `executemany` for the rows; PostgreSQL: one statement, `_PG_APPEND`). A transaction
        costs about the same whether it holds one row or three (SQLite: 50 µs of CPU;
        PostgreSQL: a round trip and a WAL flush), so under load this pays it once per group
        instead of once per append, for at most `group_s` of added wait; an append after a
        quiet spell is written at once. Each caller still returns only after its own event
        is committed, so an acked event is as durable as before."""
        fut: asyncio.Future[StreamEvent] = asyncio.get_running_loop().create_future()
        self._queue.append((stream, msgspec.json.encode(payload), payload, fut))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches())
        return await fut

    async def _write_batches(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch: list[tuple[str, bytes, Any, asyncio.Future[StreamEvent]]] = []
            try:
                wait = self._last_commit + self.group_s - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._last_commit = loop.time()
                batch, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
                events = await self._commit(batch)
            except BaseException as exc:
                fail_group((f for *_, f in batch), (f for *_, f in self._queue), exc)
                if not isinstance(exc, Exception):
                    self._queue = []
                    raise
                continue
            for event, (*_, fut) in zip(events, batch, strict=True):
                for sub in tuple(self._subs.get(event.stream, ())):
                    sub.push(event)
                if not fut.done():
                    fut.set_result(event)

    async def _commit(
        self, batch: list[tuple[str, bytes, Any, asyncio.Future[StreamEvent]]]
    ) -> list[StreamEvent]:
        now = self.clock()
        by_stream: dict[str, list[int]] = {}
        for index, (stream, *_rest) in enumerate(batch):
            by_stream.setdefault(stream, []).append(index)
        plan = [(stream, [batch[i][1] for i in indexes]) for stream, indexes in by_stream.items()]
        if self.db.engine == "postgres":  # one statement, one round trip
            heads = await _pg_write_batch(cast("PostgresDatabase", self.db), plan, now,
                                          self.max_len, len(batch))
        else:  # one call for the whole batch, transaction included
            heads = await self.db.write_batch(  # type: ignore[attr-defined]
                _write_batch, plan, now, self.max_len, size=len(batch))
        events: list[StreamEvent | None] = [None] * len(batch)
        for (stream, indexes), (epoch, first) in zip(by_stream.items(), heads, strict=True):
            for offset, index in enumerate(indexes):
                events[index] = StreamEvent(stream=stream, epoch=epoch, seq=first + offset,
                                            ts=now, payload=batch[index][2])
        return [e for e in events if e is not None]

    async def _meta(self, stream: str) -> tuple[str, int, int]:
        row = await self.db.fetchone(
            "SELECT epoch, seq, trimmed_to FROM streams WHERE name = ?", (stream,)
        )
        if row is None:
            # Give the empty stream its epoch now, so a client can hold a position in it.
            async with self.db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO streams (name, epoch, seq, trimmed_to)"
                    " VALUES (?, ?, 0, 0) ON CONFLICT DO NOTHING",
                    (stream, new_epoch()),
                )
            row = await self.db.fetchone(
                "SELECT epoch, seq, trimmed_to FROM streams WHERE name = ?", (stream,)
            )
            assert row is not None
        return row["epoch"], row["seq"], row["trimmed_to"]

    async def head(self, stream: str) -> Position:
        epoch, seq, _ = await self._meta(stream)
        return Position(epoch=epoch, seq=seq)

    async def resume(
        self, stream: str, epoch: str | None, after: int, *, limit: int = 10_000
    ) -> Replay | Reset:
        current, head, trimmed_to = await self._meta(stream)
        decided = plan_resume(epoch, after, current=current, head=head,
                              trimmed_to=trimmed_to, limit=limit)
        if decided is not None:
            return decided
        # One statement, one snapshot: the epoch guard keeps a stream dropped and refilled
        # since _meta from lending its rows to the old epoch.
        rows = await self.db.fetchall(
            "SELECT e.seq, e.ts, e.payload FROM stream_events e JOIN streams s"
            " ON s.name = e.stream AND s.epoch = ?"
            " WHERE e.stream = ? AND e.seq > ? AND e.seq <= ? ORDER BY e.seq",
            (current, stream, after, head),
        )
        events = [
            StreamEvent(stream=stream, epoch=current, seq=r["seq"], ts=r["ts"],
                        payload=msgspec.json.decode(r["payload"]))
            for r in rows
        ]
        return complete_replay(events, after, current=current, head=head)

    async def subscribe(self, stream: str, after: Position | None = None) -> Subscription:
        async def register(sub: QueueSubscription) -> None:
            self._subs.setdefault(stream, set()).add(sub)

        async def unregister(sub: QueueSubscription) -> None:
            subs = self._subs.get(stream)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[stream]

        return await start_subscription(self, stream, after, register, unregister)

    async def trim(self, now: float | None = None) -> int:
        """One transaction per stream, so that appends to the others never wait for the
        sweep. Each locks its stream's row first (as an append does: the same lock order,
        no deadlock) and only then reads where to cut: a stream dropped and refilled since
        the list was read loses none of its young events."""
        cutoff = (self.clock() if now is None else now) - self.max_age_s
        old = await self.db.fetchall(
            "SELECT DISTINCT stream FROM stream_events WHERE ts < ? ORDER BY stream", (cutoff,)
        )
        removed = 0
        for (stream,) in old:
            async with self.db.transaction() as conn:
                cur = await conn.execute(
                    "SELECT seq FROM streams WHERE name = ? FOR UPDATE", (stream,))
                if await cur.fetchone() is None:
                    continue  # dropped meanwhile
                cur = await conn.execute(
                    "SELECT MAX(seq) FROM stream_events WHERE stream = ? AND ts < ?",
                    (stream, cutoff))
                row = await cur.fetchone()
                cut = row[0] if row is not None else None
                if cut is None:
                    continue
                cur = await conn.execute(
                    "DELETE FROM stream_events WHERE stream = ? AND seq <= ?", (stream, cut)
                )
                removed += cur.rowcount
                await conn.execute(
                    "UPDATE streams SET trimmed_to = CASE WHEN trimmed_to < ? THEN ?"
                    " ELSE trimmed_to END WHERE name = ?",
                    (cut, cut, stream),
                )
        return removed

    async def drop(self, stream: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM streams WHERE name = ?", (stream,))
        for sub in tuple(self._subs.get(stream, ())):
            sub.check()  # the new incarnation's epoch reaches subscribers as a Reset

    async def close(self) -> None:
        if self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer})  # appends already accepted are written
        for subs in list(self._subs.values()):
            for sub in list(subs):
                await sub.close()

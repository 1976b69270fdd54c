"""A guardian's feed of notices: rows in SQLite (the truth, with read state) published on
the reliable stream `attendance:guardian:<id>` (gap-free seq, resume after a disconnect).

The rows are written in the roll's transaction; the stream append happens after the commit
(nobody hears of a rolled-back absence). A row whose append did not happen (a crash in
between) stays `stream_seq IS NULL` and the maintenance sweep publishes it: an outbox.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiosqlite

from realtime.db import Database
from realtime.streams import Position, Replay, StreamEvent, StreamStore

log = logging.getLogger(__name__)

SNAPSHOT_SIZE = 50
OUTBOX_GRACE_S = 5.0


def stream_name(guardian_id: int) -> str:
    return f"attendance:guardian:{guardian_id}"


class Pending:
    """A notice written in a transaction, waiting for its commit to be published."""

    __slots__ = ("guardian_id", "id", "payload")

    def __init__(self, id_: int, guardian_id: int, payload: dict[str, Any]) -> None:
        self.id = id_
        self.guardian_id = guardian_id
        self.payload = payload


async def write(conn: aiosqlite.Connection, guardian_ids: list[int], student_id: int,
                event_id: int | None, payload: dict[str, Any], now: float) -> list[Pending]:
    out = []
    for g in guardian_ids:
        cur = await conn.execute(
            "INSERT INTO notifications (guardian_id, student_id, event_id, date, payload,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (g, student_id, event_id, payload["date"], json.dumps(payload, ensure_ascii=False),
             now))
        row = await cur.fetchone()
        assert row is not None
        out.append(Pending(int(row[0]), g, {**payload, "id": int(row[0]), "created_at": now}))
    return out


async def publish(db: Database, streams: StreamStore, notes: list[Pending],
                  on_published: Callable[[Pending], Awaitable[None]] | None = None) -> None:
    """Append each notice to its guardian's stream, then record where it went."""
    done: list[tuple[str, int, int]] = []
    for n in notes:
        try:
            ev = await streams.append(stream_name(n.guardian_id), n.payload)
        except Exception:  # left for the outbox sweep
            log.exception("notice not published", extra={"notification": n.id})
            continue
        done.append((ev.epoch, ev.seq, n.id))
        if on_published is not None:
            await on_published(n)
    if done:
        async with db.transaction() as conn:
            await conn.executemany(
                "UPDATE notifications SET stream_epoch = ?, stream_seq = ? WHERE id = ?", done)


async def sweep_outbox(db: Database, streams: StreamStore, now: float,
                       on_published: Callable[[Pending], Awaitable[None]] | None = None
                       ) -> int:
    rows = await db.fetchall(
        "SELECT id, guardian_id, payload, created_at FROM notifications"
        " WHERE stream_seq IS NULL AND created_at < ? ORDER BY id LIMIT 1000",
        (now - OUTBOX_GRACE_S,))
    notes = [Pending(r["id"], r["guardian_id"],
                     {**json.loads(r["payload"]), "id": r["id"], "created_at": r["created_at"]})
             for r in rows]
    await publish(db, streams, notes, on_published)
    return len(notes)


def _item(r: aiosqlite.Row) -> dict[str, Any]:
    return {**json.loads(r["payload"]), "id": r["id"], "created_at": r["created_at"],
            "read": r["read_at"] is not None, "seq": r["stream_seq"]}


async def snapshot(db: Database, guardian_id: int, limit: int = SNAPSHOT_SIZE
                   ) -> list[dict[str, Any]]:
    rows = await db.fetchall(
        "SELECT * FROM notifications WHERE guardian_id = ? ORDER BY id DESC LIMIT ?",
        (guardian_id, limit))
    return [_item(r) for r in rows]


async def unread_count(db: Database, guardian_id: int) -> int:
    row = await db.fetchone(
        "SELECT COUNT(*) AS n FROM notifications WHERE guardian_id = ? AND read_at IS NULL",
        (guardian_id,))
    return int(row["n"]) if row else 0


async def read_state(db: Database, ids: list[int]) -> dict[int, bool]:
    if not ids:
        return {}
    rows = await db.fetchall(
        f"SELECT id, read_at FROM notifications WHERE id IN ({','.join('?' * len(ids))})", ids)
    return {r["id"]: r["read_at"] is not None for r in rows}


async def mark_read(db: Database, guardian_id: int, ids: list[int] | None, now: float
                    ) -> list[int]:
    """Mark some (or, with None, all) of the guardian's notices read; returns those changed."""
    if ids is not None and not ids:  # none: `IN ()` is SQLite's alone
        return []
    async with db.transaction() as conn:
        if ids is None:
            cur = await conn.execute(
                "UPDATE notifications SET read_at = ? WHERE guardian_id = ? AND read_at IS NULL"
                " RETURNING id", (now, guardian_id))
        else:
            cur = await conn.execute(
                f"UPDATE notifications SET read_at = ? WHERE guardian_id = ? AND read_at IS NULL"
                f" AND id IN ({','.join('?' * len(ids))}) RETURNING id",
                (now, guardian_id, *ids))
        return sorted(int(r[0]) for r in await cur.fetchall())


async def catch_up(db: Database, streams: StreamStore, guardian_id: int,
                   since: tuple[str, int] | None) -> tuple[dict[str, Any], Position]:
    """What a (re)connecting device receives: exactly the notices after its position, or a
    snapshot when it has none or history no longer reaches back. Returns the answer and the
    position to follow live from."""
    name = stream_name(guardian_id)
    answer: dict[str, Any] = {"unread": 0}
    if since is not None:
        result = await streams.resume(name, since[0], since[1])
        if isinstance(result, Replay):
            states = await read_state(db, [e.payload["id"] for e in result.events])
            answer.update(epoch=result.epoch, seq=result.head,
                          notices=[_event_item(e, states) for e in result.events])
            answer["unread"] = await unread_count(db, guardian_id)
            return answer, Position(epoch=result.epoch, seq=result.head)
        answer["reset"] = result.reason
    head = await streams.head(name)
    answer.update(epoch=head.epoch, seq=head.seq, snapshot=await snapshot(db, guardian_id),
                  unread=await unread_count(db, guardian_id))
    return answer, head


def _event_item(e: StreamEvent, states: dict[int, bool] | None = None) -> dict[str, Any]:
    read = (states or {}).get(e.payload["id"], False)
    return {**e.payload, "seq": e.seq, "epoch": e.epoch, "read": read}


def live_item(e: StreamEvent) -> dict[str, Any]:
    return _event_item(e)

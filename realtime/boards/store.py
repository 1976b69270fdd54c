"""Boards in SQLite: metadata, the durable snapshot, images. Domain types in and out."""

from __future__ import annotations

import json

import aiosqlite
import msgspec

from realtime.db import Database


class BoardMeta(msgspec.Struct, frozen=True):
    id: int
    school_id: int
    class_id: int
    slot_id: int | None
    owner_id: int
    title: str
    state: str
    pen_all: bool
    pen: frozenset[int]
    created_at: float
    updated_at: float
    page_count: int = 1  # as of the last snapshot



class Snapshot(msgspec.Struct, frozen=True):
    data: bytes | None
    epoch: str | None
    seq: int


_COLS = ("id, school_id, class_id, slot_id, owner_id, title, state, pen_all, pen, created_at,"
         " updated_at, page_count")


def _meta(r: aiosqlite.Row) -> BoardMeta:
    return BoardMeta(
        id=r["id"], school_id=r["school_id"], class_id=r["class_id"], slot_id=r["slot_id"],
        owner_id=r["owner_id"], title=r["title"], state=r["state"], pen_all=bool(r["pen_all"]),
        pen=frozenset(json.loads(r["pen"])), created_at=r["created_at"],
        updated_at=r["updated_at"], page_count=r["page_count"],
    )


async def create(
    db: Database, *, school_id: int, class_id: int, slot_id: int | None, owner_id: int,
    title: str, now: float,
) -> BoardMeta:
    async with db.transaction() as conn:
        cur = await conn.execute(
            "INSERT INTO boards (school_id, class_id, slot_id, owner_id, title, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING " + _COLS,
            (school_id, class_id, slot_id, owner_id, title, now, now),
        )
        row = await cur.fetchone()
    assert row is not None
    return _meta(row)


async def get(db: Database, board_id: int) -> BoardMeta | None:
    row = await db.fetchone(f"SELECT {_COLS} FROM boards WHERE id = ?", (board_id,))
    return _meta(row) if row else None


async def of_class(db: Database, class_id: int, limit: int = 100) -> list[BoardMeta]:
    rows = await db.fetchall(
        f"SELECT {_COLS} FROM boards WHERE class_id = ? ORDER BY updated_at DESC, id DESC"
        " LIMIT ?",
        (class_id, limit),
    )
    return [_meta(r) for r in rows]


async def set_controls(
    conn: aiosqlite.Connection, board_id: int, *, state: str, pen_all: bool,
    pen: frozenset[int], now: float,
) -> None:
    await conn.execute(
        "UPDATE boards SET state = ?, pen_all = ?, pen = ?, updated_at = ? WHERE id = ?",
        (state, int(pen_all), json.dumps(sorted(pen)), now, board_id),
    )


async def set_title(conn: aiosqlite.Connection, board_id: int, title: str, now: float
                    ) -> None:
    await conn.execute("UPDATE boards SET title = ?, updated_at = ? WHERE id = ?",
                       (title, now, board_id))


async def touch(db: Database, board_id: int, now: float) -> None:
    await db.execute("UPDATE boards SET updated_at = ? WHERE id = ?", (now, board_id))


async def snapshot(db: Database, board_id: int) -> Snapshot:
    row = await db.fetchone(
        "SELECT snapshot, snapshot_epoch, snapshot_seq FROM boards WHERE id = ?", (board_id,)
    )
    if row is None:
        return Snapshot(data=None, epoch=None, seq=0)
    return Snapshot(data=row["snapshot"], epoch=row["snapshot_epoch"], seq=row["snapshot_seq"])


async def save_snapshot(
    db: Database, board_id: int, data: bytes, epoch: str, seq: int, now: float,
    *, built_on: Snapshot | None = None, page_count: int | None = None,
) -> bool:
    """Only ever moves forward, decided in SQL: True when written.

    Within an epoch, a snapshot replaces one at a lower seq only: a slower compaction never
    overwrites a newer one. Epochs are random, so they do not order themselves: a snapshot of
    a new epoch replaces one of another epoch only when that is still the snapshot it was
    `built_on` (or an older one of the same epoch). A late snapshot of an old history thus
    never overwrites the new history's, and a new history does not overwrite a fuller
    snapshot of the old one that another process wrote since (that process saw acked ops
    this one may not have; the caller rebuilds from it)."""
    base_epoch, base_seq = (built_on.epoch, built_on.seq) if built_on else (epoch, seq)
    async with db.transaction() as conn:
        cur = await conn.execute(
            "UPDATE boards SET snapshot = ?, snapshot_epoch = ?, snapshot_seq = ?,"
            " updated_at = ?, page_count = COALESCE(?, page_count)"
            " WHERE id = ? AND ((snapshot_epoch IS NOT DISTINCT FROM ? AND snapshot_seq < ?)"
            " OR (snapshot_epoch IS DISTINCT FROM ? AND snapshot_epoch IS NOT DISTINCT FROM ?"
            " AND snapshot_seq <= ?))",
            (data, epoch, seq, now, page_count, board_id, epoch, seq, epoch, base_epoch,
             base_seq),
        )
        return cur.rowcount == 1


async def put_image(
    db: Database, board_id: int, sha256: str, mime: str, data: bytes, now: float
) -> None:
    await db.execute(
        "INSERT INTO board_images (board_id, sha256, mime, data, created_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (board_id, sha256, mime, data, now),
    )


async def image(db: Database, board_id: int, sha256: str) -> tuple[str, bytes] | None:
    row = await db.fetchone(
        "SELECT mime, data FROM board_images WHERE board_id = ? AND sha256 = ?",
        (board_id, sha256),
    )
    return (row["mime"], row["data"]) if row else None


async def purge_before(conn: aiosqlite.Connection, cutoff: float) -> dict[str, int]:
    """Retention: boards untouched since `cutoff` go, whatever their state, with their images
    and their session's questions chat (foreign keys cascade). Their op streams are already
    bounded by age (`REALTIME_STREAM_MAX_AGE`)."""
    cur = await conn.execute(
        "SELECT COUNT(*) FROM board_images WHERE board_id IN (SELECT id FROM boards"
        " WHERE updated_at < ?)", (cutoff,))
    row = await cur.fetchone()
    images = int(row[0]) if row else 0
    cur = await conn.execute("DELETE FROM boards WHERE updated_at < ?", (cutoff,))
    return {"boards": max(cur.rowcount, 0), "board_images": images}

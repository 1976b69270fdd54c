"""Course documents in the database: metadata, access, the update log, compaction, versions.

The update log is append-only; compaction folds a prefix of it into `course_docs.snapshot` and
deletes exactly that prefix (ids <= the last one it read) in the same transaction as it writes
the snapshot, so an update appended while the merge was running is never lost — unlike a
squash that rewrites "everything" after reading. On PostgreSQL, where several nodes append
at once, that holds because one document's appends commit in id order (`append`) and reads
take the log before the snapshot's bound (`load`, `updates_after`).
"""

from __future__ import annotations

from collections.abc import Iterable

import aiosqlite

from realtime.coursedocs.model import ClassMode, DocMeta, Stored, Version, VersionKind
from realtime.db import Database, Transaction
from realtime.directory import reads as directory

_COLS = "id, school_id, owner_id, title, created_at, updated_at"


async def _access(db: Database, metas: list[aiosqlite.Row]) -> list[DocMeta]:
    if not metas:
        return []
    ids = [r["id"] for r in metas]
    marks = ",".join("?" * len(ids))
    editors: dict[int, set[int]] = {i: set() for i in ids}
    classes: dict[int, dict[int, ClassMode]] = {i: {} for i in ids}
    for r in await db.fetchall(
        f"SELECT doc_id, teacher_id FROM course_doc_editors WHERE doc_id IN ({marks})", ids
    ):
        editors[r["doc_id"]].add(r["teacher_id"])
    for r in await db.fetchall(
        f"SELECT doc_id, class_id, mode FROM course_doc_classes WHERE doc_id IN ({marks})", ids
    ):
        classes[r["doc_id"]][r["class_id"]] = ClassMode(r["mode"])
    return [
        DocMeta(id=r["id"], school_id=r["school_id"], owner_id=r["owner_id"], title=r["title"],
                created_at=r["created_at"], updated_at=r["updated_at"],
                editors=frozenset(editors[r["id"]]), classes=classes[r["id"]])
        for r in metas
    ]


async def create(db: Database, *, school_id: int, owner_id: int, title: str, now: float
                 ) -> DocMeta:
    async with db.transaction() as conn:
        # The id comes from an AUTOINCREMENT registry: never one a deleted course had.
        cur = await conn.execute("INSERT INTO course_doc_ids DEFAULT VALUES RETURNING id")
        taken = await cur.fetchone()
        assert taken is not None
        cur = await conn.execute(
            "INSERT INTO course_docs (id, school_id, owner_id, title, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (taken["id"], school_id, owner_id, title, now, now),
        )
        row = await cur.fetchone()
    assert row is not None
    return DocMeta(id=row["id"], school_id=school_id, owner_id=owner_id, title=title,
                   created_at=now, updated_at=now)


async def get(db: Database, doc_id: int) -> DocMeta | None:
    rows = await db.fetchall(f"SELECT {_COLS} FROM course_docs WHERE id = ?", (doc_id,))
    found = await _access(db, rows)
    return found[0] if found else None


async def candidates(db: Database, user_id: int, class_ids: Iterable[int], limit: int = 500
                     ) -> list[DocMeta]:
    """Documents a user owns, co-edits, or that are shared with one of their classes; the
    policy then decides which of them the user really sees."""
    cls = list(class_ids)
    marks = ",".join("?" * len(cls)) or "NULL"
    rows = await db.fetchall(
        f"SELECT {_COLS} FROM course_docs WHERE owner_id = ?"
        " OR id IN (SELECT doc_id FROM course_doc_editors WHERE teacher_id = ?)"
        f" OR id IN (SELECT doc_id FROM course_doc_classes WHERE class_id IN ({marks}))"
        " ORDER BY updated_at DESC, id DESC LIMIT ?",
        (user_id, user_id, *cls, limit),
    )
    return await _access(db, rows)


async def rename(conn: aiosqlite.Connection, doc_id: int, title: str, now: float) -> None:
    await conn.execute("UPDATE course_docs SET title = ?, updated_at = ? WHERE id = ?",
                       (title, now, doc_id))


async def share(conn: aiosqlite.Connection, doc_id: int, editors: Iterable[int],
                classes: dict[int, ClassMode], now: float) -> None:
    """Replace the access list (in the caller's transaction). The document's row is updated
    first: on PostgreSQL its lock makes a second share wait for the first's commit, then
    replace that list whole (without it both would delete the old list and insert theirs,
    colliding on the primary keys or merging)."""
    await conn.execute("UPDATE course_docs SET updated_at = ? WHERE id = ?", (now, doc_id))
    await conn.execute("DELETE FROM course_doc_editors WHERE doc_id = ?", (doc_id,))
    await conn.execute("DELETE FROM course_doc_classes WHERE doc_id = ?", (doc_id,))
    await conn.executemany(
        "INSERT INTO course_doc_editors (doc_id, teacher_id) VALUES (?, ?)",
        [(doc_id, t) for t in sorted(set(editors))],
    )
    await conn.executemany(
        "INSERT INTO course_doc_classes (doc_id, class_id, mode) VALUES (?, ?, ?)",
        [(doc_id, c, m.value) for c, m in sorted(classes.items())],
    )


async def delete(conn: aiosqlite.Connection, doc_id: int) -> None:
    await conn.execute("DELETE FROM course_docs WHERE id = ?", (doc_id,))


# --- content ---------------------------------------------------------------------------------

APPEND_ROWS = 1000  # updates per INSERT statement (3 parameters each)


async def append(db: Database, doc_id: int, updates: list[bytes], now: float) -> int:
    """Append updates durably, in one transaction (each statement is a hop to aiosqlite's
    thread, on the relay's critical path: keep them few: one multi-row INSERT per
    `APPEND_ROWS`); return the last one's id (0 when the document is gone).

    The document's row is updated first: on PostgreSQL that row lock, held to the commit,
    makes one document's appends take their ids in the order they commit (an identity
    sequence alone hands ids out at INSERT time, and two nodes may commit in the other
    order). A reader that saw id N of a document has then seen every lower id of it, which
    `updates_after` and the compaction's « delete ids <= N » rely on. SQLite's single
    writer gave that already."""
    last = 0
    async with db.transaction() as conn:
        cur = await conn.execute(
            "UPDATE course_docs SET updated_at = ? WHERE id = ? RETURNING id", (now, doc_id))
        if await cur.fetchone() is None:
            return 0
        for i in range(0, len(updates), APPEND_ROWS):
            part = updates[i:i + APPEND_ROWS]
            cur = await conn.execute(
                "INSERT INTO course_doc_updates (doc_id, data, created_at) VALUES "
                + ", ".join(["(?, ?, ?)"] * len(part)) + " RETURNING id",
                [v for u in part for v in (doc_id, u, now)])
            last = max([last, *(int(r[0]) for r in await cur.fetchall())])
    return last


async def updates_after(db: Database, doc_id: int, after: int) -> Stored:
    """The updates stored after id `after`, with the snapshot's bound (`upto`) but not the
    snapshot itself: a caller whose `after` is below `upto` must load the whole document.

    The updates are read before the bound: on PostgreSQL (READ COMMITTED) each statement
    sees what was committed when it started, and a compaction committing in between must
    show in `upto` (the caller then loads everything) rather than hide the updates it
    folded, as it would if the bound were read first."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            "SELECT id, data FROM course_doc_updates WHERE doc_id = ? AND id > ? ORDER BY id",
            (doc_id, after))
        rows = await cur.fetchall()
        cur = await conn.execute("SELECT snapshot_upto FROM course_docs WHERE id = ?", (doc_id,))
        head = await cur.fetchone()
    return Stored(snapshot=None, upto=head["snapshot_upto"] if head else 0,
                  updates=[(r["id"], r["data"]) for r in rows])


async def load(db: Database, doc_id: int) -> Stored:
    """The snapshot and every update after it, read in one go (one lock hold).

    The update log is read before the snapshot, as in `updates_after`: a compaction that
    commits between the two statements (PostgreSQL) deleted only updates its snapshot holds,
    so the log read first plus the snapshot read second still hold everything; the updates
    the snapshot already covers are dropped here."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            "SELECT id, data FROM course_doc_updates WHERE doc_id = ? ORDER BY id", (doc_id,))
        rows = await cur.fetchall()
        cur = await conn.execute(
            "SELECT snapshot, snapshot_upto FROM course_docs WHERE id = ?", (doc_id,))
        head = await cur.fetchone()
    if head is None:
        return Stored(snapshot=None, upto=0, updates=[])
    upto = head["snapshot_upto"]
    return Stored(snapshot=head["snapshot"], upto=upto,
                  updates=[(r["id"], r["data"]) for r in rows if r["id"] > upto])


async def pending_count(db: Database, doc_id: int) -> int:
    row = await db.fetchone(
        "SELECT COUNT(*) AS n FROM course_doc_updates WHERE doc_id = ?", (doc_id,))
    return int(row["n"]) if row else 0


async def commit_compaction(db: Database, doc_id: int, read: Stored, snapshot: bytes) -> bool:
    """Replace the prefix `read` covered by `snapshot`. False (and nothing changed) when another
    compaction got there first; updates appended since `read` are kept as they are."""
    if not read.updates:
        return False
    last = read.updates[-1][0]
    async with db.transaction() as conn:
        cur = await conn.execute(
            "UPDATE course_docs SET snapshot = ?, snapshot_upto = ?"
            " WHERE id = ? AND snapshot_upto = ?",
            (snapshot, last, doc_id, read.upto),
        )
        if cur.rowcount != 1:
            return False
        await conn.execute(
            "DELETE FROM course_doc_updates WHERE doc_id = ? AND id <= ?", (doc_id, last))
    return True


# --- versions --------------------------------------------------------------------------------

async def _insert_version(conn: Transaction, doc_id: int, label: str, state: bytes,
                          user_id: int | None, now: float, kind: VersionKind) -> Version:
    cur = await conn.execute(
        "INSERT INTO course_doc_versions (doc_id, label, state, created_by, created_at,"
        " kind) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (doc_id, label, state, user_id, now, kind.value),
    )
    row = await cur.fetchone()
    assert row is not None
    return Version(id=row["id"], doc_id=doc_id, label=label, created_by=user_id, created_at=now,
                   kind=kind)


async def add_version(db: Database, doc_id: int, label: str, state: bytes,
                      user_id: int | None, now: float, kind: VersionKind = VersionKind.MANUAL
                      ) -> Version:
    async with db.transaction() as conn:
        return await _insert_version(conn, doc_id, label, state, user_id, now, kind)


async def add_version_if_changed(db: Database, doc_id: int, label: str, state: bytes,
                                 now: float, kind: VersionKind = VersionKind.AUTO
                                 ) -> Version | None:
    """A version of `state` unless it is the newest version's state already (None then).
    The check and the insert are one transaction under the document's version lock, so two
    nodes (or workers) versioning the same document at once store it once."""
    async with db.transaction(lock=f"coursedoc-versions:{doc_id}") as conn:
        cur = await conn.execute(
            "SELECT state FROM course_doc_versions WHERE doc_id = ?"
            " ORDER BY created_at DESC, id DESC LIMIT 1", (doc_id,))
        latest = await cur.fetchone()
        if latest is not None and bytes(latest["state"]) == state:
            return None
        return await _insert_version(conn, doc_id, label, state, None, now, kind)


async def versions(db: Database, doc_id: int, limit: int = 200) -> list[Version]:
    rows = await db.fetchall(
        "SELECT id, doc_id, label, created_by, created_at, kind FROM course_doc_versions"
        " WHERE doc_id = ? ORDER BY created_at DESC, id DESC LIMIT ?", (doc_id, limit))
    return [Version(id=r["id"], doc_id=r["doc_id"], label=r["label"],
                    created_by=r["created_by"], created_at=r["created_at"],
                    kind=VersionKind(r["kind"])) for r in rows]


async def prune_auto_versions(db: Database, doc_id: int, keep: int) -> None:
    """Automatic versions are a timeline, not an archive: keep the newest `keep`."""
    await db.execute(
        "DELETE FROM course_doc_versions WHERE doc_id = ? AND kind = 'auto' AND id NOT IN"
        " (SELECT id FROM course_doc_versions WHERE doc_id = ? AND kind = 'auto'"
        "  ORDER BY created_at DESC, id DESC LIMIT ?)", (doc_id, doc_id, keep))


async def version_state(db: Database, doc_id: int, version_id: int) -> bytes | None:
    row = await db.fetchone(
        "SELECT state FROM course_doc_versions WHERE id = ? AND doc_id = ?",
        (version_id, doc_id))
    return bytes(row["state"]) if row else None


async def purge_departed(conn: aiosqlite.Connection, cutoff: float) -> dict[str, int]:
    """Retention: the course documents of teachers whose account was disabled before `cutoff`.

    A document a colleague still co-edits is not erased: it passes to the co-editor who has
    an active account (the first by id), so a class keeps its course when one of its two
    teachers leaves. The others go with their updates and versions (foreign keys cascade)."""
    departed = await directory.disabled_before(conn, cutoff)
    if not departed:
        return {"course_docs": 0, "course_docs_transferred": 0}
    marks = ",".join("?" * len(departed))
    cur = await conn.execute(f"SELECT id FROM course_docs WHERE owner_id IN ({marks})"
                             " ORDER BY id", departed)
    docs = [int(r[0]) for r in await cur.fetchall()]
    if not docs:  # `IN ()` is SQLite's alone
        return {"course_docs": 0, "course_docs_transferred": 0}
    cur = await conn.execute(
        f"SELECT doc_id, teacher_id FROM course_doc_editors WHERE doc_id IN"
        f" ({','.join('?' * len(docs))}) ORDER BY teacher_id", docs)
    editors = [(int(r[0]), int(r[1])) for r in await cur.fetchall()]
    active = await directory.enabled(conn, {t for _, t in editors})
    heirs: dict[int, int] = {}
    for d, t in editors:  # by teacher id: the first active co-editor inherits
        if t in active:
            heirs.setdefault(d, t)
    rows = [(d, heirs.get(d)) for d in docs]
    moved = [(int(h), d) for d, h in rows if h is not None]
    gone = [d for d, h in rows if h is None]
    await conn.executemany("UPDATE course_docs SET owner_id = ? WHERE id = ?", moved)
    await conn.executemany("DELETE FROM course_doc_editors WHERE doc_id = ? AND teacher_id = ?",
                           [(d, h) for h, d in moved])
    await conn.executemany("DELETE FROM course_docs WHERE id = ?", [(d,) for d in gone])
    return {"course_docs": len(gone), "course_docs_transferred": len(moved)}
# --- images ----------------------------------------------------------------------------------

async def put_image(db: Database, doc_id: int, sha256: str, mime: str, data: bytes,
                    user_id: int, now: float, *, cap: int) -> bool:
    """Store an image of the course unless its images together would pass `cap` bytes
    (False then; the same image twice is one, already there: True). The sum is read, then
    written on, under the document's images lock: two nodes uploading at once cannot both
    pass the check on PostgreSQL."""
    async with db.transaction(lock=f"coursedoc-images:{doc_id}") as conn:
        cur = await conn.execute(
            "SELECT COALESCE(SUM(LENGTH(data)), 0) AS n,"
            " COUNT(CASE WHEN sha256 = ? THEN 1 END) AS same"
            " FROM course_doc_images WHERE doc_id = ?", (sha256, doc_id))
        row = await cur.fetchone()
        assert row is not None
        if int(row["same"]):
            return True
        if int(row["n"]) + len(data) > cap:
            return False
        await conn.execute(
            "INSERT INTO course_doc_images (doc_id, sha256, mime, data, created_by,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (doc_id, sha256, mime, data, user_id, now))
    return True


async def image(db: Database, doc_id: int, sha256: str) -> tuple[str, bytes] | None:
    row = await db.fetchone(
        "SELECT mime, data FROM course_doc_images WHERE doc_id = ? AND sha256 = ?",
        (doc_id, sha256))
    return (row["mime"], bytes(row["data"])) if row else None

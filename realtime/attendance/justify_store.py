"""Guardians' proposals (with their supporting documents), the CPE's decisions and advance
declarations, in SQLite. Rows are only ever added (a declaration may be cancelled): nothing
one guardian writes replaces what the other wrote, and every decision stays."""

from __future__ import annotations

from typing import Any

import aiosqlite
import msgspec

from realtime.db import Database

Conn = aiosqlite.Connection


class Document(msgspec.Struct, frozen=True):
    id: int
    filename: str
    content_type: str
    size: int


class Proposal(msgspec.Struct, frozen=True):
    id: int
    event_id: int
    guardian_id: int
    reason_code: str
    comment: str
    created_at: float
    declaration_id: int | None = None
    documents: tuple[Document, ...] = ()


class Decision(msgspec.Struct, frozen=True):
    id: int
    event_id: int
    decided_by: int
    decided_at: float
    accepted: bool
    reason_code: str | None
    comment: str


class Declaration(msgspec.Struct, frozen=True):
    id: int
    school_id: int
    student_id: int
    guardian_id: int
    date_from: str
    date_to: str
    part: str  # day | morning | afternoon
    reason_code: str
    comment: str
    created_at: float
    cancelled_at: float | None = None

    def covers(self, date: str, start: str, noon: str) -> bool:
        if self.cancelled_at is not None or not self.date_from <= date <= self.date_to:
            return False
        return self.part == "day" or (self.part == "morning") == (start < noon)


async def add_proposal(conn: Conn, event_id: int, guardian_id: int, reason_code: str,
                       comment: str, now: float, declaration_id: int | None = None) -> int:
    cur = await conn.execute(
        "INSERT INTO absence_proposals (event_id, guardian_id, reason_code, comment,"
        " declaration_id, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (event_id, guardian_id, reason_code, comment, declaration_id, now))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def add_document(conn: Conn, proposal_id: int, filename: str, content_type: str,
                       data: bytes, now: float) -> int:
    cur = await conn.execute(
        "INSERT INTO absence_documents (proposal_id, filename, content_type, size, data,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (proposal_id, filename, content_type, len(data), data, now))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def add_decision(conn: Conn, event_id: int, by: int, now: float, accepted: bool,
                       reason_code: str | None, comment: str) -> None:
    await conn.execute(
        "INSERT INTO absence_decisions (event_id, decided_by, decided_at, accepted,"
        " reason_code, comment) VALUES (?, ?, ?, ?, ?, ?)",
        (event_id, by, now, int(accepted), reason_code, comment))


def _in(ids: list[int]) -> str:
    return ",".join("?" * len(ids))


async def proposals_of(db: Database, event_ids: list[int]) -> dict[int, list[Proposal]]:
    out: dict[int, list[Proposal]] = {i: [] for i in event_ids}
    if not event_ids:
        return out
    ids = sorted(set(event_ids))[:2000]
    rows = await db.fetchall(
        f"SELECT * FROM absence_proposals WHERE event_id IN ({_in(ids)}) ORDER BY id", ids)
    docs: dict[int, list[Document]] = {}
    if rows:
        pids = [r["id"] for r in rows]
        for d in await db.fetchall(
                "SELECT id, proposal_id, filename, content_type, size FROM absence_documents"
                f" WHERE proposal_id IN ({_in(pids)}) ORDER BY id", pids):
            docs.setdefault(d["proposal_id"], []).append(
                Document(d["id"], d["filename"], d["content_type"], d["size"]))
    for r in rows:
        out[r["event_id"]].append(Proposal(
            id=r["id"], event_id=r["event_id"], guardian_id=r["guardian_id"],
            reason_code=r["reason_code"], comment=r["comment"], created_at=r["created_at"],
            declaration_id=r["declaration_id"], documents=tuple(docs.get(r["id"], ()))))
    return out


async def decisions_of(db: Database, event_ids: list[int]) -> dict[int, list[Decision]]:
    out: dict[int, list[Decision]] = {i: [] for i in event_ids}
    if not event_ids:
        return out
    ids = sorted(set(event_ids))[:2000]
    for r in await db.fetchall(
            f"SELECT * FROM absence_decisions WHERE event_id IN ({_in(ids)}) ORDER BY id", ids):
        out[r["event_id"]].append(Decision(
            id=r["id"], event_id=r["event_id"], decided_by=r["decided_by"],
            decided_at=r["decided_at"], accepted=bool(r["accepted"]),
            reason_code=r["reason_code"], comment=r["comment"]))
    return out


async def document(db: Database, document_id: int) -> tuple[int, dict[str, Any]] | None:
    """(the absence event's id, the file) or None."""
    r = await db.fetchone(
        "SELECT d.filename, d.content_type, d.data, p.event_id FROM absence_documents d"
        " JOIN absence_proposals p ON p.id = d.proposal_id WHERE d.id = ?", (document_id,))
    if r is None:
        return None
    return int(r["event_id"]), {"filename": r["filename"], "content_type": r["content_type"],
                                "data": bytes(r["data"])}


def _declaration(r: aiosqlite.Row) -> Declaration:
    return Declaration(
        id=r["id"], school_id=r["school_id"], student_id=r["student_id"],
        guardian_id=r["guardian_id"], date_from=r["date_from"], date_to=r["date_to"],
        part=r["part"], reason_code=r["reason_code"], comment=r["comment"],
        created_at=r["created_at"], cancelled_at=r["cancelled_at"])


async def add_declaration(conn: Conn, d: Declaration) -> Declaration:
    cur = await conn.execute(
        "INSERT INTO absence_declarations (school_id, student_id, guardian_id, date_from,"
        " date_to, part, reason_code, comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " RETURNING id", (d.school_id, d.student_id, d.guardian_id, d.date_from, d.date_to,
                          d.part, d.reason_code, d.comment, d.created_at))
    row = await cur.fetchone()
    assert row is not None
    return msgspec.structs.replace(d, id=int(row[0]))


async def declarations_on(db: Database | Conn, student_ids: list[int], date: str
                          ) -> list[Declaration]:
    """Declarations covering `date` (not cancelled) for these pupils."""
    if not student_ids:
        return []
    ids = sorted(set(student_ids))
    sql = (f"SELECT * FROM absence_declarations WHERE student_id IN ({_in(ids)})"
           " AND date_from <= ? AND date_to >= ? AND cancelled_at IS NULL ORDER BY id")
    params = [*ids, date, date]
    if isinstance(db, Database):
        rows = await db.fetchall(sql, params)
    else:
        cur = await db.execute(sql, params)
        rows = list(await cur.fetchall())
    return [_declaration(r) for r in rows]


async def declarations_of_student(db: Database, student_id: int, date_from: str
                                  ) -> list[Declaration]:
    rows = await db.fetchall(
        "SELECT * FROM absence_declarations WHERE student_id = ? AND date_to >= ?"
        " ORDER BY date_from, id", (student_id, date_from))
    return [_declaration(r) for r in rows]


async def cancel_declaration(conn: Conn, declaration_id: int, now: float
                             ) -> Declaration | None:
    """Cancelled now, or as it was when cancelled already (the first cancellation's time
    stays, however many devices or nodes cancel it at once); None when there is none."""
    cur = await conn.execute(
        "UPDATE absence_declarations SET cancelled_at = ? WHERE id = ? AND cancelled_at IS NULL"
        " RETURNING *", (now, declaration_id))
    r = await cur.fetchone()
    if r is None:
        cur = await conn.execute("SELECT * FROM absence_declarations WHERE id = ?",
                                 (declaration_id,))
        r = await cur.fetchone()
    return _declaration(r) if r is not None else None

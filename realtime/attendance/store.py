"""Attendance in SQLite: rolls with their marks, corrections, absence events, reasons.

Writes take the connection of the service's one transaction; the roll is read back inside
that transaction too (BEGIN IMMEDIATE), so two processes cannot interleave on one roll.
"""

from __future__ import annotations

import json
from typing import Any

import aiosqlite
import msgspec

from realtime.attendance.absences import (
    DEFAULT_REASONS,
    AbsenceEvent,
    AbsenceKind,
    Justification,
    Reason,
)
from realtime.attendance.model import (
    Change,
    Correction,
    HistoryEntry,
    Mark,
    MarkState,
    Roll,
    RollHeader,
    RollKind,
    RollState,
    StudyHall,
)
from realtime.db import Database

Conn = aiosqlite.Connection


async def _all(conn: Conn, sql: str, params: tuple[Any, ...] | list[Any] = ()
               ) -> list[aiosqlite.Row]:
    cur = await conn.execute(sql, tuple(params))
    return list(await cur.fetchall())


async def _one(conn: Conn, sql: str, params: tuple[Any, ...] = ()) -> aiosqlite.Row | None:
    cur = await conn.execute(sql, params)
    return await cur.fetchone()


def _mark(r: aiosqlite.Row) -> Mark:
    return Mark(student_id=r["student_id"], state=MarkState(r["state"]), minutes=r["minutes"],
                must_attend=bool(r["must_attend"]), comment=r["comment"], by=r["by"],
                at=r["at"])


def _roll(r: aiosqlite.Row, marks: list[Mark]) -> Roll:
    return Roll(
        id=r["id"], school_id=r["school_id"], kind=RollKind(r["kind"]), date=r["date"],
        start=r["start"], end=r["end"], teacher_id=r["teacher_id"], class_id=r["class_id"],
        slot_id=r["slot_id"], study_hall_id=r["study_hall_id"],
        replacement_id=r["replacement_id"], state=RollState(r["state"]),
        roster=frozenset(json.loads(r["roster"])), marks={m.student_id: m for m in marks},
        opened_by=r["opened_by"], opened_at=r["opened_at"], validated_by=r["validated_by"],
        validated_at=r["validated_at"], version=r["version"])


async def load_roll(conn: Conn, roll_id: int) -> Roll | None:
    r = await _one(conn, "SELECT * FROM rolls WHERE id = ?", (roll_id,))
    if r is None:
        return None
    rows = await _all(conn, "SELECT * FROM marks WHERE roll_id = ?", (roll_id,))
    return _roll(r, [_mark(m) for m in rows])


async def roll_id_for(conn: Conn, *, slot_id: int | None = None,
                      study_hall_id: int | None = None, date: str) -> int | None:
    column = "slot_id" if slot_id is not None else "study_hall_id"
    r = await _one(conn, f"SELECT id FROM rolls WHERE {column} = ? AND date = ?",
                   (slot_id if slot_id is not None else study_hall_id, date))
    return int(r["id"]) if r else None


async def insert_roll(conn: Conn, roll: Roll, subject: str) -> int:
    cur = await conn.execute(
        "INSERT INTO rolls (school_id, kind, class_id, slot_id, study_hall_id, date, start,"
        ' "end", subject, teacher_id, replacement_id, state, roster, version)'
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (roll.school_id, roll.kind.value, roll.class_id, roll.slot_id, roll.study_hall_id,
         roll.date, roll.start, roll.end, subject, roll.teacher_id, roll.replacement_id,
         roll.state.value, json.dumps(sorted(roll.roster)), roll.version))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def save_roll(conn: Conn, roll: Roll, changes: list[Change]) -> None:
    """The roll's header and counts, the changed marks, and the audit of corrections."""
    counts = roll.counts()
    await conn.execute(
        "UPDATE rolls SET state = ?, roster = ?, replacement_id = ?, opened_by = ?,"
        " opened_at = ?, validated_by = ?, validated_at = ?, version = ?, absent_count = ?,"
        " late_count = ? WHERE id = ?",
        (roll.state.value, json.dumps(sorted(roll.roster)), roll.replacement_id,
         roll.opened_by, roll.opened_at, roll.validated_by, roll.validated_at, roll.version,
         counts["absent"], counts["late"], roll.id))
    if changes:
        await conn.executemany(
            "INSERT INTO marks (roll_id, student_id, state, minutes, must_attend, comment, by,"
            " at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (roll_id, student_id) DO UPDATE"
            " SET state = excluded.state, minutes = excluded.minutes, must_attend ="
            " excluded.must_attend, comment = excluded.comment, by = excluded.by,"
            " at = excluded.at",
            [(roll.id, c.after.student_id, c.after.state.value, c.after.minutes,
              int(c.after.must_attend), c.after.comment, c.after.by, c.after.at)
             for c in changes])
        audit = [c for c in changes if c.correction]
        if audit:
            await conn.executemany(
                "INSERT INTO roll_corrections (roll_id, student_id, before, after, by, at,"
                " reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(roll.id, c.student_id, _json(c.before), _json(c.after), c.after.by,
                  c.after.at, c.reason) for c in audit])
        await add_history(conn, roll.id, [
            HistoryEntry(at=c.after.at, by=c.after.by, action="mark", student_id=c.student_id,
                         before=c.before, after=c.after, reason=c.reason) for c in changes])


def _json(m: Mark | None) -> str | None:
    return msgspec.json.encode(m).decode() if m is not None else None


def _decoded(raw: str | None) -> Mark | None:
    return msgspec.json.decode(raw, type=Mark) if raw else None


async def add_history(conn: Conn, roll_id: int, entries: list[HistoryEntry]) -> None:
    if entries:
        await conn.executemany(
            "INSERT INTO roll_history (roll_id, at, by, action, student_id, before, after,"
            " reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(roll_id, e.at, e.by, e.action, e.student_id, _json(e.before), _json(e.after),
              e.reason) for e in entries])


async def history(db: Database, roll_id: int) -> list[HistoryEntry]:
    rows = await db.fetchall(
        "SELECT at, by, action, student_id, before, after, reason FROM roll_history"
        " WHERE roll_id = ? ORDER BY id", (roll_id,))
    return [HistoryEntry(at=r["at"], by=r["by"], action=r["action"],
                         student_id=r["student_id"], before=_decoded(r["before"]),
                         after=_decoded(r["after"]), reason=r["reason"]) for r in rows]


async def corrections(db: Database, roll_id: int) -> list[Correction]:
    rows = await db.fetchall(
        "SELECT student_id, before, after, by, at, reason FROM roll_corrections"
        " WHERE roll_id = ? ORDER BY id", (roll_id,))
    out = []
    for r in rows:
        after = _decoded(r["after"])
        assert after is not None
        out.append(Correction(student_id=r["student_id"], before=_decoded(r["before"]),
                              after=after, by=r["by"], at=r["at"], reason=r["reason"]))
    return out


async def roll_subject(conn: Conn, roll_id: int) -> str:
    r = await _one(conn, "SELECT subject FROM rolls WHERE id = ?", (roll_id,))
    return str(r["subject"]) if r else ""


def _header(r: aiosqlite.Row) -> RollHeader:
    return RollHeader(
        id=r["id"], school_id=r["school_id"], kind=RollKind(r["kind"]), date=r["date"],
        start=r["start"], end=r["end"], subject=r["subject"], teacher_id=r["teacher_id"],
        state=RollState(r["state"]), class_id=r["class_id"], slot_id=r["slot_id"],
        study_hall_id=r["study_hall_id"], replacement_id=r["replacement_id"],
        absent=r["absent_count"], late=r["late_count"], validated_at=r["validated_at"])


async def rolls_of_school_day(db: Database, school_id: int, date: str) -> list[RollHeader]:
    rows = await db.fetchall("SELECT * FROM rolls WHERE school_id = ? AND date = ?",
                             (school_id, date))
    return [_header(r) for r in rows]


async def course_rolls_of_day(db: Database, date: str) -> list[RollHeader]:
    """Every school's course rolls of a day: what the reminders look at."""
    rows = await db.fetchall("SELECT * FROM rolls WHERE date = ? AND slot_id IS NOT NULL",
                             (date,))
    return [_header(r) for r in rows]


async def rolls_of_day(db: Database, date: str) -> list[RollHeader]:
    """Every school's rolls of a day, courses and study halls: what the reminders read."""
    rows = await db.fetchall("SELECT * FROM rolls WHERE date = ?", (date,))
    return [_header(r) for r in rows]


async def claim_alert(conn: Conn, target: str, date: str, kind: str, school_id: int,
                      now: float) -> bool:
    """True for the one process that gets to send this reminder (the row is the lock)."""
    cur = await conn.execute(
        "INSERT INTO roll_alerts (target, date, kind, school_id, sent_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (target, date, kind, school_id, now))
    return cur.rowcount > 0


async def rolls_replaced_by(db: Database, teacher_id: int, date: str) -> list[RollHeader]:
    rows = await db.fetchall(
        "SELECT * FROM rolls WHERE date = ? AND replacement_id = ? AND slot_id IS NOT NULL",
        (date, teacher_id))
    return [_header(r) for r in rows]


async def rolls_between(db: Database, *, class_id: int | None, school_id: int | None,
                        date_from: str, date_to: str) -> list[RollHeader]:
    column, value = ("class_id", class_id) if class_id is not None else ("school_id", school_id)
    rows = await db.fetchall(
        f"SELECT * FROM rolls WHERE {column} = ? AND date BETWEEN ? AND ?"
        " ORDER BY date, start, id", (value, date_from, date_to))
    return [_header(r) for r in rows]


async def marks_of_rolls(db: Database, roll_ids: list[int]) -> dict[int, list[Mark]]:
    out: dict[int, list[Mark]] = {i: [] for i in roll_ids}
    for i in range(0, len(roll_ids), 500):
        chunk = roll_ids[i:i + 500]
        rows = await db.fetchall(
            f"SELECT * FROM marks WHERE roll_id IN ({','.join('?' * len(chunk))})", chunk)
        for r in rows:
            out[r["roll_id"]].append(_mark(r))
    return out


# --- absence events --------------------------------------------------------------------

def _event(r: aiosqlite.Row) -> AbsenceEvent:
    return AbsenceEvent(
        id=r["id"], school_id=r["school_id"], student_id=r["student_id"], roll_id=r["roll_id"],
        date=r["date"], start=r["start"], end=r["end"], kind=AbsenceKind(r["kind"]),
        minutes=r["minutes"], cancelled=bool(r["cancelled"]),
        justification=Justification(r["justification"]), reason_code=r["reason_code"],
        reason_comment=r["reason_comment"], given_by=r["given_by"], given_at=r["given_at"],
        decided_by=r["decided_by"], decided_at=r["decided_at"])


async def event_for(conn: Conn, roll_id: int, student_id: int) -> AbsenceEvent | None:
    r = await _one(conn, "SELECT * FROM absence_events WHERE roll_id = ? AND student_id = ?",
                   (roll_id, student_id))
    return _event(r) if r else None


async def load_event(conn: Conn, event_id: int) -> AbsenceEvent | None:
    r = await _one(conn, "SELECT * FROM absence_events WHERE id = ?", (event_id,))
    return _event(r) if r else None


async def upsert_event(conn: Conn, e: AbsenceEvent) -> AbsenceEvent:
    """Insert (id 0) or rewrite an event; returns it with its id."""
    values = (e.school_id, e.student_id, e.roll_id, e.date, e.start, e.end, e.kind.value,
              e.minutes, int(e.cancelled), e.justification.value, e.reason_code,
              e.reason_comment, e.given_by, e.given_at, e.decided_by, e.decided_at)
    if e.id:
        await conn.execute(
            "UPDATE absence_events SET school_id = ?, student_id = ?, roll_id = ?, date = ?,"
            ' start = ?, "end" = ?, kind = ?, minutes = ?, cancelled = ?, justification = ?,'
            " reason_code = ?, reason_comment = ?, given_by = ?, given_at = ?,"
            " decided_by = ?, decided_at = ? WHERE id = ?", (*values, e.id))
        return e
    cur = await conn.execute(
        'INSERT INTO absence_events (school_id, student_id, roll_id, date, start, "end", kind,'
        " minutes, cancelled, justification, reason_code, reason_comment, given_by, given_at,"
        " decided_by, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " RETURNING id", values)
    row = await cur.fetchone()
    assert row is not None
    return msgspec.structs.replace(e, id=int(row[0]))


async def events_of_student(db: Database, student_id: int, date_from: str, date_to: str
                            ) -> list[AbsenceEvent]:
    rows = await db.fetchall(
        "SELECT * FROM absence_events WHERE student_id = ? AND date BETWEEN ? AND ?"
        " ORDER BY date, start, id", (student_id, date_from, date_to))
    return [_event(r) for r in rows]


async def events_of_school(db: Database, school_id: int, *, pending_only: bool,
                           date_from: str, date_to: str, limit: int = 500
                           ) -> list[AbsenceEvent]:
    pending = (" AND cancelled = 0 AND justification IN ('none', 'given')"
               if pending_only else "")
    rows = await db.fetchall(
        f"SELECT * FROM absence_events WHERE school_id = ?{pending} AND date BETWEEN ? AND ?"
        " ORDER BY date DESC, start DESC, id DESC LIMIT ?",
        (school_id, date_from, date_to, limit))
    return [_event(r) for r in rows]


async def events_of_school_between(db: Database, school_id: int, date_from: str,
                                   date_to: str) -> list[AbsenceEvent]:
    """Every event of a school over a period (bounded by the period's length), for counts."""
    rows = await db.fetchall(
        "SELECT * FROM absence_events WHERE school_id = ? AND date BETWEEN ? AND ?"
        " AND cancelled = 0 ORDER BY date, start, id", (school_id, date_from, date_to))
    return [_event(r) for r in rows]


# --- reasons ---------------------------------------------------------------------------

async def reasons(db: Database | Conn, school_id: int) -> list[Reason]:
    """The school's list; a school that never edited it gets the defaults."""
    sql = ("SELECT code, label, justifying, legal, active FROM absence_reasons"
           " WHERE school_id = ? ORDER BY position")
    if isinstance(db, Database):
        rows = await db.fetchall(sql, (school_id,))
    else:
        rows = await _all(db, sql, (school_id,))
    if not rows:
        return list(DEFAULT_REASONS)
    return [Reason(r["code"], r["label"], bool(r["justifying"]), bool(r["legal"]),
                   bool(r["active"])) for r in rows]


async def replace_reasons(conn: Conn, school_id: int, items: list[Reason]) -> None:
    await conn.execute("DELETE FROM absence_reasons WHERE school_id = ?", (school_id,))
    await conn.executemany(
        "INSERT INTO absence_reasons (school_id, code, label, justifying, legal, active,"
        " position) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(school_id, r.code, r.label, int(r.justifying), int(r.legal), int(r.active), i)
         for i, r in enumerate(items)])


# --- access log ------------------------------------------------------------------------

async def log_access(conn: Conn, at: float, actor_id: int, role: str, student_ids: list[int],
                     what: str) -> None:
    await conn.executemany(
        "INSERT INTO attendance_access_log (at, actor_id, actor_role, student_id, what)"
        " VALUES (?, ?, ?, ?, ?)", [(at, actor_id, role, s, what) for s in student_ids])


# --- study halls -----------------------------------------------------------------------

def _hall(r: aiosqlite.Row) -> StudyHall:
    return StudyHall(id=r["id"], school_id=r["school_id"], supervisor_id=r["supervisor_id"],
                     room=r["room"], weekday=r["weekday"], start=r["start"], end=r["end"])


async def study_hall(db: Database | Conn, hall_id: int) -> StudyHall | None:
    sql = "SELECT * FROM study_halls WHERE id = ?"
    if isinstance(db, Database):
        r = await db.fetchone(sql, (hall_id,))
    else:
        r = await _one(db, sql, (hall_id,))
    return _hall(r) if r else None


async def study_halls_of(db: Database, school_id: int, weekday: int) -> list[StudyHall]:
    rows = await db.fetchall(
        "SELECT * FROM study_halls WHERE school_id = ? AND weekday = ? ORDER BY start, room",
        (school_id, weekday))
    return [_hall(r) for r in rows]


async def study_halls_of_weekday(db: Database, weekday: int) -> list[StudyHall]:
    rows = await db.fetchall("SELECT * FROM study_halls WHERE weekday = ? ORDER BY start, id",
                             (weekday,))
    return [_hall(r) for r in rows]


async def study_halls_supervised_by(db: Database, user_id: int, weekday: int
                                    ) -> list[StudyHall]:
    rows = await db.fetchall(
        "SELECT * FROM study_halls WHERE supervisor_id = ? AND weekday = ? ORDER BY start, id",
        (user_id, weekday))
    return [_hall(r) for r in rows]


async def add_study_hall(conn: Conn, hall: StudyHall) -> StudyHall:
    """Store a study hall; the same room at the same weekday and start is the same hall
    (returned as stored, so creating it twice is harmless)."""
    r = await _one(conn, "SELECT * FROM study_halls WHERE school_id = ? AND room = ? AND"
                   " weekday = ? AND start = ?", (hall.school_id, hall.room, hall.weekday,
                                                   hall.start))
    if r is not None:
        return _hall(r)
    cur = await conn.execute(
        'INSERT INTO study_halls (school_id, supervisor_id, room, weekday, start, "end")'
        " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (hall.school_id, hall.supervisor_id, hall.room, hall.weekday, hall.start, hall.end))
    row = await cur.fetchone()
    assert row is not None
    return msgspec.structs.replace(hall, id=int(row[0]))


async def upsert_study_hall(conn: aiosqlite.Connection, school_id: int, supervisor_id: int,
                            room: str, weekday: int, start: str, end: str) -> None:
    """The weekly study hall of a room at a weekday and start, with this supervisor and end
    (the demo's timetable: written again on every seed)."""
    await conn.execute(
        'INSERT INTO study_halls (school_id, supervisor_id, room, weekday, start, "end")'
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (school_id, room, weekday, start) DO UPDATE"
        ' SET supervisor_id = excluded.supervisor_id, "end" = excluded."end"',
        (school_id, supervisor_id, room, weekday, start, end))


async def missed_marks(db: Database, school_id: int, date_from: str, date_to: str
                       ) -> list[dict[str, Any]]:
    """Every mark other than present in the school's rolls of the period, with its roll's
    times, class and subject and the absence's justification (the CSV export; the names
    come from the directory)."""
    rows = await db.fetchall(
        'SELECT r.date, r.start, r."end", r.class_id, r.subject, m.student_id, m.state,'
        " m.minutes, m.comment, e.justification, e.reason_code"
        " FROM marks m JOIN rolls r ON r.id = m.roll_id"
        " LEFT JOIN absence_events e ON e.roll_id = r.id AND e.student_id = m.student_id"
        " AND e.cancelled = 0"
        " WHERE r.school_id = ? AND r.date BETWEEN ? AND ? AND m.state != 'present'",
        (school_id, date_from, date_to))
    return [dict(r) for r in rows]

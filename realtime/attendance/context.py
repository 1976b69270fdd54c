"""What every attendance service shares: the clock in the school's time zone, refs for
policy, small lookups inside a transaction, and the post-commit emits."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import aiosqlite
import socketio

from realtime.attendance.model import Roll
from realtime.attendance.schooldays import CalendarService
from realtime.db import Database
from realtime.errors import AppError
from realtime.policy import RollRef, StudentRef
from realtime.settings import Settings
from realtime.streams import StreamStore

NAMESPACE = "/attendance"
HISTORY_MAX_DAYS = 400


def roll_ref(roll: Roll) -> RollRef:
    return RollRef(id=roll.id, school_id=roll.school_id, class_id=roll.class_id,
                   teacher_id=roll.teacher_id, replacement_id=roll.replacement_id)


def dashboard_room(school_id: int, date: str) -> str:
    return f"dashboard:{school_id}:{date}"


def roll_room(roll_id: int) -> str:
    return f"roll:{roll_id}"


def teacher_room(user_id: int) -> str:
    return f"teacher:{user_id}"


def guardian_room(user_id: int) -> str:
    return f"guardian:{user_id}"


def school_room(school_id: int) -> str:
    return f"school:{school_id}"


def parse_day(raw: str | None, today: dt.date) -> dt.date:
    if not raw:
        return today
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise AppError("invalid", "Date invalide : attendu AAAA-MM-JJ.") from exc


def parse_period(raw_from: str | None, raw_to: str | None, today: dt.date
                 ) -> tuple[str, str]:
    """A date range, by default the current school year up to today; bounded in length."""
    start_default = dt.date(today.year if today.month >= 9 else today.year - 1, 9, 1)
    start = parse_day(raw_from, start_default)
    end = parse_day(raw_to, today)
    if end < start:
        raise AppError("invalid", "La date de fin précède la date de début.")
    if (end - start).days > HISTORY_MAX_DAYS:
        raise AppError("invalid", f"Période trop longue ({HISTORY_MAX_DAYS} jours au plus).")
    return start.isoformat(), end.isoformat()


async def student_ref(conn: aiosqlite.Connection | Database, student_id: int
                      ) -> StudentRef | None:
    sql = ("SELECT e.student_id, e.class_id, c.school_id FROM enrollments e JOIN classes c"
           " ON c.id = e.class_id WHERE e.student_id = ?")
    if isinstance(conn, Database):
        r = await conn.fetchone(sql, (student_id,))
    else:
        cur = await conn.execute(sql, (student_id,))
        r = await cur.fetchone()
    return StudentRef(id=r[0], school_id=r[2], class_id=r[1]) if r else None


async def guardians_of(conn: aiosqlite.Connection, student_ids: list[int]
                       ) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {s: [] for s in student_ids}
    if not student_ids:
        return out
    cur = await conn.execute(
        "SELECT student_id, guardian_id FROM guardianships WHERE student_id IN"
        f" ({','.join('?' * len(student_ids))}) ORDER BY guardian_id", student_ids)
    for r in await cur.fetchall():
        out[r[0]].append(r[1])
    return out


async def names(conn: aiosqlite.Connection | Database, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    lst = sorted(ids)
    sql = f"SELECT id, name FROM users WHERE id IN ({','.join('?' * len(lst))})"
    if isinstance(conn, Database):
        rows = await conn.fetchall(sql, lst)
    else:
        cur = await conn.execute(sql, lst)
        rows = list(await cur.fetchall())
    return {r[0]: r[1] for r in rows}


class Context:
    """The resources and clock the attendance services share."""

    def __init__(self, settings: Settings, db: Database, streams: StreamStore,
                 sio: socketio.AsyncServer, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.db = db
        self.streams = streams
        self.sio = sio
        self.clock = clock
        self.calendar = CalendarService(db, lambda: self.clock())

    def local_now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), self.settings.tz)

    def today(self) -> dt.date:
        return self.local_now().date()

    async def emit(self, event: str, data: Any, room: str) -> None:
        await self.sio.emit(event, data, room=room, namespace=NAMESPACE)

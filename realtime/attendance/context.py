"""What every attendance service shares: the clock in the school's time zone, refs for
policy, small lookups inside a transaction, and the post-commit emits."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from typing import Any

import socketio

from realtime.attendance.model import Roll
from realtime.attendance.schooldays import CalendarService
from realtime.db import Database
from realtime.directory import reads as directory
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


async def student_refs(src: directory.Source, student_ids: Iterable[int]
                       ) -> dict[int, StudentRef]:
    """What policy needs of each enrolled pupil (the directory's placements)."""
    return {s: StudentRef(id=s, school_id=pl.school_id, class_id=pl.class_id)
            for s, pl in (await directory.placements(src, student_ids)).items()}


async def student_ref(src: directory.Source, student_id: int) -> StudentRef | None:
    return (await student_refs(src, [student_id])).get(student_id)


# The directory's reads under the names attendance uses.
guardians_of = directory.guardians_of
names = directory.names


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

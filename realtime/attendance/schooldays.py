"""The school calendar of each collège: its zone, its closures (imported by the CPE or the
administration, from the API or the CLI), and the question every reminder and « en retard »
asks first: is there school on that day?"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import aiosqlite
import msgspec

from realtime.attendance.calendar import (
    ALSACE_MOSELLE,
    Closure,
    SchoolCalendar,
    departement_of_uai,
    merged,
    parse_closures,
    zone_of_uai,
)
from realtime.db import Database
from realtime.directory import reads as directory
from realtime.errors import AppError, not_found
from realtime.identity.model import Principal
from realtime.policy import Action, SchoolRef, may

CACHE_S = 60.0  # another process's import is seen within a minute
ZONE_LABELS = {"A": "zone A", "B": "zone B", "C": "zone C"}


async def _rows(db: Database | aiosqlite.Connection, sql: str, params: tuple[Any, ...]
                ) -> list[Any]:
    if isinstance(db, Database):
        return list(await db.fetchall(sql, params))
    cur = await db.execute(sql, params)
    return list(await cur.fetchall())


async def set_zone(conn: aiosqlite.Connection, school_id: int, zone: str | None) -> None:
    """The school's holiday zone when it is not its département's (None: from the UAI)."""
    await conn.execute(
        "INSERT INTO school_calendars (school_id, zone) VALUES (?, ?)"
        " ON CONFLICT (school_id) DO UPDATE SET zone = excluded.zone", (school_id, zone))


async def load_calendar(db: Database | aiosqlite.Connection, school_id: int
                        ) -> SchoolCalendar:
    """The school's calendar; `db` may be the connection of a transaction under way (the
    database's one connection is then busy: asking the Database would wait forever)."""
    uai = (await directory.uais(db, [school_id])).get(school_id, "")
    rows = await _rows(db, "SELECT zone, subdivision FROM school_calendars"
                           " WHERE school_id = ?", (school_id,))
    row = rows[0] if rows else None
    dep = departement_of_uai(uai)
    zone = row["zone"] if row and row["zone"] else zone_of_uai(uai)
    subdivision = row["subdivision"] if row and row["subdivision"] else (
        dep if dep in ALSACE_MOSELLE else None)
    closures = await _rows(
        db, 'SELECT id, start, "end", label FROM school_closures WHERE school_id = ?'
            " ORDER BY start, id", (school_id,))
    return SchoolCalendar(zone=zone, subdivision=subdivision, closures=tuple(
        Closure(r["start"], r["end"], r["label"], r["id"]) for r in closures))


async def save_closures(db: Database, school_id: int, items: list[Closure], by: int | None,
                        now: float, replace: bool) -> int:
    """Add the closures (an identical one already there is kept once); `replace`: the
    school's list becomes exactly these."""
    async with db.transaction() as conn:
        if replace:
            await conn.execute("DELETE FROM school_closures WHERE school_id = ?", (school_id,))
        cur = await conn.executemany(
            'INSERT INTO school_closures (school_id, start, "end", label, created_by,'
            " created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(school_id, c.start, c.end, c.label, by, now) for c in merged(items)])
        return max(cur.rowcount, 0)


class CalendarService:
    """Cached calendars per school (a minute), the CPE's view and imports."""

    def __init__(self, db: Database, clock: Any = time.time) -> None:
        self.db = db
        self.clock = clock
        self._cache: dict[int, tuple[float, SchoolCalendar]] = {}

    async def of(self, school_id: int, conn: aiosqlite.Connection | None = None
                 ) -> SchoolCalendar:
        """`conn`: the caller's transaction, when there is one (read through it)."""
        hit = self._cache.get(school_id)
        now = time.monotonic()
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]
        cal = await load_calendar(conn if conn is not None else self.db, school_id)
        self._cache[school_id] = (now, cal)
        return cal

    async def closed(self, school_id: int, day: dt.date,
                     conn: aiosqlite.Connection | None = None) -> str | None:
        return (await self.of(school_id, conn)).closed(day)

    def forget(self, school_id: int) -> None:
        self._cache.pop(school_id, None)

    def _check(self, p: Principal, school_id: int, action: Action) -> None:
        if not may(p, action, SchoolRef(id=school_id)):
            if p.school_id == school_id:
                raise AppError("forbidden", "Seules la vie scolaire et l'administration gèrent "
                                            "le calendrier de l'établissement.")
            raise not_found("Établissement introuvable.")

    async def view(self, p: Principal, school_id: int, today: dt.date) -> dict[str, Any]:
        if not may(p, Action.VIEW_SCHOOL, SchoolRef(id=school_id)):
            raise not_found("Établissement introuvable.")
        cal = await self.of(school_id)
        start = dt.date(today.year if today.month >= 9 else today.year - 1, 9, 1)
        end = dt.date(start.year + 1, 7, 10)
        return {"school_id": school_id, "zone": cal.zone,
                "zone_label": ZONE_LABELS.get(cal.zone or "", "hors zone"),
                "subdivision": cal.subdivision,
                "closures": [msgspec.to_builtins(c) for c in cal.closures],
                "days_off": [{"date": d, "label": why} for d, why in cal.days_off(start, end)],
                "can_edit": may(p, Action.MANAGE_SCHOOL_CALENDAR, SchoolRef(id=school_id))}

    async def import_closures(self, p: Principal | None, school_id: int, data: bytes,
                              filename: str, replace: bool) -> dict[str, Any]:
        """CSV (`debut;fin;libelle`) or iCalendar; `p` None: the operator's CLI."""
        if p is not None:
            self._check(p, school_id, Action.MANAGE_SCHOOL_CALENDAR)
        items = parse_closures(data, filename)
        added = await save_closures(self.db, school_id, items, p.id if p else None,
                                    self.clock(), replace)
        self.forget(school_id)
        return {"read": len(items), "added": added}

    async def delete_closure(self, p: Principal, school_id: int, closure_id: int) -> None:
        self._check(p, school_id, Action.MANAGE_SCHOOL_CALENDAR)
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM school_closures WHERE id = ? AND school_id = ?",
                (closure_id, school_id))
            if cur.rowcount == 0:
                raise not_found("Fermeture introuvable.")
        self.forget(school_id)

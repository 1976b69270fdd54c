"""The directory's read API for other features: batch reads that return domain types.

The directory owns people, schools, classes, enrolments, guardianships, teachings and the
timetable (docs/architecture.md « One owner per table »): no other feature names these tables
in SQL (tests/test_table_owners.py). A feature that needs them asks here, one query per kind
of fact for a whole batch of ids (never one per person), and joins in memory.

Every read takes a `Source`: the `Database`, or the connection of a transaction under way
(a read inside a transaction must use its connection: the database's lock is held).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

import aiosqlite

from realtime.db import Database
from realtime.directory.model import CourseSlot, Placement, SchoolClass
from realtime.identity.model import Role, User

Source = Database | aiosqlite.Connection

STAFF_ROLES: frozenset[Role] = frozenset({Role.TEACHER, Role.CPE, Role.STAFF})


async def _all(src: Source, sql: str, params: Iterable[Any] = ()) -> list[Any]:
    if isinstance(src, Database):
        return await src.fetchall(sql, params)
    cur = await src.execute(sql, tuple(params))
    return list(await cur.fetchall())


# Ids per query: SQLite caps the parameters of one statement (32766 since 3.32, 999 before),
# and a département's pupils or families exceed that; a statement may take its ids twice.
CHUNK = 10_000 if sqlite3.sqlite_version_info >= (3, 32) else 400


async def _each(src: Source, sql: Callable[[str], str], ids: list[int], *,
                repeat: int = 1, extra: Iterable[Any] = ()) -> list[Any]:
    """`sql(marks)` over `ids` in chunks (`marks` is the chunk's "?,?,…"; the statement
    takes the chunk `repeat` times, then `extra`): the rows of every chunk."""
    rows: list[Any] = []
    tail = list(extra)
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i:i + CHUNK]
        rows += await _all(src, sql(",".join("?" * len(chunk))), [*chunk * repeat, *tail])
    return rows


def _user(r: Any) -> User:
    return User(id=r["id"], login=r["login"], role=Role(r["role"]), name=r["name"],
                school_id=r["school_id"], disabled=bool(r["disabled"]),
                external_id=r["external_id"])


_USER_COLS = "id, login, role, name, school_id, disabled, external_id"


# --- people --------------------------------------------------------------------------------

async def users(src: Source, ids: Iterable[int]) -> dict[int, User]:
    """The accounts among `ids` (disabled ones included: `User.disabled` says)."""
    rows = await _each(src, lambda m: f"SELECT {_USER_COLS} FROM users WHERE id IN ({m})",
                       sorted(set(ids)))
    return {r["id"]: _user(r) for r in rows}


async def names(src: Source, ids: Iterable[int]) -> dict[int, str]:
    """Display names by id (missing ids are absent)."""
    rows = await _each(src, lambda m: f"SELECT id, name FROM users WHERE id IN ({m})",
                       sorted(set(ids)))
    return {r["id"]: r["name"] for r in rows}


async def enabled(src: Source, ids: Iterable[int]) -> set[int]:
    """Those of `ids` whose account exists and may sign in."""
    rows = await _each(
        src, lambda m: f"SELECT id FROM users WHERE id IN ({m}) AND disabled = 0",
        sorted(set(ids)))
    return {r["id"] for r in rows}


async def staff_of_schools(src: Source, school_ids: Iterable[int],
                           roles: Iterable[Role] = STAFF_ROLES) -> list[User]:
    """The enabled members of these schools' teams with one of `roles`, by name."""
    wanted = sorted(r.value for r in roles)
    if not wanted:
        return []
    rows = await _each(
        src, lambda m: f"SELECT {_USER_COLS} FROM users WHERE school_id IN ({m})"
        f" AND role IN ({','.join('?' * len(wanted))}) AND disabled = 0",
        sorted(set(school_ids)), extra=wanted)
    return sorted((_user(r) for r in rows), key=lambda u: (u.name, u.id))


async def disabled_before(src: Source, cutoff: float) -> list[int]:
    """Accounts disabled before `cutoff` (epoch seconds): those retention lets go."""
    rows = await _all(
        src, "SELECT id FROM users WHERE disabled = 1 AND disabled_at IS NOT NULL"
        " AND disabled_at < ? ORDER BY id", (cutoff,))
    return [r["id"] for r in rows]


# --- schools and classes ---------------------------------------------------------------------

async def school_exists(src: Source, school_id: int) -> bool:
    return bool(await _all(src, "SELECT 1 FROM schools WHERE id = ?", (school_id,)))


async def uais(src: Source, ids: Iterable[int]) -> dict[int, str]:
    """Each school's UAI (its académie, département and holiday zone follow from it)."""
    rows = await _each(src, lambda m: f"SELECT id, uai FROM schools WHERE id IN ({m})",
                       sorted(set(ids)))
    return {r["id"]: r["uai"] for r in rows}


async def classes(src: Source, ids: Iterable[int]) -> dict[int, SchoolClass]:
    rows = await _each(src, lambda m: f"SELECT * FROM classes WHERE id IN ({m})",
                       sorted(set(ids)))
    return {r["id"]: SchoolClass(id=r["id"], school_id=r["school_id"], name=r["name"],
                                 level=r["level"]) for r in rows}


async def class_names(src: Source, ids: Iterable[int]) -> dict[int, str]:
    return {c.id: c.name for c in (await classes(src, ids)).values()}


# --- enrolments and families ---------------------------------------------------------------

async def placements(src: Source, student_ids: Iterable[int]) -> dict[int, Placement]:
    """Each enrolled pupil's class and school (pupils without a class are absent)."""
    rows = await _each(
        src, lambda m: "SELECT e.student_id, e.class_id, c.school_id FROM enrollments e"
        f" JOIN classes c ON c.id = e.class_id WHERE e.student_id IN ({m})",
        sorted(set(student_ids)))
    return {r[0]: Placement(student_id=r[0], class_id=r[1], school_id=r[2]) for r in rows}


async def pupils_of_classes(src: Source, class_ids: Iterable[int]) -> dict[int, list[int]]:
    """The pupils enrolled in each class, by id (every asked class is a key)."""
    lst = sorted(set(class_ids))
    out: dict[int, list[int]] = {c: [] for c in lst}
    for r in await _each(src, lambda m: "SELECT class_id, student_id FROM enrollments"
                         f" WHERE class_id IN ({m}) ORDER BY student_id", lst):
        out[r[0]].append(r[1])
    return out


async def pupils_of_schools(src: Source, school_ids: Iterable[int]) -> list[int]:
    """Every pupil enrolled in a class of these schools, by id."""
    rows = await _each(
        src, lambda m: "SELECT e.student_id FROM enrollments e JOIN classes c"
        f" ON c.id = e.class_id WHERE c.school_id IN ({m})", sorted(set(school_ids)))
    return sorted(r[0] for r in rows)


async def guardians_of(src: Source, student_ids: Iterable[int]) -> dict[int, list[int]]:
    """Each pupil's legal guardians (every asked pupil is a key), by guardian id."""
    lst = sorted(set(student_ids))
    out: dict[int, list[int]] = {s: [] for s in lst}
    for r in await _each(src, lambda m: "SELECT student_id, guardian_id FROM guardianships"
                         f" WHERE student_id IN ({m}) ORDER BY guardian_id", lst):
        out[r[0]].append(r[1])
    return out


async def children_of(src: Source, guardian_ids: Iterable[int]) -> dict[int, list[Placement]]:
    """Each guardian's enrolled children with their class and school (every asked guardian
    is a key)."""
    lst = sorted(set(guardian_ids))
    out: dict[int, list[Placement]] = {g: [] for g in lst}
    rows = await _each(
        src, lambda m: "SELECT g.guardian_id, e.student_id, e.class_id, c.school_id"
        " FROM guardianships g JOIN enrollments e ON e.student_id = g.student_id"
        f" JOIN classes c ON c.id = e.class_id WHERE g.guardian_id IN ({m})"
        " ORDER BY e.student_id", lst)
    for r in rows:
        out[r[0]].append(Placement(student_id=r[1], class_id=r[2], school_id=r[3]))
    return out


# --- teaching --------------------------------------------------------------------------------

async def classes_of_teachers(src: Source, teacher_ids: Iterable[int]
                              ) -> dict[int, frozenset[int]]:
    """The classes each teacher teaches: their teachings and their timetable slots together
    (a slot may come from the timetable export before the teaching is declared). The one
    place this rule is written; every asked id is a key."""
    lst = sorted(set(teacher_ids))
    found: dict[int, set[int]] = {t: set() for t in lst}
    rows = await _each(
        src, lambda m: f"SELECT teacher_id, class_id FROM teachings WHERE teacher_id IN ({m})"
        f" UNION SELECT teacher_id, class_id FROM course_slots WHERE teacher_id IN ({m})",
        lst, repeat=2)
    for r in rows:
        found[r[0]].add(r[1])
    return {t: frozenset(c) for t, c in found.items()}


async def slots_by_ids(src: Source, ids: Iterable[int]) -> dict[int, CourseSlot]:
    """Course slots of the week timetable by id."""
    rows = await _each(src, lambda m: f"SELECT * FROM course_slots WHERE id IN ({m})",
                       sorted(set(ids)))
    return {r["id"]: CourseSlot(id=r["id"], school_id=r["school_id"], class_id=r["class_id"],
                                teacher_id=r["teacher_id"], subject=r["subject"],
                                room=r["room"], weekday=r["weekday"], start=r["start"],
                                end=r["end"]) for r in rows}


async def slot(src: Source, slot_id: int) -> CourseSlot | None:
    return (await slots_by_ids(src, [slot_id])).get(slot_id)


# The store's single-item and per-school reads are part of this API too (one import for
# other features); the store imports this module lazily, so there is no cycle.
from realtime.directory.store import (  # noqa: E402
    classes_of_schools,
    school,
    school_class,
    slots,
    student,
    students_of_class,
)

__all__ = [
    "STAFF_ROLES", "Source", "children_of", "class_names", "classes", "classes_of_schools",
    "classes_of_teachers", "disabled_before", "enabled", "guardians_of", "names",
    "placements", "pupils_of_classes", "pupils_of_schools", "school", "school_class",
    "school_exists", "slot", "slots", "slots_by_ids", "staff_of_schools", "student",
    "students_of_class", "uais", "users",
]

"""Directory reads and writes in SQLite, speaking domain types."""

from __future__ import annotations

from typing import Any

import aiosqlite
import msgspec

from realtime.db import Database
from realtime.directory.model import CourseSlot, Relations, School, SchoolClass, Student
from realtime.identity.model import Role, User


def _school(r: aiosqlite.Row) -> School:
    return School(id=r["id"], uai=r["uai"], name=r["name"], town=r["town"])


def _class(r: aiosqlite.Row) -> SchoolClass:
    return SchoolClass(id=r["id"], school_id=r["school_id"], name=r["name"], level=r["level"])


def _slot(r: aiosqlite.Row) -> CourseSlot:
    return CourseSlot(
        id=r["id"],
        school_id=r["school_id"],
        class_id=r["class_id"],
        teacher_id=r["teacher_id"],
        subject=r["subject"],
        room=r["room"],
        weekday=r["weekday"],
        start=r["start"],
        end=r["end"],
    )


def _student(r: aiosqlite.Row) -> Student:
    return Student(
        id=r["id"], login=r["login"], name=r["name"], class_id=r["class_id"],
        school_id=r["school_id"],
    )


# --- reads -------------------------------------------------------------------------------

async def schools(db: Database) -> list[School]:
    return [_school(r) for r in await db.fetchall("SELECT * FROM schools ORDER BY name, id")]


async def school(db: Database, school_id: int) -> School | None:
    r = await db.fetchone("SELECT * FROM schools WHERE id = ?", (school_id,))
    return _school(r) if r else None


async def school_by_uai(db: Database, uai: str) -> School | None:
    r = await db.fetchone("SELECT * FROM schools WHERE uai = ?", (uai,))
    return _school(r) if r else None


async def school_class(db: Database, class_id: int) -> SchoolClass | None:
    r = await db.fetchone("SELECT * FROM classes WHERE id = ?", (class_id,))
    return _class(r) if r else None


async def classes_of_schools(db: Database, school_ids: list[int] | None) -> list[SchoolClass]:
    """Classes of the given schools (None: every school), ordered by school then name."""
    if school_ids is None:
        rows = await db.fetchall("SELECT * FROM classes ORDER BY school_id, level DESC, name")
    else:
        if not school_ids:
            return []
        marks = ",".join("?" * len(school_ids))
        rows = await db.fetchall(
            f"SELECT * FROM classes WHERE school_id IN ({marks}) ORDER BY school_id, level DESC,"
            " name",
            school_ids,
        )
    return [_class(r) for r in rows]


async def class_by_name(db: Database, school_id: int, name: str) -> SchoolClass | None:
    r = await db.fetchone(
        "SELECT * FROM classes WHERE school_id = ? AND name = ?", (school_id, name)
    )
    return _class(r) if r else None


async def student_counts(db: Database) -> dict[int, int]:
    rows = await db.fetchall("SELECT class_id, COUNT(*) AS n FROM enrollments GROUP BY class_id")
    return {r["class_id"]: r["n"] for r in rows}


_STUDENT_SQL = (
    "SELECT u.id, u.login, u.name, e.class_id, c.school_id FROM users u"
    " JOIN enrollments e ON e.student_id = u.id JOIN classes c ON c.id = e.class_id"
)


async def students_of_class(db: Database, class_id: int) -> list[Student]:
    rows = await db.fetchall(
        f"{_STUDENT_SQL} WHERE e.class_id = ? ORDER BY u.name, u.id", (class_id,)
    )
    return [_student(r) for r in rows]


async def student(db: Database, student_id: int) -> Student | None:
    r = await db.fetchone(f"{_STUDENT_SQL} WHERE u.id = ?", (student_id,))
    return _student(r) if r else None


async def children_of(db: Database, guardian_id: int) -> list[Student]:
    rows = await db.fetchall(
        f"{_STUDENT_SQL} JOIN guardianships g ON g.student_id = u.id"
        " WHERE g.guardian_id = ? ORDER BY u.name, u.id",
        (guardian_id,),
    )
    return [_student(r) for r in rows]


async def guardians_of(db: Database, student_id: int) -> list[User]:
    from realtime.identity.store import users_by_ids

    rows = await db.fetchall(
        "SELECT guardian_id FROM guardianships WHERE student_id = ?", (student_id,)
    )
    return await users_by_ids(db, [r["guardian_id"] for r in rows])


async def teachings_of(db: Database, teacher_id: int) -> list[tuple[int, str]]:
    """(class_id, subject) pairs a teacher holds."""
    rows = await db.fetchall(
        "SELECT class_id, subject FROM teachings WHERE teacher_id = ? ORDER BY class_id, subject",
        (teacher_id,),
    )
    return [(r["class_id"], r["subject"]) for r in rows]


async def slots(
    db: Database,
    *,
    weekday: int,
    school_ids: list[int] | None = None,
    class_ids: list[int] | None = None,
    teacher_id: int | None = None,
) -> list[CourseSlot]:
    where, params = ["weekday = ?"], [weekday]
    for column, values in (("school_id", school_ids), ("class_id", class_ids)):
        if values is not None:
            if not values:
                return []
            where.append(f"{column} IN ({','.join('?' * len(values))})")
            params.extend(values)
    if teacher_id is not None:
        where.append("teacher_id = ?")
        params.append(teacher_id)
    rows = await db.fetchall(
        f"SELECT * FROM course_slots WHERE {' AND '.join(where)} ORDER BY start, class_id", params
    )
    return [_slot(r) for r in rows]


async def relations_of(db: Database, user: User) -> Relations:
    if user.role is Role.TEACHER:
        from realtime.directory.reads import classes_of_teachers

        return Relations(class_ids=(await classes_of_teachers(db, [user.id]))[user.id])
    if user.role is Role.STUDENT:
        rows = await db.fetchall(
            "SELECT class_id FROM enrollments WHERE student_id = ?", (user.id,)
        )
        return Relations(class_ids=frozenset(r["class_id"] for r in rows))
    if user.role is Role.PARENT:
        kids = await children_of(db, user.id)
        return Relations(
            child_ids=frozenset(k.id for k in kids),
            child_class_ids=frozenset(k.class_id for k in kids),
            child_school_ids=frozenset(k.school_id for k in kids),
        )
    return Relations()


# --- writes (one transaction's connection) ----------------------------------------------

async def upsert_school(conn: aiosqlite.Connection, uai: str, name: str, town: str) -> int:
    await conn.execute(
        "INSERT INTO schools (uai, name, town) VALUES (?, ?, ?)"
        " ON CONFLICT (uai) DO UPDATE SET name = excluded.name, town = excluded.town",
        (uai, name, town),
    )
    cur = await conn.execute("SELECT id FROM schools WHERE uai = ?", (uai,))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def upsert_class(conn: aiosqlite.Connection, school_id: int, name: str, level: str) -> int:
    await conn.execute(
        "INSERT INTO classes (school_id, name, level) VALUES (?, ?, ?)"
        " ON CONFLICT (school_id, name) DO UPDATE SET level = excluded.level",
        (school_id, name, level),
    )
    cur = await conn.execute(
        "SELECT id FROM classes WHERE school_id = ? AND name = ?", (school_id, name)
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def enroll(conn: aiosqlite.Connection, student_id: int, class_id: int) -> None:
    await conn.execute(
        "INSERT INTO enrollments (student_id, class_id) VALUES (?, ?)"
        " ON CONFLICT (student_id) DO UPDATE SET class_id = excluded.class_id",
        (student_id, class_id),
    )


async def link_guardian(conn: aiosqlite.Connection, guardian_id: int, student_id: int) -> None:
    await conn.execute(
        "INSERT INTO guardianships (guardian_id, student_id) VALUES (?, ?)"
        " ON CONFLICT DO NOTHING",
        (guardian_id, student_id),
    )


async def add_teaching(
    conn: aiosqlite.Connection, teacher_id: int, class_id: int, subject: str
) -> None:
    await conn.execute(
        "INSERT INTO teachings (teacher_id, class_id, subject) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (teacher_id, class_id, subject),
    )


async def sync_school_timetable(
    conn: aiosqlite.Connection, school_id: int, slots_: list[CourseSlot]
) -> None:
    """Make a school's week timetable exactly `slots_` (as an export from the timetabling
    software would), keeping the ids of slots that did not change so that what refers to
    them (rolls, boards) stays attached."""
    keep: list[int] = []
    for s in slots_:
        cur = await conn.execute(
            "INSERT INTO course_slots (school_id, class_id, teacher_id, subject, room, weekday,"
            ' start, "end") VALUES (?, ?, ?, ?, ?, ?, ?, ?)'
            " ON CONFLICT (class_id, weekday, start) DO UPDATE SET"
            " teacher_id = excluded.teacher_id,"
            ' subject = excluded.subject, room = excluded.room, "end" = excluded."end"'
            " RETURNING id",
            (school_id, s.class_id, s.teacher_id, s.subject, s.room, s.weekday, s.start, s.end),
        )
        row = await cur.fetchone()
        assert row is not None
        keep.append(int(row[0]))
    marks = ",".join("?" * len(keep)) or "NULL"
    await conn.execute(
        f"DELETE FROM course_slots WHERE school_id = ? AND id NOT IN ({marks})", [school_id, *keep]
    )


# --- the directory feed (AAF import): syncs that say whether anything changed ---------------

class GuardianContact(msgspec.Struct, frozen=True):
    """A guardian's contact details as the feed gives them (empty string: none)."""

    guardian_id: int
    home_phone: str = ""
    work_phone: str = ""
    mobile_phone: str = ""
    email: str = ""


async def _rows(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    cur = await conn.execute(sql, params)
    return list(await cur.fetchall())


async def school_by_external_id(conn: aiosqlite.Connection, external_id: str) -> School | None:
    rows = await _rows(conn, "SELECT * FROM schools WHERE external_id = ?", (external_id,))
    return _school(rows[0]) if rows else None


async def school_by_uai_in(conn: aiosqlite.Connection, uai: str) -> School | None:
    rows = await _rows(conn, "SELECT * FROM schools WHERE uai = ?", (uai,))
    return _school(rows[0]) if rows else None


async def insert_school(conn: aiosqlite.Connection, uai: str, name: str, town: str,
                        external_id: str) -> int:
    cur = await conn.execute(
        "INSERT INTO schools (uai, name, town, external_id) VALUES (?, ?, ?, ?) RETURNING id",
        (uai, name, town, external_id),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def update_school(conn: aiosqlite.Connection, school_id: int, uai: str, name: str,
                        town: str, external_id: str) -> None:
    await conn.execute(
        "UPDATE schools SET uai = ?, name = ?, town = ?, external_id = ? WHERE id = ?",
        (uai, name, town, external_id, school_id),
    )


async def classes_in(conn: aiosqlite.Connection, school_id: int) -> dict[str, SchoolClass]:
    rows = await _rows(conn, "SELECT * FROM classes WHERE school_id = ?", (school_id,))
    return {r["name"]: _class(r) for r in rows}


async def enrollments_in(conn: aiosqlite.Connection, school_id: int) -> dict[int, int]:
    """student id → class id, for the school's classes."""
    rows = await _rows(
        conn, "SELECT e.student_id, e.class_id FROM enrollments e JOIN classes c"
        " ON c.id = e.class_id WHERE c.school_id = ?", (school_id,))
    return {r[0]: r[1] for r in rows}


# Relations the feed keeps in step, as (table, key column, other columns): read whole once
# per run, compared in memory, and only the differences written.
FEED_RELATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "group_members": ("student_id", ("group_id",)),
    "guardianships": ("student_id", ("guardian_id",)),
    "teachings": ("teacher_id", ("class_id", "subject")),
    "group_teachings": ("teacher_id", ("group_id", "subject")),
    "class_tutors": ("teacher_id", ("class_id",)),
}


def feed_relation_sql(table: str, source: str) -> tuple[str, tuple[Any, ...]]:
    """The query that reads one of `FEED_RELATIONS` (guardianships: only the links to the
    feed's own guardians, so a link made by hand to an account outside it stays)."""
    key, cols = FEED_RELATIONS[table]
    if table == "guardianships":
        return ("SELECT g.student_id, g.guardian_id FROM guardianships g JOIN users u"
                " ON u.id = g.guardian_id WHERE u.source = ?", (source,))
    return f"SELECT {key}, {', '.join(cols)} FROM {table}", ()


async def change_relation(conn: aiosqlite.Connection, table: str,
                          removed: list[tuple[Any, ...]], added: list[tuple[Any, ...]]) -> None:
    """Rows (key, *columns) of one of `FEED_RELATIONS` to delete and to insert."""
    key, cols = FEED_RELATIONS[table]
    names = (key, *cols)
    if removed:
        cond = " AND ".join(f"{c} = ?" for c in names)
        await conn.executemany(f"DELETE FROM {table} WHERE {cond}", removed)
    if added:
        await conn.executemany(
            f"INSERT INTO {table} ({', '.join(names)})"
            f" VALUES ({', '.join('?' * len(names))}) ON CONFLICT DO NOTHING", added)


async def enroll_many(conn: aiosqlite.Connection, pairs: list[tuple[int, int]]) -> None:
    """(student id, class id): each pupil in exactly that class."""
    await conn.executemany(
        "INSERT INTO enrollments (student_id, class_id) VALUES (?, ?)"
        " ON CONFLICT (student_id) DO UPDATE SET class_id = excluded.class_id", pairs)


async def set_guardian_contacts(conn: aiosqlite.Connection, rows: list[GuardianContact]) -> None:
    await conn.executemany(
        "INSERT INTO guardian_contacts (guardian_id, home_phone, work_phone, mobile_phone, email)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (guardian_id) DO UPDATE SET"
        " home_phone = excluded.home_phone, work_phone = excluded.work_phone,"
        " mobile_phone = excluded.mobile_phone, email = excluded.email",
        [(c.guardian_id, c.home_phone, c.work_phone, c.mobile_phone, c.email) for c in rows])


async def upsert_group(conn: aiosqlite.Connection, school_id: int, code: str, name: str
                       ) -> tuple[int, bool]:
    rows = await _rows(conn, "SELECT id, name FROM class_groups WHERE school_id = ? AND code = ?",
                       (school_id, code))
    if rows:
        if rows[0][1] != name:
            await conn.execute("UPDATE class_groups SET name = ? WHERE id = ?", (name, rows[0][0]))
            return int(rows[0][0]), True
        return int(rows[0][0]), False
    cur = await conn.execute(
        "INSERT INTO class_groups (school_id, code, name) VALUES (?, ?, ?) RETURNING id",
        (school_id, code, name))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), True


async def guardian_contacts(db: Database, guardian_ids: list[int]) -> dict[int, GuardianContact]:
    if not guardian_ids:
        return {}
    marks = ",".join("?" * len(guardian_ids))
    rows = await db.fetchall(
        f"SELECT * FROM guardian_contacts WHERE guardian_id IN ({marks})", guardian_ids)
    return {r["guardian_id"]: GuardianContact(
        guardian_id=r["guardian_id"], home_phone=r["home_phone"], work_phone=r["work_phone"],
        mobile_phone=r["mobile_phone"], email=r["email"]) for r in rows}


async def tutors_of_class(db: Database, class_id: int) -> list[int]:
    rows = await db.fetchall(
        "SELECT teacher_id FROM class_tutors WHERE class_id = ? ORDER BY teacher_id", (class_id,))
    return [r["teacher_id"] for r in rows]


async def groups_of_student(db: Database, student_id: int) -> list[str]:
    rows = await db.fetchall(
        "SELECT g.name FROM class_groups g JOIN group_members m ON m.group_id = g.id"
        " WHERE m.student_id = ? ORDER BY g.name", (student_id,))
    return [r["name"] for r in rows]

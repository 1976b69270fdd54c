"""The directory's read API on the demo database: the batch reads agree with the stored
truth read directly, whole or in chunks, inside a transaction or not."""

from __future__ import annotations

from pathlib import Path

import pytest

from realtime.directory import reads
from realtime.directory.store import relations_of
from realtime.identity.model import Role
from tests import engines
from tests.engines import open_test_db


def _pairs(path: Path, sql: str) -> set[tuple[int, int]]:
    with engines.connect(path) as conn:
        return {(a, b) for a, b in conn.execute(sql)}


async def test_batch_reads_agree_with_the_tables(demo_db_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    teaching = _pairs(demo_db_path, "SELECT teacher_id, class_id FROM teachings"
                                    " UNION SELECT teacher_id, class_id FROM course_slots")
    family = _pairs(demo_db_path, "SELECT student_id, guardian_id FROM guardianships")
    enrolled = _pairs(demo_db_path, "SELECT student_id, class_id FROM enrollments")
    teachers = sorted({t for t, _ in teaching})
    pupils = sorted({s for s, _ in enrolled})
    guardians = sorted({g for _, g in family})
    assert len(teachers) > 20 and len(pupils) > 500 and len(guardians) > 500
    db = await open_test_db(demo_db_path)
    try:
        whole = (await reads.classes_of_teachers(db, teachers),
                 await reads.guardians_of(db, pupils), await reads.placements(db, pupils),
                 await reads.children_of(db, guardians))
        monkeypatch.setattr(reads, "CHUNK", 7)  # many chunks: the same answers
        chunked = (await reads.classes_of_teachers(db, teachers),
                   await reads.guardians_of(db, pupils), await reads.placements(db, pupils),
                   await reads.children_of(db, guardians))
        assert chunked == whole
        taught, guardians_of, placed, children = whole
        assert {(t, c) for t, cs in taught.items() for c in cs} == teaching
        assert {(s, g) for s, gs in guardians_of.items() for g in gs} == family
        assert {(s, p.class_id) for s, p in placed.items()} == enrolled
        assert {(c.student_id, g) for g, cs in children.items() for c in cs} == family
        # The policy's relations use the same rule as everyone else.
        teacher = (await reads.users(db, [teachers[0]]))[teachers[0]]
        assert teacher.role is Role.TEACHER
        assert (await relations_of(db, teacher)).class_ids == taught[teachers[0]]
        # Inside a transaction, on its connection (the lock is held), the same answers.
        async with db.transaction() as conn:
            assert await reads.placements(conn, pupils[:50]) == {
                s: placed[s] for s in pupils[:50]}
        assert await reads.users(db, []) == {} and await reads.guardians_of(db, []) == {}
    finally:
        await db.close()


async def test_staff_and_pupils_of_a_school(demo_db_path: Path) -> None:
    db = await open_test_db(demo_db_path)
    try:
        school = (await reads.classes_of_schools(db, None))[0].school_id
        team = await reads.staff_of_schools(db, [school])
        assert team and all(u.school_id == school and not u.disabled
                            and u.role in reads.STAFF_ROLES for u in team)
        assert [u.name for u in team] == sorted(u.name for u in team)
        cpes = await reads.staff_of_schools(db, [school], {Role.CPE})
        assert cpes and {u.role for u in cpes} == {Role.CPE}
        pupils = await reads.pupils_of_schools(db, [school])
        placed = await reads.placements(db, pupils)
        assert set(placed) == set(pupils) and {p.school_id for p in placed.values()} == {school}
    finally:
        await db.close()

"""People as messaging peers: who they are, which schools and classes they belong to.

Loaded in a few set queries (not one per person), because the recipient list of a teacher
holds a whole school: its staff, its students and their families.
"""

from __future__ import annotations

import msgspec

from realtime.db import Database
from realtime.identity.model import Role


class Person(msgspec.Struct, frozen=True):
    id: int
    name: str
    role: str
    school_ids: frozenset[int]
    class_ids: frozenset[int]

    def public(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "role": self.role}


def _marks(n: int) -> str:
    return ",".join("?" * n)


async def people(db: Database, ids: list[int]) -> dict[int, Person]:
    """The given users (enabled ones only) with their schools and classes."""
    if not ids:
        return {}
    m = _marks(len(ids))
    users = await db.fetchall(
        f"SELECT id, name, role, school_id FROM users WHERE id IN ({m}) AND disabled = 0", ids)
    schools: dict[int, set[int]] = {}
    classes: dict[int, set[int]] = {}
    for u in users:
        schools[u["id"]] = {u["school_id"]} if u["school_id"] is not None else set()
        classes[u["id"]] = set()
    for r in await db.fetchall(
            f"SELECT teacher_id AS uid, class_id FROM teachings WHERE teacher_id IN ({m})"
            f" UNION SELECT teacher_id, class_id FROM course_slots WHERE teacher_id IN ({m})"
            f" UNION SELECT student_id, class_id FROM enrollments WHERE student_id IN ({m})",
            [*ids, *ids, *ids]):
        if r["uid"] in classes:
            classes[r["uid"]].add(r["class_id"])
    for r in await db.fetchall(
            f"SELECT g.guardian_id AS uid, e.class_id, c.school_id FROM guardianships g"
            f" JOIN enrollments e ON e.student_id = g.student_id"
            f" JOIN classes c ON c.id = e.class_id WHERE g.guardian_id IN ({m})", ids):
        if r["uid"] in classes:
            classes[r["uid"]].add(r["class_id"])
            schools[r["uid"]].add(r["school_id"])
    return {u["id"]: Person(id=u["id"], name=u["name"], role=u["role"],
                            school_ids=frozenset(schools[u["id"]]),
                            class_ids=frozenset(classes[u["id"]])) for u in users}


async def candidates(db: Database, school_ids: list[int], role: Role) -> list[int]:
    """Everyone a person of `role` might write to in these schools, before policy filters:
    the school team for families, the whole school (families included) for the team."""
    if not school_ids:
        return []
    m = _marks(len(school_ids))
    rows = await db.fetchall(
        f"SELECT id FROM users WHERE school_id IN ({m}) AND role IN ('teacher', 'cpe', 'staff')"
        f" AND disabled = 0", school_ids)
    ids = [r["id"] for r in rows]
    if role in (Role.TEACHER, Role.CPE, Role.STAFF):
        rows = await db.fetchall(
            f"SELECT e.student_id AS id FROM enrollments e JOIN classes c ON c.id = e.class_id"
            f" WHERE c.school_id IN ({m})"
            f" UNION SELECT g.guardian_id FROM guardianships g"
            f" JOIN enrollments e ON e.student_id = g.student_id"
            f" JOIN classes c ON c.id = e.class_id WHERE c.school_id IN ({m})",
            [*school_ids, *school_ids])
        ids.extend(r["id"] for r in rows)
    return ids

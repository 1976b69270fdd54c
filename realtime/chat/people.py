"""People as messaging peers: who they are, which schools and classes they belong to.

Loaded with the directory's batch reads (a few queries, not one per person), because the
recipient list of a teacher holds a whole school: its staff, its students and their families.
"""

from __future__ import annotations

import msgspec

from realtime.db import Database
from realtime.directory import reads as directory
from realtime.identity.model import Role


class Person(msgspec.Struct, frozen=True):
    id: int
    name: str
    role: str
    school_ids: frozenset[int]
    class_ids: frozenset[int]

    def public(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "role": self.role}


async def people(db: Database, ids: list[int]) -> dict[int, Person]:
    """The given users (enabled ones only) with their schools and classes."""
    users = [u for u in (await directory.users(db, ids)).values() if not u.disabled]
    if not users:
        return {}
    # Each kind of link asked only of those who can have it: a teacher's classes (teachings
    # and timetable), a pupil's class, a guardian's children's classes and schools.
    taught = await directory.classes_of_teachers(
        db, [u.id for u in users if u.role is Role.TEACHER])
    placed = await directory.placements(db, [u.id for u in users if u.role is Role.STUDENT])
    children = await directory.children_of(db, [u.id for u in users if u.role is Role.PARENT])
    out: dict[int, Person] = {}
    for u in users:
        schools = {u.school_id} if u.school_id is not None else set()
        classes = set(taught.get(u.id, ()))
        if u.id in placed:
            classes.add(placed[u.id].class_id)
        for child in children.get(u.id, ()):
            classes.add(child.class_id)
            schools.add(child.school_id)
        out[u.id] = Person(id=u.id, name=u.name, role=u.role.value,
                           school_ids=frozenset(schools), class_ids=frozenset(classes))
    return out


async def candidates(db: Database, school_ids: list[int], role: Role) -> list[int]:
    """Everyone a person of `role` might write to in these schools, before policy filters:
    the school team for families, the whole school (families included) for the team."""
    if not school_ids:
        return []
    ids = [u.id for u in await directory.staff_of_schools(db, school_ids)]
    if role in (Role.TEACHER, Role.CPE, Role.STAFF):
        pupils = await directory.pupils_of_schools(db, school_ids)
        guardians = await directory.guardians_of(db, pupils)
        ids.extend(sorted(set(pupils) | {g for gs in guardians.values() for g in gs}))
    return ids

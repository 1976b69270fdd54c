"""Directory reads, each scoped by policy. The only place that decides who sees what here."""

from __future__ import annotations

import datetime as dt
from typing import Any

from realtime.db import Database
from realtime.directory import reads, store
from realtime.directory.model import CourseSlot, SchoolClass, Student
from realtime.errors import AppError, not_found
from realtime.identity import store as identity_store
from realtime.identity.model import Principal, Role
from realtime.policy import (
    Action,
    ClassRef,
    GuardianContactsRef,
    SchoolRef,
    StudentRef,
    TeacherRef,
    may,
    require,
)


def _class_ref(c: SchoolClass) -> ClassRef:
    return ClassRef(id=c.id, school_id=c.school_id)


def _student_ref(s: Student) -> StudentRef:
    return StudentRef(id=s.id, school_id=s.school_id, class_id=s.class_id)


class DirectoryService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def classes(self, p: Principal) -> list[dict[str, Any]]:
        school_ids = None if p.role is Role.ADMIN else sorted(p.school_ids)
        candidates = await store.classes_of_schools(self.db, school_ids)
        counts = await store.student_counts(self.db)
        return [
            {
                "id": c.id,
                "name": c.name,
                "school_id": c.school_id,
                "level": c.level,
                "student_count": counts.get(c.id, 0),
            }
            for c in candidates
            if may(p, Action.VIEW_CLASS, _class_ref(c))
        ]

    async def visible_class(self, p: Principal, class_id: int, action: Action) -> SchoolClass:
        c = await store.school_class(self.db, class_id)
        if c is None:
            raise not_found("Classe introuvable.")
        require(p, action, _class_ref(c), "Classe introuvable.")
        return c

    async def class_students(
        self, p: Principal, class_id: int
    ) -> tuple[SchoolClass, list[Student]]:
        c = await self.visible_class(p, class_id, Action.LIST_CLASS_STUDENTS)
        return c, await store.students_of_class(self.db, class_id)

    async def visible_student(self, p: Principal, student_id: int) -> Student:
        s = await store.student(self.db, student_id)
        if s is None:
            raise not_found("Élève introuvable.")
        require(p, Action.VIEW_STUDENT, _student_ref(s), "Élève introuvable.")
        return s

    async def guardian_contacts(self, p: Principal, student_id: int) -> dict[str, Any]:
        """A pupil's legal representatives with their phones and e-mails from the directory
        feed, for the school team (policy: `_view_guardian_contacts`)."""
        s = await store.student(self.db, student_id)
        if s is None:
            raise not_found("Élève introuvable.")
        tutors = frozenset(await store.tutors_of_class(self.db, s.class_id))
        require(p, Action.VIEW_GUARDIAN_CONTACTS,
                GuardianContactsRef(student_id=s.id, school_id=s.school_id, class_id=s.class_id,
                                    tutor_ids=tutors), "Élève introuvable.")
        guardians = [g for g in await store.guardians_of(self.db, s.id) if not g.disabled]
        contacts = await store.guardian_contacts(self.db, [g.id for g in guardians])
        c = await store.school_class(self.db, s.class_id)
        out = []
        for g in guardians:
            k = contacts.get(g.id) or store.GuardianContact(guardian_id=g.id)
            out.append({"id": g.id, "name": g.name, "home_phone": k.home_phone,
                        "work_phone": k.work_phone, "mobile_phone": k.mobile_phone,
                        "email": k.email})
        return {"student": {"id": s.id, "name": s.name, "class_id": s.class_id,
                            "class_name": c.name if c else ""},
                "guardians": out}

    async def children(self, p: Principal) -> list[dict[str, Any]]:
        if p.role is not Role.PARENT:
            return []
        kids = await store.children_of(self.db, p.id)
        out = []
        for k in kids:
            c = await store.school_class(self.db, k.class_id)
            school = await store.school(self.db, k.school_id)
            out.append(
                {
                    "id": k.id,
                    "login": k.login,
                    "name": k.name,
                    "class_id": k.class_id,
                    "class_name": c.name if c else None,
                    "school_id": k.school_id,
                    "school_name": school.name if school else None,
                }
            )
        return out

    async def school(self, p: Principal, school_id: int) -> dict[str, Any]:
        s = await store.school(self.db, school_id)
        if s is None or not may(p, Action.VIEW_SCHOOL, SchoolRef(id=school_id)):
            raise not_found("Établissement introuvable.")
        return {"id": s.id, "uai": s.uai, "name": s.name, "town": s.town}

    async def timetable(
        self,
        p: Principal,
        day: dt.date,
        *,
        class_id: int | None = None,
        student_id: int | None = None,
        teacher_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """The day's course slots: of a class, a student, a teacher, or by default the
        caller's own (a teacher's courses, a student's class, a parent's children, the
        whole school for the CPE and the administration)."""
        weekday = day.isoweekday()
        if sum(x is not None for x in (class_id, student_id, teacher_id)) > 1:
            raise AppError("invalid", "Précisez une seule classe, un seul élève ou enseignant.")
        if class_id is not None:
            c = await self.visible_class(p, class_id, Action.VIEW_CLASS_TIMETABLE)
            slots = await store.slots(self.db, weekday=weekday, class_ids=[c.id])
        elif student_id is not None:
            s = await self.visible_student(p, student_id)
            slots = await store.slots(self.db, weekday=weekday, class_ids=[s.class_id])
        elif teacher_id is not None:
            teacher = await identity_store.user_by_id(self.db, teacher_id)
            if (
                teacher is None
                or teacher.role is not Role.TEACHER
                or teacher.school_id is None
                or not may(
                    p,
                    Action.VIEW_TEACHER_TIMETABLE,
                    TeacherRef(id=teacher.id, school_id=teacher.school_id),
                )
            ):
                raise not_found("Enseignant introuvable.")
            slots = await store.slots(self.db, weekday=weekday, teacher_id=teacher.id)
        elif p.role is Role.TEACHER:
            slots = await store.slots(self.db, weekday=weekday, teacher_id=p.id)
        elif p.role is Role.STUDENT:
            slots = await store.slots(self.db, weekday=weekday, class_ids=sorted(p.class_ids))
        elif p.role is Role.PARENT:
            slots = await store.slots(
                self.db, weekday=weekday, class_ids=sorted(p.child_class_ids)
            )
        elif p.role in (Role.CPE, Role.STAFF) and p.school_id is not None:
            slots = await store.slots(self.db, weekday=weekday, school_ids=[p.school_id])
        else:
            raise AppError("invalid", "Précisez une classe, un élève ou un enseignant.")
        return await self._describe(slots, day)

    async def _describe(self, slots: list[CourseSlot], day: dt.date) -> list[dict[str, Any]]:
        teachers = await reads.names(self.db, {s.teacher_id for s in slots})
        class_names: dict[int, str] = {}
        for cid in {s.class_id for s in slots}:
            c = await store.school_class(self.db, cid)
            class_names[cid] = c.name if c else ""
        return [
            {
                "id": s.id,
                "date": day.isoformat(),
                "class_id": s.class_id,
                "class_name": class_names.get(s.class_id, ""),
                "subject": s.subject,
                "teacher_id": s.teacher_id,
                "teacher_name": teachers.get(s.teacher_id, ""),
                "room": s.room,
                "weekday": s.weekday,
                "start": s.start,
                "end": s.end,
            }
            for s in slots
        ]

"""The vie scolaire's live grid of the day's rolls, and the reminder to teachers whose roll
is not taken `attendance_overdue_min` minutes after the start."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from realtime.attendance import store
from realtime.attendance.context import (
    Context,
    dashboard_room,
    names,
    parse_day,
    teacher_room,
)
from realtime.attendance.model import RollHeader, RollState, minutes_since_start, overdue
from realtime.directory import reads as directory
from realtime.directory.model import CourseSlot
from realtime.errors import not_found
from realtime.identity.model import Principal, Role
from realtime.policy import Action, SchoolRef, may


class DashboardService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.db = ctx.db

    def _overdue(self, state: RollState, start: str, day: dt.date) -> bool:
        now = self.ctx.local_now()
        grace = self.ctx.settings.attendance_overdue_min
        if day < now.date():
            return state is RollState.TODO
        if day > now.date():
            return False
        return overdue(state, start, now.strftime("%H:%M"), grace)

    async def grid(self, p: Principal, school_id: int | None, date: str | None
                   ) -> dict[str, Any]:
        school_id = school_id if school_id is not None else p.school_id
        if school_id is None or not may(p, Action.VIEW_ATTENDANCE_DASHBOARD,
                                        SchoolRef(id=school_id)):
            raise not_found("Établissement introuvable.")
        day = parse_day(date, self.ctx.today())
        slots = await directory.slots(self.db, weekday=day.isoweekday(), school_ids=[school_id])
        halls = await store.study_halls_of(self.db, school_id, day.isoweekday())
        rolls = await store.rolls_of_school_day(self.db, school_id, day.isoformat())
        by_slot = {r.slot_id: r for r in rolls if r.slot_id}
        by_hall = {r.study_hall_id: r for r in rolls if r.study_hall_id}
        classes = {c.id: c.name for c in await directory.classes_of_schools(self.db,
                                                                            [school_id])}
        people = await names(self.db, {s.teacher_id for s in slots} | {
            h.supervisor_id for h in halls} | {r.replacement_id for r in rolls
                                               if r.replacement_id})
        rows = []
        for s in slots:
            r = by_slot.get(s.id)
            rows.append(self._row(r, day, kind="course", slot_id=s.id, study_hall_id=None,
                                  class_id=s.class_id, class_name=classes.get(s.class_id, ""),
                                  subject=s.subject, room=s.room, start=s.start, end=s.end,
                                  teacher_id=s.teacher_id,
                                  teacher_name=people.get(s.teacher_id, ""), people=people))
        for h in halls:
            r = by_hall.get(h.id)
            rows.append(self._row(r, day, kind="study_hall", slot_id=None,
                                  study_hall_id=h.id, class_id=None,
                                  class_name="Permanence", subject="Permanence",
                                  room=h.room, start=h.start, end=h.end,
                                  teacher_id=h.supervisor_id,
                                  teacher_name=people.get(h.supervisor_id, ""),
                                  people=people))
        rows.sort(key=lambda x: (x["start"], x["class_name"]))
        out = {"school_id": school_id, "date": day.isoformat(),
               "overdue_after_min": self.ctx.settings.attendance_overdue_min, "rows": rows,
               "can_replace": p.role is Role.CPE, "teachers": []}
        if out["can_replace"]:  # who the CPE may name as a replacement
            teachers = await directory.staff_of_schools(self.db, [school_id], {Role.TEACHER})
            out["teachers"] = [{"id": t.id, "name": t.name} for t in teachers]
        return out

    def _row(self, r: RollHeader | None, day: dt.date, *, people: dict[int, str],
             **info: Any) -> dict[str, Any]:
        state = r.state if r else RollState.TODO
        replacement = r.replacement_id if r else None
        return {**info, "roll_id": r.id if r else None, "state": state.value,
                "absent": r.absent if r else 0, "late": r.late if r else 0,
                "replacement_id": replacement,
                "replacement_name": people.get(replacement or 0, ""),
                "overdue": self._overdue(state, info["start"], day)}

    async def teacher_day(self, p: Principal, date: str | None) -> dict[str, Any]:
        """A teacher's rolls of a day: their own courses, and those the CPE gave them to
        replace, with where each roll stands."""
        if p.role is not Role.TEACHER:
            raise not_found("Aucun appel pour ce compte.")
        day = parse_day(date, self.ctx.today())
        own = await directory.slots(self.db, weekday=day.isoweekday(), teacher_id=p.id)
        replacing = await store.rolls_replaced_by(self.db, p.id, day.isoformat())
        extra_ids = {r.slot_id for r in replacing if r.slot_id} - {s.id for s in own}
        extra = await directory.slots_by_ids(self.db, extra_ids)
        slots = own + [extra[i] for i in sorted(extra)]
        states = {r.slot_id: r for r in await store.rolls_of_school_day(
            self.db, p.school_id or 0, day.isoformat()) if r.slot_id}
        classes = {c.id: c.name for c in await directory.classes_of_schools(
            self.db, [p.school_id or 0])}
        people = await names(self.db, {s.teacher_id for s in slots})
        out = []
        for s in sorted(slots, key=lambda s: s.start):
            r = states.get(s.id)
            if r is not None and r.replacement_id and r.replacement_id != p.id:
                continue  # the CPE gave this one to someone else
            out.append({"slot_id": s.id, "start": s.start, "end": s.end, "subject": s.subject,
                        "class_name": classes.get(s.class_id, ""), "room": s.room,
                        "state": r.state.value if r else RollState.TODO.value,
                        "replacing": people.get(s.teacher_id) if s.teacher_id != p.id
                        else None,
                        "overdue": self._overdue(r.state if r else RollState.TODO,
                                                 s.start, day)})
        by_hall = {r.study_hall_id: r for r in await store.rolls_of_school_day(
            self.db, p.school_id or 0, day.isoformat()) if r.study_hall_id}
        for h in await store.study_halls_supervised_by(self.db, p.id, day.isoweekday()):
            r = by_hall.get(h.id)  # a permanence the vie scolaire gave this teacher
            out.append({"study_hall_id": h.id, "slot_id": None, "start": h.start,
                        "end": h.end, "subject": "Permanence", "class_name": "Permanence",
                        "room": h.room, "state": r.state.value if r else RollState.TODO.value,
                        "replacing": None, "overdue": False})
        out.sort(key=lambda x: x["start"])
        return {"date": day.isoformat(), "rolls": out}

    async def send_reminders(self) -> int:
        """Remind each teacher once per late roll (across processes: the reminder row is
        the lock), and flag it on the dashboards."""
        now = self.ctx.local_now()
        hm, day = now.strftime("%H:%M"), now.date().isoformat()
        grace = self.ctx.settings.attendance_overdue_min
        slots = await directory.slots(self.db, weekday=now.isoweekday())
        due = [s for s in slots if minutes_since_start(s.start, hm) >= grace and hm < s.end]
        if not due:
            return 0
        rolls = {r.slot_id: r for r in await store.course_rolls_of_day(self.db, day)}
        sent = 0
        for s in due:
            r = rolls.get(s.id)
            if r is not None and r.state is not RollState.TODO:
                continue
            async with self.db.transaction() as conn:
                cur = await conn.execute(
                    "INSERT OR IGNORE INTO roll_reminders (slot_id, date, sent_at)"
                    " VALUES (?, ?, ?)", (s.id, day, self.ctx.clock()))
                if cur.rowcount == 0:
                    continue
                who = r.replacement_id if r is not None and r.replacement_id else s.teacher_id
                conn.on_commit(functools.partial(self._remind, s, who, day))
            sent += 1
        return sent

    async def _remind(self, s: CourseSlot, who: int, day: str) -> None:
        """After the commit that recorded it: the teacher, and the vie scolaire's screen."""
        message = {"slot_id": s.id, "date": day, "start": s.start, "end": s.end,
                   "subject": s.subject, "room": s.room,
                   "message": f"L'appel de {s.start} ({s.subject}, salle {s.room}) n'est "
                              "pas encore fait."}
        await self.ctx.emit("reminder", message, teacher_room(who))
        await self.ctx.emit("overdue", {"slot_id": s.id, "date": day},
                            dashboard_room(s.school_id, day))

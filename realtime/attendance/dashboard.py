"""The vie scolaire's live grid of the day's rolls, and the reminders: to the teacher (every
open page and Web Push) when a roll is not started `attendance_overdue_min` minutes after
the start, again when it is still « en cours » `attendance_unvalidated_min` after it, and a
flag on the CPE's grid for each of those and for a roll not validated at the end of its
slot, courses and study halls alike. Nothing fires on a day without classes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from realtime.attendance import store
from realtime.attendance.context import (
    Context,
    dashboard_room,
    names,
    parse_day,
    teacher_room,
)
from realtime.attendance.model import (
    ALERT_LABELS_FR,
    RollAlert,
    RollHeader,
    RollState,
    roll_alert,
)
from realtime.attendance.notices import room_phrase
from realtime.attendance.webpush import PushSender
from realtime.directory import reads as directory
from realtime.errors import not_found
from realtime.identity.model import Principal, Role
from realtime.policy import Action, SchoolRef, may


class DashboardService:
    def __init__(self, ctx: Context, push: PushSender | None = None) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.push = push

    def _alert(self, state: RollState, start: str, end: str, day: dt.date,
               closed: str | None) -> RollAlert | None:
        """Where the roll stands against the clock (None on a day without classes)."""
        if closed:
            return None
        now = self.ctx.local_now()
        if day > now.date():
            return None
        hm = now.strftime("%H:%M") if day == now.date() else "24:00"
        s = self.ctx.settings
        return roll_alert(state, start, end, hm, s.attendance_overdue_min,
                          s.attendance_unvalidated_min)

    async def grid(self, p: Principal, school_id: int | None, date: str | None
                   ) -> dict[str, Any]:
        school_id = school_id if school_id is not None else p.school_id
        if school_id is None or not may(p, Action.VIEW_ATTENDANCE_DASHBOARD,
                                        SchoolRef(id=school_id)):
            raise not_found("Établissement introuvable.")
        day = parse_day(date, self.ctx.today())
        closed = await self.ctx.calendar.closed(school_id, day)
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
            rows.append(self._row(r, day, closed, kind="course", slot_id=s.id, study_hall_id=None,
                                  class_id=s.class_id, class_name=classes.get(s.class_id, ""),
                                  subject=s.subject, room=s.room, start=s.start, end=s.end,
                                  teacher_id=s.teacher_id,
                                  teacher_name=people.get(s.teacher_id, ""), people=people))
        for h in halls:
            r = by_hall.get(h.id)
            rows.append(self._row(r, day, closed, kind="study_hall", slot_id=None,
                                  study_hall_id=h.id, class_id=None,
                                  class_name="Permanence", subject="Permanence",
                                  room=h.room, start=h.start, end=h.end,
                                  teacher_id=h.supervisor_id,
                                  teacher_name=people.get(h.supervisor_id, ""),
                                  people=people))
        rows.sort(key=lambda x: (x["start"], x["class_name"]))
        out = {"school_id": school_id, "date": day.isoformat(), "closed": closed,
               "overdue_after_min": self.ctx.settings.attendance_overdue_min,
               "unvalidated_after_min": self.ctx.settings.attendance_unvalidated_min,
               "rows": rows,
               "can_replace": p.role is Role.CPE, "teachers": []}
        if out["can_replace"]:  # who the CPE may name as a replacement
            teachers = await directory.staff_of_schools(self.db, [school_id], {Role.TEACHER})
            out["teachers"] = [{"id": t.id, "name": t.name} for t in teachers]
        return out

    def _row(self, r: RollHeader | None, day: dt.date, closed: str | None, *,
             people: dict[int, str], **info: Any) -> dict[str, Any]:
        state = r.state if r else RollState.TODO
        replacement = r.replacement_id if r else None
        alert = self._alert(state, info["start"], info["end"], day, closed)
        return {**info, "roll_id": r.id if r else None, "state": state.value,
                "absent": r.absent if r else 0, "late": r.late if r else 0,
                "replacement_id": replacement,
                "replacement_name": people.get(replacement or 0, ""),
                "alert": alert.value if alert else None,
                "alert_label": ALERT_LABELS_FR[alert] if alert else None,
                "overdue": alert is not None}

    async def teacher_day(self, p: Principal, date: str | None) -> dict[str, Any]:
        """A teacher's rolls of a day: their own courses, and those the CPE gave them to
        replace, with where each roll stands."""
        if p.role is not Role.TEACHER:
            raise not_found("Aucun appel pour ce compte.")
        day = parse_day(date, self.ctx.today())
        closed = await self.ctx.calendar.closed(p.school_id or 0, day)
        own = [] if closed else await directory.slots(self.db, weekday=day.isoweekday(),
                                                      teacher_id=p.id)
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
            alert = self._alert(r.state if r else RollState.TODO, s.start, s.end, day, closed)
            out.append({"slot_id": s.id, "start": s.start, "end": s.end, "subject": s.subject,
                        "class_name": classes.get(s.class_id, ""), "room": s.room,
                        "state": r.state.value if r else RollState.TODO.value,
                        "replacing": people.get(s.teacher_id) if s.teacher_id != p.id
                        else None, "alert": alert.value if alert else None,
                        "alert_label": ALERT_LABELS_FR[alert] if alert else None,
                        "overdue": alert is not None})
        by_hall = {r.study_hall_id: r for r in await store.rolls_of_school_day(
            self.db, p.school_id or 0, day.isoformat()) if r.study_hall_id}
        halls = [] if closed else await store.study_halls_supervised_by(
            self.db, p.id, day.isoweekday())
        for h in halls:
            r = by_hall.get(h.id)  # a permanence the vie scolaire gave this teacher
            alert = self._alert(r.state if r else RollState.TODO, h.start, h.end, day, closed)
            out.append({"study_hall_id": h.id, "slot_id": None, "start": h.start,
                        "end": h.end, "subject": "Permanence", "class_name": "Permanence",
                        "room": h.room, "state": r.state.value if r else RollState.TODO.value,
                        "replacing": None, "alert": alert.value if alert else None,
                        "alert_label": ALERT_LABELS_FR[alert] if alert else None,
                        "overdue": alert is not None})
        out.sort(key=lambda x: x["start"])
        return {"date": day.isoformat(), "closed": closed, "rolls": out}

    async def send_reminders(self) -> int:
        """Each reminder at most once per roll, day and kind across processes (the
        `roll_alerts` row is the lock): to the teacher (or replacement, or the study hall's
        supervisor) on every open page and by Web Push, and a flag on the CPE's grid."""
        now = self.ctx.local_now()
        hm, day = now.strftime("%H:%M"), now.date()
        s = self.ctx.settings
        rolls = await store.rolls_of_day(self.db, day.isoformat())
        by_slot = {r.slot_id: r for r in rolls if r.slot_id}
        by_hall = {r.study_hall_id: r for r in rolls if r.study_hall_id}
        targets: list[dict[str, Any]] = []
        for sl in await directory.slots(self.db, weekday=day.isoweekday()):
            r = by_slot.get(sl.id)
            targets.append({"target": f"slot:{sl.id}", "slot_id": sl.id, "study_hall_id": None,
                            "school_id": sl.school_id, "start": sl.start, "end": sl.end,
                            "subject": sl.subject, "room": sl.room, "roll": r,
                            "who": r.replacement_id if r and r.replacement_id
                            else sl.teacher_id})
        for h in await store.study_halls_of_weekday(self.db, day.isoweekday()):
            r = by_hall.get(h.id)
            targets.append({"target": f"hall:{h.id}", "slot_id": None, "study_hall_id": h.id,
                            "school_id": h.school_id, "start": h.start, "end": h.end,
                            "subject": "Permanence", "room": h.room, "roll": r,
                            "who": h.supervisor_id})
        sent = 0
        for t in targets:
            r: RollHeader | None = t["roll"]
            state = r.state if r else RollState.TODO
            alert = roll_alert(state, t["start"], t["end"], hm, s.attendance_overdue_min,
                               s.attendance_unvalidated_min)
            if alert is None or await self.ctx.calendar.closed(t["school_id"], day):
                continue
            async with self.db.transaction() as conn:
                if not await store.claim_alert(conn, t["target"], day.isoformat(),
                                               alert.value, t["school_id"], self.ctx.clock()):
                    continue
            sent += 1
            await self._send(t, alert, day.isoformat(), r)
        return sent

    async def _send(self, t: dict[str, Any], alert: RollAlert, day: str,
                    r: RollHeader | None) -> None:
        where = f"{t['subject']}, {room_phrase(t['room'])}"
        text = {
            RollAlert.NOT_STARTED: f"L'appel de {t['start']} ({where}) n'est pas encore fait.",
            RollAlert.IN_PROGRESS: f"L'appel de {t['start']} ({where}) est en cours mais pas "
                                   "validé.",
            RollAlert.UNFINISHED: f"L'appel de {t['start']} ({where}) n'a pas été validé avant "
                                  "la fin du cours.",
        }[alert]
        message = {"slot_id": t["slot_id"], "study_hall_id": t["study_hall_id"], "date": day,
                   "start": t["start"], "end": t["end"], "subject": t["subject"],
                   "room": t["room"], "kind": alert.value, "message": text}
        await self.ctx.emit("reminder", message, teacher_room(t["who"]))
        url = (f"/#/appel?permanence={t['study_hall_id']}&date={day}" if t["study_hall_id"]
               else f"/#/appel?slot={t['slot_id']}&date={day}")
        if self.push is not None:
            self.push.send(t["who"], {"title": "Appel à faire" if alert is
                                      RollAlert.NOT_STARTED else "Appel à valider",
                                      "body": text, "url": url, "kind": "reminder"})
        room = dashboard_room(t["school_id"], day)
        await self.ctx.emit("roll_alert", {
            "slot_id": t["slot_id"], "study_hall_id": t["study_hall_id"], "date": day,
            "roll_id": r.id if r else None, "alert": alert.value,
            "alert_label": ALERT_LABELS_FR[alert]}, room)
        if alert is RollAlert.NOT_STARTED and t["slot_id"]:
            await self.ctx.emit("overdue", {"slot_id": t["slot_id"], "date": day}, room)

"""Reading attendance: a class's rolls, a student's record and half-days, the school's
absences to handle, the CSV export. Every read by staff of a student's absences is logged
(data of minors: who looked, when, at whom)."""

from __future__ import annotations

import io
from typing import Any

from realtime.attendance import store
from realtime.attendance.absences import (
    JUSTIFICATION_LABELS_FR,
    Justification,
    count_half_days,
)
from realtime.attendance.context import (
    Context,
    names,
    parse_period,
    student_ref,
    student_refs,
)
from realtime.attendance.justify import event_json
from realtime.attendance.model import MARK_LABELS_FR, MarkState
from realtime.attendance.service import mark_json
from realtime.directory import reads as directory
from realtime.errors import not_found
from realtime.identity.model import Principal, Role
from realtime.policy import Action, ClassRef, SchoolRef, may
from realtime.text import SafeCsvWriter

STAFF = (Role.TEACHER, Role.CPE, Role.STAFF)
CSV_COLUMNS = ("date", "debut", "fin", "classe", "matiere", "eleve", "marque", "minutes",
               "commentaire", "justification", "motif")


class RecordService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.db = ctx.db

    async def _log(self, p: Principal, student_ids: set[int], what: str) -> None:
        if p.role in STAFF and student_ids:
            async with self.db.transaction() as conn:
                await store.log_access(conn, self.ctx.clock(), p.id, p.role.value,
                                       sorted(student_ids), what)

    async def _class(self, p: Principal, class_id: int) -> Any:
        c = await directory.school_class(self.db, class_id)
        if c is None or not may(p, Action.VIEW_CLASS_ATTENDANCE,
                                ClassRef(id=c.id, school_id=c.school_id)):
            raise not_found("Classe introuvable.")
        return c

    async def class_rolls(self, p: Principal, class_id: int, date_from: str | None,
                          date_to: str | None) -> dict[str, Any]:
        c = await self._class(p, class_id)
        start, end = parse_period(date_from, date_to, self.ctx.today())
        rows = await store.rolls_between(self.db, class_id=c.id, school_id=None,
                                         date_from=start, date_to=end)
        marks = await store.marks_of_rolls(self.db, [r.id for r in rows])
        students = await directory.students_of_class(self.db, c.id)
        who = {s.id: s.name for s in students}
        seen: set[int] = set()
        out = []
        for r in rows:
            notable = [m for m in marks[r.id] if m.state.value != "present"]
            seen |= {m.student_id for m in notable}
            out.append({"id": r.id, "date": r.date, "start": r.start,
                        "end": r.end, "subject": r.subject, "state": r.state.value,
                        "absent": r.absent, "late": r.late,
                        "marks": [{**(mark_json(m) or {}), "student_name":
                                   who.get(m.student_id, "")} for m in notable]})
        await self._log(p, seen, f"class:{c.id}")
        return {"class": {"id": c.id, "name": c.name}, "from": start, "to": end, "rolls": out}

    async def class_half_days(self, p: Principal, class_id: int, date_from: str | None,
                              date_to: str | None) -> dict[str, Any]:
        c = await self._class(p, class_id)
        start, end = parse_period(date_from, date_to, self.ctx.today())
        reasons = {r.code: r for r in await store.reasons(self.db, c.school_id)}
        students = await directory.students_of_class(self.db, c.id)
        out = []
        for s in students:
            events = await store.events_of_student(self.db, s.id, start, end)
            out.append({"student_id": s.id, "name": s.name,
                        **count_half_days(events, reasons),
                        "late": sum(1 for e in events if e.kind.value == "late"
                                    and not e.cancelled)})
        await self._log(p, {s.id for s in students}, f"half_days:{c.id}")
        return {"class": {"id": c.id, "name": c.name}, "from": start, "to": end,
                "students": out}

    async def student_record(self, p: Principal, student_id: int, date_from: str | None,
                             date_to: str | None) -> dict[str, Any]:
        ref = await student_ref(self.db, student_id)
        if ref is None or not may(p, Action.VIEW_ABSENCES, ref):
            raise not_found("Élève introuvable.")
        start, end = parse_period(date_from, date_to, self.ctx.today())
        reasons_list = await store.reasons(self.db, ref.school_id)
        reasons = {r.code: r for r in reasons_list}
        events = await store.events_of_student(self.db, student_id, start, end)
        rows = await self.db.fetchall(
            "SELECT e.id, r.subject FROM absence_events e JOIN rolls r ON r.id = e.roll_id"
            " WHERE e.student_id = ? AND e.date BETWEEN ? AND ?", (student_id, start, end))
        subjects = {r["id"]: r["subject"] for r in rows}
        who = await names(self.db, {student_id})
        await self._log(p, {student_id}, "student")
        return {
            "student": {"id": student_id, "name": who.get(student_id, ""),
                        "class_id": ref.class_id},
            "from": start, "to": end, "half_days": count_half_days(events, reasons),
            "events": [{**event_json(e, reasons), "subject": subjects.get(e.id, "")}
                       for e in reversed(events)],
            "reasons": [{"code": r.code, "label": r.label, "justifying": r.justifying}
                        for r in reasons_list if r.active],
            "can_justify": may(p, Action.GIVE_ABSENCE_REASON, ref),
        }

    async def school_absences(self, p: Principal, school_id: int, pending_only: bool,
                              date_from: str | None, date_to: str | None) -> dict[str, Any]:
        if not may(p, Action.VIEW_ATTENDANCE_DASHBOARD, SchoolRef(id=school_id)):
            raise not_found("Établissement introuvable.")
        start, end = parse_period(date_from, date_to, self.ctx.today())
        events = await store.events_of_school(self.db, school_id, pending_only=pending_only,
                                              date_from=start, date_to=end)
        reasons = {r.code: r for r in await store.reasons(self.db, school_id)}
        who = await names(self.db, {e.student_id for e in events})
        classes = await self._class_names(school_id)
        found = await student_refs(self.db, {e.student_id for e in events})
        refs = {e.student_id: found.get(e.student_id) for e in events}
        await self._log(p, set(who), "absences")
        return {"from": start, "to": end, "absences": [
            event_json(e, reasons, who.get(e.student_id, ""),
                       classes.get(refs[e.student_id].class_id, "") if refs[e.student_id]
                       else "") for e in events]}

    async def _class_names(self, school_id: int) -> dict[int, str]:
        return {c.id: c.name for c in await directory.classes_of_schools(self.db, [school_id])}

    async def export_csv(self, p: Principal, school_id: int, date_from: str | None,
                         date_to: str | None) -> str:
        if not may(p, Action.EXPORT_ATTENDANCE, SchoolRef(id=school_id)):
            raise not_found("Établissement introuvable.")
        start, end = parse_period(date_from, date_to, self.ctx.today())
        marks = await store.missed_marks(self.db, school_id, start, end)
        who = await names(self.db, {r["student_id"] for r in marks})
        classes = await directory.class_names(
            self.db, {r["class_id"] for r in marks if r["class_id"] is not None})
        rows = sorted(
            ({**r, "student": who[r["student_id"]], "class_name": classes.get(r["class_id"])}
             for r in marks if r["student_id"] in who),
            key=lambda r: (r["date"], r["start"], r["class_name"] is not None,
                           r["class_name"] or "", r["student"]))
        reasons = {r.code: r for r in await store.reasons(self.db, school_id)}
        buf = io.StringIO()
        out = SafeCsvWriter(buf, delimiter=";")  # no formula cells (realtime/text.py)
        out.writerow(CSV_COLUMNS)
        for r in rows:
            reason = reasons.get(r["reason_code"] or "")
            out.writerow([r["date"], r["start"], r["end"], r["class_name"] or "Permanence",
                          r["subject"], r["student"], MARK_LABELS_FR[MarkState(r["state"])],
                          r["minutes"] or "", r["comment"],
                          JUSTIFICATION_LABELS_FR[Justification(r["justification"])]
                          if r["justification"] else "",
                          reason.label if reason else ""])
        await self._log(p, {r["student_id"] for r in rows}, "export")
        return buf.getvalue()

"""Reading attendance: a class's rolls, a student's record and half-days, the school's
absences to handle, the CSV export. Every read by staff of a student's absences is logged
(data of minors: who looked, when, at whom)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import msgspec

from realtime.attendance import justify_store, store
from realtime.attendance.absences import (
    JUSTIFICATION_LABELS_FR,
    Justification,
    count_half_days,
    months_over_threshold,
    pupil_counts,
)
from realtime.attendance.context import (
    Context,
    names,
    parse_period,
    student_ref,
    student_refs,
)
from realtime.attendance.justify import event_json, with_proposals
from realtime.attendance.model import MARK_LABELS_FR, MarkState
from realtime.attendance.service import mark_json
from realtime.directory import reads as directory
from realtime.errors import AppError, not_found
from realtime.identity.model import Principal, Role
from realtime.policy import Action, ClassRef, SchoolRef, may
from realtime.text import SafeCsvWriter

STAFF = (Role.TEACHER, Role.CPE, Role.STAFF)
CSV_COLUMNS = ("date", "debut", "fin", "classe", "matiere", "eleve", "marque", "minutes",
               "commentaire", "justification", "motif")
COUNT_COLUMNS = ("eleve", "classe", "demi_journees", "justifiees", "non_justifiees",
                 "absences", "retards", "minutes_de_retard", "departs_anticipes", "a_traiter")
# A cell a spreadsheet would read as a formula (CSV injection, OWASP): quoted as text.


def csv_text(header: tuple[str, ...], rows: list[list[object]]) -> str:
    """A `;`-separated CSV whose cells cannot start a formula (realtime/text.py)."""
    buf = io.StringIO()
    out = SafeCsvWriter(buf, delimiter=";")
    out.writerow(header)
    out.writerows(rows)
    return buf.getvalue()


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
        items = [{**event_json(e, reasons), "subject": subjects.get(e.id, "")}
                 for e in reversed(events)]
        if p.role is not Role.TEACHER:  # families' proposals: not the teachers' business
            items = await with_proposals(self.db, items, reasons,
                                         p.id if p.role is Role.PARENT else None)
        return {
            "student": {"id": student_id, "name": who.get(student_id, ""),
                        "class_id": ref.class_id},
            "from": start, "to": end, "half_days": count_half_days(events, reasons),
            "counts": pupil_counts(events, reasons),
            "declarations": [] if p.role is Role.TEACHER else [
                {**msgspec.to_builtins(d), "reason_label": reasons[d.reason_code].label
                 if d.reason_code in reasons else d.reason_code}
                for d in await justify_store.declarations_of_student(
                    self.db, student_id, self.ctx.today().isoformat())],
            "events": items,
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
        items = [event_json(e, reasons, who.get(e.student_id, ""),
                            classes.get(refs[e.student_id].class_id, "") if refs[e.student_id]
                            else "") for e in events]
        return {"from": start, "to": end,
                "absences": await with_proposals(self.db, items, reasons)}

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
        lines: list[list[object]] = []
        for r in rows:
            reason = reasons.get(r["reason_code"] or "")
            lines.append([r["date"], r["start"], r["end"], r["class_name"] or "Permanence",
                          r["subject"], r["student"], MARK_LABELS_FR[MarkState(r["state"])],
                          r["minutes"] or "", r["comment"],
                          JUSTIFICATION_LABELS_FR[Justification(r["justification"])]
                          if r["justification"] else "",
                          reason.label if reason else ""])
        await self._log(p, {r["student_id"] for r in rows}, "export")
        return csv_text(CSV_COLUMNS, lines)

    async def _pupils(self, p: Principal, school_id: int, class_id: int | None
                      ) -> tuple[list[Any], dict[int, str]]:
        """The pupils counted: a class (its teachers, the CPE, the administration) or the
        whole school (the CPE, the administration)."""
        if class_id is not None:
            c = await self._class(p, class_id)
            if c.school_id != school_id:
                raise not_found("Classe introuvable.")
            return await directory.students_of_class(self.db, c.id), {c.id: c.name}
        if not may(p, Action.VIEW_ATTENDANCE_DASHBOARD, SchoolRef(id=school_id)):
            raise not_found("Établissement introuvable.")
        classes = await directory.classes_of_schools(self.db, [school_id])
        pupils = []
        for c in classes:
            pupils += await directory.students_of_class(self.db, c.id)
        return pupils, {c.id: c.name for c in classes}

    async def counts(self, p: Principal, school_id: int, class_id: int | None,
                     date_from: str | None, date_to: str | None) -> dict[str, Any]:
        """Per pupil over a period: half-days (justified or not), absences, lateness,
        early departures, what waits for a decision; the pupils with any, by class."""
        pupils, class_names = await self._pupils(p, school_id, class_id)
        start, end = parse_period(date_from, date_to, self.ctx.today())
        reasons = {r.code: r for r in await store.reasons(self.db, school_id)}
        by_pupil: dict[int, list[Any]] = {}
        for e in await store.events_of_school_between(self.db, school_id, start, end):
            by_pupil.setdefault(e.student_id, []).append(e)
        rows = []
        for s in pupils:
            if class_id is None and s.id not in by_pupil:
                continue  # the school's summary lists the pupils with something to count
            rows.append({"student_id": s.id, "name": s.name,
                         "class_name": class_names.get(s.class_id, ""),
                         **pupil_counts(by_pupil.get(s.id, []), reasons)})
        rows.sort(key=lambda r: (-r["unjustified"], -r["total"], r["class_name"], r["name"]))
        await self._log(p, {r["student_id"] for r in rows}, "counts")
        school = await directory.school(self.db, school_id)
        return {"school": {"id": school_id, "name": school.name if school else ""},
                "class": {"id": class_id, "name": class_names.get(class_id, "")}
                if class_id else None, "from": start, "to": end, "pupils": rows}

    async def counts_csv(self, p: Principal, school_id: int, class_id: int | None,
                         date_from: str | None, date_to: str | None) -> str:
        data = await self.counts(p, school_id, class_id, date_from, date_to)
        return csv_text(COUNT_COLUMNS, [
            [r["name"], r["class_name"], r["total"], r["justified"], r["unjustified"],
             r["absences"], r["late"], r["late_minutes"], r["left_early"], r["pending"]]
            for r in data["pupils"]])

    async def alerts(self, p: Principal, school_id: int, month: str | None
                     ) -> dict[str, Any]:
        """Pupils with at least `attendance_alert_half_days` unjustified half-days in the
        month (the threshold at which the school reports to the DASEN), with the list."""
        if not may(p, Action.VIEW_ATTENDANCE_DASHBOARD, SchoolRef(id=school_id)):
            raise not_found("Établissement introuvable.")
        today = self.ctx.today()
        try:
            first = dt.date.fromisoformat(f"{month}-01") if month else today.replace(day=1)
        except ValueError as exc:
            raise AppError("invalid", "Mois invalide : attendu AAAA-MM.") from exc
        last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        threshold = self.ctx.settings.attendance_alert_half_days
        reasons = {r.code: r for r in await store.reasons(self.db, school_id)}
        by_pupil: dict[int, list[Any]] = {}
        for e in await store.events_of_school_between(self.db, school_id, first.isoformat(),
                                                      last.isoformat()):
            by_pupil.setdefault(e.student_id, []).append(e)
        flagged = {s: months_over_threshold(evs, reasons, threshold)
                   for s, evs in by_pupil.items()}
        flagged = {s: m for s, m in flagged.items() if m}
        who = await names(self.db, set(flagged))
        classes = await self._class_names(school_id)
        out = []
        for s, months in flagged.items():
            ref = await student_ref(self.db, s)
            halves = [h for hs in months.values() for h in hs]
            out.append({"student_id": s, "name": who.get(s, ""),
                        "class_name": classes.get(ref.class_id, "") if ref else "",
                        "count": len(halves),
                        "half_days": [{"date": d, "half": h} for d, h in halves]})
        out.sort(key=lambda r: (-r["count"], r["name"]))
        await self._log(p, set(flagged), "alerts")
        return {"month": first.isoformat()[:7], "threshold": threshold, "pupils": out}

"""Rolls: the only place that decides. Load → policy → model → persist (one transaction)
→ publish after the commit (dashboard, the roll's other screens, guardians' feeds, pushes)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import aiosqlite
import msgspec

from realtime.attendance import feed, justify_store, store
from realtime.attendance.absences import NOON, AbsenceEvent, AbsenceKind, Justification
from realtime.attendance.context import (
    Context,
    dashboard_room,
    guardians_of,
    names,
    parse_day,
    roll_ref,
    roll_room,
)
from realtime.attendance.model import (
    NOTIFIED,
    Change,
    HistoryEntry,
    Mark,
    MarkInput,
    MarkState,
    Roll,
    RollKind,
    RollState,
    checked_reason,
    mark,
    mark_all_present,
    name_replacement,
    new_study_hall,
    open_roll,
    validate,
)
from realtime.attendance.notices import notice, notice_kind
from realtime.attendance.webpush import PushSender
from realtime.directory import reads as directory
from realtime.errors import AppError, not_found
from realtime.identity.model import Principal, Role
from realtime.policy import Action, SchoolRef, may

ROLL_NOT_FOUND = "Appel introuvable."



def mark_json(m: Mark | None) -> dict[str, Any] | None:
    return None if m is None else msgspec.to_builtins(m)


@dataclass
class Effects:
    """What to publish once the transaction has committed."""

    roll: Roll | None = None
    subject: str = ""
    changes: list[Change] = field(default_factory=list)
    notes: list[feed.Pending] = field(default_factory=list)


class RollService:
    def __init__(self, ctx: Context, push: PushSender | None) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.push = push

    # --- loading ------------------------------------------------------------------------

    async def _new_roll(self, conn: aiosqlite.Connection, *, slot_id: int | None,
                        hall_id: int | None, day: dt.date) -> tuple[Roll, str]:
        """A roll not stored yet (id 0) for a course slot or a study hall on `day`."""
        date = day.isoformat()
        if slot_id is not None:
            s = await directory.slot(conn, slot_id)
            if s is None:
                raise not_found("Cours introuvable.")
            pupils = await directory.pupils_of_classes(conn, [s.class_id])
            roll = Roll(id=0, school_id=s.school_id, kind=RollKind.COURSE, date=date,
                        start=s.start, end=s.end, teacher_id=s.teacher_id,
                        class_id=s.class_id, slot_id=s.id, roster=frozenset(pupils[s.class_id]))
            return self._on_its_day(roll, s.weekday, day), s.subject
        h = await store.study_hall(conn, hall_id or 0)
        if h is None:
            raise not_found("Permanence introuvable.")
        roll = Roll(id=0, school_id=h.school_id, kind=RollKind.STUDY_HALL, date=date,
                    start=h.start, end=h.end, teacher_id=h.supervisor_id, study_hall_id=h.id)
        return self._on_its_day(roll, h.weekday, day), f"Permanence ({h.room})"

    def _on_its_day(self, roll: Roll, weekday: int, day: dt.date) -> Roll:
        if day.isoweekday() != weekday:
            raise AppError("invalid", "Ce créneau n'a pas lieu ce jour-là.")
        if day > self.ctx.today():
            raise AppError("invalid", "On ne fait pas l'appel d'un cours à venir.")
        return roll

    async def _get_or_create(self, conn: aiosqlite.Connection, p: Principal, *,
                             slot_id: int | None, hall_id: int | None, day: dt.date,
                             action: Action) -> tuple[Roll, str]:
        """The slot's (or study hall's) roll of `day`, created if absent, its row locked
        for the caller's change. Two nodes creating it at once make one roll: the second
        INSERT finds the first's (on PostgreSQL it waits for its commit) and takes it."""
        column = {"slot_id": slot_id} if slot_id is not None else {"study_hall_id": hall_id}
        rid = await store.roll_id_for(conn, date=day.isoformat(), **column)
        if rid is None:
            roll, subject = await self._new_roll(conn, slot_id=slot_id, hall_id=hall_id,
                                                 day=day)
            if not may(p, Action.VIEW_ROLL, roll_ref(roll)):
                raise not_found("Cours introuvable.")
            why = await self.ctx.calendar.closed(roll.school_id, day, conn)
            if why:
                raise AppError("invalid", f"Pas de cours ce jour-là : {why}.")
            require_take(p, roll, action)
            if day < self.ctx.today():
                self.require_past_write(p, roll)
            new_id = await store.insert_roll(conn, roll, subject)
            if new_id is not None:
                return msgspec.structs.replace(roll, id=new_id), subject
            rid = await store.roll_id_for(conn, date=day.isoformat(), **column)
            assert rid is not None  # created by another node meanwhile: that one
        found = await store.load_roll(conn, rid, lock=True)
        assert found is not None
        subject = await store.roll_subject(conn, rid)
        if not may(p, Action.VIEW_ROLL, roll_ref(found)):
            raise not_found("Cours introuvable.")
        if action is not Action.TAKE_ROLL or day >= self.ctx.today():
            require_take(p, found, action)
        return found, subject

    def past_write_refusal(self, p: Principal, roll: Roll) -> AppError | None:
        """A past day's roll: the CPE or the administration within the correction window
        (with a reason, asked by the model), a teacher within their own (0 days by default:
        only the day's courses); None when allowed."""
        if not may(p, Action.TAKE_ROLL, roll_ref(roll)):
            return AppError("forbidden", "Seul·e l'enseignant·e du cours, son remplaçant·e ou "
                                         "la vie scolaire fait cet appel.")
        back = (self.ctx.today() - dt.date.fromisoformat(roll.date)).days
        if back <= 0:
            return None
        settings = self.ctx.settings
        if p.role in (Role.CPE, Role.STAFF):
            if back > settings.attendance_correction_days:
                return AppError("forbidden", "Cet appel date de plus de "
                                f"{settings.attendance_correction_days} jours : il ne se "
                                "modifie plus.")
            return None
        if back > settings.attendance_teacher_past_days:
            return AppError("forbidden", "On ne fait l'appel que des cours du jour : pour un "
                                         "cours passé, voyez la vie scolaire.")
        return None

    def require_past_write(self, p: Principal, roll: Roll) -> None:
        refusal = self.past_write_refusal(p, roll)
        if refusal is not None:
            raise refusal

    def late_entry(self, roll: Roll, p: Principal | None = None) -> bool:
        """A past day's roll entered now, later than the operator allows a roll to be
        still on time (`attendance_teacher_past_days`, 0: the same day): the vie scolaire's
        exception, which needs a reason. `p` is kept for the callers' symmetry."""
        back = (self.ctx.today() - dt.date.fromisoformat(roll.date)).days
        return back > self.ctx.settings.attendance_teacher_past_days

    async def _load(self, conn: aiosqlite.Connection, p: Principal, roll_id: int,
                    action: Action = Action.TAKE_ROLL) -> tuple[Roll, str]:
        # A change locks the roll (one writer at a time, on every node); a view does not.
        roll = await store.load_roll(conn, roll_id, lock=action is not Action.VIEW_ROLL)
        if roll is None or not may(p, Action.VIEW_ROLL, roll_ref(roll)):
            raise not_found(ROLL_NOT_FOUND)
        require_take(p, roll, action)
        if action is Action.TAKE_ROLL and self.late_entry(roll):
            self.require_past_write(p, roll)
        return roll, await store.roll_subject(conn, roll_id)

    # --- transitions --------------------------------------------------------------------

    async def open(self, p: Principal, *, slot_id: int | None = None,
                   hall_id: int | None = None, date: str | None = None) -> dict[str, Any]:
        day = parse_day(date, self.ctx.today())
        fx = Effects()
        async with self.db.transaction() as conn:
            roll, fx.subject = await self._get_or_create(
                conn, p, slot_id=slot_id, hall_id=hall_id, day=day, action=Action.TAKE_ROLL)
            opened = roll
            # A past roll opens as it is (to read, or to correct with a reason); one the
            # caller may only see never changes state by being looked at.
            if not self.late_entry(roll, p) and self.past_write_refusal(p, roll) is None:
                opened = open_roll(roll, p.id, self.ctx.clock())
            if opened is not roll:
                await store.save_roll(conn, opened, [])
                await store.add_history(conn, roll.id, [HistoryEntry(
                    at=self.ctx.clock(), by=p.id, action="open")])
            fx.roll = opened
            conn.on_commit(lambda: self._publish(fx))
        return await self.describe(fx.roll, fx.subject, viewer=p)

    async def view(self, p: Principal, roll_id: int) -> dict[str, Any]:
        async with self.db.transaction() as conn:
            roll, subject = await self._load(conn, p, roll_id, Action.VIEW_ROLL)
        return await self.describe(roll, subject, corrections=True, viewer=p)

    async def history(self, p: Principal, roll_id: int) -> dict[str, Any]:
        """Who changed what, when and why: every step of a roll, for those who may see it
        (its teacher, the CPE, the administration)."""
        async with self.db.transaction() as conn:
            roll, subject = await self._load(conn, p, roll_id, Action.VIEW_ROLL)
        entries = await store.history(self.db, roll.id)
        people = await names(self.db, {e.by for e in entries} | {
            e.student_id for e in entries if e.student_id} | {roll.teacher_id})
        described = await self.describe(roll, subject, viewer=p)
        return {"roll": described["roll"], "entries": [
            {**msgspec.to_builtins(e), "by_name": people.get(e.by, ""),
             "student_name": people.get(e.student_id or 0, "")} for e in entries]}

    async def mark(self, p: Principal, roll_id: int, inputs: list[MarkInput],
                   reason: str | None = None) -> dict[str, Any]:
        async def step(conn: aiosqlite.Connection, roll: Roll, now: float
                       ) -> tuple[Roll, list[Change]]:
            if roll.kind is RollKind.STUDY_HALL:  # anyone of the school may come in
                await _same_school(conn, roll.school_id, [m.student_id for m in inputs])
            return mark(roll, inputs, p.id, now, reason, self.late_entry(roll, p))

        return await self._change(p, roll_id, step)

    async def all_present(self, p: Principal, roll_id: int, reason: str | None = None
                          ) -> dict[str, Any]:
        async def step(_conn: aiosqlite.Connection, roll: Roll, now: float
                       ) -> tuple[Roll, list[Change]]:
            return mark_all_present(roll, p.id, now, reason, self.late_entry(roll, p))

        return await self._change(p, roll_id, step)

    async def _change(self, p: Principal, roll_id: int, step: Any) -> dict[str, Any]:
        now = self.ctx.clock()
        fx = Effects()
        async with self.db.transaction() as conn:
            roll, fx.subject = await self._load(conn, p, roll_id)
            new, changes = await step(conn, roll, now)
            if changes:
                await store.save_roll(conn, new, changes)
                if new.state is RollState.DONE:
                    fx.notes = await self._corrections(conn, new, fx.subject, changes, now)
            fx.roll, fx.changes = new, changes
            conn.on_commit(lambda: self._publish(fx))
        return {"version": fx.roll.version, "changed": len(fx.changes),
                "counts": fx.roll.counts(), "state": fx.roll.state.value}

    async def validate(self, p: Principal, roll_id: int, reason: str | None = None
                       ) -> dict[str, Any]:
        now = self.ctx.clock()
        fx = Effects()
        async with self.db.transaction() as conn:
            roll, fx.subject = await self._load(conn, p, roll_id)
            done, notify = validate(roll, p.id, now)
            why = checked_reason(reason, done is not roll and self.late_entry(roll, p),
                                 "de cette validation d'un jour passé")
            if done is not roll:
                await store.save_roll(conn, done, [])
                await store.add_history(conn, roll.id, [HistoryEntry(
                    at=now, by=p.id, action="validate", reason=why)])
                fx.notes = await self._notify(conn, done, fx.subject, notify, now)
            fx.roll = done
            conn.on_commit(lambda: self._publish(fx))
        return {"version": fx.roll.version, "state": fx.roll.state.value,
                "counts": fx.roll.counts(), "notified": len(fx.notes)}

    async def replace(self, p: Principal, *, slot_id: int, date: str | None,
                      teacher_id: int | None) -> dict[str, Any]:
        """The CPE names who takes this course's roll (a replacement), or nobody."""
        day = parse_day(date, self.ctx.today())
        fx = Effects()
        async with self.db.transaction() as conn:
            roll, fx.subject = await self._get_or_create(
                conn, p, slot_id=slot_id, hall_id=None, day=day, action=Action.NAME_REPLACEMENT)
            if teacher_id is not None:
                t = (await directory.users(conn, [teacher_id])).get(teacher_id)
                if (t is None or t.role is not Role.TEACHER or t.school_id != roll.school_id
                        or t.disabled):
                    raise AppError("invalid", "Choisissez un·e enseignant·e de l'établissement.")
            new = name_replacement(roll, teacher_id)
            if new is not roll:
                await store.save_roll(conn, new, [])
                who = (await names(conn, {teacher_id})).get(teacher_id, "") if teacher_id \
                    else ""
                await store.add_history(conn, roll.id, [HistoryEntry(
                    at=self.ctx.clock(), by=p.id, action="replace",
                    reason=f"Remplacement : {who}" if who else "Remplacement retiré")])
            fx.roll = new
            conn.on_commit(lambda: self._publish(fx))
        return await self.describe(fx.roll, fx.subject)

    async def create_study_hall(self, p: Principal, *, school_id: int | None, room: str,
                                start: str, end: str, date: str | None,
                                supervisor_id: int | None, students: list[int]
                                ) -> dict[str, Any]:
        """The vie scolaire opens a permanence for a slot and a day (the weekly study hall
        is created on first use, found again afterwards) and, optionally, marks the pupils
        already there present. Only the CPE or the administration of the school."""
        school_id = school_id if school_id is not None else p.school_id
        if school_id is None or not may(p, Action.CREATE_STUDY_HALL, SchoolRef(id=school_id)):
            if school_id is not None and p.school_id == school_id:
                raise AppError("forbidden", "Seule la vie scolaire ouvre une permanence.")
            raise not_found("Établissement introuvable.")
        day = parse_day(date, self.ctx.today())
        hall = new_study_hall(school_id, supervisor_id or p.id, room, day.isoweekday(),
                              start, end)
        now = self.ctx.clock()
        fx = Effects()
        async with self.db.transaction() as conn:
            if supervisor_id is not None:
                u = (await directory.users(conn, [supervisor_id])).get(supervisor_id)
                if (u is None or u.role not in directory.STAFF_ROLES
                        or u.school_id != school_id or u.disabled):
                    raise AppError("invalid", "Choisissez un membre de l'équipe de "
                                              "l'établissement pour surveiller la permanence.")
            hall = await store.add_study_hall(conn, hall)
            roll, fx.subject = await self._get_or_create(
                conn, p, slot_id=None, hall_id=hall.id, day=day, action=Action.TAKE_ROLL)
            new = open_roll(roll, p.id, now)
            changes: list[Change] = []
            if students:
                await _same_school(conn, school_id, students)
                new, changes = mark(new, [MarkInput(s, MarkState.PRESENT)
                                          for s in students], p.id, now)
            if new is not roll:
                await store.save_roll(conn, new, changes)
            fx.roll, fx.changes = new, changes
            conn.on_commit(lambda: self._publish(fx))
        return await self.describe(fx.roll, fx.subject)

    # --- absence events and notices -----------------------------------------------------

    async def _notify(self, conn: aiosqlite.Connection, roll: Roll, subject: str,
                      marks: list[Mark], now: float) -> list[feed.Pending]:
        if not marks:
            return []
        ids = [m.student_id for m in marks]
        guardians = await guardians_of(conn, ids)
        who = await names(conn, set(ids))
        notes: list[feed.Pending] = []
        declared = await justify_store.declarations_on(conn, ids, roll.date)
        for m in marks:
            event = await store.upsert_event(conn, _event_of(roll, m))
            if m.state is MarkState.ABSENT:
                event = await self._declared(conn, event, declared, now)
            payload = notice(_NOTICE_KINDS[m.state],
                             student_id=m.student_id, student_name=who.get(m.student_id, ""),
                             date=roll.date, start=roll.start, end=roll.end, subject=subject,
                             mark=m, event_id=event.id)
            notes += await feed.write(conn, guardians[m.student_id], m.student_id, event.id,
                                      payload, now)
        return notes

    async def _declared(self, conn: aiosqlite.Connection, event: AbsenceEvent,
                        declared: list[justify_store.Declaration], now: float
                        ) -> AbsenceEvent:
        """An absence a guardian declared beforehand arrives with that reason proposed."""
        d = next((d for d in declared if d.student_id == event.student_id
                  and d.covers(event.date, event.start, NOON)), None)
        if d is None or event.justification is not Justification.NONE:
            return event
        await justify_store.add_proposal(conn, event.id, d.guardian_id, d.reason_code,
                                         d.comment, d.created_at, declaration_id=d.id)
        return await store.upsert_event(conn, msgspec.structs.replace(
            event, justification=Justification.GIVEN, reason_code=d.reason_code,
            reason_comment=d.comment, given_by=d.guardian_id, given_at=now))

    async def _corrections(self, conn: aiosqlite.Connection, roll: Roll, subject: str,
                           changes: list[Change], now: float) -> list[feed.Pending]:
        """Keep absence events in line with a corrected roll; tell guardians."""
        ids = [c.student_id for c in changes]
        guardians = await guardians_of(conn, ids)
        who = await names(conn, set(ids))
        notes: list[feed.Pending] = []
        for c in changes:
            event = await store.event_for(conn, roll.id, c.student_id, lock=True)
            if c.after.state in NOTIFIED:
                fresh = _event_of(roll, c.after)
                if event is None:
                    event = await store.upsert_event(conn, fresh)
                else:
                    same_kind = event.kind == fresh.kind and not event.cancelled
                    event = await store.upsert_event(conn, msgspec.structs.replace(
                        event if same_kind else fresh, id=event.id, minutes=fresh.minutes))
            elif event is not None and not event.cancelled:
                event = await store.upsert_event(
                    conn, msgspec.structs.replace(event, cancelled=True))
            kind = notice_kind(c)
            if kind is None:
                continue
            payload = notice(kind, student_id=c.student_id,
                             student_name=who.get(c.student_id, ""), date=roll.date,
                             start=roll.start, end=roll.end, subject=subject, mark=c.after,
                             before=c.before,
                             event_id=event.id if event and not event.cancelled else None)
            notes += await feed.write(conn, guardians[c.student_id], c.student_id,
                                      payload["event_id"], payload, now)
        return notes

    # --- after the commit ---------------------------------------------------------------

    async def _publish(self, fx: Effects) -> None:
        roll = fx.roll
        if roll is None:
            return
        if fx.changes:
            await self.ctx.emit("marks", {
                "roll_id": roll.id, "version": roll.version, "state": roll.state.value,
                "marks": [mark_json(c.after) for c in fx.changes], "counts": roll.counts()},
                roll_room(roll.id))
        await self.ctx.emit("roll_state", summary(roll), roll_room(roll.id))
        update = summary(roll)
        if roll.replacement_id:
            update["replacement_name"] = (await names(self.db, {roll.replacement_id})).get(
                roll.replacement_id, "")
        await self.ctx.emit("roll_update", update, dashboard_room(roll.school_id, roll.date))
        if fx.notes:
            await feed.publish(self.db, self.ctx.streams, fx.notes, self.push_notice)

    async def push_notice(self, note: feed.Pending) -> None:
        if self.push is not None:
            p = note.payload
            self.push.send(note.guardian_id, {
                "title": p["title"], "body": p["body"], "id": p["id"],
                "url": f"/#/absences?notice={p['id']}", "event_id": p.get("event_id"),
                "kind": p["kind"]})

    async def describe(self, roll: Roll, subject: str, corrections: bool = False,
                       viewer: Principal | None = None) -> dict[str, Any]:
        people = await names(self.db, set(roll.roster) | {roll.teacher_id} | (
            {roll.replacement_id} if roll.replacement_id else set()))
        class_name = ""
        if roll.class_id is not None:
            class_name = (await directory.class_names(self.db, [roll.class_id])).get(
                roll.class_id, "")
        students = sorted(roll.roster, key=lambda s: people.get(s, ""))
        # What guardians said beforehand (« sera absent jeudi »), for the teacher's roll:
        # that an absence is expected, not the family's reason.
        declared = {d.student_id: {"part": d.part, "label": "Absence signalée par la famille"}
                    for d in await justify_store.declarations_on(
                        self.db, list(roll.roster), roll.date)
                    if d.covers(roll.date, roll.start, NOON)}
        out = {
            "roll": {**summary(roll), "subject": subject, "class_name": class_name,
                     "teacher_name": people.get(roll.teacher_id, ""),
                     "replacement_name": people.get(roll.replacement_id or 0, "")},
            "students": [{"id": s, "name": people.get(s, ""),
                          "mark": mark_json(roll.marks.get(s)),
                          **({"declared": declared[s]} if s in declared else {})}
                         for s in students],
        }
        if viewer is not None:
            out["roll"]["read_only"] = self.past_write_refusal(viewer, roll) is not None
            # A change now needs a reason: a validated roll, or a past day's.
            out["roll"]["needs_reason"] = self.late_entry(roll, viewer) or (
                roll.state is RollState.DONE)
        if corrections:
            out["corrections"] = msgspec.to_builtins(await store.corrections(self.db, roll.id))
        return out


def require_take(p: Principal, roll: Roll, action: Action) -> None:
    if not may(p, action, roll_ref(roll)):
        raise AppError("forbidden", "Seul·e l'enseignant·e du cours, son remplaçant·e ou la "
                                    "vie scolaire fait cet appel.")


async def _same_school(conn: aiosqlite.Connection, school_id: int, student_ids: list[int]
                       ) -> None:
    placed = await directory.placements(conn, student_ids)
    if sum(1 for pl in placed.values() if pl.school_id == school_id) != len(set(student_ids)):
        raise not_found("Élève introuvable dans l'établissement.")


def summary(roll: Roll) -> dict[str, Any]:
    counts = roll.counts()
    return {"id": roll.id, "kind": roll.kind.value, "state": roll.state.value,
            "date": roll.date, "start": roll.start, "end": roll.end,
            "school_id": roll.school_id, "class_id": roll.class_id, "slot_id": roll.slot_id,
            "study_hall_id": roll.study_hall_id, "teacher_id": roll.teacher_id,
            "replacement_id": roll.replacement_id, "version": roll.version,
            "validated_at": roll.validated_at, "counts": counts,
            "absent": counts["absent"], "late": counts["late"]}


_EVENT_KINDS = {MarkState.ABSENT: AbsenceKind.ABSENT, MarkState.LATE: AbsenceKind.LATE,
                MarkState.LEFT_EARLY: AbsenceKind.LEFT_EARLY}
_NOTICE_KINDS = {MarkState.ABSENT: "absence", MarkState.LATE: "late",
                 MarkState.LEFT_EARLY: "left_early"}


def _event_of(roll: Roll, m: Mark) -> AbsenceEvent:
    return AbsenceEvent(id=0, school_id=roll.school_id, student_id=m.student_id,
                        roll_id=roll.id, date=roll.date, start=roll.start, end=roll.end,
                        kind=_EVENT_KINDS[m.state], minutes=m.minutes,
                        justification=Justification.NONE)

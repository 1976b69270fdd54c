"""Rolls: the only place that decides. Load → policy → model → persist (one transaction)
→ publish after the commit (dashboard, the roll's other screens, guardians' feeds, pushes)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import aiosqlite
import msgspec

from realtime.attendance import feed, store
from realtime.attendance.absences import AbsenceEvent, AbsenceKind, Justification
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
    Mark,
    MarkInput,
    MarkState,
    Roll,
    RollKind,
    RollState,
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
        column = {"slot_id": slot_id} if slot_id is not None else {"study_hall_id": hall_id}
        rid = await store.roll_id_for(conn, date=day.isoformat(), **column)
        if rid is not None:
            roll = await store.load_roll(conn, rid)
            assert roll is not None
            subject = await store.roll_subject(conn, rid)
        else:
            roll, subject = await self._new_roll(conn, slot_id=slot_id, hall_id=hall_id,
                                                 day=day)
        if not may(p, Action.VIEW_ROLL, roll_ref(roll)):
            raise not_found("Cours introuvable.")
        require_take(p, roll, action)
        if roll.id == 0:
            roll = msgspec.structs.replace(roll, id=await store.insert_roll(conn, roll, subject))
        return roll, subject

    async def _load(self, conn: aiosqlite.Connection, p: Principal, roll_id: int,
                    action: Action = Action.TAKE_ROLL) -> tuple[Roll, str]:
        roll = await store.load_roll(conn, roll_id)
        if roll is None or not may(p, Action.VIEW_ROLL, roll_ref(roll)):
            raise not_found(ROLL_NOT_FOUND)
        require_take(p, roll, action)
        return roll, await store.roll_subject(conn, roll_id)

    # --- transitions --------------------------------------------------------------------

    async def open(self, p: Principal, *, slot_id: int | None = None,
                   hall_id: int | None = None, date: str | None = None) -> dict[str, Any]:
        day = parse_day(date, self.ctx.today())
        fx = Effects()
        async with self.db.transaction() as conn:
            roll, fx.subject = await self._get_or_create(
                conn, p, slot_id=slot_id, hall_id=hall_id, day=day, action=Action.TAKE_ROLL)
            opened = open_roll(roll, p.id, self.ctx.clock())
            if opened is not roll:
                await store.save_roll(conn, opened, [])
            fx.roll = opened
            conn.on_commit(lambda: self._publish(fx))
        return await self.describe(fx.roll, fx.subject)

    async def view(self, p: Principal, roll_id: int) -> dict[str, Any]:
        async with self.db.transaction() as conn:
            roll, subject = await self._load(conn, p, roll_id, Action.VIEW_ROLL)
        return await self.describe(roll, subject, corrections=True)

    async def mark(self, p: Principal, roll_id: int, inputs: list[MarkInput]
                   ) -> dict[str, Any]:
        async def step(conn: aiosqlite.Connection, roll: Roll, now: float
                       ) -> tuple[Roll, list[Change]]:
            if roll.kind is RollKind.STUDY_HALL:  # anyone of the school may come in
                await _same_school(conn, roll.school_id, [m.student_id for m in inputs])
            return mark(roll, inputs, p.id, now)

        return await self._change(p, roll_id, step)

    async def all_present(self, p: Principal, roll_id: int) -> dict[str, Any]:
        async def step(_conn: aiosqlite.Connection, roll: Roll, now: float
                       ) -> tuple[Roll, list[Change]]:
            return mark_all_present(roll, p.id, now)

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

    async def validate(self, p: Principal, roll_id: int) -> dict[str, Any]:
        now = self.ctx.clock()
        fx = Effects()
        async with self.db.transaction() as conn:
            roll, fx.subject = await self._load(conn, p, roll_id)
            done, notify = validate(roll, p.id, now)
            if done is not roll:
                await store.save_roll(conn, done, [])
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
        for m in marks:
            event = await store.upsert_event(conn, _event_of(roll, m))
            payload = notice("late" if m.state is MarkState.LATE else "absence",
                             student_id=m.student_id, student_name=who.get(m.student_id, ""),
                             date=roll.date, start=roll.start, end=roll.end, subject=subject,
                             mark=m, event_id=event.id)
            notes += await feed.write(conn, guardians[m.student_id], m.student_id, event.id,
                                      payload, now)
        return notes

    async def _corrections(self, conn: aiosqlite.Connection, roll: Roll, subject: str,
                           changes: list[Change], now: float) -> list[feed.Pending]:
        """Keep absence events in line with a corrected roll; tell guardians."""
        ids = [c.student_id for c in changes]
        guardians = await guardians_of(conn, ids)
        who = await names(conn, set(ids))
        notes: list[feed.Pending] = []
        for c in changes:
            event = await store.event_for(conn, roll.id, c.student_id)
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

    async def describe(self, roll: Roll, subject: str, corrections: bool = False
                       ) -> dict[str, Any]:
        people = await names(self.db, set(roll.roster) | {roll.teacher_id} | (
            {roll.replacement_id} if roll.replacement_id else set()))
        class_name = ""
        if roll.class_id is not None:
            class_name = (await directory.class_names(self.db, [roll.class_id])).get(
                roll.class_id, "")
        students = sorted(roll.roster, key=lambda s: people.get(s, ""))
        out = {
            "roll": {**summary(roll), "subject": subject, "class_name": class_name,
                     "teacher_name": people.get(roll.teacher_id, ""),
                     "replacement_name": people.get(roll.replacement_id or 0, "")},
            "students": [{"id": s, "name": people.get(s, ""),
                          "mark": mark_json(roll.marks.get(s))} for s in students],
        }
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


def _event_of(roll: Roll, m: Mark) -> AbsenceEvent:
    return AbsenceEvent(id=0, school_id=roll.school_id, student_id=m.student_id,
                        roll_id=roll.id, date=roll.date, start=roll.start, end=roll.end,
                        kind=AbsenceKind.LATE if m.state is MarkState.LATE
                        else AbsenceKind.ABSENT, minutes=m.minutes,
                        justification=Justification.NONE)

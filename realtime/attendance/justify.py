"""Absence justification: guardians give a reason, the CPE accepts or refuses it; the
school's list of reasons. Load → policy → model → persist → publish after the commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from realtime.attendance import feed, store
from realtime.attendance.absences import (
    JUSTIFICATION_LABELS_FR,
    AbsenceEvent,
    Reason,
    decide,
    give_reason,
    validate_reasons,
)
from realtime.attendance.context import (
    Context,
    guardian_room,
    guardians_of,
    names,
    school_room,
    student_ref,
)
from realtime.attendance.notices import decision_notice
from realtime.directory import reads as directory
from realtime.errors import AppError, not_found
from realtime.identity.model import Principal
from realtime.policy import Action, SchoolRef, may

EVENT_NOT_FOUND = "Absence introuvable."


def event_json(e: AbsenceEvent, reasons: dict[str, Reason], student_name: str = "",
               class_name: str = "") -> dict[str, Any]:
    reason = reasons.get(e.reason_code or "")
    return {**msgspec.to_builtins(e), "student_name": student_name, "class_name": class_name,
            "reason_label": reason.label if reason else None,
            "justifying": bool(reason and reason.justifying),
            "justification_label": JUSTIFICATION_LABELS_FR[e.justification],
            "pending": e.pending}


class JustificationService:
    def __init__(self, ctx: Context,
                 on_published: Callable[[feed.Pending], Awaitable[None]] | None = None) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.on_published = on_published

    async def reasons(self, p: Principal, school_id: int) -> list[Reason]:
        if not may(p, Action.VIEW_SCHOOL, SchoolRef(id=school_id)):
            raise not_found("Établissement introuvable.")
        return await store.reasons(self.db, school_id)

    async def set_reasons(self, p: Principal, school_id: int, items: list[Reason]
                          ) -> list[Reason]:
        if not may(p, Action.MANAGE_ABSENCE_REASONS, SchoolRef(id=school_id)):
            raise not_found("Établissement introuvable.")
        checked = validate_reasons(items)
        async with self.db.transaction() as conn:
            await store.replace_reasons(conn, school_id, checked)
        return checked

    async def give(self, p: Principal, event_id: int, code: str, comment: str
                   ) -> dict[str, Any]:
        now = self.ctx.clock()
        async with self.db.transaction() as conn:
            event = await self._event(conn, p, event_id, Action.GIVE_ABSENCE_REASON)
            reasons = {r.code: r for r in await store.reasons(conn, event.school_id)}
            reason = reasons.get(code)
            if reason is None:
                raise AppError("invalid", "Motif inconnu de l'établissement.")
            new = give_reason(event, reason, comment, p.id, now)
            await store.upsert_event(conn, new)
            # The notices about this absence are read: the parent just acted on them.
            cur = await conn.execute(
                "UPDATE notifications SET read_at = ? WHERE guardian_id = ? AND event_id = ?"
                " AND read_at IS NULL RETURNING id", (now, p.id, event_id))
            read = [r[0] for r in await cur.fetchall()]
            data = await self._event_view(conn, new, reasons)
            conn.on_commit(lambda: self._announce(new, data, read_by=(p.id, read)))
        return data

    async def decide(self, p: Principal, event_id: int, accept: bool, code: str | None,
                     comment: str | None) -> dict[str, Any]:
        now = self.ctx.clock()
        async with self.db.transaction() as conn:
            event = await self._event(conn, p, event_id, Action.DECIDE_ABSENCE)
            reasons = {r.code: r for r in await store.reasons(conn, event.school_id)}
            reason = None
            if code is not None:
                reason = reasons.get(code)
                if reason is None:
                    raise AppError("invalid", "Motif inconnu de l'établissement.")
            new = decide(event, accept, p.id, now, reason, comment)
            await store.upsert_event(conn, new)
            who = await names(conn, {new.student_id})
            chosen = reasons.get(new.reason_code or "")
            payload = decision_notice(
                student_id=new.student_id, student_name=who.get(new.student_id, ""),
                date=new.date, start=new.start, end=new.end, kind=new.kind.value,
                accepted=accept, reason_label=chosen.label if chosen else None,
                event_id=new.id)
            guardians = (await guardians_of(conn, [new.student_id]))[new.student_id]
            notes = await feed.write(conn, guardians, new.student_id, new.id, payload, now)
            data = await self._event_view(conn, new, reasons)
            conn.on_commit(lambda: feed.publish(self.db, self.ctx.streams, notes,
                                                self.on_published))
            conn.on_commit(lambda: self._announce(new, data))
        return data

    async def _event(self, conn: Any, p: Principal, event_id: int, action: Action
                     ) -> AbsenceEvent:
        event = await store.load_event(conn, event_id)
        ref = await student_ref(conn, event.student_id) if event else None
        if event is None or ref is None or not may(p, Action.VIEW_ABSENCES, ref):
            raise not_found(EVENT_NOT_FOUND)
        if not may(p, action, ref):
            raise AppError("forbidden", "Vous ne pouvez pas faire cela pour cette absence.")
        return event

    async def _event_view(self, conn: directory.Source, e: AbsenceEvent,
                          reasons: dict[str, Reason]) -> dict[str, Any]:
        who = await names(conn, {e.student_id})
        ref = await student_ref(conn, e.student_id)
        class_name = (await directory.class_names(conn, [ref.class_id])).get(
            ref.class_id, "") if ref else ""
        return event_json(e, reasons, who.get(e.student_id, ""), class_name)

    async def _announce(self, e: AbsenceEvent, data: dict[str, Any],
                        read_by: tuple[int, list[int]] | None = None) -> None:
        """After the commit: the vie scolaire's screens, and the guardian's other devices."""
        await self.ctx.emit("absence_update", data, school_room(e.school_id))
        if read_by and read_by[1]:
            await self.ctx.emit("notices_read", {"ids": read_by[1]}, guardian_room(read_by[0]))

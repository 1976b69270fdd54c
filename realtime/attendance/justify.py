"""Absence justification: guardians give a reason, the CPE accepts or refuses it; the
school's list of reasons. Load → policy → model → persist → publish after the commit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from realtime.attendance import feed, justify_store, store
from realtime.attendance.absences import (
    JUSTIFICATION_LABELS_FR,
    KIND_LABELS_FR,
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
from realtime.identity.model import Principal, Role
from realtime.policy import Action, SchoolRef, may

EVENT_NOT_FOUND = "Absence introuvable."
DECLARATION_MAX_DAYS = 31
DECLARATION_AHEAD_DAYS = 120
# Supporting documents: what a phone's camera or a scanner produces, told by their first
# bytes (never by the name or the browser's claim).
DOCUMENT_TYPES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)


def document_type(data: bytes) -> str | None:
    for magic, kind in DOCUMENT_TYPES:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class Upload:
    """A supporting document as received (already bounded in size by the transport)."""

    __slots__ = ("data", "filename")

    def __init__(self, filename: str, data: bytes) -> None:
        self.filename = filename
        self.data = data


def _safe_name(name: str) -> str:
    """A file name fit for a Content-Disposition header and a list."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(c for c in base if c.isalnum() or c in " ._-()")
    return (kept.strip() or "document")[:100]


def event_json(e: AbsenceEvent, reasons: dict[str, Reason], student_name: str = "",
               class_name: str = "") -> dict[str, Any]:
    reason = reasons.get(e.reason_code or "")
    return {**msgspec.to_builtins(e), "student_name": student_name, "class_name": class_name,
            "reason_label": reason.label if reason else None,
            "justifying": bool(reason and reason.justifying),
            "justification_label": JUSTIFICATION_LABELS_FR[e.justification],
            "kind_label": KIND_LABELS_FR[e.kind], "pending": e.pending}


async def with_proposals(db: Any, items: list[dict[str, Any]], reasons: dict[str, Reason],
                         own_only: int | None = None) -> list[dict[str, Any]]:
    """Each absence with its proposals (every guardian's, each with its documents) and the
    CPE's decisions, who and when; `own_only`: a guardian, who sees their own proposals."""
    ids = [a["id"] for a in items]
    proposals = await justify_store.proposals_of(db, ids)
    decisions = await justify_store.decisions_of(db, ids)
    people = await names(db, {x.guardian_id for ps in proposals.values() for x in ps}
                         | {d.decided_by for ds in decisions.values() for d in ds})
    for a in items:
        shown = [x for x in proposals.get(a["id"], [])
                 if own_only is None or x.guardian_id == own_only]
        a["proposals"] = [{
            **msgspec.to_builtins(x), "guardian_name": people.get(x.guardian_id, ""),
            "reason_label": reasons[x.reason_code].label if x.reason_code in reasons
            else x.reason_code,
            "documents": [{**msgspec.to_builtins(d),
                           "url": f"/api/attendance/documents/{d.id}"} for d in x.documents]}
            for x in shown]
        a["decisions"] = [{
            **msgspec.to_builtins(d), "by_name": people.get(d.decided_by, ""),
            "reason_label": reasons[d.reason_code].label if d.reason_code in reasons
            else None} for d in decisions.get(a["id"], [])]
    return items


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
        # The list is deleted then written again: two editors at once take turns (on
        # PostgreSQL the second would not see the first's rows to delete).
        async with self.db.transaction(lock=f"absence_reasons:{school_id}") as conn:
            await store.replace_reasons(conn, school_id, checked)
        return checked

    async def give(self, p: Principal, event_id: int, code: str, comment: str,
                   upload: Upload | None = None) -> dict[str, Any]:
        """A guardian's proposal, kept beside the other guardian's (nothing overwritten),
        with an optional supporting document; the CPE decides."""
        now = self.ctx.clock()
        kind = None
        if upload is not None:
            kind = document_type(upload.data)
            if kind is None:
                raise AppError("invalid", "Document refusé : joignez une photo (JPEG, PNG, "
                                          "WebP) ou un PDF.")
            cap = self.ctx.settings.attendance_document_max_kib
            if len(upload.data) > cap * 1024:
                raise AppError("too_large", f"Document trop lourd ({cap} Kio au plus).")
        async with self.db.transaction() as conn:
            event = await self._event(conn, p, event_id, Action.GIVE_ABSENCE_REASON)
            reasons = {r.code: r for r in await store.reasons(conn, event.school_id)}
            reason = reasons.get(code)
            if reason is None:
                raise AppError("invalid", "Motif inconnu de l'établissement.")
            new = give_reason(event, reason, comment, p.id, now)
            await store.upsert_event(conn, new)
            proposal = await justify_store.add_proposal(conn, event.id, p.id, reason.code,
                                                        new.reason_comment, now)
            if upload is not None and kind is not None:
                await justify_store.add_document(conn, proposal, _safe_name(upload.filename),
                                                 kind, upload.data, now)
            # The notices about this absence are read: the parent just acted on them.
            cur = await conn.execute(
                "UPDATE notifications SET read_at = ? WHERE guardian_id = ? AND event_id = ?"
                " AND read_at IS NULL RETURNING id", (now, p.id, event_id))
            read = [r[0] for r in await cur.fetchall()]
            published: list[dict[str, Any]] = []
            conn.on_commit(lambda: self._publish_into(
                published, new, reasons, read_by=(p.id, read), viewer=p))
        return self._first(published)

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
            await justify_store.add_decision(conn, new.id, p.id, now, accept, new.reason_code,
                                             (comment or "").strip())
            who = await names(conn, {new.student_id})
            chosen = reasons.get(new.reason_code or "")
            payload = decision_notice(
                student_id=new.student_id, student_name=who.get(new.student_id, ""),
                date=new.date, start=new.start, end=new.end, kind=new.kind.value,
                accepted=accept, reason_label=chosen.label if chosen else None,
                event_id=new.id, comment=(comment or "").strip())
            guardians = (await guardians_of(conn, [new.student_id]))[new.student_id]
            notes = await feed.write(conn, guardians, new.student_id, new.id, payload, now)
            published: list[dict[str, Any]] = []
            conn.on_commit(lambda: feed.publish(self.db, self.ctx.streams, notes,
                                                self.on_published))
            conn.on_commit(lambda: self._publish_into(published, new, reasons, viewer=p))
        return self._first(published)

    async def document(self, p: Principal, document_id: int) -> dict[str, Any]:
        """A supporting document, for the guardians and the CPE (not the teachers)."""
        found = await justify_store.document(self.db, document_id)
        if found is None:
            raise not_found("Document introuvable.")
        event_id, doc = found
        row = await self.db.fetchone("SELECT student_id FROM absence_events WHERE id = ?",
                                     (event_id,))
        ref = await student_ref(self.db, row["student_id"]) if row else None
        if ref is None or not may(p, Action.VIEW_SUPPORTING_DOCUMENT, ref):
            raise not_found("Document introuvable.")
        return doc

    # --- advance declarations -----------------------------------------------------------

    async def declare(self, p: Principal, student_id: int, date_from: str, date_to: str,
                      part: str, code: str, comment: str) -> dict[str, Any]:
        """« Mon enfant sera absent jeudi »: shown on the teacher's roll; the absence, once
        validated, arrives with this reason proposed."""
        ref = await student_ref(self.db, student_id)
        if ref is None or not may(p, Action.VIEW_ABSENCES, ref):
            raise not_found("Élève introuvable.")
        if not may(p, Action.GIVE_ABSENCE_REASON, ref):
            raise AppError("forbidden", "Seuls les responsables de l'élève signalent une "
                                        "absence.")
        try:
            start, end = dt.date.fromisoformat(date_from), dt.date.fromisoformat(date_to)
        except ValueError as exc:
            raise AppError("invalid", "Date invalide : attendu AAAA-MM-JJ.") from exc
        today = self.ctx.today()
        if end < start:
            raise AppError("invalid", "La date de fin précède la date de début.")
        if start < today:
            raise AppError("invalid", "Une absence se signale à l'avance (aujourd'hui ou "
                                      "plus tard) ; pour une absence passée, donnez un motif.")
        if (end - start).days >= DECLARATION_MAX_DAYS or (
                start - today).days > DECLARATION_AHEAD_DAYS:
            raise AppError("invalid", f"Période trop longue ({DECLARATION_MAX_DAYS} jours au "
                                      "plus, dans les quatre mois).")
        reasons = {r.code: r for r in await store.reasons(self.db, ref.school_id)}
        if code not in reasons or not reasons[code].active:
            raise AppError("invalid", "Motif inconnu de l'établissement.")
        comment = comment.strip()
        if len(comment) > 300:
            raise AppError("invalid", "Commentaire trop long (300 caractères au plus).")
        d = justify_store.Declaration(
            id=0, school_id=ref.school_id, student_id=student_id, guardian_id=p.id,
            date_from=start.isoformat(), date_to=end.isoformat(), part=part,
            reason_code=code, comment=comment, created_at=self.ctx.clock())
        async with self.db.transaction() as conn:
            d = await justify_store.add_declaration(conn, d)
        out = self._declaration_json(d, reasons)
        await self.ctx.emit("declaration", out, school_room(ref.school_id))
        return out

    async def declarations(self, p: Principal, student_id: int) -> list[dict[str, Any]]:
        ref = await student_ref(self.db, student_id)
        if ref is None or not may(p, Action.VIEW_ABSENCES, ref):
            raise not_found("Élève introuvable.")
        reasons = {r.code: r for r in await store.reasons(self.db, ref.school_id)}
        items = await justify_store.declarations_of_student(
            self.db, student_id, (self.ctx.today() - dt.timedelta(days=7)).isoformat())
        shown = p.role in (Role.PARENT, Role.CPE, Role.STAFF) or p.id == student_id
        return [self._declaration_json(d, reasons, with_reason=shown) for d in items]

    async def cancel_declaration(self, p: Principal, declaration_id: int) -> dict[str, Any]:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT student_id FROM absence_declarations WHERE id = ?", (declaration_id,))
            row = await cur.fetchone()
            if row is None or p.role is not Role.PARENT or row[0] not in p.child_ids:
                raise not_found("Signalement introuvable.")
            d = await justify_store.cancel_declaration(conn, declaration_id, self.ctx.clock())
            assert d is not None
        reasons = {r.code: r for r in await store.reasons(self.db, d.school_id)}
        return self._declaration_json(d, reasons)

    @staticmethod
    def _declaration_json(d: justify_store.Declaration, reasons: dict[str, Reason],
                          with_reason: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(d)
        out["reason_label"] = (reasons[d.reason_code].label if d.reason_code in reasons
                               else d.reason_code)
        if not with_reason:  # a teacher learns an absence is expected, not why
            for key in ("reason_code", "comment", "reason_label"):
                out.pop(key)
        return out

    async def _event(self, conn: Any, p: Principal, event_id: int, action: Action
                     ) -> AbsenceEvent:
        event = await store.load_event(conn, event_id, lock=True)  # written from what it reads
        ref = await student_ref(conn, event.student_id) if event else None
        if event is None or ref is None or not may(p, Action.VIEW_ABSENCES, ref):
            raise not_found(EVENT_NOT_FOUND)
        if not may(p, action, ref):
            raise AppError("forbidden", "Vous ne pouvez pas faire cela pour cette absence.")
        return event

    async def _publish_into(self, out: list[dict[str, Any]], e: AbsenceEvent,
                            reasons: dict[str, Reason], **kw: Any) -> None:
        """After the commit (`on_commit`): tell the screens, keep the answer for the caller."""
        out.append(await self._published(e, reasons, **kw))

    @staticmethod
    def _first(published: list[dict[str, Any]]) -> dict[str, Any]:
        if not published:  # committed, but telling the screens failed (logged)
            raise AppError("unavailable")
        return published[0]

    async def _published(self, e: AbsenceEvent, reasons: dict[str, Reason],
                         read_by: tuple[int, list[int]] | None = None,
                         viewer: Principal | None = None) -> dict[str, Any]:
        who = await names(self.db, {e.student_id})
        ref = await student_ref(self.db, e.student_id)
        class_name = (await directory.class_names(self.db, [ref.class_id])).get(
            ref.class_id, "") if ref else ""
        data = event_json(e, reasons, who.get(e.student_id, ""), class_name)
        # The school team's room hears every proposal, with its documents' links.
        full = (await with_proposals(self.db, [dict(data)], reasons))[0]
        await self.ctx.emit("absence_update", full, school_room(e.school_id))
        data = (await with_proposals(self.db, [data], reasons, viewer.id))[0] if (
            viewer is not None and viewer.role is Role.PARENT) else full
        if read_by and read_by[1]:
            await self.ctx.emit("notices_read", {"ids": read_by[1]}, guardian_room(read_by[0]))
        return data

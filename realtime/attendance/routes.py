"""`/api/attendance/…` and `/api/push/…`: history, records, exports, reasons, notices,
Web Push subscriptions; and the feature's setup."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from aiohttp import BodyPartReader, web

from realtime import keys
from realtime.api import current_principal, json_response, path_int, query_int, read_json
from realtime.attendance import feed, webpush
from realtime.attendance.absences import REASONS_MAX, Reason
from realtime.attendance.context import guardian_room
from realtime.attendance.hub import Attendance
from realtime.attendance.justify import Upload
from realtime.attendance.socket import StudyHallBody
from realtime.errors import AppError
from realtime.identity.model import Principal, Role
from realtime.ratelimit import RateLimiter
from realtime.validation import Payload

Code = Annotated[str, msgspec.Meta(max_length=40)]
Comment = Annotated[str, msgspec.Meta(max_length=400)]


class GiveReasonBody(Payload):
    reason_code: Code
    comment: Comment = ""


class DeclarationBody(Payload):
    date_from: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    reason_code: Code
    date_to: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    part: Literal["day", "morning", "afternoon"] = "day"
    comment: Comment = ""


class DecisionBody(Payload):
    accept: bool
    reason_code: Code | None = None
    comment: Comment | None = None


class ReasonItem(Payload):
    code: Code
    label: Annotated[str, msgspec.Meta(max_length=120)]
    justifying: bool
    active: bool = True


class ReasonsBody(Payload):
    reasons: Annotated[list[ReasonItem], msgspec.Meta(max_length=REASONS_MAX + 10)]


class ReadBody(Payload):
    ids: Annotated[list[Annotated[int, msgspec.Meta(ge=1)]], msgspec.Meta(max_length=500)
                   ] | None = None


class PushKeys(Payload):
    p256dh: Annotated[str, msgspec.Meta(max_length=200)]
    auth: Annotated[str, msgspec.Meta(max_length=100)]


class PushSubscriptionBody(Payload):
    endpoint: Annotated[str, msgspec.Meta(max_length=1000)]
    keys: PushKeys
    expirationTime: float | None = None  # the browser's own field name


class PushEndpointBody(Payload):
    endpoint: Annotated[str, msgspec.Meta(max_length=1000)]


WRITES_PER_MINUTE = 60
WRITE_LIMITER: web.AppKey[RateLimiter] = web.AppKey("attendance_write_limiter")


def _hub(request: web.Request) -> Attendance:
    return request.app[keys.ATTENDANCE]


async def _writer(request: web.Request) -> Principal:
    """The caller of a write, within their budget of writes per minute (all processes)."""
    p = await current_principal(request)
    limiter = request.app[WRITE_LIMITER]
    key = f"attendance-write:{p.id}"
    if await limiter.hit(key) > limiter.limit:
        raise AppError("rate_limited", "Trop de demandes à la fois : réessayez dans une minute.",
                       retry_after=await limiter.retry_after(key))
    return p


def _period(request: web.Request) -> tuple[str | None, str | None]:
    return request.query.get("from"), request.query.get("to")


def _school(request: web.Request, p: Principal) -> int:
    school_id = query_int(request, "school_id")
    if school_id is None:
        school_id = p.school_id
    if school_id is None:
        raise AppError("invalid", "Précisez l'établissement (school_id).")
    return school_id


async def class_rolls(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(await _hub(request).records.class_rolls(
        p, path_int(request, "class_id"), *_period(request)))


async def class_half_days(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(await _hub(request).records.class_half_days(
        p, path_int(request, "class_id"), *_period(request)))


async def student_record(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(await _hub(request).records.student_record(
        p, path_int(request, "student_id"), *_period(request)))


async def my_record(request: web.Request) -> web.Response:
    """The student's own record; a guardian gets each child's."""
    p = await current_principal(request)
    records = _hub(request).records
    if p.role is Role.STUDENT:
        return json_response(await records.student_record(p, p.id, *_period(request)))
    if p.role is Role.PARENT:
        return json_response({"children": [
            await records.student_record(p, child, *_period(request))
            for child in sorted(p.child_ids)]})
    raise AppError("not_found", "Pas de dossier d'absences pour ce compte.")


async def my_rolls(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(await _hub(request).dashboard.teacher_day(p, request.query.get("date")))


async def roll(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(await _hub(request).rolls.view(p, path_int(request, "roll_id")))


async def school_absences(request: web.Request) -> web.Response:
    p = await current_principal(request)
    pending = request.query.get("pending", "1") not in ("0", "false")
    return json_response(await _hub(request).records.school_absences(
        p, _school(request, p), pending, *_period(request)))


async def export_csv(request: web.Request) -> web.Response:
    p = await current_principal(request)
    start, end = _period(request)
    text = await _hub(request).records.export_csv(p, _school(request, p), start, end)
    return _csv(text, "absences.csv")


async def create_study_hall(request: web.Request) -> web.Response:
    p = await _writer(request)
    body = await read_json(request, StudyHallBody)
    return json_response(await _hub(request).rolls.create_study_hall(
        p, school_id=body.school_id, room=body.room, start=body.start, end=body.end,
        date=body.date, supervisor_id=body.supervisor_id, students=body.students),
        status=201)


CLOSURES_MAX_BYTES = 512 * 1024


async def _read_capped(request: web.Request, cap: int) -> bytes:
    """The raw body, streamed, refused past `cap` (the app's JSON cap is far smaller)."""
    if request.content_length is not None and request.content_length > cap:
        raise AppError("too_large", f"Fichier trop lourd ({cap // 1024} Kio au plus).")
    data = bytearray()
    while chunk := await request.content.read(64 * 1024):
        data += chunk
        if len(data) > cap:
            raise AppError("too_large", f"Fichier trop lourd ({cap // 1024} Kio au plus).")
    return bytes(data)


async def _proposal_form(request: web.Request, cap: int
                         ) -> tuple[GiveReasonBody, Upload | None]:
    """multipart/form-data: `reason_code`, `comment`, and an optional `document` (bounded
    while it streams in, so a huge upload costs its sender, not the server)."""
    if request.content_length is not None and request.content_length > cap + 16 * 1024:
        raise AppError("too_large", f"Document trop lourd ({cap} Kio au plus).")
    fields: dict[str, str] = {}
    upload: Upload | None = None
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise AppError("invalid", "Formulaire invalide.")
        if part.name == "document" and part.filename:
            data = bytearray()
            while chunk := await part.read_chunk(64 * 1024):
                data += chunk
                if len(data) > cap * 1024:
                    raise AppError("too_large", f"Document trop lourd ({cap} Kio au plus).")
            if data:
                upload = Upload(part.filename, bytes(data))
        elif part.name in ("reason_code", "comment"):
            text = (await part.read(decode=True)).decode("utf-8", errors="replace")
            fields[part.name] = text[:500]
        else:
            raise AppError("invalid", f"Champ inconnu : {part.name}.")
    body = msgspec.convert({k: v for k, v in fields.items() if v or k == "reason_code"},
                           GiveReasonBody) if "reason_code" in fields else None
    if body is None:
        raise AppError("invalid", "Choisissez un motif.")
    return body, upload


async def give_reason(request: web.Request) -> web.Response:
    """A guardian's proposal: JSON, or multipart with a supporting document."""
    p = await _writer(request)
    upload = None
    if request.content_type == "multipart/form-data":
        cap = request.app[keys.SETTINGS].attendance_document_max_kib
        try:
            body, upload = await _proposal_form(request, cap)
        except msgspec.ValidationError as exc:
            raise AppError("invalid", f"Formulaire invalide : {exc}") from exc
    else:
        body = await read_json(request, GiveReasonBody)
    return json_response(await _hub(request).justify.give(
        p, path_int(request, "event_id"), body.reason_code, body.comment, upload))


async def supporting_document(request: web.Request) -> web.Response:
    """A certificate's photo or PDF: never rendered as a page of this site (sandboxed,
    no sniffing), never cached."""
    p = await current_principal(request)
    doc = await _hub(request).justify.document(p, path_int(request, "document_id"))
    inline = doc["content_type"].startswith("image/") or doc["content_type"] == \
        "application/pdf"
    return web.Response(body=doc["data"], headers={
        "Content-Type": doc["content_type"],
        "Content-Disposition": f'{"inline" if inline else "attachment"}; '
                               f'filename="{doc["filename"]}"',
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
        "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'"})


async def roll_history(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(await _hub(request).rolls.history(p, path_int(request, "roll_id")))


async def declare(request: web.Request) -> web.Response:
    p = await _writer(request)
    body = await read_json(request, DeclarationBody)
    return json_response(await _hub(request).justify.declare(
        p, path_int(request, "student_id"), body.date_from, body.date_to or body.date_from,
        body.part, body.reason_code, body.comment), status=201)


async def declarations(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response({"declarations": await _hub(request).justify.declarations(
        p, path_int(request, "student_id"))})


async def cancel_declaration(request: web.Request) -> web.Response:
    p = await _writer(request)
    return json_response(await _hub(request).justify.cancel_declaration(
        p, path_int(request, "declaration_id")))


async def counts(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(await _hub(request).records.counts(
        p, _school(request, p), query_int(request, "class_id"), *_period(request)))


async def counts_csv(request: web.Request) -> web.Response:
    p = await current_principal(request)
    text = await _hub(request).records.counts_csv(
        p, _school(request, p), query_int(request, "class_id"), *_period(request))
    return _csv(text, "bilan-absences.csv")


def _csv(text: str, name: str) -> web.Response:
    return web.Response(body=("\ufeff" + text).encode("utf-8"), headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


async def alerts(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(await _hub(request).records.alerts(
        p, _school(request, p), request.query.get("month")))


async def school_calendar(request: web.Request) -> web.Response:
    p = await current_principal(request)
    hub = _hub(request)
    return json_response(await hub.ctx.calendar.view(p, path_int(request, "school_id"),
                                                     hub.ctx.today()))


async def import_closures(request: web.Request) -> web.Response:
    """The collège's closures from a CSV (`debut;fin;libelle`) or iCalendar file sent as
    the body; `?replace=1` makes the list exactly the file's."""
    p = await _writer(request)
    data = await _read_capped(request, CLOSURES_MAX_BYTES)
    hub = _hub(request)
    out = await hub.ctx.calendar.import_closures(
        p, path_int(request, "school_id"), data, request.query.get("filename", ""),
        replace=request.query.get("replace") in ("1", "true"))
    return json_response(out, status=201)


async def delete_closure(request: web.Request) -> web.Response:
    p = await _writer(request)
    await _hub(request).ctx.calendar.delete_closure(
        p, path_int(request, "school_id"), path_int(request, "closure_id"))
    return json_response({"deleted": True})


async def decision(request: web.Request) -> web.Response:
    p = await _writer(request)
    body = await read_json(request, DecisionBody)
    return json_response(await _hub(request).justify.decide(
        p, path_int(request, "event_id"), body.accept, body.reason_code, body.comment))


def _reasons_json(items: list[Reason]) -> dict[str, object]:
    return {"reasons": [msgspec.to_builtins(r) for r in items]}


async def get_reasons(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(_reasons_json(await _hub(request).justify.reasons(
        p, path_int(request, "school_id"))))


async def put_reasons(request: web.Request) -> web.Response:
    p = await _writer(request)
    body = await read_json(request, ReasonsBody)
    items = [Reason(r.code, r.label.strip(), r.justifying, False, r.active)
             for r in body.reasons]
    return json_response(_reasons_json(await _hub(request).justify.set_reasons(
        p, path_int(request, "school_id"), items)))


async def notices(request: web.Request) -> web.Response:
    p = await current_principal(request)
    if p.role is not Role.PARENT:
        raise AppError("not_found", "Aucun fil de notifications pour ce compte.")
    hub = _hub(request)
    answer, _ = await feed.catch_up(hub.ctx.db, hub.ctx.streams, p.id, None)
    return json_response(answer)


async def read_notices(request: web.Request) -> web.Response:
    p = await _writer(request)
    body = await read_json(request, ReadBody)
    hub = _hub(request)
    changed = await feed.mark_read(hub.ctx.db, p.id, body.ids, hub.ctx.clock())
    if changed:
        await hub.ctx.emit("notices_read", {"ids": changed}, guardian_room(p.id))
    return json_response({"read": changed, "unread": await feed.unread_count(hub.ctx.db, p.id)})


async def push_key(request: web.Request) -> web.Response:
    await current_principal(request)
    push = _hub(request).push
    if push is None:
        raise AppError("unavailable", "Les notifications du navigateur sont désactivées.")
    return json_response({"public_key": push.public_key})


async def push_subscribe(request: web.Request) -> web.Response:
    p = await _writer(request)
    body = await read_json(request, PushSubscriptionBody)
    settings = request.app[keys.SETTINGS]
    webpush.check_endpoint(settings, body.endpoint)
    webpush.check_key(body.keys.p256dh, 65, "p256dh")
    webpush.check_key(body.keys.auth, 16, "auth")
    hub = _hub(request)
    await webpush.subscribe(hub.ctx.db, p.id, body.endpoint, body.keys.p256dh, body.keys.auth,
                            hub.ctx.clock())
    return json_response({"subscribed": True}, status=201)


async def push_unsubscribe(request: web.Request) -> web.Response:
    p = await _writer(request)
    body = await read_json(request, PushEndpointBody)
    removed = await webpush.unsubscribe(_hub(request).ctx.db, p.id, body.endpoint)
    return json_response({"removed": removed})


async def service_worker(request: web.Request) -> web.StreamResponse:
    """The Web Push service worker, served from the root so that its scope is the site."""
    path = request.app[keys.SETTINGS].static_dir / "sw.js"
    if not path.is_file():
        raise AppError("not_found")
    return web.FileResponse(path, headers={
        "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-cache",
        "Service-Worker-Allowed": "/"})


def add_routes(app: web.Application) -> None:
    """The /api/attendance… routes (and the Web Push service worker); the feature is wired in
    `realtime/attendance/__init__.py`."""
    r = app.router
    r.add_get("/api/attendance/my-rolls", my_rolls)
    r.add_get("/api/attendance/rolls/{roll_id}", roll)
    r.add_get("/api/attendance/rolls/{roll_id}/history", roll_history)
    r.add_get("/api/attendance/documents/{document_id}", supporting_document)
    r.add_get("/api/attendance/students/{student_id}/declarations", declarations)
    r.add_post("/api/attendance/students/{student_id}/declarations", declare)
    r.add_delete("/api/attendance/declarations/{declaration_id}", cancel_declaration)
    r.add_get("/api/attendance/counts", counts)
    r.add_get("/api/attendance/counts.csv", counts_csv)
    r.add_get("/api/attendance/alerts", alerts)
    r.add_get("/api/attendance/schools/{school_id}/calendar", school_calendar)
    r.add_post("/api/attendance/schools/{school_id}/closures", import_closures)
    r.add_delete("/api/attendance/schools/{school_id}/closures/{closure_id}", delete_closure)
    r.add_get("/api/attendance/classes/{class_id}/rolls", class_rolls)
    r.add_get("/api/attendance/classes/{class_id}/half-days", class_half_days)
    r.add_get("/api/attendance/students/{student_id}", student_record)
    r.add_get("/api/attendance/me", my_record)
    r.add_get("/api/attendance/absences", school_absences)
    r.add_get("/api/attendance/export.csv", export_csv)
    r.add_post("/api/attendance/study-halls", create_study_hall)
    r.add_post("/api/attendance/absences/{event_id}/reason", give_reason)
    r.add_post("/api/attendance/absences/{event_id}/decision", decision)
    r.add_get("/api/attendance/schools/{school_id}/reasons", get_reasons)
    r.add_put("/api/attendance/schools/{school_id}/reasons", put_reasons)
    r.add_get("/api/attendance/notices", notices)
    r.add_post("/api/attendance/notices/read", read_notices)
    r.add_get("/sw.js", service_worker)
    r.add_get("/api/push/key", push_key)
    r.add_post("/api/push/subscriptions", push_subscribe)
    r.add_delete("/api/push/subscriptions", push_unsubscribe)

"""`/api/chat…`: lists, history, recipients, files, search, reports, school settings.

Handlers decode, find the caller and call the service; the feature is wired in
`realtime/chat/__init__.py: setup`."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import msgspec
from aiohttp import web

from realtime import keys
from realtime.api import (
    current_principal,
    json_response,
    path_int,
    query_int,
    read_capped,
    read_json,
)
from realtime.chat.service import ChatService
from realtime.errors import AppError, not_found
from realtime.policy import ChatRules
from realtime.ratelimit import RateLimiter
from realtime.validation import Payload

Minute = Annotated[int, msgspec.Meta(ge=0, le=24 * 60)]
Note = Annotated[str, msgspec.Meta(max_length=500)]


class RulesBody(Payload):
    parents_to_teachers: bool
    parents_to_cpe: bool
    parents_to_staff: bool
    students_to_teachers: bool
    students_to_cpe: bool
    quiet_hours: bool
    day_start_min: Minute
    day_end_min: Minute


class HandleBody(Payload):
    """`POST /api/chat/reports/{report_id}/handle`: handled=false reopens."""
    note: Note | None = None
    handled: bool = True


def _service(request: web.Request) -> ChatService:
    return request.app[keys.CHAT]


async def conversations(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(await _service(request).welcome(p))


async def conversation(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(await _service(request).detail(p, path_int(request, "conv_id")))


async def messages(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(await _service(request).history(
        p, path_int(request, "conv_id"), query_int(request, "before"),
        query_int(request, "limit")))


async def recipients(request: web.Request) -> web.Response:
    p = await current_principal(request)
    service = _service(request)
    return json_response({"recipients": await service.recipients(p),
                          "quiet": await service.outreach.quiet_now(p),
                          "lists": await service.outreach.class_lists(p)})


async def receipts(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(await _service(request).outreach.receipts(
        p, path_int(request, "msg_id")))


async def my_reports(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response({"reports": await _service(request).outreach.my_reports(p)})


async def search(request: web.Request) -> web.Response:
    p = await current_principal(request)
    q = request.query.get("q", "")
    if len(q) > 200:
        raise AppError("invalid", "Recherche trop longue (200 caractères au plus).")
    return json_response({"messages": await _service(request).search(p, q)})


async def reports(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response({"reports": await _service(request).reports(p)})


async def _limit(limiter: RateLimiter, key: str, message: str) -> None:
    if await limiter.hit(key) > limiter.limit:
        raise AppError("rate_limited", message, retry_after=await limiter.retry_after(key))


async def handle_report(request: web.Request) -> web.Response:
    p = await current_principal(request)
    await _limit(request.app[HANDLE_LIMITER], f"h:{p.id}",
                 "Trop de signalements traités d'affilée : patientez un peu.")
    body = await read_json(request, HandleBody)
    report = await _service(request).handle_report(p, path_int(request, "report_id"),
                                                   body.note, body.handled)
    return json_response({"ok": True, "report": report})


async def upload(request: web.Request) -> web.Response:
    """The file is the raw body; its name is `?name=`. Type is read from its bytes."""
    p = await current_principal(request)
    await _limit(request.app[UPLOAD_LIMITER], f"u:{p.id}",
                 "Trop de fichiers envoyés : patientez un peu.")
    attachments = _service(request).attachments
    cap = attachments.limits.attachment_max_bytes
    data = await read_capped(request, cap,
                             f"Fichier trop lourd ({cap // (1024 * 1024)} Mio au plus).")
    att = await attachments.upload(p, request.query.get("name", "fichier"), data)
    return json_response(att.public(), status=201)


async def download(request: web.Request) -> web.StreamResponse:
    p = await current_principal(request)
    attachments = _service(request).attachments
    att = await attachments.attachment(p, path_int(request, "att_id"))
    opened = await attachments.files.open(att.storage_key)
    if opened is None:
        raise not_found("Pièce jointe introuvable.")
    inline = att.mime.startswith("image/") or att.mime == "application/pdf"
    disposition = "inline" if inline else "attachment"
    headers = {
        "Content-Type": att.mime,
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(att.name)}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if opened.path is not None:  # a file on this machine (SQLite): sendfile
        return web.FileResponse(opened.path, headers=headers)
    # In the database (PostgreSQL): one chunk in memory at a time, its size known up front.
    response = web.StreamResponse(headers=headers)
    response.content_length = opened.size
    await response.prepare(request)
    async for chunk in opened.chunks():
        await response.write(chunk)
    await response.write_eof()
    return response


async def get_settings(request: web.Request) -> web.Response:
    p = await current_principal(request)
    rules = await _service(request).rules(p, path_int(request, "school_id"))
    return json_response(msgspec.to_builtins(rules))


async def put_settings(request: web.Request) -> web.Response:
    p = await current_principal(request)
    body = await read_json(request, RulesBody)
    rules = await _service(request).set_rules(p, path_int(request, "school_id"),
                                              ChatRules(**msgspec.to_builtins(body)))
    return json_response(msgspec.to_builtins(rules))


UPLOAD_LIMITER: web.AppKey[RateLimiter] = web.AppKey("chat_upload_limiter")
HANDLE_LIMITER: web.AppKey[RateLimiter] = web.AppKey("chat_handle_limiter")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/chat/conversations", conversations)
    app.router.add_get("/api/chat/conversations/{conv_id}", conversation)
    app.router.add_get("/api/chat/conversations/{conv_id}/messages", messages)
    app.router.add_get("/api/chat/recipients", recipients)
    app.router.add_get("/api/chat/search", search)
    app.router.add_get("/api/chat/reports", reports)
    app.router.add_get("/api/chat/reports/mine", my_reports)
    app.router.add_get("/api/chat/messages/{msg_id}/receipts", receipts)
    app.router.add_post("/api/chat/reports/{report_id}/handle", handle_report)
    app.router.add_post("/api/chat/attachments", upload)
    app.router.add_get("/api/chat/attachments/{att_id}", download)
    app.router.add_get("/api/chat/settings/{school_id}", get_settings)
    app.router.add_put("/api/chat/settings/{school_id}", put_settings)

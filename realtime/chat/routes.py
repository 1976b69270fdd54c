"""`/api/chat…`: lists, history, recipients, files, search, reports, school settings; setup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

import msgspec
import socketio
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
from realtime.chat import store
from realtime.chat.files import FileStore
from realtime.chat.model import Limits
from realtime.chat.service import ChatService
from realtime.chat.socket import ChatNamespace
from realtime.directory import reads as directory
from realtime.errors import AppError, not_found
from realtime.policy import Action, ChatRules, SchoolRef, may
from realtime.presence.model import Kind
from realtime.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from realtime.validation import Payload

log = logging.getLogger(__name__)

UPLOADS_PER_WINDOW = 30
UPLOAD_WINDOW_S = 600
HANDLES_PER_WINDOW = 120  # a CPE clearing a backlog of reports, not a script
PURGE_EVERY_S = 3600.0
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
                          "quiet": await service.quiet_now(p),
                          "lists": await service.class_lists(p)})


async def receipts(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(await _service(request).receipts(p, path_int(request, "msg_id")))


async def my_reports(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response({"reports": await _service(request).my_reports(p)})


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
    service = _service(request)
    cap = service.limits.attachment_max_bytes
    data = await read_capped(request, cap,
                             f"Fichier trop lourd ({cap // (1024 * 1024)} Mio au plus).")
    att = await service.upload(p, request.query.get("name", "fichier"), data)
    return json_response(att.public(), status=201)


async def download(request: web.Request) -> web.Response:
    p = await current_principal(request)
    service = _service(request)
    att = await service.attachment(p, path_int(request, "att_id"))
    path = service.files.path(att.storage_key)
    if not path.exists():
        raise not_found("Pièce jointe introuvable.")
    inline = att.mime.startswith("image/") or att.mime == "application/pdf"
    disposition = "inline" if inline else "attachment"
    return web.FileResponse(path, headers={
        "Content-Type": att.mime,
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(att.name)}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })


async def _school_for_settings(request: web.Request) -> int:
    p = await current_principal(request)
    school_id = path_int(request, "school_id")
    if not may(p, Action.CHAT_CONFIGURE, SchoolRef(id=school_id)):
        raise not_found("Établissement introuvable.")
    if not await directory.school_exists(request.app[keys.DB], school_id):
        raise not_found("Établissement introuvable.")
    return school_id


async def get_settings(request: web.Request) -> web.Response:
    school_id = await _school_for_settings(request)
    rules = await store.rules_of(request.app[keys.DB], school_id)
    return json_response(msgspec.to_builtins(rules))


async def put_settings(request: web.Request) -> web.Response:
    school_id = await _school_for_settings(request)
    body = await read_json(request, RulesBody)
    if body.day_start_min >= body.day_end_min:
        raise AppError("invalid", "La journée doit commencer avant de finir.")
    rules = ChatRules(**msgspec.to_builtins(body))
    await store.set_rules(request.app[keys.DB], school_id, rules)
    return json_response(msgspec.to_builtins(rules))


UPLOAD_LIMITER: web.AppKey[RateLimiter] = web.AppKey("chat_upload_limiter")
HANDLE_LIMITER: web.AppKey[RateLimiter] = web.AppKey("chat_handle_limiter")


async def _purge_loop(service: ChatService) -> None:
    while True:
        await asyncio.sleep(PURGE_EVERY_S)
        try:
            await service.purge_pending()
        except Exception:
            log.exception("chat attachment purge failed")


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    s = app[keys.SETTINGS]
    files = FileStore(s.db_path.parent / "chat-files")
    service = ChatService(app[keys.DB], app[keys.SIO], files, Limits(), s.tz)
    app[keys.CHAT] = service
    app[keys.PRESENCE].register(Kind.CONVERSATION, service.viewable)  # who has it open
    redis = app[keys.REDIS]
    app[UPLOAD_LIMITER] = (
        RedisRateLimiter(redis, f"{s.redis_prefix}:chat-upload", UPLOADS_PER_WINDOW,
                         UPLOAD_WINDOW_S)
        if redis is not None else MemoryRateLimiter(UPLOADS_PER_WINDOW, UPLOAD_WINDOW_S))
    app[HANDLE_LIMITER] = (
        RedisRateLimiter(redis, f"{s.redis_prefix}:chat-handle", HANDLES_PER_WINDOW,
                         UPLOAD_WINDOW_S)
        if redis is not None else MemoryRateLimiter(HANDLES_PER_WINDOW, UPLOAD_WINDOW_S))
    task = asyncio.create_task(_purge_loop(service), name="chat-purge")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    app.cleanup_ctx.append(_lifecycle)
    sio.register_namespace(ChatNamespace(app))
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

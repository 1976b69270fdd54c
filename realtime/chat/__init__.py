"""The messagerie: conversations, information to families, live-session chat, reports.

`setup(app, sio)` is where the feature is wired: the service (which composes its rooms,
attachments and outreach) opened and closed with the app, the `/chat` namespace and the
`/api/chat…` routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import socketio
from aiohttp import web

from realtime import keys
from realtime.chat import routes
from realtime.chat.files import chat_files
from realtime.chat.model import Limits
from realtime.chat.service import ChatService
from realtime.chat.socket import ChatNamespace
from realtime.presence.model import Kind
from realtime.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter

log = logging.getLogger(__name__)

UPLOADS_PER_WINDOW = 30
UPLOAD_WINDOW_S = 600
HANDLES_PER_WINDOW = 120  # a CPE clearing a backlog of reports, not a script
PURGE_EVERY_S = 3600.0


async def _purge_loop(service: ChatService) -> None:
    while True:
        await asyncio.sleep(PURGE_EVERY_S)
        try:
            await service.attachments.purge_pending()
        except Exception:
            log.exception("chat attachment purge failed")


def _limiter(app: web.Application, name: str, limit: int) -> RateLimiter:
    s, redis = app[keys.SETTINGS], app[keys.REDIS]
    if redis is not None:
        return RedisRateLimiter(redis, f"{s.redis_prefix}:{name}", limit, UPLOAD_WINDOW_S)
    return MemoryRateLimiter(limit, UPLOAD_WINDOW_S)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    s = app[keys.SETTINGS]
    files = chat_files(s, app[keys.DB])  # on disk (SQLite) or in the database (PostgreSQL)
    presence = app[keys.PRESENCE]
    service = ChatService(app[keys.DB], app[keys.SIO], files, Limits(), s.tz,
                          presence=presence)
    app[keys.CHAT] = service
    presence.register(Kind.CONVERSATION, service.viewable)  # who has it open
    app[routes.UPLOAD_LIMITER] = _limiter(app, "chat-upload", UPLOADS_PER_WINDOW)
    app[routes.HANDLE_LIMITER] = _limiter(app, "chat-handle", HANDLES_PER_WINDOW)
    task = asyncio.create_task(_purge_loop(service), name="chat-purge")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    app.cleanup_ctx.append(_lifecycle)
    sio.register_namespace(ChatNamespace(app))
    routes.add_routes(app)

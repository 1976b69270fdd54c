"""Every typed application key, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:  # pragma: no cover
    import redis.asyncio as aioredis
    import socketio

    from realtime.attendance.hub import Attendance
    from realtime.boards.exporter import Exporter
    from realtime.boards.imports import PageImporter
    from realtime.boards.routes import ThumbnailCache
    from realtime.boards.service import BoardService
    from realtime.chat.service import ChatService
    from realtime.coursedocs.service import DocService
    from realtime.db import Database
    from realtime.identity.service import IdentityService
    from realtime.identity.sessions import SessionBus
    from realtime.identity.sso import SsoState
    from realtime.metrics import Metrics
    from realtime.placement import Handovers
    from realtime.presence.service import PresenceService
    from realtime.ratelimit import RateLimiter
    from realtime.settings import Settings
    from realtime.streams.base import StreamStore

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DB: web.AppKey[Database] = web.AppKey("db")
REDIS: web.AppKey[aioredis.Redis | None] = web.AppKey("redis")
SIO: web.AppKey[socketio.AsyncServer] = web.AppKey("sio")
STREAMS: web.AppKey[StreamStore] = web.AppKey("streams")
IDENTITY: web.AppKey[IdentityService] = web.AppKey("identity")
SESSIONS: web.AppKey[SessionBus] = web.AppKey("sessions")
LOGIN_LIMITER: web.AppKey[RateLimiter] = web.AppKey("login_limiter")
BOARDS: web.AppKey[BoardService] = web.AppKey("boards")
EXPORTS: web.AppKey[Exporter] = web.AppKey("exports")
BOARD_IMPORTS: web.AppKey[PageImporter] = web.AppKey("board_imports")
BOARD_THUMBNAILS: web.AppKey[ThumbnailCache] = web.AppKey("board_thumbnails")
PRESENCE: web.AppKey[PresenceService] = web.AppKey("presence")
ATTENDANCE: web.AppKey[Attendance] = web.AppKey("attendance")
CHAT: web.AppKey[ChatService] = web.AppKey("chat")
DOCS: web.AppKey[DocService] = web.AppKey("docs")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
PLACEMENT: web.AppKey[Handovers] = web.AppKey("placement")  # serve --workers N only
SSO: web.AppKey[SsoState] = web.AppKey("sso")  # only when CAS or OIDC is configured

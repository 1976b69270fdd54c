"""Presence's setup: the store (Redis or memory), the service, `/presence`, and REST reads.

`GET /api/presence/{scope}`: a roster (same rules as subscribing).
`GET /api/presence/classes?school_id=`: users online per class of a school (the CPE's view).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import socketio
from aiohttp import web

from realtime import keys
from realtime.api import current_principal, json_response, query_int
from realtime.errors import AppError
from realtime.presence.model import UNKNOWN_SCOPE, Scope, sorted_users
from realtime.presence.redis_store import RedisPresenceStore
from realtime.presence.service import PresenceService
from realtime.presence.socket import PresenceNamespace
from realtime.presence.store import MemoryPresenceStore, PresenceStore


async def get_roster(request: web.Request) -> web.Response:
    p = await current_principal(request)
    scope = Scope.parse(request.match_info["scope"])
    if scope is None:
        raise AppError("invalid", UNKNOWN_SCOPE)
    service = request.app[keys.PRESENCE]
    await service.require_visible(p, scope)
    roster = await service.roster_for(p, scope)
    return json_response({"scope": roster.scope, "epoch": roster.epoch,
                          "version": roster.version,
                          "users": msgspec.to_builtins(sorted_users(roster.users))})


async def class_counts(request: web.Request) -> web.Response:
    p = await current_principal(request)
    school_id = query_int(request, "school_id") or p.school_id
    if school_id is None:
        raise AppError("invalid", "Précisez l'établissement (school_id).")
    counts = await request.app[keys.PRESENCE].class_counts(p, school_id)
    return json_response({"school_id": school_id, "classes": counts})


def open_store(app: web.Application) -> PresenceStore:
    s = app[keys.SETTINGS]
    redis = app[keys.REDIS]
    if redis is not None:
        return RedisPresenceStore(redis, s.redis_prefix, s.presence_timeout_s)
    return MemoryPresenceStore(s.presence_timeout_s)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    s = app[keys.SETTINGS]
    service = PresenceService(open_store(app), app[keys.DB], app[keys.SIO],
                              s.presence_heartbeat_s)
    app[keys.PRESENCE] = service
    service.start()
    yield
    await service.close()


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    app.cleanup_ctx.append(_lifecycle)
    sio.register_namespace(PresenceNamespace(app))
    app.router.add_get("/api/presence/classes", class_counts)
    app.router.add_get("/api/presence/{scope}", get_roster)

"""Presence's setup: the store (Redis or memory), the service, `/presence`, and REST reads.

`GET /api/presence/{scope}`: a roster (same rules as subscribing).
`GET /api/presence/classes?school_id=`: users online per class of a school (the CPE's view).
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from realtime import keys
from realtime.api import current_principal, json_response, query_int
from realtime.errors import AppError
from realtime.presence.model import UNKNOWN_SCOPE, Scope, sorted_users


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


def add_routes(app: web.Application) -> None:
    """The /api/presence… routes; the feature is wired in `realtime/presence/__init__.py`."""
    app.router.add_get("/api/presence/classes", class_counts)
    app.router.add_get("/api/presence/{scope}", get_roster)

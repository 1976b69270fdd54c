"""Presence: who is online per school, class and board, across every process and node.

`setup(app, sio)` is where the feature is wired: the rosters' store (Redis, or memory without
it) and the `PresenceService` opened and closed with the app (before the features that report
into it), the `/presence` namespace and the `/api/presence…` routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import socketio
from aiohttp import web

from realtime import keys
from realtime.presence.store import MemoryPresenceStore, PresenceStore

# The namespace, the service and the routes are imported where they are wired: `realtime.sio`
# itself reads `realtime.presence.model`, and importing the namespace (which builds on
# `realtime.sio`) with this package would make that a cycle.


def open_store(app: web.Application) -> PresenceStore:
    from realtime.presence.redis_store import RedisPresenceStore

    s = app[keys.SETTINGS]
    redis = app[keys.REDIS]
    if redis is not None:
        return RedisPresenceStore(redis, s.redis_prefix, s.presence_timeout_s)
    return MemoryPresenceStore(s.presence_timeout_s)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    from realtime.presence.service import PresenceService

    s = app[keys.SETTINGS]
    service = PresenceService(open_store(app), app[keys.DB], app[keys.SIO],
                              s.presence_heartbeat_s)
    app[keys.PRESENCE] = service
    service.start()
    yield
    await service.close()


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    from realtime.presence import routes
    from realtime.presence.socket import PresenceNamespace

    app.cleanup_ctx.append(_lifecycle)
    sio.register_namespace(PresenceNamespace(app))
    routes.add_routes(app)

"""Live roll call, the vie scolaire dashboard and absence notices to guardians.

`setup(app, sio)` is where the feature is wired: the `Attendance` hub (the service with its
live parts: reminders, dashboard rooms, the guardians' feeds, Web Push) opened and closed
with the app, the write budget, the `/attendance` namespace and the `/api/attendance…` routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import socketio
from aiohttp import web

from realtime import keys
from realtime.attendance import routes, webpush
from realtime.attendance.context import Context
from realtime.attendance.hub import Attendance
from realtime.attendance.socket import AttendanceNamespace
from realtime.ratelimit import MemoryRateLimiter, RedisRateLimiter


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    ctx = Context(settings, app[keys.DB], app[keys.STREAMS], app[keys.SIO])
    vapid = await webpush.load_vapid(settings, app[keys.DB])
    hub = Attendance(ctx, webpush.PushSender(settings, app[keys.DB], vapid))
    app[keys.ATTENDANCE] = hub
    redis = app[keys.REDIS]
    app[routes.WRITE_LIMITER] = (
        RedisRateLimiter(redis, f"{settings.redis_prefix}:attendance", routes.WRITES_PER_MINUTE, 60)
        if redis is not None else MemoryRateLimiter(routes.WRITES_PER_MINUTE, 60))
    hub.start()
    yield
    await hub.close()


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    app.cleanup_ctx.append(_lifecycle)
    sio.register_namespace(AttendanceNamespace(app))
    routes.add_routes(app)

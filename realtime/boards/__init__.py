"""Live classroom boards: the teacher's whiteboard, followed and drawn on by the class.

`setup(app, sio)` is where the feature is wired: the service (deciding) with its live boards
(rooms.py) opened and closed with the app, the page importer and its render process, the
export workers, the `/boards` namespace and the `/api/boards…` routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import socketio
from aiohttp import web

from realtime import keys
from realtime.boards import routes
from realtime.boards.exporter import Exporter
from realtime.boards.imports import PageImporter
from realtime.boards.model import Limits
from realtime.boards.service import BoardService
from realtime.boards.socket import BoardsNamespace
from realtime.lease import Leases
from realtime.presence.model import Kind
from realtime.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    s = app[keys.SETTINGS]
    service = BoardService(app[keys.DB], app[keys.STREAMS], app[keys.SIO], Limits(),
                           batch_ms=s.board_batch_ms,
                           snapshot_every=s.board_snapshot_every,
                           presence=app.get(keys.PRESENCE),
                           leases=Leases(app[keys.REDIS], s.redis_prefix))
    admit_ms = s.board_admit_lag_ms
    service.rooms.fanout.gauge.admit_lag_s = admit_ms / 1000 if admit_ms > 0 else float("inf")
    service.start()
    app[keys.BOARDS] = service
    if keys.PRESENCE in app:  # who is looking at the board: boards say who may see that
        app[keys.PRESENCE].register(Kind.BOARD, service.presence_visible)
    app[keys.BOARD_IMPORTS] = importer = PageImporter(service)
    app[keys.BOARD_THUMBNAILS] = routes.ThumbnailCache()
    yield
    importer.close()
    await service.close()


async def _exports(app: web.Application) -> AsyncIterator[None]:
    s = app[keys.SETTINGS]
    redis = app[keys.REDIS]
    limiter: RateLimiter = (
        RedisRateLimiter(redis, f"{s.redis_prefix}:export", s.exports_per_min, 60)
        if redis is not None else MemoryRateLimiter(s.exports_per_min, 60))
    exporter = Exporter(limiter, workers=s.export_workers)
    app[keys.EXPORTS] = exporter
    yield
    exporter.close()


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    app.cleanup_ctx.append(_lifecycle)
    app.cleanup_ctx.append(_exports)
    sio.register_namespace(BoardsNamespace(app))
    routes.add_routes(app)

"""Course documents co-edited live with Yjs, stored without loss, served to the ENT.

`setup(app, sio)` is where the feature is wired: the service (deciding) with its rooms (the
documents open in this process) opened and closed with the app, the `/yjs/{doc_id}`
websocket and the `/api/docs…` routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import socketio
from aiohttp import web

from realtime import keys
from realtime.coursedocs import routes
from realtime.coursedocs.service import DocService
from realtime.presence.model import Kind


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    service = DocService(app[keys.DB], app[keys.SETTINGS], redis=app[keys.REDIS])
    app[keys.DOCS] = service
    app[keys.PRESENCE].register(Kind.DOC, service.viewable)  # who has it open
    yield
    await service.close()


async def _disconnect(app: web.Application) -> None:
    await app[keys.DOCS].rooms.disconnect_everyone()


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_disconnect)
    routes.add_routes(app)

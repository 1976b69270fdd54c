"""`/yjs/{doc_id}`: the standard Yjs websocket protocol on a plain aiohttp route.

The stock y-websocket provider connects to `<server>/yjs/<id>` (its `serverUrl` is
`ws://host/yjs`, room name the id) with `?token=…` in `params`, or with the session cookie.
"""

from __future__ import annotations

import logging
import secrets

from aiohttp import WSMsgType, web

from realtime import keys
from realtime.api import current_principal, path_int
from realtime.coursedocs.content import BadUpdate
from realtime.coursedocs.protocol import ProtocolError
from realtime.coursedocs.room import Connection
from realtime.errors import AppError
from realtime.policy import Action, may
from realtime.presence.model import doc as doc_scope
from realtime.ratelimit import TokenBucket

log = logging.getLogger(__name__)


async def yjs_socket(request: web.Request) -> web.StreamResponse:
    service = request.app[keys.DOCS]
    settings = request.app[keys.SETTINGS]
    token = request.query.get("token")
    if token:
        principal = await request.app[keys.IDENTITY].authenticate(token)
        if principal is None:
            raise AppError("unauthorized")
    else:
        principal = await current_principal(request)
    meta = await service.visible(principal, path_int(request, "doc_id"))

    ws = web.WebSocketResponse(heartbeat=settings.docs_heartbeat_s,
                               max_msg_size=settings.docs_max_frame_bytes)
    await ws.prepare(request)
    conn = Connection(ws, principal, may(principal, Action.EDIT_DOC, meta.ref()))
    bucket = TokenBucket(settings.docs_frames_per_s, settings.docs_frames_per_s * 4)
    try:
        room = await service.join(meta, conn)
    except BaseException:
        await conn.stop()
        raise
    # Who has the document open, for other ENT services (GET /api/presence/doc:<id>) and the
    # editor's list: a roster in the presence store, renewed while this websocket lives.
    device = f"yjs-{secrets.token_hex(6)}"
    presence = request.app[keys.PRESENCE]
    # A session that ends (logout, new code, expiry, account disabled) closes this socket.
    watch = request.app[keys.SESSIONS].watch(
        principal.session_id, principal.id,
        lambda: conn.close_soon(1008, "Session terminée : identifiez-vous à nouveau."))
    try:
        await presence.enter(doc_scope(meta.id), principal, device)
        async for msg in ws:
            if watch.ended:
                break
            if msg.type is not WSMsgType.BINARY:
                await ws.close(code=1003, message=b"binary y-protocols frames only")
                break
            if not bucket.take():
                await ws.close(code=1008, message=b"Trop de messages.")
                break
            try:
                service.handle(room, conn, msg.data)
            except (ProtocolError, BadUpdate) as exc:
                log.info("yjs frame refused", extra={"doc_id": meta.id, "error": str(exc)})
                await ws.close(code=1007, message=b"malformed y-protocols frame")
                break
    finally:
        watch.cancel()
        service.leave(room, conn)
        await presence.leave(doc_scope(meta.id), device)
        await conn.stop()
    return ws

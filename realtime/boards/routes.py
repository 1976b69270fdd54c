"""`/api/boards…`: create, list, read, images, exports; and the feature's setup."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
import socketio
from aiohttp import web

from realtime import keys
from realtime.api import current_principal, json_response, path_int, query_int, read_json
from realtime.boards import store
from realtime.boards.model import Limits
from realtime.boards.service import BoardService, board_ref
from realtime.boards.socket import BoardsNamespace
from realtime.errors import AppError, not_found
from realtime.policy import Action, may
from realtime.validation import Payload

IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif"}
_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


class CreateBoard(Payload):
    title: Annotated[str, msgspec.Meta(max_length=500)]
    class_id: Annotated[int, msgspec.Meta(ge=1, le=2**53)]
    slot_id: Annotated[int, msgspec.Meta(ge=1, le=2**53)] | None = None


def _service(request: web.Request) -> BoardService:
    return request.app[keys.BOARDS]


async def create_board(request: web.Request) -> web.Response:
    p = await current_principal(request)
    body = await read_json(request, CreateBoard)
    service = _service(request)
    meta = await service.create(p, body.title, body.class_id, body.slot_id)
    return json_response(await service.describe(meta), status=201)


async def list_boards(request: web.Request) -> web.Response:
    p = await current_principal(request)
    class_id = query_int(request, "class_id")
    if class_id is None:
        raise AppError("invalid", "Précisez la classe (class_id).")
    service = _service(request)
    boards = await service.of_class(p, class_id)
    return json_response({"boards": [await service.describe(m) for m in boards]})


async def get_board(request: web.Request) -> web.Response:
    p = await current_principal(request)
    service = _service(request)
    return json_response(await service.describe(await service.visible(p, path_int(request,
                                                                                  "board_id"))))


async def upload_image(request: web.Request) -> web.Response:
    p = await current_principal(request)
    service = _service(request)
    meta = await service.visible(p, path_int(request, "board_id"))
    if not may(p, Action.DRAW_ON_BOARD, board_ref(meta)):
        raise AppError("forbidden", "Vous n'avez pas le stylet sur ce tableau.")
    mime = request.content_type
    if mime not in IMAGE_TYPES:
        raise AppError("unsupported_media_type", "Image PNG, JPEG, WebP ou GIF attendue.")
    cap = service.limits.image_bytes
    if request.content_length is not None and request.content_length > cap:
        raise AppError("too_large", f"Image trop lourde ({cap // (1024 * 1024)} Mio au plus).")
    data = await request.content.read(cap + 1)
    if len(data) > cap:
        raise AppError("too_large", f"Image trop lourde ({cap // (1024 * 1024)} Mio au plus).")
    if not data.startswith(_MAGIC[mime]):
        raise AppError("invalid", "Le fichier n'est pas une image du type annoncé.")
    digest = hashlib.sha256(data).hexdigest()
    await store.put_image(request.app[keys.DB], meta.id, digest, mime, data, service.clock())
    return json_response({"src": f"/api/boards/{meta.id}/images/{digest}"}, status=201)


async def get_image(request: web.Request) -> web.Response:
    p = await current_principal(request)
    meta = await _service(request).visible(p, path_int(request, "board_id"))
    found = await store.image(request.app[keys.DB], meta.id, request.match_info["sha256"])
    if found is None:
        raise not_found("Image introuvable.")
    mime, data = found
    return web.Response(body=data, content_type=mime,
                        headers={"Cache-Control": "private, max-age=31536000, immutable",
                                 "X-Content-Type-Options": "nosniff"})


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    service = BoardService(app[keys.DB], app[keys.STREAMS], app[keys.SIO], Limits(),
                           presence=app.get(keys.PRESENCE))
    app[keys.BOARDS] = service
    yield
    await service.close()


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    app.cleanup_ctx.append(_lifecycle)
    sio.register_namespace(BoardsNamespace(app))
    app.router.add_post("/api/boards", create_board)
    app.router.add_get("/api/boards", list_boards)
    app.router.add_get("/api/boards/{board_id}", get_board)
    app.router.add_post("/api/boards/{board_id}/images", upload_image)
    app.router.add_get("/api/boards/{board_id}/images/{sha256:[0-9a-f]{64}}", get_image)

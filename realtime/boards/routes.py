"""`/api/boards…`: create, list, read, images, exports.

The feature is wired in `realtime/boards/__init__.py: setup`."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated
from urllib.parse import quote

import msgspec
from aiohttp import web

from realtime import keys
from realtime.api import (
    current_principal,
    json_response,
    path_int,
    query_int,
    read_capped,
    read_json,
)
from realtime.boards.service import BoardService
from realtime.errors import AppError
from realtime.text import clean_filename
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
    meta = await service.image_target(p, path_int(request, "board_id"))
    mime = request.content_type
    if mime not in IMAGE_TYPES:
        raise AppError("unsupported_media_type", "Image PNG, JPEG, WebP ou GIF attendue.")
    cap = service.limits.image_bytes
    data = await read_capped(request, cap, f"Image trop lourde ({cap // (1024 * 1024)} Mio au "
                                           "plus).")
    if not data.startswith(_MAGIC[mime]):
        raise AppError("invalid", "Le fichier n'est pas une image du type annoncé.")
    return json_response({"src": await service.add_image(meta, mime, data)}, status=201)


async def get_image(request: web.Request) -> web.Response:
    p = await current_principal(request)
    mime, data = await _service(request).image(p, path_int(request, "board_id"),
                                               request.match_info["sha256"])
    return web.Response(body=data, content_type=mime,
                        headers={"Cache-Control": "private, max-age=31536000, immutable",
                                 "X-Content-Type-Options": "nosniff"})


_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def attachment(title: str, ext: str) -> str:
    """A Content-Disposition for a download named after the board: an ASCII fallback (accents
    folded) for old clients and the exact UTF-8 name per RFC 5987/6266 for the others."""
    name = clean_filename(title, fallback="tableau")
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = _FILENAME_UNSAFE.sub("_", folded).strip(" ._") or "tableau"
    return (f'attachment; filename="{ascii_name}.{ext}"; '
            f"filename*=UTF-8''{quote(name + '.' + ext, safe='')}")


async def _export(request: web.Request, fmt: str) -> tuple[str, bytes]:
    p = await current_principal(request)
    return await _service(request).export(p, path_int(request, "board_id"), fmt,
                                          request.app[keys.EXPORTS])


async def export_svg(request: web.Request) -> web.Response:
    title, svg = await _export(request, "svg")
    return web.Response(body=svg, headers={
        "Content-Type": "image/svg+xml; charset=utf-8",
        "Content-Disposition": attachment(title, "svg"),
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
        # Opened directly, the document may show images but never run anything.
        "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
    })


async def export_pdf(request: web.Request) -> web.Response:
    title, pdf = await _export(request, "pdf")
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Content-Disposition": attachment(title, "pdf"),
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
    })


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/boards", create_board)
    app.router.add_get("/api/boards", list_boards)
    app.router.add_get("/api/boards/{board_id}", get_board)
    app.router.add_post("/api/boards/{board_id}/images", upload_image)
    app.router.add_get("/api/boards/{board_id}/images/{sha256:[0-9a-f]{64}}", get_image)
    app.router.add_get("/api/boards/{board_id}/export.svg", export_svg)
    app.router.add_get("/api/boards/{board_id}/export.pdf", export_pdf)

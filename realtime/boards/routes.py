"""`/api/boards…`: create, list, read, images, exports; and the feature's setup."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
import socketio
from aiohttp import BodyPartReader, web

from realtime import keys
from realtime.api import (
    current_principal,
    json_response,
    path_int,
    query_int,
    read_capped,
    read_json,
)
from realtime.boards import export, rasterize, store
from realtime.boards.export.pdf import board_crop
from realtime.boards.exporter import Exporter
from realtime.boards.imports import PageImporter
from realtime.boards.model import Limits
from realtime.boards.service import BoardService, Peek, board_ref
from realtime.boards.socket import BoardsNamespace
from realtime.errors import AppError, not_found
from realtime.lease import Leases
from realtime.policy import Action, may
from realtime.presence.model import Kind
from realtime.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
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
    meta = await service.visible(p, path_int(request, "board_id"))
    if not may(p, Action.DRAW_ON_BOARD, board_ref(meta)):
        raise AppError("forbidden", "Vous n'avez pas le stylet sur ce tableau.")
    mime = request.content_type
    if mime not in IMAGE_TYPES:
        raise AppError("unsupported_media_type", "Image PNG, JPEG, WebP ou GIF attendue.")
    cap = service.limits.image_bytes
    data = await read_capped(request, cap, f"Image trop lourde ({cap // (1024 * 1024)} Mio au "
                                           "plus).")
    if not data.startswith(_MAGIC[mime]):
        raise AppError("invalid", "Le fichier n'est pas une image du type annoncé.")
    digest = hashlib.sha256(data).hexdigest()
    await store.put_image(request.app[keys.DB], meta.id, digest, mime, data, service.clock())
    return json_response({"src": f"/api/boards/{meta.id}/images/{digest}"}, status=201)


async def import_pages(request: web.Request) -> web.Response:
    """A PDF's pages (or one photo) as new pages at the end of the board (imports.py)."""
    p = await current_principal(request)
    board_id = path_int(request, "board_id")
    importer: PageImporter = request.app[keys.BOARD_IMPORTS]
    await importer.check(p, board_id)  # before reading tens of megabytes
    cap = _service(request).limits.import_bytes
    too_large = f"Fichier trop lourd ({cap // (1024 * 1024)} Mio au plus)."
    if request.content_length is not None and request.content_length > cap + 64 * 1024:
        raise AppError("too_large", too_large)
    if not request.content_type.startswith("multipart/form-data"):
        raise AppError("unsupported_media_type",
                       "Envoyez le fichier en multipart/form-data, champ « file ».")
    reader = await request.multipart()
    data, name = None, ""
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name != "file":
            continue
        name = part.filename or ""
        chunks, size = [], 0
        while chunk := await part.read_chunk(256 * 1024):
            size += len(chunk)
            if size > cap:
                raise AppError("too_large", too_large)
            chunks.append(chunk)
        data = b"".join(chunks)
        break
    if not data:
        raise AppError("invalid", "Aucun fichier reçu (champ « file »).")
    pages = await importer.run(p, board_id, data, name)
    return json_response({"pages": pages}, status=201)


async def thumbnail(request: web.Request) -> web.Response:
    """The first page with something on it, as it is now, small: the « Reprendre le cours »
    cards. Rendered off the loop
    from the PDF export, and kept per board and stream position (`ThumbnailCache`)."""
    p = await current_principal(request)
    service = _service(request)
    board_id = path_int(request, "board_id")
    meta = await service.visible(p, board_id)
    state = await service.peek(meta.id)
    cache: ThumbnailCache = request.app[keys.BOARD_THUMBNAILS]
    png = cache.get(meta.id, state.position)
    if png is None:
        png = await cache.once(meta.id, lambda: _render_thumbnail(request, meta, state))
        cache.put(meta.id, state.position, png)
    return web.Response(body=png, content_type="image/png",
                        headers={"Cache-Control": "private, no-cache",
                                 "X-Content-Type-Options": "nosniff"})


async def _render_thumbnail(request: web.Request, meta: store.BoardMeta, state: Peek
                            ) -> bytes:
    """The export's drawing of that page (reportlab, in a thread), rasterised small in the
    render process."""
    # The first page with something on it (an imported worksheet, drawings), else page 1.
    drawn = {i.page_id for i in state.items}
    shown = next((p for p in state.pages if p.background == "image" or p.id in drawn),
                 state.pages[0] if state.pages else None)
    first = [shown] if shown is not None else []
    page_items = [i for i in state.items if shown is not None and i.page_id == shown.id]
    images = await _images(request, meta.id, first, page_items)
    pdf = await asyncio.to_thread(export.render_pdf, meta.title, first, page_items, images)
    return await request.app[keys.BOARD_IMPORTS].render(rasterize.thumbnail_png, pdf,
                                                        board_crop())


class ThumbnailCache:
    """The last thumbnail of each board: valid while the board's stream has not moved, and
    for `fresh_s` anyway (a board being drawn on moves every few ms: asking for its thumbnail
    again and again must not render it again and again). One render at a time per board:
    requests that arrive meanwhile wait for it."""

    def __init__(self, size: int = 256, fresh_s: float = 20.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.fresh_s, self.clock = size, fresh_s, clock
        self._entries: dict[int, tuple[tuple[str, int], float, bytes]] = {}
        self._running: dict[int, asyncio.Future[bytes]] = {}

    def get(self, board_id: int, position: tuple[str, int]) -> bytes | None:
        found = self._entries.get(board_id)
        if found is None:
            return None
        at, made, png = found
        return png if at == position or self.clock() - made < self.fresh_s else None

    def put(self, board_id: int, position: tuple[str, int], png: bytes) -> None:
        self._entries.pop(board_id, None)
        self._entries[board_id] = (position, self.clock(), png)
        while len(self._entries) > self.size:
            del self._entries[next(iter(self._entries))]

    async def once(self, board_id: int, render: Callable[[], Awaitable[bytes]]) -> bytes:
        running = self._running.get(board_id)
        if running is None:
            running = asyncio.ensure_future(render())
            self._running[board_id] = running
            running.add_done_callback(lambda _f: self._running.pop(board_id, None))
        return await asyncio.shield(running)


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
    """Who may view the board may export it (same not_found otherwise), within their budget
    of exports per minute; rendered in a worker process from the board's current state and
    only the images that state uses and that belong to this board, or served from the
    cache while the board has not changed (docs/security.md « Limits »)."""
    p = await current_principal(request)
    service = _service(request)
    exporter = request.app[keys.EXPORTS]
    board_id = path_int(request, "board_id")
    meta, _state = await service.current_state(p, board_id)
    await exporter.admit(p.id)
    live = service.live.get(meta.id)
    key = (meta.id, live.epoch if live else "", live.seq if live else -1, meta.title, fmt)
    cached = exporter.cached(key) if live else None
    if cached is not None:
        return meta.title, cached
    meta, pages, items = await service.export_view(p, board_id)
    images = await _images(request, meta.id, pages, items)
    return meta.title, await exporter.render(key, meta.title, pages, items, images, p.id)


async def _images(request: web.Request, board_id: int, pages: list[Any], items: list[Any]
                  ) -> export.Images:
    """The images `pages` and `items` use that belong to this board."""
    prefix = f"/api/boards/{board_id}/images/"
    images: export.Images = {}
    for src in export.image_sources(pages, items):
        digest = src[len(prefix):] if src.startswith(prefix) else ""
        if re.fullmatch(r"[0-9a-f]{64}", digest):
            found = await store.image(request.app[keys.DB], board_id, digest)
            if found is not None:
                images[src] = found
    return images


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


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    service = BoardService(app[keys.DB], app[keys.STREAMS], app[keys.SIO], Limits(),
                           batch_ms=app[keys.SETTINGS].board_batch_ms,
                           snapshot_every=app[keys.SETTINGS].board_snapshot_every,
                           presence=app.get(keys.PRESENCE),
                           leases=Leases(app[keys.REDIS], app[keys.SETTINGS].redis_prefix))
    admit_ms = app[keys.SETTINGS].board_admit_lag_ms
    service.fanout.gauge.admit_lag_s = admit_ms / 1000 if admit_ms > 0 else float("inf")
    service.start()
    app[keys.BOARDS] = service
    if keys.PRESENCE in app:  # who is looking at the board: boards say who may see that
        app[keys.PRESENCE].register(Kind.BOARD, service.presence_visible)
    app[keys.BOARD_IMPORTS] = importer = PageImporter(service)
    app[keys.BOARD_THUMBNAILS] = ThumbnailCache()
    yield
    importer.close()
    await service.close()


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    app.cleanup_ctx.append(_lifecycle)
    app.cleanup_ctx.append(_exports)
    sio.register_namespace(BoardsNamespace(app))
    app.router.add_post("/api/boards", create_board)
    app.router.add_get("/api/boards", list_boards)
    app.router.add_get("/api/boards/{board_id}", get_board)
    app.router.add_post("/api/boards/{board_id}/images", upload_image)
    app.router.add_get("/api/boards/{board_id}/images/{sha256:[0-9a-f]{64}}", get_image)
    app.router.add_post("/api/boards/{board_id}/import", import_pages)
    app.router.add_get("/api/boards/{board_id}/thumbnail.png", thumbnail)
    app.router.add_get("/api/boards/{board_id}/export.svg", export_svg)
    app.router.add_get("/api/boards/{board_id}/export.pdf", export_pdf)

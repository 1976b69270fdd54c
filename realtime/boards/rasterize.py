"""Worksheets and textbook pages as board backgrounds: a PDF's pages or a photo, rendered to
16:9 JPEG frames the size of a TBI sheet. Synchronous and CPU-bound: callers run it in a
`render_pool()`, a process of its own (PDFium is not thread-safe, and rendering in a thread of
the server took the interpreter from the board fan-out: other classes' ops waited, and
admission control refused some, while a PDF was imported — docs/performance.md). One worker
process: one page at a time, whatever the number of imports.

A page keeps its proportions: it is scaled to fit the frame and centred on white (an A4
portrait worksheet stands in the middle of the board, room on its sides to write), so the web
client, the SVG and the PDF export all draw a background over the whole sheet unchanged.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import pypdfium2 as pdfium
from PIL import Image, ImageOps

from realtime.boards.ops import PAGE_H, PAGE_W

# 1.5 × the 1920 × 1080 sheet: sharp on a TBI, and still sharp at 150 % zoom.
FRAME_W, FRAME_H = PAGE_W * 3 // 2, PAGE_H * 3 // 2
JPEG_QUALITY = 85
# A 48 Mpx phone's photo passes. A JPEG decodes reduced to the frame's size (`draft`); a PNG
# of 50 Mpx decodes whole, to at most ~200 MiB, one at a time per process (one render thread).
# Pillow's own bomb check would stop only at 179 Mpx.
MAX_PIXELS = 50_000_000
ORPHAN_CHECK_S = 1.0
IMAGE_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "GIF": "GIF", "MPO": "JPEG"}



def render_pool() -> ProcessPoolExecutor:
    """The render worker: a spawned process (not forked from a server with threads, sockets
    and an event loop), started on its first task, and gone with the server (`_watch_server`)."""
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_watch_server, initargs=(os.getpid(),))


def _watch_server(server_pid: int) -> None:
    """In the render process: a server killed outright (a crash, SIGKILL) cannot tell its
    worker to stop, and the worker would wait for tasks for ever: it leaves by itself once
    its parent is no longer the server."""
    def watch() -> None:
        while os.getppid() == server_pid:
            time.sleep(ORPHAN_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="render-orphan-watch", daemon=True).start()


class Unreadable(Exception):
    """The file is not what it claims to be, or cannot be read: `message` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)  # both in args: it crosses from the render process
        self.code = code
        self.message = message


def kind_of(data: bytes) -> str | None:
    """`pdf`, `image`, or None: by the bytes, not by a name or a header anyone can fake."""
    if data[:1024].lstrip(b"\x00\t\n\r ").startswith(b"%PDF-"):
        return "pdf"
    if data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")) or (
            data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "image"
    return None


def _frame(img: Image.Image) -> bytes:
    """`img` fitted into the 16:9 frame, centred on white, as a JPEG."""
    if img.mode in ("RGBA", "LA", "P", "PA"):
        img = img.convert("RGBA")
        flat = Image.new("RGB", img.size, "white")
        flat.paste(img, mask=img.getchannel("A"))
        img = flat
    elif img.mode != "RGB":
        img = img.convert("RGB")
    scale = min(FRAME_W / img.width, FRAME_H / img.height)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    if size != img.size:
        img = img.resize(size, Image.Resampling.LANCZOS)
    frame = Image.new("RGB", (FRAME_W, FRAME_H), "white")
    frame.paste(img, ((FRAME_W - size[0]) // 2, (FRAME_H - size[1]) // 2))
    out = io.BytesIO()
    frame.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def pdf_page_count(path: str) -> int:
    """How many pages, reading nothing else: refused before any page is added."""
    try:
        pdf = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        raise Unreadable("invalid", _pdf_error(exc)) from exc
    try:
        return len(pdf)
    finally:
        pdf.close()


def _pdf_error(exc: Exception) -> str:
    if "password" in str(exc).lower():
        return "Ce PDF est protégé par un mot de passe : enregistrez-en une copie sans protection."
    return "Ce fichier PDF est illisible ou endommagé."


def _page_frame(pdf: pdfium.PdfDocument, index: int) -> bytes:
    page = pdf[index]
    try:
        w, h = page.get_size()
        if not (w > 1 and h > 1):
            raise Unreadable("invalid", f"La page {index + 1} du PDF est vide.")
        scale = min(FRAME_W / w, FRAME_H / h)
        img = page.render(scale=scale, may_draw_forms=True).to_pil()
    except pdfium.PdfiumError as exc:
        raise Unreadable("invalid", f"La page {index + 1} du PDF est illisible.") from exc
    finally:
        page.close()
    return _frame(img)


def render_pdf_page(path: str, index: int) -> bytes:
    """One page as a frame (a task of the render process: the PDF is a file, opened lazily
    by PDFium, so a page costs its own rendering, not the transfer of the document)."""
    try:
        pdf = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        raise Unreadable("invalid", _pdf_error(exc)) from exc
    try:
        return _page_frame(pdf, index)
    finally:
        pdf.close()


def render_pdf(data: bytes | str, emit: Callable[[int, int, bytes], None]) -> int:
    """Every page as a frame, in order, `emit(index, count, jpeg)` after each, the document
    parsed once (the benchmark's measure of rendering alone)."""
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise Unreadable("invalid", _pdf_error(exc)) from exc
    try:
        count = len(pdf)
        for index in range(count):
            emit(index, count, _page_frame(pdf, index))
        return count
    finally:
        pdf.close()


def render_image(data: bytes) -> bytes:
    """A photo or a scan as one frame, turned the way the camera says it was held (EXIF)."""
    try:
        img = Image.open(io.BytesIO(data))
        if img.format not in IMAGE_FORMATS:
            raise Unreadable("unsupported_media_type", "Image PNG, JPEG, WebP ou GIF attendue.")
        if img.width * img.height > MAX_PIXELS:
            raise Unreadable("too_large", "Image trop grande (50 millions de pixels au plus).")
        if img.format in ("JPEG", "MPO"):
            img.draft("RGB", (FRAME_W, FRAME_H))  # decode at a reduced size: much faster
        img = ImageOps.exif_transpose(img)
        img.load()
    except Unreadable:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise Unreadable("invalid", "Cette image est illisible ou endommagée.") from exc
    return _frame(img)


def thumbnail_png(pdf: bytes, crop: tuple[float, float, float, float], width: int = 480
                  ) -> bytes:
    """The first sheet of a PDF export, cut to `crop` (left, bottom, right, top, in points)
    and small, as a PNG: the « Reprendre le cours » cards."""
    doc = pdfium.PdfDocument(pdf)
    try:
        page = doc[0]
        w, _h = page.get_size()
        img = page.render(scale=width / (w - crop[0] - crop[2]), crop=crop).to_pil()
        page.close()
    finally:
        doc.close()
    out = io.BytesIO()
    img.convert("RGB").save(out, "PNG", optimize=True)
    return out.getvalue()

"""Worksheets and textbook pages as board backgrounds: a PDF's pages or a photo, rendered to
16:9 JPEG frames the size of a TBI sheet. Synchronous and CPU-bound: callers run it off the
event loop, in `RENDER_POOL` (one thread, because PDFium is not thread-safe: every call into
it must come from the same thread, one at a time).

A page keeps its proportions: it is scaled to fit the frame and centred on white (an A4
portrait worksheet stands in the middle of the board, room on its sides to write), so the web
client, the SVG and the PDF export all draw a background over the whole sheet unchanged.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

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
IMAGE_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "GIF": "GIF", "MPO": "JPEG"}

RENDER_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="board-render")


class Unreadable(Exception):
    """The file is not what it claims to be, or cannot be read: `message` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
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


def pdf_page_count(data: bytes) -> int:
    """How many pages, reading nothing else: refused before any page is added."""
    try:
        pdf = pdfium.PdfDocument(data)
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


def render_pdf(data: bytes, emit: Callable[[int, int, bytes], None], *,
               cancelled: Callable[[], bool] = lambda: False) -> int:
    """Each page as a frame, in order: `emit(index, count, jpeg)` after each (a caller in
    another thread hands it to the loop). The document is parsed once for all its pages."""
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise Unreadable("invalid", _pdf_error(exc)) from exc
    try:
        count = len(pdf)
        for index in range(count):
            if cancelled():
                break
            page = pdf[index]
            try:
                w, h = page.get_size()
                if not (w > 1 and h > 1):
                    raise Unreadable("invalid", f"La page {index + 1} du PDF est vide.")
                scale = min(FRAME_W / w, FRAME_H / h)
                bitmap = page.render(scale=scale, may_draw_forms=True)
                img = bitmap.to_pil()
            except pdfium.PdfiumError as exc:
                raise Unreadable("invalid", f"La page {index + 1} du PDF est illisible.") from exc
            finally:
                page.close()
            emit(index, count, _frame(img))
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

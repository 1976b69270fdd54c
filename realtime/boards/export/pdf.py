"""The PDF export: one A4 landscape sheet per board page, drawn with reportlab."""

from __future__ import annotations

import functools
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from realtime.boards.export import layout
from realtime.boards.ops import PAGE_H, PAGE_W, Item, Page

MAX_PDF_IMAGE_PIXELS = 25_000_000  # a small PNG can inflate to gigabytes: refuse past this
TTF_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)
FALLBACK_FONT = "Helvetica"


@functools.cache
def _pdf_font() -> tuple[str, frozenset[int] | None]:
    """A TTF font that has French's "œ" and more, registered once; Helvetica if none is
    installed. Also the characters the font has (None: Helvetica, WinAnsi only)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for path in TTF_PATHS:
        if Path(path).is_file():
            try:
                font = TTFont("BoardSans", path)
            except Exception:  # a broken font file: fall back rather than fail the export
                continue
            pdfmetrics.registerFont(font)
            return "BoardSans", frozenset(font.face.charToGlyph)
    return FALLBACK_FONT, None


def _pdf_text(text: str, glyphs: frozenset[int] | None) -> str:
    """Text the font can draw: what it lacks becomes "?" rather than a failed export."""
    text = layout.NOT_XML.sub("", text)
    if glyphs is None:
        return text.encode("cp1252", "replace").decode("cp1252")
    if all(ord(c) in glyphs for c in text):
        return text
    return "".join(c if ord(c) in glyphs else "?" for c in text)


class _PdfImages:
    """Decoded once per source; reportlab stores each distinct image once in the file."""

    def __init__(self, images: layout.Images) -> None:
        self.images = images
        self.readers: dict[str, Any] = {}

    def reader(self, src: str | None) -> Any:
        if not src:
            return None
        if src not in self.readers:
            self.readers[src] = self._decode(src)
        return self.readers[src]

    def _decode(self, src: str) -> Any:
        from reportlab.lib.utils import ImageReader

        found = layout.find_image(self.images, src)
        if found is None:
            return None
        try:
            reader = ImageReader(io.BytesIO(found[1]))
            w, h = reader.getSize()
            if w <= 0 or h <= 0 or w * h > MAX_PDF_IMAGE_PIXELS:
                return None
            reader.getRGBData()  # decode now: a truncated file fails here, not mid-page
        except Exception:  # Pillow and reportlab raise many kinds on bad bytes
            return None
        return reader


class _PdfPage:
    """Draws in board units on a canvas whose y axis points down, like the board's."""

    def __init__(self, canvas: Any, font: str, glyphs: frozenset[int] | None,
                 imgs: _PdfImages) -> None:
        from reportlab.lib.colors import HexColor

        self.c = canvas
        self.font = font
        self.glyphs = glyphs
        self.imgs = imgs
        self.colors: dict[str, Any] = {}
        self._hex = HexColor

    def color(self, value: str) -> Any:
        found = self.colors.get(value)
        if found is None:
            found = self.colors[value] = self._hex(value)
        return found

    def background(self, page: Page) -> None:
        c = self.c
        c.setFillColor(self.color("#ffffff"))
        c.rect(0, 0, PAGE_W, PAGE_H, stroke=0, fill=1)
        if page.background == "image":
            self.image(page.image, 0, 0, PAGE_W, PAGE_H, 1.0)
            return
        c.setLineCap(0)
        for color, width, segments in layout.background_rules(page.background):
            c.setStrokeColor(self.color(color))
            c.setLineWidth(width)
            c.lines(segments)

    def image(self, src: str | None, x: float, y: float, w: float, h: float,
              opacity: float) -> None:
        if w <= 0 or h <= 0:
            return
        c = self.c
        reader = self.imgs.reader(src)
        c.saveState()
        if reader is None:
            c.setFillColor(self.color(layout.PLACEHOLDER_FILL))
            c.setStrokeColor(self.color(layout.PLACEHOLDER_STROKE))
            c.setLineWidth(2)
            c.setDash(8, 6)
            c.rect(x, y, w, h, stroke=1, fill=1)
        else:
            c.setFillAlpha(opacity)
            c.translate(x, y + h)
            c.scale(1, -1)  # images are drawn bottom-up: undo the page's flip
            c.drawImage(reader, 0, 0, w, h, mask="auto")
        c.restoreState()

    def item(self, item: Item) -> None:
        color, width, opacity, fill = layout.stroke_style(item.style)
        kind = item.kind
        c = self.c
        if kind == "image":
            box = layout.box_rect(item.box)
            if box is not None:
                self.image(item.src, *box, opacity)
            return
        c.saveState()
        c.setStrokeColor(self.color(color))
        c.setFillColor(self.color(color))
        c.setLineWidth(width)
        if opacity < 1:
            c.setStrokeAlpha(opacity)
            c.setFillAlpha(opacity)
        try:
            self._shape(item, kind, width, fill)
        finally:
            c.restoreState()

    def _shape(self, item: Item, kind: str, width: float, fill: str | None) -> None:
        c = self.c
        if kind in ("stroke", "highlighter", "line", "arrow"):
            pts = layout.item_points(item)
            if not pts or (kind in ("line", "arrow") and len(pts) < 2):
                return
            if kind in ("line", "arrow"):
                pts = [pts[0], pts[-1]]
            if layout.is_dot(pts):
                c.circle(pts[0][0], pts[0][1], width / 2, stroke=0, fill=1)
                return
            c.setLineCap(1)
            c.setLineJoin(1)
            path = c.beginPath()
            x, y = pts[0]
            path.moveTo(x, y)
            for i in range(1, len(pts) - 1):  # the client's quadratics, as cubic curves
                qx, qy = pts[i]
                nx, ny = pts[i + 1]
                ex, ey = (qx + nx) / 2, (qy + ny) / 2
                path.curveTo(x + (qx - x) * 2 / 3, y + (qy - y) * 2 / 3,
                             ex + (qx - ex) * 2 / 3, ey + (qy - ey) * 2 / 3, ex, ey)
                x, y = ex, ey
            path.lineTo(*pts[-1])
            c.drawPath(path, stroke=1, fill=0)
            if kind == "arrow":
                head = c.beginPath()
                a, b, d = layout.arrowhead_points(pts[0], pts[-1], width)
                head.moveTo(*a)
                head.lineTo(*b)
                head.lineTo(*d)
                head.close()
                c.drawPath(head, stroke=0, fill=1)
            return
        box = layout.box_rect(item.box)
        if box is None:
            return
        x, y, w, h = box
        if kind in ("rect", "ellipse"):
            c.setLineJoin(1)
            if fill:
                c.setFillColor(self.color(fill))
            if kind == "rect":
                c.rect(x, y, w, h, stroke=1, fill=1 if fill else 0)
            else:
                c.ellipse(x, y, x + w, y + h, stroke=1, fill=1 if fill else 0)
        elif kind == "text" and item.text:
            size = layout.font_size(item)
            text = c.beginText()
            text.setFont(self.font, size)
            for n, line in enumerate(layout.text_lines(item.text)):
                if line:
                    baseline = y + size * (layout.ASCENT + n * layout.LINE_HEIGHT)
                    text.setTextTransform(1, 0, 0, -1, x, baseline)  # upright on a flipped page
                    text.textOut(_pdf_text(line, self.glyphs))
            c.drawText(text)


def _fit(text: str, font: str, size: float, width: float) -> str:
    """Cut a long title with an ellipsis so that it stays on the sheet."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "...", font, size) > width:
        text = text[: len(text) * 9 // 10]
    return text + "..."


def _sheet() -> tuple[float, float, float, float, float, float]:
    """A4 landscape: its width and height, the margin, board units → points, and where the
    board stands (its height and its top, in PDF points from the bottom)."""
    from reportlab.lib.pagesizes import A4, landscape

    sheet_w, sheet_h = landscape(A4)
    margin, header, footer = 28.0, 26.0, 20.0
    scale = (sheet_w - 2 * margin) / PAGE_W
    board_h = PAGE_H * scale
    board_top = sheet_h - (sheet_h - header - board_h - footer) / 2 - header
    return sheet_w, sheet_h, margin, scale, board_h, board_top


def board_crop() -> tuple[float, float, float, float]:
    """What to cut from a sheet's left, bottom, right and top to keep the board alone (the
    « Reprendre le cours » thumbnails are page 1 of the export, cropped)."""
    sheet_w, sheet_h, margin, scale, board_h, board_top = _sheet()
    return margin, board_top - board_h, sheet_w - margin - PAGE_W * scale, sheet_h - board_top


def render_pdf(title: str, pages: Sequence[Page], items: Iterable[Item], images: layout.Images
               ) -> bytes:
    """One A4 landscape sheet per board page (what a school prints), the board scaled to the
    sheet's width under the board's title, with the same drawing as the SVG."""
    from reportlab.lib.colors import HexColor
    from reportlab.pdfgen.canvas import Canvas

    font, glyphs = _pdf_font()
    sheet_w, sheet_h, margin, scale, board_h, board_top = _sheet()
    heading = _fit(_pdf_text(title, glyphs), font, 14, sheet_w - 2 * margin)

    out = io.BytesIO()
    c = Canvas(out, pagesize=(sheet_w, sheet_h), pageCompression=1)
    c.setTitle(layout.NOT_XML.sub("", title))
    c.setCreator("ENT — tableau de classe")
    groups = layout.items_by_page(pages, items)
    drawer = _PdfPage(c, font, glyphs, _PdfImages(images))
    for index, page in enumerate(pages):
        c.setFillColor(HexColor("#111827"))
        c.setFont(font, 14)
        c.drawString(margin, board_top + 9, heading)
        c.setFont(font, 9)
        c.drawRightString(sheet_w - margin, board_top - board_h - 14,
                          f"Page {index + 1} / {len(pages)}")
        c.saveState()
        c.transform(scale, 0, 0, -scale, margin, board_top)  # board units, y pointing down
        clip = c.beginPath()
        clip.rect(0, 0, PAGE_W, PAGE_H)
        c.clipPath(clip, stroke=0, fill=0)
        drawer.background(page)
        for item in groups[page.id]:
            drawer.item(item)
        c.restoreState()
        c.setStrokeColor(HexColor(layout.FRAME))
        c.setLineWidth(0.8)
        c.rect(margin, board_top - board_h, PAGE_W * scale, board_h, stroke=1, fill=0)
        c.showPage()
    if not pages:  # no page at all: still a valid PDF, one sheet with the title
        c.setFont(font, 14)
        c.drawString(margin, board_top + 9, heading)
        c.showPage()
    c.save()
    return out.getvalue()

"""A board's pages drawn server-side, as one SVG document or one PDF (a page per board page).

Teachers hand out the lesson's board afterwards (ENT, e-mail, print), so the export must look
like what the class saw: the geometry, backgrounds, stroke smoothing, arrowheads and text
placement follow the web client's `web_client/src/board/draw.js`. Everything here is pure:
the caller loads the images beforehand (`image_sources` says which) and passes their bytes.

Titles and texts come from users and the SVG is served from our own origin, so every string
is escaped and every colour and image type is checked before it reaches the document.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from realtime.boards.ops import PAGE_H, PAGE_W, Box, Item, Page, Style

Images = dict[str, tuple[str, bytes]]  # src → (mime, bytes)

PAGE_GAP = 40  # SVG: room between pages stacked vertically
DEFAULT_FONT_SIZE = 32.0  # as the client draws a text without font_size
LINE_HEIGHT = 1.25  # the client's line advance, in font sizes
ASCENT = 0.8  # the client draws text from the top of the em box; baseline is this far below
FONT_FAMILY = "system-ui, 'Noto Sans', 'DejaVu Sans', Arial, sans-serif"
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
MAX_PDF_IMAGE_PIXELS = 25_000_000  # a small PNG can inflate to gigabytes: refuse past this
TTF_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)
FALLBACK_FONT = "Helvetica"

_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
# What XML 1.0 cannot carry at all (control characters, lone surrogates, U+FFFE/FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_PLACEHOLDER_FILL, _PLACEHOLDER_STROKE = "#f3f4f6", "#9ca3af"
_FRAME = "#9ca3af"

# Page backgrounds, as the client draws them: (colour, width, step, vertical, horizontal, from).
_GRID, _SEYES = 40, 64
_RULINGS: dict[str, tuple[tuple[str, float, int, bool, bool, int], ...]] = {
    "squares": (("#c7d7ee", 1.2, _GRID, True, True, 0),),
    "seyes": (
        ("#b9d3f0", 1.0, _SEYES // 4, False, True, 0),
        ("#8d86c9", 1.6, _SEYES, True, True, _SEYES * 4),
    ),
    "lines": (("#9fbbe3", 1.5, _SEYES, False, True, 0),),
}
_SEYES_MARGIN = ("#e3557d", 2.5, _SEYES * 4)

Segment = tuple[float, float, float, float]


# --- shared geometry ---------------------------------------------------------------------------

@functools.cache
def _background_rules(background: str) -> tuple[tuple[str, float, tuple[Segment, ...]], ...]:
    """The ruled lines of a paper background: (colour, width, segments), drawn in order."""
    rules: list[tuple[str, float, tuple[Segment, ...]]] = []
    for color, width, step, vertical, horizontal, start in _RULINGS.get(background, ()):
        segments: list[Segment] = []
        if vertical:
            segments += [(x, 0, x, PAGE_H) for x in range(start, PAGE_W + 1, step)]
        if horizontal:
            segments += [(0, y, PAGE_W, y) for y in range(step, PAGE_H + 1, step)]
        rules.append((color, width, tuple(segments)))
    if background == "seyes":
        color, width, x = _SEYES_MARGIN
        rules.append((color, width, ((x, 0, x, PAGE_H),)))
    return tuple(rules)


def _by_page(pages: Sequence[Page], items: Iterable[Item]) -> dict[str, list[Item]]:
    """Items of each page in z order, in one pass (a board may hold thousands of items)."""
    groups: dict[str, list[Item]] = {p.id: [] for p in pages}
    for item in items:
        bucket = groups.get(item.page_id)
        if bucket is not None:
            bucket.append(item)
    for bucket in groups.values():
        bucket.sort(key=lambda i: i.z)
    return groups


def _points(item: Item) -> list[tuple[float, float]]:
    """The item's points, without any that could not be drawn (NaN, infinity)."""
    isfinite = math.isfinite
    return [(x, y) for x, y in item.points or () if isfinite(x) and isfinite(y)]


def _box(box: Box | None) -> tuple[float, float, float, float] | None:
    """x, y, w, h with a positive size (as the client's `normBox`), or None if unusable."""
    if box is None or not all(math.isfinite(v) for v in (box.x, box.y, box.w, box.h)):
        return None
    return min(box.x, box.x + box.w), min(box.y, box.y + box.h), abs(box.w), abs(box.h)


def _is_dot(points: Sequence[tuple[float, float]]) -> bool:
    first = points[0]
    return all(p == first for p in points)


def _arrowhead(a: tuple[float, float], b: tuple[float, float], width: float
               ) -> list[tuple[float, float]]:
    """The filled triangle at `b`, sized like the client's (12 + 3 × line width)."""
    angle = math.atan2(b[1] - a[1], b[0] - a[0])
    size = 12 + width * 3
    return [
        b,
        (b[0] - size * math.cos(angle - 0.45), b[1] - size * math.sin(angle - 0.45)),
        (b[0] - size * math.cos(angle + 0.45), b[1] - size * math.sin(angle + 0.45)),
    ]


def _color(value: str | None, default: str = "#1a1a1a") -> str:
    return value if value is not None and _COLOR.fullmatch(value) else default


def _num(value: float, default: float, low: float, high: float) -> float:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return min(max(value, low), high)


def _style(style: Style) -> tuple[str, float, float, str | None]:
    """Colour, width, opacity and fill, safe to write whatever the item was built from."""
    fill = _color(style.fill, "") or None
    return (_color(style.color), _num(style.width, 4.0, 0.0, 1000.0),
            _num(style.opacity, 1.0, 0.0, 1.0), fill)


def _lines(text: str) -> list[str]:
    return _NOT_XML.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).split("\n")


def _image(images: Images, src: str | None) -> tuple[str, bytes] | None:
    found = images.get(src) if src else None
    if found is None or found[0] not in IMAGE_TYPES or not found[1]:
        return None
    return found


def image_sources(pages: Iterable[Page], items: Iterable[Item]) -> set[str]:
    """The image URLs a render will ask `images` for, so the caller loads only those."""
    found = {p.image for p in pages if p.background == "image" and p.image}
    found.update(i.src for i in items if i.kind == "image" and i.src)
    return found


# --- SVG ---------------------------------------------------------------------------------------

def _esc(text: str) -> str:
    """Text or attribute value, escaped: user text must stay text ("<script>" included)."""
    return html.escape(_NOT_XML.sub("", text), quote=True)


def _f(v: float) -> str:
    return f"{v:.1f}"


def _stroke_d(points: Sequence[tuple[float, float]]) -> str:
    """The client's smoothing: quadratic curves through the midpoints between points."""
    x, y = points[0]
    parts = [f"M{x:.1f} {y:.1f}"]
    for i in range(1, len(points) - 1):
        x, y = points[i]
        nx, ny = points[i + 1]
        parts.append(f"Q{x:.1f} {y:.1f} {(x + nx) / 2:.1f} {(y + ny) / 2:.1f}")
    x, y = points[-1]
    parts.append(f"L{x:.1f} {y:.1f}")
    return "".join(parts)


@functools.cache
def _svg_background(background: str) -> str:
    out = []
    for color, width, segments in _background_rules(background):
        d = "".join(f"M{x1} {y1}L{x2} {y2}" for x1, y1, x2, y2 in segments)
        out.append(f'<path class="ruling" d="{d}" fill="none" stroke="{color}" '
                   f'stroke-width="{width}"/>')
    return "".join(out)


class _SvgImages:
    """Each distinct image once, as a <symbol> in <defs>; every use of it is a <use>.

    An image reused a thousand times must not be inlined a thousand times (a pupil with
    the pen could otherwise make the export weigh gigabytes)."""

    def __init__(self, images: Images) -> None:
        self.images = images
        self.ids: dict[str, str] = {}
        self.defs: list[str] = []

    def use(self, src: str | None, x: float, y: float, w: float, h: float, opacity: float
            ) -> str:
        if w <= 0 or h <= 0:
            return ""
        found = _image(self.images, src)
        if found is None or src is None:
            return (f'<rect class="missing-image" x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" '
                    f'height="{_f(h)}" fill="{_PLACEHOLDER_FILL}" '
                    f'stroke="{_PLACEHOLDER_STROKE}" stroke-width="2" '
                    f'stroke-dasharray="8 6"/>')
        ref = self.ids.get(src)
        if ref is None:
            ref = self.ids[src] = f"img-{len(self.ids)}"
            mime, data = found
            url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
            self.defs.append(
                f'<symbol id="{ref}" viewBox="0 0 1 1" preserveAspectRatio="none">'
                f'<image width="1" height="1" preserveAspectRatio="none" href="{url}"/>'
                f"</symbol>"
            )
        alpha = f' opacity="{opacity:.2f}"' if opacity < 1 else ""
        return (f'<use href="#{ref}" x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" '
                f'height="{_f(h)}"{alpha}/>')


def _svg_item(item: Item, imgs: _SvgImages) -> str:
    color, width, opacity, fill = _style(item.style)
    stroke_alpha = f' stroke-opacity="{opacity:.2f}"' if opacity < 1 else ""
    fill_alpha = f' fill-opacity="{opacity:.2f}"' if opacity < 1 else ""
    line = (f' stroke="{color}" stroke-width="{width:g}" stroke-linecap="round" '
            f'stroke-linejoin="round"{stroke_alpha}')
    kind = item.kind
    if kind in ("stroke", "highlighter"):
        pts = _points(item)
        if not pts:
            return ""
        if _is_dot(pts):  # a tap: a round cap on nothing, drawn as the disc it looks like
            x, y = pts[0]
            return (f'<circle class="{kind}" cx="{_f(x)}" cy="{_f(y)}" r="{width / 2:g}" '
                    f'fill="{color}"{fill_alpha}/>')
        return f'<path class="{kind}" d="{_stroke_d(pts)}" fill="none"{line}/>'
    if kind in ("line", "arrow"):
        pts = _points(item)
        if len(pts) < 2:
            return ""
        (x1, y1), (x2, y2) = pts[0], pts[-1]
        out = f'<path class="{kind}" d="M{_f(x1)} {_f(y1)}L{_f(x2)} {_f(y2)}" fill="none"{line}/>'
        if kind == "arrow":
            head = " ".join(f"{_f(x)},{_f(y)}" for x, y in _arrowhead(pts[0], pts[-1], width))
            out += f'<polygon class="arrowhead" points="{head}" fill="{color}"{fill_alpha}/>'
        return out
    box = _box(item.box)
    if box is None:
        return ""
    x, y, w, h = box
    paint = f' fill="{fill}"{fill_alpha}' if fill else ' fill="none"'
    if kind == "rect":  # a path, so that a flat rectangle still shows as the line it is
        return (f'<path class="rect" d="M{_f(x)} {_f(y)}H{_f(x + w)}V{_f(y + h)}H{_f(x)}Z"'
                f"{paint}{line}/>")
    if kind == "ellipse":
        return (f'<ellipse cx="{_f(x + w / 2)}" cy="{_f(y + h / 2)}" rx="{_f(w / 2)}" '
                f'ry="{_f(h / 2)}"{paint}{line}/>')
    if kind == "text":
        if not item.text:
            return ""
        size = _num(item.font_size or DEFAULT_FONT_SIZE, DEFAULT_FONT_SIZE, 1.0, 1000.0)
        spans = "".join(
            f'<tspan x="{_f(x)}" y="{_f(y + size * (ASCENT + n * LINE_HEIGHT))}">{_esc(t)}</tspan>'
            for n, t in enumerate(_lines(item.text)) if t
        )
        return (f'<text xml:space="preserve" font-family="{FONT_FAMILY}" '
                f'font-size="{size:g}" fill="{color}"{fill_alpha}>{spans}</text>')
    if kind == "image":
        return imgs.use(item.src, x, y, w, h, opacity)
    return ""


def render_svg(title: str, pages: Sequence[Page], items: Iterable[Item], images: Images) -> str:
    """All pages in one SVG document, stacked top to bottom (one `<g class="page">` each), so
    the whole lesson opens in any browser or editor and stays sharp at any zoom."""
    groups = _by_page(pages, items)
    imgs = _SvgImages(images)
    body: list[str] = []
    for index, page in enumerate(pages):
        top = index * (PAGE_H + PAGE_GAP)
        body.append(f'<g class="page" id="page-{index + 1}" data-page-id="{_esc(page.id)}" '
                    f'transform="translate(0 {top})">')
        body.append(f'<rect class="paper" width="{PAGE_W}" height="{PAGE_H}" fill="#ffffff"/>')
        body.append('<g clip-path="url(#page-clip)">')
        if page.background == "image":
            body.append(imgs.use(page.image, 0, 0, PAGE_W, PAGE_H, 1.0))
        else:
            body.append(_svg_background(page.background))
        body.extend(_svg_item(item, imgs) for item in groups[page.id])
        body.append("</g>")
        body.append(f'<rect class="frame" width="{PAGE_W}" height="{PAGE_H}" fill="none" '
                    f'stroke="{_FRAME}" stroke-width="2"/>')
        body.append("</g>\n")
    height = max(len(pages) * (PAGE_H + PAGE_GAP) - PAGE_GAP, 0)
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{PAGE_W}" '
        f'height="{height}" viewBox="0 0 {PAGE_W} {height}">\n'
        f"<title>{_esc(title)}</title>\n"
        f'<defs><clipPath id="page-clip"><rect width="{PAGE_W}" height="{PAGE_H}"/></clipPath>'
        f"{''.join(imgs.defs)}</defs>\n"
    )
    return head + "".join(body) + "</svg>\n"


# --- PDF ---------------------------------------------------------------------------------------

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
    text = _NOT_XML.sub("", text)
    if glyphs is None:
        return text.encode("cp1252", "replace").decode("cp1252")
    if all(ord(c) in glyphs for c in text):
        return text
    return "".join(c if ord(c) in glyphs else "?" for c in text)


class _PdfImages:
    """Decoded once per source; reportlab stores each distinct image once in the file."""

    def __init__(self, images: Images) -> None:
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

        found = _image(self.images, src)
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
        for color, width, segments in _background_rules(page.background):
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
            c.setFillColor(self.color(_PLACEHOLDER_FILL))
            c.setStrokeColor(self.color(_PLACEHOLDER_STROKE))
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
        color, width, opacity, fill = _style(item.style)
        kind = item.kind
        c = self.c
        if kind == "image":
            box = _box(item.box)
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
            pts = _points(item)
            if not pts or (kind in ("line", "arrow") and len(pts) < 2):
                return
            if kind in ("line", "arrow"):
                pts = [pts[0], pts[-1]]
            if _is_dot(pts):
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
                a, b, d = _arrowhead(pts[0], pts[-1], width)
                head.moveTo(*a)
                head.lineTo(*b)
                head.lineTo(*d)
                head.close()
                c.drawPath(head, stroke=0, fill=1)
            return
        box = _box(item.box)
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
            size = _num(item.font_size or DEFAULT_FONT_SIZE, DEFAULT_FONT_SIZE, 1.0, 1000.0)
            text = c.beginText()
            text.setFont(self.font, size)
            for n, line in enumerate(_lines(item.text)):
                if line:
                    baseline = y + size * (ASCENT + n * LINE_HEIGHT)
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


def render_pdf(title: str, pages: Sequence[Page], items: Iterable[Item], images: Images
               ) -> bytes:
    """One A4 landscape sheet per board page (what a school prints), the board scaled to the
    sheet's width under the board's title, with the same drawing as the SVG."""
    from reportlab.lib.colors import HexColor
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfgen.canvas import Canvas

    font, glyphs = _pdf_font()
    sheet_w, sheet_h = landscape(A4)
    margin, header, footer = 28.0, 26.0, 20.0
    scale = (sheet_w - 2 * margin) / PAGE_W
    board_h = PAGE_H * scale
    board_top = sheet_h - (sheet_h - header - board_h - footer) / 2 - header
    heading = _fit(_pdf_text(title, glyphs), font, 14, sheet_w - 2 * margin)

    out = io.BytesIO()
    c = Canvas(out, pagesize=(sheet_w, sheet_h), pageCompression=1)
    c.setTitle(_NOT_XML.sub("", title))
    c.setCreator("ENT — tableau de classe")
    groups = _by_page(pages, items)
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
        c.setStrokeColor(HexColor(_FRAME))
        c.setLineWidth(0.8)
        c.rect(margin, board_top - board_h, PAGE_W * scale, board_h, stroke=1, fill=0)
        c.showPage()
    if not pages:  # no page at all: still a valid PDF, one sheet with the title
        c.setFont(font, 14)
        c.drawString(margin, board_top + 9, heading)
        c.showPage()
    c.save()
    return out.getvalue()

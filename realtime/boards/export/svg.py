"""The SVG export: every page stacked in one document, strings escaped (served from our origin)."""

from __future__ import annotations

import base64
import functools
import html
from collections.abc import Iterable, Sequence

from realtime.boards.export import layout
from realtime.boards.export.layout import ASCENT, LINE_HEIGHT
from realtime.boards.ops import PAGE_H, PAGE_W, Item, Page

PAGE_GAP = 40  # SVG: room between pages stacked vertically
FONT_FAMILY = "system-ui, 'Noto Sans', 'DejaVu Sans', Arial, sans-serif"


def _esc(text: str) -> str:
    """Text or attribute value, escaped: user text must stay text ("<script>" included)."""
    return html.escape(layout.NOT_XML.sub("", text), quote=True)


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
    for color, width, segments in layout.background_rules(background):
        d = "".join(f"M{x1} {y1}L{x2} {y2}" for x1, y1, x2, y2 in segments)
        out.append(f'<path class="ruling" d="{d}" fill="none" stroke="{color}" '
                   f'stroke-width="{width}"/>')
    return "".join(out)


class _SvgImages:
    """Each distinct image once, as a <symbol> in <defs>; every use of it is a <use>.

    An image reused a thousand times must not be inlined a thousand times (a pupil with
    the pen could otherwise make the export weigh gigabytes)."""

    def __init__(self, images: layout.Images) -> None:
        self.images = images
        self.ids: dict[str, str] = {}
        self.defs: list[str] = []

    def use(self, src: str | None, x: float, y: float, w: float, h: float, opacity: float
            ) -> str:
        if w <= 0 or h <= 0:
            return ""
        found = layout.find_image(self.images, src)
        if found is None or src is None:
            return (f'<rect class="missing-image" x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" '
                    f'height="{_f(h)}" fill="{layout.PLACEHOLDER_FILL}" '
                    f'stroke="{layout.PLACEHOLDER_STROKE}" stroke-width="2" '
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
    color, width, opacity, fill = layout.stroke_style(item.style)
    stroke_alpha = f' stroke-opacity="{opacity:.2f}"' if opacity < 1 else ""
    fill_alpha = f' fill-opacity="{opacity:.2f}"' if opacity < 1 else ""
    line = (f' stroke="{color}" stroke-width="{width:g}" stroke-linecap="round" '
            f'stroke-linejoin="round"{stroke_alpha}')
    kind = item.kind
    if kind in ("stroke", "highlighter"):
        pts = layout.item_points(item)
        if not pts:
            return ""
        if layout.is_dot(pts):  # a tap: a round cap on nothing, drawn as the disc it looks like
            x, y = pts[0]
            return (f'<circle class="{kind}" cx="{_f(x)}" cy="{_f(y)}" r="{width / 2:g}" '
                    f'fill="{color}"{fill_alpha}/>')
        return f'<path class="{kind}" d="{_stroke_d(pts)}" fill="none"{line}/>'
    if kind in ("line", "arrow"):
        pts = layout.item_points(item)
        if len(pts) < 2:
            return ""
        (x1, y1), (x2, y2) = pts[0], pts[-1]
        out = f'<path class="{kind}" d="M{_f(x1)} {_f(y1)}L{_f(x2)} {_f(y2)}" fill="none"{line}/>'
        if kind == "arrow":
            tip = layout.arrowhead_points(pts[0], pts[-1], width)
            head = " ".join(f"{_f(x)},{_f(y)}" for x, y in tip)
            out += f'<polygon class="arrowhead" points="{head}" fill="{color}"{fill_alpha}/>'
        return out
    box = layout.box_rect(item.box)
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
        size = layout.font_size(item)
        spans = "".join(
            f'<tspan x="{_f(x)}" y="{_f(y + size * (ASCENT + n * LINE_HEIGHT))}">{_esc(t)}</tspan>'
            for n, t in enumerate(layout.text_lines(item.text)) if t
        )
        return (f'<text xml:space="preserve" font-family="{FONT_FAMILY}" '
                f'font-size="{size:g}" fill="{color}"{fill_alpha}>{spans}</text>')
    if kind == "image":
        return imgs.use(item.src, x, y, w, h, opacity)
    return ""


def render_svg(title: str, pages: Sequence[Page], items: Iterable[Item],
               images: layout.Images) -> str:
    """All pages in one SVG document, stacked top to bottom (one `<g class="page">` each), so
    the whole lesson opens in any browser or editor and stays sharp at any zoom."""
    groups = layout.items_by_page(pages, items)
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
                    f'stroke="{layout.FRAME}" stroke-width="2"/>')
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

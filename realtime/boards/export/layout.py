"""What the web client draws (`web_client/src/board/draw.js`), shared by both renderers:
sizes, rulings, stroke geometry, and the checks every colour, number and image passes."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence

from realtime.boards.ops import PAGE_H, PAGE_W, Box, Item, Page, Style

Images = dict[str, tuple[str, bytes]]  # src → (mime, bytes)

DEFAULT_FONT_SIZE = 32.0  # as the client draws a text without font_size
LINE_HEIGHT = 1.25  # the client's line advance, in font sizes
ASCENT = 0.8  # the client draws text from the top of the em box; baseline is this far below
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})

COLOR_RE = re.compile(r"#[0-9a-fA-F]{6}")
# What XML 1.0 cannot carry at all (control characters, lone surrogates, U+FFFE/FFFF).
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
PLACEHOLDER_FILL, PLACEHOLDER_STROKE = "#f3f4f6", "#9ca3af"
FRAME = "#9ca3af"

# Page backgrounds, as the client draws them: (colour, width, step, vertical, horizontal, from).
GRID, SEYES = 40, 64
RULINGS: dict[str, tuple[tuple[str, float, int, bool, bool, int], ...]] = {
    "squares": (("#c7d7ee", 1.2, GRID, True, True, 0),),
    "seyes": (
        ("#b9d3f0", 1.0, SEYES // 4, False, True, 0),
        ("#8d86c9", 1.6, SEYES, True, True, SEYES * 4),
    ),
    "lines": (("#9fbbe3", 1.5, SEYES, False, True, 0),),
}
SEYES_MARGIN = ("#e3557d", 2.5, SEYES * 4)

Segment = tuple[float, float, float, float]


# --- shared geometry ---------------------------------------------------------------------------

@functools.cache
def background_rules(background: str) -> tuple[tuple[str, float, tuple[Segment, ...]], ...]:
    """The ruled lines of a paper background: (colour, width, segments), drawn in order."""
    rules: list[tuple[str, float, tuple[Segment, ...]]] = []
    for color, width, step, vertical, horizontal, start in RULINGS.get(background, ()):
        segments: list[Segment] = []
        if vertical:
            segments += [(x, 0, x, PAGE_H) for x in range(start, PAGE_W + 1, step)]
        if horizontal:
            segments += [(0, y, PAGE_W, y) for y in range(step, PAGE_H + 1, step)]
        rules.append((color, width, tuple(segments)))
    if background == "seyes":
        color, width, x = SEYES_MARGIN
        rules.append((color, width, ((x, 0, x, PAGE_H),)))
    return tuple(rules)


def items_by_page(pages: Sequence[Page], items: Iterable[Item]) -> dict[str, list[Item]]:
    """Items of each page in z order, in one pass (a board may hold thousands of items)."""
    groups: dict[str, list[Item]] = {p.id: [] for p in pages}
    for item in items:
        bucket = groups.get(item.page_id)
        if bucket is not None:
            bucket.append(item)
    for bucket in groups.values():
        bucket.sort(key=lambda i: i.z)
    return groups


def item_points(item: Item) -> list[tuple[float, float]]:
    """The item's points, without any that could not be drawn (NaN, infinity)."""
    isfinite = math.isfinite
    return [(x, y) for x, y in item.points or () if isfinite(x) and isfinite(y)]


def box_rect(box: Box | None) -> tuple[float, float, float, float] | None:
    """x, y, w, h with a positive size (as the client's `normBox`), or None if unusable."""
    if box is None or not all(math.isfinite(v) for v in (box.x, box.y, box.w, box.h)):
        return None
    return min(box.x, box.x + box.w), min(box.y, box.y + box.h), abs(box.w), abs(box.h)


def is_dot(points: Sequence[tuple[float, float]]) -> bool:
    first = points[0]
    return all(p == first for p in points)


def arrowhead_points(a: tuple[float, float], b: tuple[float, float], width: float
               ) -> list[tuple[float, float]]:
    """The filled triangle at `b`, sized like the client's (12 + 3 × line width)."""
    angle = math.atan2(b[1] - a[1], b[0] - a[0])
    size = 12 + width * 3
    return [
        b,
        (b[0] - size * math.cos(angle - 0.45), b[1] - size * math.sin(angle - 0.45)),
        (b[0] - size * math.cos(angle + 0.45), b[1] - size * math.sin(angle + 0.45)),
    ]


def safe_color(value: str | None, default: str = "#1a1a1a") -> str:
    return value if value is not None and COLOR_RE.fullmatch(value) else default


def clamp_num(value: float, default: float, low: float, high: float) -> float:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return min(max(value, low), high)


def stroke_style(style: Style) -> tuple[str, float, float, str | None]:
    """Colour, width, opacity and fill, safe to write whatever the item was built from."""
    fill = safe_color(style.fill, "") or None
    return (safe_color(style.color), clamp_num(style.width, 4.0, 0.0, 1000.0),
            clamp_num(style.opacity, 1.0, 0.0, 1.0), fill)


def text_lines(text: str) -> list[str]:
    return NOT_XML.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).split("\n")


def find_image(images: Images, src: str | None) -> tuple[str, bytes] | None:
    found = images.get(src) if src else None
    if found is None or found[0] not in IMAGE_TYPES or not found[1]:
        return None
    return found


def image_sources(pages: Iterable[Page], items: Iterable[Item]) -> set[str]:
    """The image URLs a render will ask `images` for, so the caller loads only those."""
    found = {p.image for p in pages if p.background == "image" and p.image}
    found.update(i.src for i in items if i.kind == "image" and i.src)
    return found


def font_size(item: Item) -> float:
    """The text's size as the client draws it: its own, else the default, within bounds."""
    return clamp_num(item.font_size or DEFAULT_FONT_SIZE, DEFAULT_FONT_SIZE, 1.0, 1000.0)

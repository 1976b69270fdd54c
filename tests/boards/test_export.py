"""Board export: SVG and PDF drawn from pages and items, pure (images passed in as bytes)."""

from __future__ import annotations

import base64
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from itertools import pairwise

import pytest

from realtime.boards.export import image_sources, render_pdf, render_svg
from realtime.boards.export import pdf as pdf_module
from realtime.boards.ops import PAGE_H, PAGE_W, Box, Item, Page, Style

SVG = "{http://www.w3.org/2000/svg}"
SRC = "/api/boards/3/images/" + "a" * 64
FRENCH = "Leçon : « Élève, père, à côté, ça, cœur, œuvre »"


def png(w: int = 4, h: int = 3, rgb: tuple[int, int, int] = (30, 160, 90)) -> bytes:
    """A tiny valid PNG, built by hand (no imaging library needed)."""
    raw = b"".join(b"\x00" + bytes(rgb) * w for _ in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def stroke(id_: str, page: str, points: list[tuple[float, float]], z: int = 1, **style: object
           ) -> Item:
    return Item(id=id_, kind="stroke", page_id=page, points=points, z=z, style=Style(**style))


def boxed(id_: str, kind: str, page: str, x: float, y: float, w: float, h: float, z: int = 1,
          **fields: object) -> Item:
    return Item(id=id_, kind=kind, page_id=page, box=Box(x=x, y=y, w=w, h=h), z=z, **fields)


def board() -> tuple[list[Page], list[Item], dict[str, tuple[str, bytes]]]:
    pages = [Page(id="p1", background="squares"), Page(id="p2", background="seyes"),
             Page(id="p3", background="lines"), Page(id="p4")]
    items = [
        stroke("s1", "p1", [(10, 20), (30, 40), (50, 60)], color="#1d4ed8", width=6),
        Item(id="h1", kind="highlighter", page_id="p1", points=[(100, 500), (900, 520)], z=2,
             style=Style(color="#facc15", width=40, opacity=0.35)),
        Item(id="a1", kind="arrow", page_id="p1", points=[(300, 800), (900, 650)], z=3),
        Item(id="l1", kind="line", page_id="p1", points=[(1000, 900), (1800, 900)], z=4),
        boxed("r1", "rect", "p1", 1300, 600, 400, 200, z=5,
              style=Style(color="#7e22ce", fill="#e9d5ff")),
        boxed("e1", "ellipse", "p1", 1450, 100, 300, 180, z=6),
        boxed("t1", "text", "p2", 300, 100, 800, 200, text=f"{FRENCH}\n<script>alert(1)</script>",
              font_size=48),
        boxed("i1", "image", "p2", 1200, 500, 400, 300, z=2, src=SRC),
    ]
    return pages, items, {SRC: ("image/png", png())}


def page_groups(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "page"]


# --- SVG -------------------------------------------------------------------------------------

def test_svg_is_xml_with_a_title_and_one_group_per_page_stacked() -> None:
    pages, items, images = board()
    root = ET.fromstring(render_svg("Cours de maths", pages, items, images))
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title").text == "Cours de maths"
    groups = page_groups(root)
    assert len(groups) == len(pages)
    assert [g.get("data-page-id") for g in groups] == ["p1", "p2", "p3", "p4"]
    tops = [float(re.fullmatch(r"translate\(0 (\d+)\)", g.get("transform")).group(1))
            for g in groups]
    assert tops[0] == 0 and all(b - a >= PAGE_H for a, b in pairwise(tops))
    assert float(root.get("height")) >= tops[-1] + PAGE_H
    assert root.get("width") == str(PAGE_W)


def test_svg_stroke_is_a_smoothed_round_path() -> None:
    pages, items, images = board()
    root = ET.fromstring(render_svg("t", pages, items, images))
    path = next(p for p in root.iter(f"{SVG}path") if p.get("class") == "stroke")
    assert path.get("d") == "M10.0 20.0Q30.0 40.0 40.0 50.0L50.0 60.0"
    assert path.get("stroke") == "#1d4ed8" and path.get("stroke-width") == "6"
    assert path.get("stroke-linecap") == "round" and path.get("stroke-linejoin") == "round"
    assert path.get("fill") == "none"


def test_svg_highlighter_keeps_its_opacity_and_arrow_its_head() -> None:
    pages, items, images = board()
    root = ET.fromstring(render_svg("t", pages, items, images))
    high = next(p for p in root.iter(f"{SVG}path") if p.get("class") == "highlighter")
    assert high.get("stroke-opacity") == "0.35"
    heads = [p for p in root.iter(f"{SVG}polygon") if p.get("class") == "arrowhead"]
    assert len(heads) == 1
    assert heads[0].get("points").startswith("900.0,650.0 ")  # the tip is the arrow's end


def test_svg_escapes_user_text_and_keeps_accents_and_line_breaks() -> None:
    pages, items, images = board()
    svg = render_svg('<script>alert("t")</script> & «titre»', pages, items, images)
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    root = ET.fromstring(svg)
    assert root.find(f"{SVG}title").text == '<script>alert("t")</script> & «titre»'
    text = next(root.iter(f"{SVG}text"))
    lines = [span.text for span in text.iter(f"{SVG}tspan")]
    assert lines == [FRENCH, "<script>alert(1)</script>"]
    ys = [float(span.get("y")) for span in text.iter(f"{SVG}tspan")]
    assert ys[1] - ys[0] == pytest.approx(48 * 1.25)
    assert FRENCH in svg  # written as is (UTF-8), not as character references


def test_svg_survives_characters_xml_cannot_carry() -> None:
    item = boxed("t", "text", "p1", 0, 0, 10, 10, text="a\x00b\x07c\ufffe😀\r\nfin")
    root = ET.fromstring(render_svg("x\x01y", [Page(id="p1")], [item], {}))
    assert [s.text for s in root.iter(f"{SVG}tspan")] == ["abc😀", "fin"]
    assert root.find(f"{SVG}title").text == "xy"


def test_svg_embeds_images_once_as_data_urls() -> None:
    pages, items, images = board()
    pages.append(Page(id="p5", background="image", image=SRC))
    items.append(boxed("i2", "image", "p1", 0, 0, 50, 50, z=9, src=SRC))
    svg = render_svg("t", pages, items, images)
    url = "data:image/png;base64," + base64.b64encode(images[SRC][1]).decode()
    assert svg.count(url) == 1  # stored once, however often it is used
    root = ET.fromstring(svg)
    image = next(root.iter(f"{SVG}image"))
    assert image.get("href") == url
    uses = list(root.iter(f"{SVG}use"))
    assert len(uses) == 3  # two items and one page background
    assert {u.get("href") for u in uses} == {"#img-0"}
    assert [u.get("width") for u in uses] == ["50.0", "400.0", "1920.0"]


def test_svg_missing_or_unsafe_images_become_placeholders() -> None:
    items = [boxed("i1", "image", "p1", 0, 0, 50, 50, src=SRC),
             boxed("i2", "image", "p1", 0, 0, 50, 50, src="/api/boards/3/images/gone")]
    svg = render_svg("t", [Page(id="p1")], items, {SRC: ("text/html", b"<script>x</script>")})
    root = ET.fromstring(svg)
    assert "data:" not in svg and "<script>" not in svg
    assert [r.get("class") for r in root.iter(f"{SVG}rect")].count("missing-image") == 2


def test_svg_dot_empty_page_zero_boxes_and_z_order() -> None:
    pages = [Page(id="p1"), Page(id="empty")]
    items = [
        stroke("late", "p1", [(5, 5), (9, 9)], z=9),
        stroke("dot", "p1", [(100, 200)], z=3, width=10, color="#dc2626"),
        stroke("tap", "p1", [(300, 300), (300, 300)], z=4),
        boxed("r0", "rect", "p1", 10, 10, 0, 0, z=5),
        boxed("e0", "ellipse", "p1", 10, 10, 0, 0, z=6),
        boxed("i0", "image", "p1", 10, 10, 0, 0, z=7, src=SRC),
        boxed("t0", "text", "p1", 10, 10, 0, 0, z=8, text="ok"),
        stroke("elsewhere", "no-such-page", [(1, 1), (2, 2)]),
    ]
    root = ET.fromstring(render_svg("t", pages, items, {SRC: ("image/png", png())}))
    first, empty = page_groups(root)
    dots = list(first.iter(f"{SVG}circle"))
    assert [(d.get("cx"), d.get("cy"), d.get("r"), d.get("fill")) for d in dots] == [
        ("100.0", "200.0", "5", "#dc2626"), ("300.0", "300.0", "2", "#1a1a1a")]
    drawn = [e for e in first.iter() if e.get("class") not in (None, "paper", "frame", "ruling")]
    assert [e.get("class") for e in drawn][-1] == "stroke"  # z=9 drawn last
    assert not list(first.iter(f"{SVG}use"))  # a zero-size image draws nothing
    assert [e.tag for e in empty.iter()] == [f"{SVG}g", f"{SVG}rect", f"{SVG}g", f"{SVG}rect"]


def test_svg_backgrounds() -> None:
    pages = [Page(id=b, background=b) for b in ("blank", "squares", "seyes", "lines")]
    root = ET.fromstring(render_svg("t", pages, [], {}))
    rulings = {g.get("data-page-id"): [p.get("stroke") for p in g.iter(f"{SVG}path")
                                       if p.get("class") == "ruling"]
               for g in page_groups(root)}
    assert rulings["blank"] == []
    assert len(rulings["squares"]) == 1 and len(rulings["lines"]) == 1
    assert "#e3557d" in rulings["seyes"]  # the red margin line
    squares = next(p for g in page_groups(root) if g.get("data-page-id") == "squares"
                   for p in g.iter(f"{SVG}path"))
    assert squares.get("d").count("M") == PAGE_W // 40 + 1 + PAGE_H // 40


def test_image_sources_lists_what_to_load() -> None:
    pages, items, _ = board()
    pages.append(Page(id="p5", background="image", image="/api/boards/3/images/bg"))
    assert image_sources(pages, items) == {SRC, "/api/boards/3/images/bg"}


# --- PDF -------------------------------------------------------------------------------------

def pdf_pages(pdf: bytes) -> int:
    """Pages, counted twice without a PDF parser: the page tree's /Count and the /Page objects
    (reportlab writes objects uncompressed; only content streams are deflated)."""
    tree = re.search(rb"<<[^<>]*/Count\s+(\d+)[^<>]*/Type\s*/Pages\b", pdf)
    assert tree is not None
    count = int(tree.group(1))
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == count
    return count


def pdf_text(pdf: bytes) -> str | None:
    tool = shutil.which("pdftotext")
    if tool is None:
        return None
    return subprocess.run([tool, "-", "-"], input=pdf, capture_output=True, check=True,
                          timeout=30).stdout.decode()


def test_pdf_has_one_landscape_page_per_board_page() -> None:
    pages, items, images = board()
    pdf = render_pdf("Cours de maths", pages, items, images)
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert pdf_pages(pdf) == 4
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert len(boxes) == 4
    assert all(float(w) > float(h) for w, h in boxes)  # landscape


def test_pdf_text_keeps_french_accents() -> None:
    pages, items, images = board()
    pdf = render_pdf("Cahier de 5e — « fractions »", pages, items, images)
    if pdf_module._pdf_font()[0] != pdf_module.FALLBACK_FONT:
        assert b"DejaVuSans" in pdf  # the TTF is embedded, "œ" included
    text = pdf_text(pdf)
    if text is None:
        pytest.skip("pdftotext (poppler-utils) is not installed: page count checked only")
    assert FRENCH in text
    assert "<script>alert(1)</script>" in text
    assert "Cahier de 5e — « fractions »" in text
    assert "Page 2 / 4" in text


@pytest.fixture
def no_ttf(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    pdf_module._pdf_font.cache_clear()
    monkeypatch.setattr(pdf_module, "TTF_PATHS", ("/nonexistent/font.ttf",))
    yield
    pdf_module._pdf_font.cache_clear()


def test_pdf_falls_back_to_helvetica_without_crashing(no_ttf: None) -> None:
    item = boxed("t", "text", "p1", 0, 0, 10, 10, text="œ « é » 😀 中文 \x00")
    pdf = render_pdf("Leçon 😀", [Page(id="p1")], [item], {})
    assert pdf_module._pdf_font()[0] == "Helvetica"
    assert pdf_pages(pdf) == 1
    text = pdf_text(pdf)
    if text is not None:
        assert "œ « é »" in text


def test_pdf_survives_odd_content() -> None:
    long_title = "Un titre très long " * 40
    pages = [Page(id="p1"), Page(id="empty", background="seyes"),
             Page(id="bg", background="image", image="/api/boards/3/images/broken")]
    items = [
        stroke("dot", "p1", [(100, 200)]),
        stroke("emoji", "p1", [(1, 1), (2, 2), (3, 1)]),
        boxed("r0", "rect", "p1", 10, 10, 0, 0),
        boxed("e0", "ellipse", "p1", 10, 10, 0, 0),
        boxed("i0", "image", "p1", 10, 10, 0, 0, src=SRC),
        boxed("i1", "image", "p1", 10, 10, 50, 50, src="/api/boards/3/images/broken"),
        boxed("i2", "image", "p1", 10, 10, 50, 50, src=SRC),
        boxed("t0", "text", "p1", 0, 0, 0, 0, text="\n\n😀\x07 中文"),
    ]
    images = {SRC: ("image/png", png()),
              "/api/boards/3/images/broken": ("image/png", png()[:30])}
    pdf = render_pdf(long_title, pages, items, images)
    assert pdf_pages(pdf) == 3
    assert pdf.count(b"/Subtype /Image") == 1  # the good image, once; the broken one skipped


def test_pdf_of_a_board_without_pages_is_still_a_pdf() -> None:
    pdf = render_pdf("vide", [], [], {})
    assert pdf.startswith(b"%PDF-") and pdf_pages(pdf) == 1


def test_many_items_render() -> None:
    """A full page (5,000 items) renders; kept linear by grouping items per page once."""
    items = [stroke(f"s{n}", "p1", [(n % 1900 + i, n % 1000 + i % 3) for i in range(20)], z=n)
             for n in range(5000)]
    pages = [Page(id="p1"), Page(id="p2")]
    root = ET.fromstring(render_svg("t", pages, items, {}))
    assert sum(1 for _ in root.iter(f"{SVG}path")) >= 5000
    assert pdf_pages(render_pdf("t", pages, items, {})) == 2

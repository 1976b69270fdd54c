"""`GET /api/boards/{id}/export.svg|pdf` on a real server, with a board drawn over /boards."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from typing import Any

import aiohttp
import pytest

from tests.boards.conftest import stroke
from tests.boards.test_export import pdf_pages, pdf_text, png
from tests.boards.test_socket import Cast, create_board
from tests.conftest import login

SVG = "{http://www.w3.org/2000/svg}"
TITLE = "Théorème de Pythagore"


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def draw_lesson(base: str, cast: Cast, board_client: Any) -> tuple[int, str]:
    """A two-page board: strokes, a rectangle, a French text and an uploaded image."""
    board = await create_board(base, cast, TITLE)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, cast.teacher)
        async with s.post(f"{base}/api/boards/{board}/images", data=png(6, 4),
                          headers={"Content-Type": "image/png"}) as r:
            assert r.status == 201
            src = (await r.json())["src"]
    teacher = await board_client(cast.teacher)
    assert (await teacher.call("join", {"board_id": board}))["ok"]
    ops = [
        stroke("s1", n=5),
        {"type": "append", "item_id": "s1", "points": [[40, 40], [80, 120]]},
        {"type": "add", "item": {"id": "r1", "kind": "rect", "page_id": "p1",
                                 "box": {"x": 100, "y": 100, "w": 300, "h": 200},
                                 "style": {"color": "#1d4ed8", "width": 3}}},
        {"type": "add", "item": {"id": "t1", "kind": "text", "page_id": "p1",
                                 "box": {"x": 500, "y": 80, "w": 900, "h": 120},
                                 "text": f"{TITLE} : a² + b² = c²", "font_size": 48}},
        {"type": "add_page", "page": {"id": "p2", "background": "seyes"}},
        {"type": "add", "item": {"id": "i1", "kind": "image", "page_id": "p2", "src": src,
                                 "box": {"x": 200, "y": 200, "w": 600, "h": 400}}},
        stroke("s2", page="p2", n=4, x=900),
    ]
    for op in ops:
        ack = await teacher.call("op", {"board_id": board, "op": op})
        assert ack["ok"], ack
    return board, src


async def test_teacher_exports_svg_and_pdf(demo_server: str, board_client: Any,
                                           cast: Cast) -> None:
    board, src = await draw_lesson(demo_server, cast, board_client)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, demo_server, cast.teacher)
        async with s.get(f"{demo_server}/api/boards/{board}/export.svg") as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "image/svg+xml; charset=utf-8"
            disposition = r.headers["Content-Disposition"]
            svg = await r.text()
        assert disposition == ('attachment; filename="Theoreme de Pythagore.svg"; '
                               "filename*=UTF-8''Th%C3%A9or%C3%A8me%20de%20Pythagore.svg")
        root = ET.fromstring(svg)
        assert root.find(f"{SVG}title").text == TITLE
        pages = [g for g in root.iter(f"{SVG}g") if g.get("class") == "page"]
        assert [g.get("data-page-id") for g in pages] == ["p1", "p2"]
        texts = "".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))
        assert f"{TITLE} : a² + b² = c²" in texts
        classes = [[e.get("class") for e in g.iter(f"{SVG}path")] for g in pages]
        assert classes[0].count("stroke") == 1 and classes[0].count("rect") == 1
        assert classes[1].count("stroke") == 1
        first = next(e for e in pages[0].iter(f"{SVG}path") if e.get("class") == "stroke")
        assert first.get("stroke") == "#d62828"
        embedded = [e for e in root.iter(f"{SVG}image")
                    if (e.get("href") or "").startswith("data:image/png;base64,")]
        assert embedded, "the uploaded image is embedded, not linked"
        assert src not in svg  # no URL that would need the viewer's session

        async with s.get(f"{demo_server}/api/boards/{board}/export.pdf") as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "application/pdf"
            assert r.headers["Content-Disposition"].startswith(
                'attachment; filename="Theoreme de Pythagore.pdf"; filename*=UTF-8''')
            pdf = await r.read()
    assert pdf.startswith(b"%PDF-") and pdf_pages(pdf) == 2
    assert pdf.count(b"/Subtype /Image") == 1
    text = await asyncio.to_thread(pdf_text, pdf)
    assert text is not None, "pdftotext (poppler-utils) is part of the test setup"
    assert TITLE in text and "Page 2 / 2" in text


async def test_export_refusals(demo_server: str, board_client: Any, cast: Cast) -> None:
    board, _src = await draw_lesson(demo_server, cast, board_client)
    for fmt in ("svg", "pdf"):
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{demo_server}/api/boards/{board}/export.{fmt}") as r:
                assert r.status == 401
                assert (await r.json())["error"]["code"] == "unauthorized"
    for who in (cast.parent, cast.outsider):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            await login(s, demo_server, who)
            for fmt in ("svg", "pdf"):
                async with s.get(f"{demo_server}/api/boards/{board}/export.{fmt}") as r:
                    assert r.status == 404
                    assert (await r.json())["error"]["code"] == "not_found"
                async with s.get(f"{demo_server}/api/boards/{board + 999}/export.{fmt}") as r:
                    assert r.status == 404  # absent and forbidden answer alike
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, demo_server, cast.alice)  # a pupil of the class may take the lesson home
        async with s.get(f"{demo_server}/api/boards/{board}/export.svg") as r:
            assert r.status == 200 and TITLE in await r.text()

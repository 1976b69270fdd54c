"""Running the session from the page, server side: rename, instruments shown to the class,
and the « Reprendre le cours » cards (page count, thumbnail)."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from PIL import Image

from realtime.boards.routes import ThumbnailCache
from tests.boards.conftest import stroke
from tests.boards.pdfs import worksheet_pdf
from tests.boards.test_import import fetch, upload
from tests.boards.test_socket import Cast, create_board
from tests.conftest import get_json


async def test_rename_reaches_every_member_and_the_list(
        demo_server: str, board_client: Any, cast: Cast) -> None:
    board = await create_board(demo_server, cast)
    teacher, alice = [await board_client(a) for a in (cast.teacher, cast.alice)]
    for c in (teacher, alice):
        await c.call("join", {"board_id": board})
    refused = await alice.call("rename", {"board_id": board, "title": "Pirate"})
    assert refused["error"]["code"] == "forbidden"
    blank = await teacher.call("rename", {"board_id": board, "title": "   "})
    assert blank["error"]["code"] == "invalid"
    ack = await teacher.call("rename", {"board_id": board, "title": "  Théorème   de Thalès "})
    assert ack["ok"], ack
    await alice.wait_seq(ack["seq"])
    control = alice.ops[-1]["op"]
    assert control["type"] == "control" and control["title"] == "Théorème de Thalès"
    assert control["state"] == "live"  # the rest of the controls unchanged
    again = await alice.call("join", {"board_id": board})
    assert again["board"]["title"] == "Théorème de Thalès"
    status, meta = await get_json(demo_server, cast.alice, f"/api/boards/{board}")
    assert status == 200 and meta["title"] == "Théorème de Thalès"


async def test_instruments_are_shown_to_the_class_and_to_late_joiners(
        demo_server: str, board_client: Any, cast: Cast) -> None:
    board = await create_board(demo_server, cast)
    teacher, alice = [await board_client(a) for a in (cast.teacher, cast.alice)]
    for c in (teacher, alice):
        await c.call("join", {"board_id": board})
    ruler = {"board_id": board, "kind": "ruler", "page_id": "p1", "x": 400, "y": 500,
             "angle": 30, "size": 900}
    assert (await teacher.call("instrument", ruler))["ok"]
    await alice.wait_for(lambda: alice.events["instrument"])
    assert alice.events["instrument"][-1]["angle"] == 30
    assert (await alice.call("instrument", ruler))["error"]["code"] == "forbidden"
    bob = await board_client(cast.bob)
    late = await bob.call("join", {"board_id": board})
    assert [i["kind"] for i in late["instruments"]] == ["ruler"]
    assert (await teacher.call("instrument", {**ruler, "shown": False}))["ok"]
    await alice.wait_for(lambda: alice.events["instrument"][-1]["shown"] is False)
    assert (await bob.call("join", {"board_id": board}))["instruments"] == []


async def test_resume_cards_have_page_count_and_thumbnail(
        demo_server: str, board_client: Any, cast: Cast) -> None:
    board = await create_board(demo_server, cast)
    status, _ = await upload(demo_server, cast.teacher, board, worksheet_pdf(2))
    assert status == 201
    teacher = await board_client(cast.teacher)
    join = await teacher.call("join", {"board_id": board})
    red = stroke("s1", n=40, x=200)
    red["item"]["style"] = {"color": "#dc2626", "width": 30}
    assert (await teacher.call("op", {"board_id": board, "op": red}))["ok"]
    status, boards = await get_json(demo_server, cast.alice,
                                    f"/api/boards?class_id={join['board']['class_id']}")
    card = next(b for b in boards["boards"] if b["id"] == board)
    assert card["page_count"] == 3
    assert card["created_at"] > 1_600_000_000  # seconds since 1970: the client multiplies
    status, png, mime = await fetch(demo_server, cast.alice, f"/api/boards/{board}/thumbnail.png")
    assert status == 200 and mime == "image/png"
    img = Image.open(io.BytesIO(png)).convert("RGB")
    assert abs(img.width / img.height - 16 / 9) < 0.02  # the board alone, no sheet margins
    # The red stroke at (200..239, 200..239) of 1920 × 1080 is on it.
    x, y = round(220 * img.width / 1920), round(220 * img.height / 1080)
    r, g, b = img.getpixel((x, y))
    assert r > 180 and g < 120 and b < 120, (r, g, b)
    assert (await fetch(demo_server, cast.outsider, f"/api/boards/{board}/thumbnail.png"))[0] \
        == 404
    await teacher.close()


async def test_a_thumbnail_is_rendered_once_per_board_at_a_time() -> None:
    """A board being drawn on moves every few ms: its thumbnail is not rendered again for each
    request, and requests that come together share one render."""
    now = [0.0]
    cache = ThumbnailCache(fresh_s=20, clock=lambda: now[0])
    renders = 0

    async def render() -> bytes:
        nonlocal renders
        renders += 1
        await asyncio.sleep(0.05)
        return b"png"

    together = await asyncio.gather(*(cache.once(7, render) for _ in range(5)))
    assert together == [b"png"] * 5 and renders == 1
    cache.put(7, ("e", 10), b"png")
    assert cache.get(7, ("e", 11)) == b"png"  # moved, but fresh enough
    now[0] = 21
    assert cache.get(7, ("e", 11)) is None  # moved and old: render again
    assert cache.get(7, ("e", 10)) == b"png"  # not moved: still right

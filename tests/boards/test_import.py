"""`POST /api/boards/{id}/import` with real files over real HTTP: a worksheet PDF drawn by
reportlab becomes board pages (each its page as background), the class sees them arrive with
the progress, `join` lists them, their images are served under the board's policy, exports
carry them, a crash loses none; bad files change nothing."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image

from tests.boards.pdfs import content_box, phone_photo, worksheet_pdf
from tests.boards.test_durability import _client, server_process
from tests.boards.test_socket import Cast, create_board
from tests.conftest import login
from tests.test_server import _free_port, _wait_ready


def children_of(pid: int) -> list[str]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return f.read().split()


def alive(pid: str) -> bool:
    return os.path.exists(f"/proc/{pid}")


async def upload(base: str, acct: dict[str, Any], board: int, data: bytes,
                 name: str = "fiche.pdf", mime: str = "application/pdf") -> tuple[int, Any]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, acct)
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type=mime)
        async with s.post(f"{base}/api/boards/{board}/import", data=form) as r:
            return r.status, await r.json()


async def fetch(base: str, acct: dict[str, Any], path: str) -> tuple[int, bytes, str]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, acct)
        async with s.get(f"{base}{path}") as r:
            return r.status, await r.read(), r.content_type


async def test_a_pdf_becomes_pages_the_class_sees_arrive(
        demo_server: str, board_client: Any, cast: Cast) -> None:
    board = await create_board(demo_server, cast)
    teacher, alice = [await board_client(a) for a in (cast.teacher, cast.alice)]
    for c in (teacher, alice):
        assert (await c.call("join", {"board_id": board}))["ok"]

    status, body = await upload(demo_server, cast.teacher, board, worksheet_pdf(3))
    assert status == 201, body
    pages = body["pages"]
    assert len(pages) == 3 and all(p["background"] == "image" for p in pages)

    # The pupil saw the three pages arrive as ops, in order, with the progress after each.
    await alice.wait_for(lambda: len(alice.events["import"]) == 3)
    added = [o["op"]["page"] for o in alice.ops if o["op"]["type"] == "add_page"]
    assert [p["id"] for p in added] == [p["id"] for p in pages]
    assert [(e["done"], e["total"]) for e in alice.events["import"]] == [(1, 3), (2, 3), (3, 3)]
    assert alice.events["import"][0]["name"] == "fiche.pdf"

    # `join` lists them after the first page; their images are served to the class only.
    again = await alice.call("join", {"board_id": board})
    assert [p["id"] for p in again["snapshot"]["pages"]] == ["p1", *[p["id"] for p in pages]]
    assert again["limits"]["import_pages"] == 60 and again["limits"]["import_bytes"] > 1 << 20
    status, jpeg, mime = await fetch(demo_server, cast.alice, pages[1]["image"])
    assert status == 200 and mime == "image/jpeg"
    frame = Image.open(io.BytesIO(jpeg))
    assert frame.size == (2880, 1620)  # 16:9, 1.5 × the 1920 × 1080 sheet
    left, top, right, _ = content_box(jpeg)
    # An A4 portrait page (its blue band spans its width), its height the frame's, its
    # proportions kept (595 × 842 pt), centred: white on each side to write.
    assert top == 0 and abs((right - left) - 1620 * 595 / 842) < 6, (left, right)
    assert abs((left + right) / 2 - 1440) < 6
    for outsider in (cast.outsider, cast.parent):
        assert (await fetch(demo_server, outsider, pages[1]["image"]))[0] == 404

    # The exports draw the backgrounds.
    status, svg, _ = await fetch(demo_server, cast.teacher, f"/api/boards/{board}/export.svg")
    assert status == 200 and svg.count(b"data:image/jpeg;base64,") >= 3
    status, pdf, _ = await fetch(demo_server, cast.teacher, f"/api/boards/{board}/export.pdf")
    assert status == 200 and pdf.count(b"/Subtype /Image") >= 3

    # The teacher can take an imported page back with undo, like any page.
    undo = await teacher.call("undo", {"board_id": board})
    assert undo["ok"]
    await teacher.wait_seq(undo["seq"])
    assert teacher.ops[-1]["op"] == {"type": "remove_page", "page_id": pages[-1]["id"]}


async def test_a_phone_photo_stands_the_right_way_up(
        demo_server: str, board_client: Any, cast: Cast) -> None:
    board = await create_board(demo_server, cast)
    status, body = await upload(demo_server, cast.teacher, board, phone_photo(6),
                                name="manuel.jpg", mime="image/jpeg")
    assert status == 201, body
    (page,) = body["pages"]
    _, jpeg, _ = await fetch(demo_server, cast.teacher, page["image"])
    left, top, right, bottom = content_box(jpeg)
    # Stored 800 × 400 with "turn 90° clockwise": shown as a portrait 400 × 800, whose top
    # (the red half of the sensor's pixels, its left) is now on top.
    assert bottom - top > right - left
    img = Image.open(io.BytesIO(jpeg)).convert("RGB")
    cx = (left + right) // 2
    assert img.getpixel((cx, top + 20))[0] > 180 and img.getpixel((cx, top + 20))[1] < 80
    assert img.getpixel((cx, bottom - 20))[2] > 180 and img.getpixel((cx, bottom - 20))[0] < 80
    assert (bottom - top) == 1620 and abs((right - left) - 810) < 4  # fitted, not stretched


async def test_bad_files_and_people_who_may_not_change_nothing(
        demo_server: str, board_client: Any, cast: Cast) -> None:
    board = await create_board(demo_server, cast)
    alice = await board_client(cast.alice)
    await alice.call("join", {"board_id": board})

    cases = [
        (cast.alice, worksheet_pdf(1), 403, "forbidden"),  # a pupil, even with the pen later
        (cast.parent, worksheet_pdf(1), 404, "not_found"),
        (cast.outsider, worksheet_pdf(1), 404, "not_found"),
        (cast.teacher, b"MZ\x90\x00 not a pdf", 415, "unsupported_media_type"),
        (cast.teacher, b"%PDF-1.7\n garbage that is no PDF at all", 400, "invalid"),
        (cast.teacher, worksheet_pdf(61), 413, "too_large"),  # import_pages is 60
        (cast.teacher, b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, 400, "invalid"),
    ]
    for acct, data, want, code in cases:
        status, body = await upload(demo_server, acct, board, data)
        assert (status, body["error"]["code"]) == (want, code), (acct["role"], body)
        assert body["error"]["message"]

    # With the pen, a pupil draws but still does not add pages.
    teacher = await board_client(cast.teacher)
    await teacher.call("join", {"board_id": board})
    assert (await teacher.call("grant", {"board_id": board, "pen": "everyone"}))["ok"]
    status, body = await upload(demo_server, cast.alice, board, worksheet_pdf(1))
    assert status == 403 and "enseignant" in body["error"]["message"]
    join = await alice.call("join", {"board_id": board})
    assert [p["id"] for p in join["snapshot"]["pages"]] == ["p1"]
    assert not [o for o in alice.ops if o["op"]["type"] == "add_page"]


async def test_imported_pages_survive_a_crash(demo_db_path: Path,
                                              demo_accounts: list[dict[str, Any]]) -> None:
    people = Cast(demo_accounts)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with server_process(demo_db_path, port) as proc:
        await _wait_ready(base, proc)
        board = await create_board(base, people)
        status, body = await upload(base, people.teacher, board, worksheet_pdf(4))
        assert status == 201, body
        workers = children_of(proc.pid)
        assert workers, "the render process runs beside the server"
        proc.send_signal(signal.SIGKILL)  # no goodbye, no final snapshot
        proc.wait(timeout=10)
        # Its render process does not outlive it (it would wait for tasks for ever).
        for _ in range(100):
            if not any(alive(w) for w in workers):
                break
            await asyncio.sleep(0.1)
        assert not any(alive(w) for w in workers), workers
    with server_process(demo_db_path, port) as proc:
        await _wait_ready(base, proc)
        alice = await _client(base, people.alice)
        join = await alice.call("join", {"board_id": board})
        await alice.close()
        pages = join["snapshot"]["pages"]
        assert [p["id"] for p in pages[1:]] == [p["id"] for p in body["pages"]]
        for p in pages[1:]:
            status, jpeg, mime = await fetch(base, people.alice, p["image"])
            assert status == 200 and mime == "image/jpeg" and len(jpeg) > 10_000


async def test_one_import_at_a_time_per_board(
        demo_server: str, board_client: Any, cast: Cast) -> None:
    """Two imports sent together on one board: one runs, the other is told to wait; the
    board then has exactly the pages of one of them."""
    board = await create_board(demo_server, cast)
    pdf = worksheet_pdf(20)
    results = await asyncio.gather(*(upload(demo_server, cast.teacher, board, pdf)
                                     for _ in range(2)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201, 409], results
    refused = next(body for status, body in results if status == 409)
    assert "déjà en cours" in refused["error"]["message"]
    teacher = await board_client(cast.teacher)
    join = await teacher.call("join", {"board_id": board})
    assert len(join["snapshot"]["pages"]) == 21


async def test_a_render_that_never_ends_is_stopped_and_the_next_one_works(
        monkeypatch: Any) -> None:
    """A page that keeps PDFium busy for ever must not keep every later import waiting: its
    render process is killed at the time limit and a new one takes the next task."""
    from realtime.boards import imports
    from realtime.errors import AppError

    monkeypatch.setattr(imports, "RENDER_TIMEOUT_S", 1.0)
    importer = imports.PageImporter(service=None)  # type: ignore[arg-type]
    try:
        first = await importer.render(os.getpid)
        try:
            await importer.render(time.sleep, 30)
            raise AssertionError("not stopped")
        except AppError as err:
            assert err.code == "invalid" and "trop long" in err.message
        assert not alive(str(first)) or await _gone(first)
        second = await importer.render(os.getpid)
        assert second != first
    finally:
        importer.close()


async def _gone(pid: int) -> bool:
    for _ in range(50):
        if not alive(str(pid)):
            return True
        await asyncio.sleep(0.1)
    return False

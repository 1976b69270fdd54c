"""Exports cannot stall the event loop (issue #13 item 5): rendered in worker processes,
limited per user, cached by the board's seq. Real server, real HTTP and Socket.IO clients."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from realtime import keys
from realtime.app import create_app
from tests.boards.conftest import BoardClient
from tests.boards.test_socket import Cast, create_board
from tests.conftest import login, make_settings, token_for
from tests.coursedocs.conftest import until


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def _server(aiohttp_server: Any, tmp_path: Path, demo_db_path: Path,
                  **overrides: Any) -> tuple[str, Any]:
    server = await aiohttp_server(create_app(make_settings(tmp_path, db_path=demo_db_path,
                                                           **overrides)))
    return str(server.make_url("")).rstrip("/"), server.app


async def _heavy_board(base: str, cast: Cast, strokes: int = 150, points: int = 400) -> int:
    board = await create_board(base, cast, "Tableau chargé")
    teacher = await BoardClient(base, await token_for(base, cast.teacher)).connect()
    try:
        assert (await teacher.call("join", {"board_id": board}))["ok"]
        for i in range(strokes):
            pts = [[(i * 7 + j * 3) % 1900, (i * 11 + j * 5) % 1000] for j in range(points)]
            op = {"type": "add", "item": {"id": f"s{i}", "kind": "stroke", "page_id": "p1",
                                          "points": pts,
                                          "style": {"color": "#d62828", "width": 6}}}
            while True:
                ack = await teacher.call("op", {"board_id": board, "op": op})
                if ack["ok"]:
                    break
                assert ack["error"]["code"] == "rate_limited", ack
                await asyncio.sleep(0.2)
    finally:
        await teacher.close()
    return board


async def test_healthz_answers_while_a_pupil_runs_parallel_exports(
        aiohttp_server: Any, tmp_path: Path, demo_db_path: Path, cast: Cast) -> None:
    base, app = await _server(aiohttp_server, tmp_path, demo_db_path)
    boards = [await _heavy_board(base, cast) for _ in range(2)]
    order: list[str] = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as pupil:
        await login(pupil, base, cast.alice)

        refused: list[dict[str, Any]] = []

        async def export(board: int, fmt: str) -> None:
            async with pupil.get(f"{base}/api/boards/{board}/export.{fmt}") as r:
                if r.status == 429:  # past the two renders one user may wait for
                    refused.append(await r.json())
                    return
                assert r.status == 200, await r.text()
                assert len(await r.read()) > 10_000
            order.append(f"export {board}.{fmt}")

        tasks = [asyncio.create_task(export(b, fmt)) for b in boards for fmt in ("svg", "pdf")]
        exporter = app[keys.EXPORTS]
        await until(lambda: exporter.renders >= 2)  # renders handed to the pool
        async with aiohttp.ClientSession() as probe:
            for _ in range(3):
                async with probe.get(f"{base}/healthz") as r:
                    assert r.status == 200
                order.append("healthz")
        await asyncio.gather(*tasks)
    # /healthz answered three times before the first export came back
    assert order[:3] == ["healthz"] * 3, order
    # one pupil waits for two renders at a time; the others are refused at once
    assert len(refused) == 2 and exporter.renders == 2
    assert all(b["error"]["code"] == "rate_limited" for b in refused)
    assert order.count("healthz") == 3 and len(order) == 5


async def test_exports_are_limited_per_user_and_cached_by_seq(
        aiohttp_server: Any, tmp_path: Path, demo_db_path: Path, cast: Cast) -> None:
    base, app = await _server(aiohttp_server, tmp_path, demo_db_path, exports_per_min=3)
    board = await _heavy_board(base, cast, strokes=5, points=20)
    exporter = app[keys.EXPORTS]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as pupil, \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        await login(pupil, base, cast.alice)
        await login(other, base, cast.bob)
        bodies = []
        for _ in range(3):
            async with pupil.get(f"{base}/api/boards/{board}/export.pdf") as r:
                assert r.status == 200
                bodies.append(await r.read())
        assert exporter.renders == 1 and len(set(bodies)) == 1  # same seq: one render
        async with pupil.get(f"{base}/api/boards/{board}/export.pdf") as r:
            assert r.status == 429
            body = await r.json()
            assert body["error"]["code"] == "rate_limited"
            assert "exports" in body["error"]["message"] and int(r.headers["Retry-After"]) >= 1
        async with other.get(f"{base}/api/boards/{board}/export.pdf") as r:
            assert r.status == 200  # another pupil has their own budget
        assert exporter.renders == 1
    # a change to the board: the next export renders again
    teacher = await BoardClient(base, await token_for(base, cast.teacher)).connect()
    try:
        await teacher.call("join", {"board_id": board})
        op = {"type": "add", "item": {"id": "new", "kind": "stroke", "page_id": "p1",
                                      "points": [[1, 1], [50, 50]],
                                      "style": {"color": "#d62828", "width": 6}}}
        assert (await teacher.call("op", {"board_id": board, "op": op}))["ok"]
    finally:
        await teacher.close()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, cast.teacher)
        async with s.get(f"{base}/api/boards/{board}/export.pdf") as r:
            assert r.status == 200
    assert exporter.renders == 2

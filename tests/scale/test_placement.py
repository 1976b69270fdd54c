"""A board's connections gather on its home worker (realtime/placement.py).

In one process: two placing sites on one port (SO_REUSEPORT), each with its own app that says
which it is, real sockets: a request naming a board is answered by the board's home whichever
site the kernel gave it to, a websocket handed over carries traffic both ways, a request line
that comes late is still placed, and a home that is not there leaves its connections served
where they landed until it is back. Then `serve --workers 2` as an operator runs it: a board's
followers all on its home worker, and when that worker is killed they resume exactly on the
other one while the other board's followers never notice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from realtime import placement as placement_module
from realtime.placement import Handovers, Placement, PlacingSite, board_in
from tests.boards.test_socket import Cast, create_board
from tests.conftest import token_for
from tests.scale.clients import Follower, stroke
from tests.scale.conftest import Cluster, free_port

REQUESTS = 40  # fresh connections per check: the kernel spreads them over both sites


def test_board_in_the_request_line() -> None:
    line = b"GET /socket.io/?board=12&EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\r\n"
    assert board_in(line) == 12
    assert board_in(b"GET /socket.io/?EIO=4&board=7 HTTP/1.1\r\n") == 7
    assert board_in(b"GET /healthz?board=3 HTTP/1.1\r\n") == 3
    assert board_in(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n") is None
    assert board_in(b"GET /socket.io/?board=12") is None  # the line is not complete yet
    assert board_in(b"GET /socket.io/?board=-1 HTTP/1.1\r\n") is None
    assert board_in(b"GET /socket.io/?board=1e3 HTTP/1.1\r\n") is None
    assert board_in(b"GET /?board=" + b"9" * 19 + b" HTTP/1.1\r\n") is None
    assert board_in(b"GET /?xboard=4 HTTP/1.1\r\n") is None
    assert board_in(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n") is None  # TLS hello


class Worker:
    """One site of the pair: its own runner and app, answering which worker it is."""

    def __init__(self, index: int, port: int, directory: Path) -> None:
        self.index = index
        self.port = port
        self.directory = directory
        self.counts = Handovers()
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/who", self.who)
        app.router.add_get("/ws", self.echo)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = PlacingSite(self.runner, "127.0.0.1", self.port,
                           Placement(self.index, 2, self.directory), self.counts)
        await site.start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def who(self, _request: web.Request) -> web.Response:
        return web.Response(text=str(self.index))

    async def echo(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(f"{self.index}:{msg.data}")
        return ws


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths must stay under 108 bytes: pytest's tmp_path may not."""
    d = Path(tempfile.mkdtemp(prefix="rt-place-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest_asyncio.fixture
async def pair(short_dir: Path) -> AsyncIterator[list[Worker]]:
    port = free_port()
    workers = [Worker(i, port, short_dir) for i in range(2)]
    for w in workers:
        await w.start()
    yield workers
    for w in workers:
        await w.stop()


async def answers(port: int, path: str, n: int = REQUESTS) -> list[str]:
    """`n` requests, each on a connection of its own."""
    out = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        for _ in range(n):
            async with s.get(f"http://127.0.0.1:{port}{path}") as r:
                out.append(await r.text())
    return out


async def test_a_board_is_answered_by_its_home_whichever_site_accepted(
        pair: list[Worker]) -> None:
    port = pair[0].port
    unplaced = await answers(port, "/who")
    assert set(unplaced) == {"0", "1"}  # the kernel spreads connections over both sites
    for board in (4, 7, 10, 13):
        assert set(await answers(port, f"/who?board={board}")) == {str(board % 2)}
    # Both sites handed over what the other was home to, and took what they were home to.
    assert all(w.counts.handed_over > 0 and w.counts.received > 0 for w in pair)
    assert sum(w.counts.handed_over for w in pair) == sum(w.counts.received for w in pair)
    assert all(w.counts.home_unreachable == 0 for w in pair)


async def test_a_websocket_handed_over_carries_traffic_both_ways(pair: list[Worker]) -> None:
    port = pair[0].port
    async with aiohttp.ClientSession() as s:
        sockets = [await s.ws_connect(f"http://127.0.0.1:{port}/ws?board={b}")
                   for b in range(12)]
        try:
            for round_ in range(3):
                for b, ws in enumerate(sockets):
                    await ws.send_str(f"{b}.{round_}")
                for b, ws in enumerate(sockets):
                    assert await ws.receive_str(timeout=5) == f"{b % 2}:{b}.{round_}"
        finally:
            for ws in sockets:
                await ws.close()
    assert sum(w.counts.received for w in pair) > 0


async def test_a_request_line_that_comes_late_is_still_placed(pair: list[Worker]) -> None:
    port = pair[0].port
    for board in range(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await asyncio.sleep(0.05)  # accepted, nothing to peek at yet
            writer.write(f"GET /who?board={board} HTTP/1.1\r\nHost: x\r\n"
                         "Connection: close\r\n\r\n".encode())
            response = await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
        assert response.startswith(b"HTTP/1.1 200") and response.endswith(
            str(board % 2).encode()), response


async def test_a_silent_connection_is_served_where_it_landed(
        pair: list[Worker], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(placement_module, "FIRST_BYTES_S", 0.1)
    port = pair[0].port
    for _ in range(6):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await asyncio.sleep(0.3)  # past FIRST_BYTES_S: aiohttp has it now
            writer.write(b"GET /who?board=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            response = await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
        assert response.startswith(b"HTTP/1.1 200")


async def test_a_home_that_is_not_there_leaves_connections_where_they_landed(
        pair: list[Worker]) -> None:
    port = pair[0].port
    await pair[1].stop()  # worker 1 is gone: only worker 0 listens
    assert set(await answers(port, "/who?board=3", 10)) == {"0"}
    assert pair[0].counts.home_unreachable == 10
    await pair[1].start()  # back, with a new hand-over socket at the same path
    assert set(await answers(port, "/who?board=3")) == {"1"}
    assert pair[0].counts.handed_over > 0  # through a new link, the old one broken


# --- serve --workers 2 -----------------------------------------------------------------------

@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def home_pid(base: str, board: int) -> int:
    pids = set()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        for _ in range(12):
            async with s.get(f"{base}/healthz?board={board}") as r:
                pids.add(int(r.headers["X-Realtime-Pid"]))
    assert len(pids) == 1, pids  # every connection naming the board: the same worker
    return pids.pop()


async def test_a_boards_followers_share_its_home_and_resume_when_it_is_killed(
        cluster: Cluster, cast: Cast, demo_accounts: list[dict[str, Any]]) -> None:
    node = await cluster.node(workers=2)
    assert len(await node.answering_pids()) == 2  # both listening: a home can take its own
    boards = [await create_board(node.url, cast, f"Tableau {i}") for i in range(2)]
    while boards[0] % 2 == boards[1] % 2:  # one board on each worker
        boards[1] = await create_board(node.url, cast, "Tableau suivant")
    homes = [await home_pid(node.url, b) for b in boards]
    assert set(homes) == node.worker_pids()
    pupils = [x for x in demo_accounts if x["role"] == "student"
              and x["classes"] == [cast.class_name] and x["school"] == cast.alice["school"]][:6]
    groups: list[list[Follower]] = []
    for b in boards:
        teacher = await Follower(await token_for(node.url, cast.teacher), b,
                                 placed=True).connect(node.url)
        followers = [await Follower(await token_for(node.url, p), b, placed=True
                                    ).connect(node.url) for p in pupils]
        groups.append([teacher, *followers])
    try:
        for group in groups:
            acked = [(await group[0].call("op", {"op": stroke(f"s{i}")}))["seq"]
                     for i in range(5)]
            assert acked == list(range(1, 6))
        os.kill(homes[0], signal.SIGKILL)  # the first board's home, and only it
        for f in groups[0]:  # every follower of that board was there
            await asyncio.wait_for(f.disconnected.wait(), 10)
        # The other board goes on, its followers never cut.
        assert (await groups[1][0].call("op", {"op": stroke("pendant")}))["seq"] == 6
        for f in groups[1]:
            await f.wait_for(lambda f=f: f.seq == 6)
            assert not f.disconnected.is_set()
        for f in groups[0]:  # back on the survivor (or the restarted home), resumed
            await f.connect(node.url)
        more = [(await groups[0][0].call("op", {"op": stroke(f"m{i}")}))["seq"]
                for i in range(3)]
        assert more == [6, 7, 8]
        for group, last in ((groups[0], 8), (groups[1], 6)):
            for f in group:
                await f.wait_for(lambda f=f, last=last: f.seq == last)
                assert [s for _e, s in f.applied] == list(range(1, last + 1)), f.joins
                assert f.duplicates == 0 and f.gaps == 0
        for f in groups[0]:
            assert f.joins[-1]["since"] is not None and not f.joins[-1]["snapshot"]
        await node.wait_ready()
        async with aiohttp.ClientSession() as s, s.get(f"{node.url}/metrics") as r:
            page = await r.text()
        assert any(line.startswith('realtime_board_connections_placed_total{outcome="received"}')
                   and float(line.split()[-1]) > 0 for line in page.splitlines()), page
    finally:
        for group in groups:
            for f in group:
                with contextlib.suppress(Exception):
                    await f.close()

"""Admission control: a server whose event loop lags refuses new ops (`rate_limited`, in
French) and applies none of them, then takes ops again once it keeps up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from realtime import keys
from realtime.app import create_app
from realtime.boards.service import BUSY_MESSAGE
from tests.boards.conftest import BoardClient, stroke
from tests.boards.test_socket import Cast, create_board
from tests.conftest import make_settings, token_for
from tests.silence import nothing_arrived


async def until(predicate: Any) -> None:
    """Wait (bounded) for a condition of the server's own gauge: it has no event to wait on,
    it is a reading of the loop, so it is looked at again every few ticks."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the server's load gauge never reached the expected state")


class Classroom:
    """A real server (its app at hand, to read its gauge) with a board joined by its teacher
    and a pupil, and a way to make the server's loop lag: a callback hogging it 0.1 s at a
    time, again and again, until told to stop."""

    def __init__(self, app: Any, base: str, cast: Cast, board: int, teacher: BoardClient,
                 alice: BoardClient) -> None:
        self.app, self.base, self.cast, self.board = app, base, cast, board
        self.teacher, self.alice = teacher, alice
        self.blocking = False

    def _block(self) -> None:
        time.sleep(0.1)
        if self.blocking:
            asyncio.get_running_loop().call_soon(self._block)

    def hog_the_loop(self) -> None:
        self.blocking = True
        asyncio.get_running_loop().call_soon(self._block)


@pytest_asyncio.fixture
async def classroom(aiohttp_server: Any, tmp_path: Path, demo_db_path: Path,
                    demo_accounts: list[dict[str, Any]]) -> AsyncIterator[Classroom]:
    app = create_app(make_settings(tmp_path, db_path=demo_db_path))
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    cast = Cast(demo_accounts)
    board = await create_board(base, cast)
    teacher = await BoardClient(base, await token_for(base, cast.teacher)).connect()
    alice = await BoardClient(base, await token_for(base, cast.alice)).connect()
    room = Classroom(app, base, cast, board, teacher, alice)
    try:
        for c in (teacher, alice):
            assert (await c.call("join", {"board_id": board}))["ok"]
        yield room
    finally:
        room.blocking = False
        await teacher.close()
        await alice.close()


async def test_a_lagging_loop_refuses_new_ops_and_applies_none(classroom: Classroom) -> None:
    teacher, alice, board = classroom.teacher, classroom.alice, classroom.board
    service = classroom.app[keys.BOARDS]
    gauge = service.rooms.fanout.gauge
    before = await teacher.call("op", {"board_id": board, "op": stroke("avant")})
    assert before["ok"]
    assert not gauge.saturated  # one op on a quiet server is not refused

    classroom.hog_the_loop()
    await until(lambda: gauge.saturated)
    refused = await teacher.call("op", {"board_id": board, "op": stroke("pendant")})
    refused_undo = await teacher.call("undo", {"board_id": board})
    classroom.blocking = False
    assert refused == {"ok": False, "error": {"code": "rate_limited",
                                              "message": BUSY_MESSAGE}}
    assert refused_undo["error"]["code"] == "rate_limited"
    assert service.refused_busy == 2

    # The loop keeps up again: the same op is taken, with the very next seq (nothing
    # was appended meanwhile), and followers get exactly the accepted ops.
    await until(lambda: not gauge.saturated)
    after = await teacher.call("op", {"board_id": board, "op": stroke("pendant")})
    for _ in range(20):  # a machine busy with other work can keep the loop late a while:
        if after.get("error", {}).get("code") != "rate_limited":  # sent again, as the
            break  # web client does
        await asyncio.sleep(0.25)
        after = await teacher.call("op", {"board_id": board, "op": stroke("pendant")})
    assert after["ok"] and after["seq"] == before["seq"] + 1, after
    await alice.wait_seq(after["seq"])
    assert [o["op"]["item"]["id"] for o in alice.ops] == ["avant", "pendant"]
    base = classroom.base
    fresh = await BoardClient(base, await token_for(base, classroom.cast.bob)).connect()
    try:
        snap = (await fresh.call("join", {"board_id": board}))["snapshot"]
    finally:
        await fresh.close()
    assert [i["id"] for i in snap["items"]] == ["avant", "pendant"]


async def test_a_lagging_loop_sheds_pointers_but_not_the_teachers_view(
    classroom: Classroom,
) -> None:
    teacher, alice, board = classroom.teacher, classroom.alice, classroom.board
    fanout = classroom.app[keys.BOARDS].rooms.fanout
    classroom.hog_the_loop()
    await until(lambda: fanout.gauge.overloaded)
    await teacher.sio.emit("pointer", {"board_id": board, "x": 10, "y": 20},
                           namespace="/boards")

    async def view() -> None:
        answer = await teacher.call("view", {"board_id": board, "page_id": "p1", "zoom": 2})
        assert answer["ok"]

    # The pointer is shed; the teacher's view, sent after it, is not (and is the control).
    await nothing_arrived(lambda: alice.events["pointer"], control=view,
                          arrived=lambda: alice.events["view"])
    classroom.blocking = False
    assert alice.events["view"] == [{"board_id": board, "page_id": "p1", "x": 0.0,
                                     "y": 0.0, "zoom": 2.0}]
    assert fanout.volatile_dropped >= 1

"""A teacher's control (pen, lock) that was rolled back reaches no pupil and changes nothing
stored; a committed one does (the positive control proves the pupil's channel was live)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from realtime import keys
from realtime.app import create_app
from tests.boards.conftest import BoardClient
from tests.boards.test_socket import Cast, create_board
from tests.conftest import live_clients, login, make_settings
from tests.rollback import rolled_back


async def test_a_rolled_back_control_is_never_announced(aiohttp_server: Any, tmp_path: Path,
                                                         demo_db_path: Path,
                                                         demo_accounts: list[dict[str, Any]]
                                                         ) -> None:
    cast = Cast(demo_accounts)
    app = create_app(make_settings(tmp_path, db_path=demo_db_path))
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    board = await create_board(base, cast)
    async with live_clients(BoardClient, base) as make:
        teacher = await make(cast.teacher)
        alice = await make(cast.alice)
        assert (await teacher.call("join", {"board_id": board}))["ok"]
        assert (await alice.call("join", {"board_id": board}))["ok"]
        with rolled_back(app[keys.DB]) as aborted:
            lost = await teacher.call("lock", {"board_id": board, "locked": True})
        assert aborted == [1]
        assert lost["ok"] is False
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            await login(s, base, cast.teacher)
            async with s.get(f"{base}/api/boards/{board}") as r:
                assert (await r.json())["state"] == "live"  # nothing stored
        granted = await teacher.call("grant", {"board_id": board, "pen": "everyone"})
        assert granted["ok"]
        await alice.wait_for(lambda: alice.events["pen"])  # positive control
        assert alice.events["pen"] == [{"board_id": board, "pen": "everyone"}]
        assert alice.events["state"] == [{"board_id": board, "state": "live"}]  # never locked
        rejoin = await alice.call("join", {"board_id": board})
        assert rejoin["state"] == "live" and rejoin["me"]["can_draw"]

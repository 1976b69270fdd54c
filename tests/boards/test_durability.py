"""An acked op survives a crash; compaction changes nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests import engines
from tests.boards.conftest import BoardClient, stroke
from tests.boards.test_socket import Cast, create_board
from tests.conftest import ROOT, TEST_KDF, login
from tests.test_server import _free_port, _wait_ready


@contextmanager
def server_process(db_path: Path, port: int) -> Iterator[subprocess.Popen]:
    env = {**os.environ, **engines.db_env(db_path), "REALTIME_SECRET": "s" * 40,
           "REALTIME_KDF_TIME_COST": str(TEST_KDF[0]),
           "REALTIME_KDF_MEMORY_KIB": str(TEST_KDF[1]), "REDIS_URL": "",
           "REALTIME_BOARD_SNAPSHOT_EVERY": "200",
           # Durability is what these tests check, not admission control: on a loaded
           # machine a lagging loop would refuse ops (rate_limited) and fail them for that.
           "REALTIME_BOARD_ADMIT_LAG_MS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def _client(base: str, acct: dict[str, Any]) -> BoardClient:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        token = await login(s, base, acct)
    return await BoardClient(base, token).connect()


async def test_a_crash_loses_no_acked_op(demo_db_path: Path,
                                         demo_accounts: list[dict[str, Any]]) -> None:
    cast = Cast(demo_accounts)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with server_process(demo_db_path, port) as proc:
        await _wait_ready(base, proc)
        board = await create_board(base, cast)
        teacher = await _client(base, cast.teacher)
        await teacher.call("join", {"board_id": board})
        acked = 0
        for i in range(30):
            r = await teacher.call("op", {"board_id": board, "op": stroke(f"s{i}")})
            acked += r["ok"]
            r = await teacher.call("op", {"board_id": board, "op": {
                "type": "append", "item_id": f"s{i}", "points": [[1, 2]]}})
            acked += r["ok"]
        assert acked == 60
        proc.send_signal(signal.SIGKILL)  # no shutdown, no snapshot: only the stream
        proc.wait()
        await teacher.close()

    with server_process(demo_db_path, port) as proc:
        await _wait_ready(base, proc)
        alice = await _client(base, cast.alice)
        join = await alice.call("join", {"board_id": board})
        await alice.close()
    assert join["seq"] == 60
    items = join["snapshot"]["items"]
    assert [i["id"] for i in items] == [f"s{i}" for i in range(30)]
    assert all(len(i["points"]) == 4 for i in items)


async def test_compaction_and_restart_change_nothing(demo_db_path: Path,
                                                     demo_accounts: list[dict[str, Any]]
                                                     ) -> None:
    cast = Cast(demo_accounts)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with server_process(demo_db_path, port) as proc:
        await _wait_ready(base, proc)
        board = await create_board(base, cast)
        teacher = await _client(base, cast.teacher)
        await teacher.call("join", {"board_id": board})
        await teacher.call("op", {"board_id": board, "op": {
            "type": "add_page", "page": {"id": "p2", "background": "seyes"}}})
        for i in range(230):  # past one snapshot (every 200 events), within the rate budget
            r = await teacher.call("op", {"board_id": board,
                                          "op": stroke(f"s{i}", page="p2" if i % 2 else "p1")})
            assert r["ok"], r
            if i % 100 == 99:
                await asyncio.sleep(1.2)
        await teacher.call("op", {"board_id": board, "op": {"type": "clear", "page_id": "p1"}})
        live = (await teacher.call("join", {"board_id": board}))["snapshot"]
        await teacher.close()
        with engines.connect(demo_db_path) as conn:
            snap_seq = conn.execute("SELECT snapshot_seq FROM boards WHERE id = ?",
                                    (board,)).fetchone()[0]
        assert snap_seq >= 200  # compacted while live
        proc.send_signal(signal.SIGTERM)  # graceful: a final snapshot
        assert proc.wait(timeout=15) == 0

    with engines.connect(demo_db_path) as conn:
        snap_seq = conn.execute("SELECT snapshot_seq FROM boards WHERE id = ?",
                                (board,)).fetchone()[0]
    assert snap_seq == 232

    with server_process(demo_db_path, port) as proc:
        await _wait_ready(base, proc)
        teacher = await _client(base, cast.teacher)
        again = await teacher.call("join", {"board_id": board})
        undo = await teacher.call("undo", {"board_id": board})  # undo history survived too
        await teacher.wait_seq(undo["seq"])
        restored = teacher.ops[-1]["op"]
        await teacher.close()
    assert again["snapshot"] == live
    assert restored["type"] == "restore" and len(restored["items"]) == 115

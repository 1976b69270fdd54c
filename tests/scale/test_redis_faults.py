"""Redis restarted (everything in it lost) or frozen for a while, under two live processes:
they reconnect and carry on, and no acked board op is lost or duplicated.

These tests run their own redis-server (tests/scale/conftest.py `own_redis`): the shared one
on 6379 serves the other tests and is never touched.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.boards.test_socket import Cast, create_board
from tests.conftest import login, token_for, user_id
from tests.presence.conftest import PresenceClient
from tests.scale.clients import Follower, stroke
from tests.scale.conftest import Cluster, Node, OwnRedis


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def healthy(node: Node, wait_s: float = 20) -> None:
    deadline = time.monotonic() + wait_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            async with http.get(f"{node.url}/healthz") as r:
                if r.status == 200:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError("node did not see Redis again")


async def draw_until_acked(teacher: Follower, item_id: str, wait_s: float = 30) -> int | None:
    """Send one op until it is acked — or refused as already there (an earlier try that the
    server applied but could not ack). Returns the seq of the ok ack, if any."""
    deadline = time.monotonic() + wait_s
    codes = []
    while time.monotonic() < deadline:
        try:
            ack = await teacher.call("op", {"op": stroke(item_id)})
        except Exception:  # a timeout while Redis is away: try again
            ack = {"ok": False, "error": {"code": "timeout"}}
        if ack["ok"]:
            return ack["seq"]
        codes.append(ack["error"]["code"])
        if ack["error"]["code"] == "conflict":
            return None
        if ack["error"]["code"] == "invalid":  # not joined any more (a reset): join again
            await teacher.join()
        await asyncio.sleep(0.3)
    raise AssertionError(f"{item_id} never acked: {codes}")


async def board_items(base: str, acct: dict[str, Any], board: int, expected: list[str]
                      ) -> list[str]:
    """What a client of that node ends up with: the board's stroke ids, in order, repeats
    kept. A node that has not yet noticed Redis lost the history serves its last state, then
    tells its members to join again (`reset`): the client follows that, as the web client does.
    """
    f = await Follower(await token_for(base, acct), board).connect(base)
    try:
        await f.wait_for(lambda: f.items >= set(expected), 15)
        assert f.sio is not None
        answer = await f.sio.call("join", {"board_id": board}, namespace="/boards", timeout=15)
        return [i["id"] for i in answer["snapshot"]["items"]]
    finally:
        await f.close()


async def wait_roster(base: str, acct: dict[str, Any], scope: str, user: int) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, acct)
        for _ in range(100):
            async with s.get(f"{base}/api/presence/{scope}") as r:
                if user in {u["id"] for u in (await r.json())["users"]}:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{user} never came back in {scope}")


async def setup_class(cluster: Cluster, own_redis: OwnRedis, cast: Cast
                      ) -> tuple[Node, Node, int, Follower, Follower]:
    a, b = await cluster.node(own_redis.url), await cluster.node(own_redis.url)
    board = await create_board(a.url, cast)
    teacher = await Follower(await token_for(a.url, cast.teacher), board).connect(a.url)
    alice = await Follower(await token_for(b.url, cast.alice), board).connect(b.url)
    return a, b, board, teacher, alice


async def test_redis_restarted_mid_session(cluster: Cluster, own_redis: OwnRedis,
                                           cast: Cast) -> None:
    a, b, board, teacher, alice = await setup_class(cluster, own_redis, cast)
    scope = f"board:{board}"
    watcher = await PresenceClient(a.url, await token_for(a.url, cast.teacher)).connect()
    await watcher.subscribe(scope)
    alice_id = await user_id(a.url, cast.alice)
    try:
        for i in range(30):
            assert await draw_until_acked(teacher, f"before{i}") is not None
        await alice.wait_for(lambda: alice.seq == 30)
        await asyncio.to_thread(own_redis.restart, 1.0)  # every key gone
        await healthy(a)
        await healthy(b)
        for i in range(10):
            await draw_until_acked(teacher, f"after{i}")
        expected = [f"before{i}" for i in range(30)] + [f"after{i}" for i in range(10)]
        for node in (a, b):  # every acked op, once, in order, on both processes
            assert await board_items(node.url, cast.cpe, board, expected) == expected, node.url
        for f in (teacher, alice):  # live clients were told, and caught up
            await f.wait_for(lambda f=f: f.items == set(expected), 15)
            assert f.resets >= 1 and f.duplicates == 0
        # The heartbeat put the rosters back (Redis lost them): a fresh read lists Alice, and
        # the teacher's watcher saw the new epoch and fetched the roster again.
        await wait_roster(a.url, cast.teacher, scope, alice_id)
        await watcher.wait_for(lambda: watcher.refetches >= 1, 10)
        assert alice_id in watcher.ids(scope)
    finally:
        for c in (teacher, alice, watcher):
            await c.close()
    logs = a.log_text() + b.log_text()
    assert "Traceback" not in logs.replace("redis.exceptions", ""), logs[-3000:]


async def test_redis_unreachable_for_a_while(cluster: Cluster, own_redis: OwnRedis,
                                             cast: Cast) -> None:
    a, b, board, teacher, alice = await setup_class(cluster, own_redis, cast)
    try:
        for i in range(10):
            assert await draw_until_acked(teacher, f"before{i}") is not None
        own_redis.freeze()  # connections stay open, nothing answers
        frozen = asyncio.create_task(draw_until_acked(teacher, "during", 60))
        await asyncio.sleep(3)
        own_redis.thaw()
        await frozen
        for i in range(10):
            await draw_until_acked(teacher, f"after{i}")
        expected = ([f"before{i}" for i in range(10)] + ["during"]
                    + [f"after{i}" for i in range(10)])
        for node in (a, b):
            assert await board_items(node.url, cast.cpe, board, expected) == expected, node.url
        await alice.wait_for(lambda: alice.items == set(expected), 15)
        assert alice.duplicates == 0 and alice.gaps == 0 and alice.resets == 0
        assert [s for _e, s in alice.applied] == list(range(1, len(alice.applied) + 1))
    finally:
        for c in (teacher, alice):
            await c.close()

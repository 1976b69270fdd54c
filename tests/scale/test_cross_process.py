"""Two real server processes on one Redis and one SQLite file: boards and presence cross
processes, and a process killed mid-session loses its clients' sessions but not their place."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.boards.test_socket import Cast, create_board
from tests.conftest import token_for, user_id
from tests.presence.conftest import PresenceClient
from tests.scale.clients import Follower, stroke
from tests.scale.conftest import PRESENCE_TIMEOUT_S, Cluster


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def draw(teacher: Follower, prefix: str, n: int) -> list[int]:
    seqs = []
    for i in range(n):
        ack = await teacher.call("op", {"op": stroke(f"{prefix}{i}")})
        assert ack["ok"], ack
        seqs.append(ack["seq"])
    return seqs


async def test_board_ops_and_presence_cross_processes(cluster: Cluster, cast: Cast) -> None:
    a, b = await cluster.node(), await cluster.node()
    board = await create_board(a.url, cast)
    scope = f"board:{board}"
    watcher = await PresenceClient(a.url, await token_for(a.url, cast.teacher)).connect()
    await watcher.subscribe(scope)
    teacher = await Follower(await token_for(a.url, cast.teacher), board).connect(a.url)
    alice = await Follower(await token_for(b.url, cast.alice), board).connect(b.url)
    bob = await Follower(await token_for(b.url, cast.bob), board).connect(b.url)
    ids = {await user_id(a.url, x) for x in (cast.teacher, cast.alice, cast.bob)}
    try:
        # The teacher, on A, sees who follows from B.
        await watcher.wait_for(lambda: watcher.ids(scope) == ids)
        seqs = await draw(teacher, "t", 15)
        grant = await teacher.call("grant", {"pen": "everyone"})
        assert grant["ok"]
        await alice.wait_for(lambda: alice.seq >= grant["seq"])
        mine = await alice.call("op", {"op": stroke("alice")})
        assert mine["ok"], mine
        for f in (teacher, alice, bob):
            await f.wait_for(lambda f=f: f.seq >= mine["seq"])
            assert [s for _e, s in f.applied] == list(range(1, mine["seq"] + 1))
            assert f.duplicates == 0 and f.gaps == 0
            assert f.items == {f"t{i}" for i in range(15)} | {"alice"}
        assert seqs == list(range(1, 16))
        # Volatile traffic crosses too (the room's own Redis channel): the teacher's view.
        viewed = await teacher.call("view", {"page_id": "p1", "zoom": 2.0})
        assert viewed["ok"], viewed
        for f in (alice, bob):
            await f.wait_for(lambda f=f: any(n == "view" for n, _d in f.volatile))
            assert [d["zoom"] for n, d in f.volatile if n == "view"] == [2.0]
        await bob.close()
        bob_id = await user_id(a.url, cast.bob)
        await watcher.wait_for(lambda: bob_id not in watcher.ids(scope))
    finally:
        for c in (teacher, alice, bob, watcher):
            await c.close()


async def test_a_killed_process_clients_resume_exactly_on_the_other(
    cluster: Cluster, cast: Cast, demo_accounts: list[dict[str, Any]]
) -> None:
    a, b = await cluster.node(), await cluster.node()
    board = await create_board(a.url, cast)
    scope = f"board:{board}"
    carol_acct = next(x for x in demo_accounts if x["role"] == "student"
                      and x["classes"] == [cast.class_name] and x["school"] == cast.alice["school"]
                      and x["login"] not in (cast.alice["login"], cast.bob["login"]))
    watcher = await PresenceClient(a.url, await token_for(a.url, cast.teacher)).connect()
    await watcher.subscribe(scope)
    teacher = await Follower(await token_for(a.url, cast.teacher), board).connect(a.url)
    alice = await Follower(await token_for(b.url, cast.alice), board).connect(b.url)
    carol = await Follower(await token_for(b.url, carol_acct), board).connect(b.url)
    carol_id, alice_id = await user_id(a.url, carol_acct), await user_id(a.url, cast.alice)
    try:
        await draw(teacher, "before", 10)
        await alice.wait_for(lambda: alice.seq == 10)
        await watcher.wait_for(lambda: {alice_id, carol_id} <= watcher.ids(scope))
        b.kill()  # mid-session, no goodbye
        await asyncio.wait_for(alice.disconnected.wait(), 10)
        await draw(teacher, "during", 10)  # the class goes on without B
        await alice.connect(a.url)  # the load balancer sends her to A
        assert alice.joins[-1] == {"since": {"epoch": alice.epoch, "seq": 10}, "ops": 10,
                                   "snapshot": False}
        await draw(teacher, "after", 5)
        await alice.wait_for(lambda: alice.seq == 25)
        assert [s for _e, s in alice.applied] == list(range(1, 26))
        assert alice.duplicates == 0 and alice.gaps == 0
        # Carol never came back: B no longer renews her, A's sweep announces her leave.
        await watcher.wait_for(lambda: carol_id not in watcher.ids(scope),
                               PRESENCE_TIMEOUT_S + 5)
        assert alice_id in watcher.ids(scope)
        leaves = [c for c in watcher.changes if c["type"] == "leave"]
        assert [c["user"]["id"] for c in leaves] == [carol_id]  # once, and only hers
    finally:
        for c in (teacher, alice, carol, watcher):
            await c.close()

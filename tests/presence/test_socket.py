"""`/presence` on a real server: rosters, live joins and leaves, boards, rules, bad input."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import socketio

from realtime.presence.socket import CALLS_BURST, CALLS_PER_SECOND
from tests.boards.test_socket import Cast, create_board
from tests.chat.conftest import ChatClient
from tests.clocks import freeze_budgets
from tests.conftest import login, token_for, two_nodes
from tests.silence import nothing_arrived


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def me(base: str, acct: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, acct)
        async with s.get(f"{base}/api/me") as r:
            return (await r.json())["user"]


async def class_id_of(base: str, cast: Cast) -> int:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, cast.teacher)
        async with s.get(f"{base}/api/classes") as r:
            return next(c["id"] for c in (await r.json())["classes"]
                        if c["name"] == cast.class_name)


async def test_school_roster_follows_tabs(demo_server: str, clients: Any, cast: Cast) -> None:
    alice = await me(demo_server, cast.alice)
    scope = f"school:{alice['school_id']}"
    cpe = await clients.watcher(demo_server, cast.cpe)
    ack = await cpe.subscribe(scope)
    assert ack["ok"] and alice["id"] not in cpe.ids(scope)
    tab1 = await clients.tab(demo_server, cast.alice)
    await cpe.wait_for(lambda: alice["id"] in cpe.ids(scope))
    entry = cpe.rosters[scope][alice["id"]]
    assert entry.role == "student" and entry.name == alice["name"] and entry.since > 0
    tab2 = await clients.tab(demo_server, cast.alice)  # a second device: no new join
    await tab1.close()  # one device left: still online
    fresh = await cpe.subscribe(scope)
    mine = next(u for u in fresh["users"] if u["id"] == alice["id"])
    assert mine["devices"] == 1 and mine["since"] == entry.since
    await tab2.close()
    await cpe.wait_for(lambda: alice["id"] not in cpe.ids(scope))
    kinds = [(c["type"], c["user"]["id"]) for c in cpe.changes]
    assert kinds.count(("join", alice["id"])) == 1 and kinds.count(("leave", alice["id"])) == 1
    assert cpe.refetches == 0  # every change came in version order


async def test_teacher_sees_who_follows_the_board(demo_server: str, clients: Any,
                                                  board_client: Any, cast: Cast) -> None:
    board = await create_board(demo_server, cast)
    scope = f"board:{board}"
    teacher = await clients.watcher(demo_server, cast.teacher)
    assert (await teacher.subscribe(scope))["users"] == []
    alice_id = (await me(demo_server, cast.alice))["id"]
    bob_id = (await me(demo_server, cast.bob))["id"]
    alice, bob = await board_client(cast.alice), await board_client(cast.bob)
    for c in (alice, bob):
        assert (await c.call("join", {"board_id": board}))["ok"]
    await teacher.wait_for(lambda: teacher.ids(scope) == {alice_id, bob_id})
    assert (await bob.call("leave", {"board_id": board}))["ok"]
    await teacher.wait_for(lambda: teacher.ids(scope) == {alice_id})
    await alice.close()  # a dropped connection leaves the board's roster too
    await teacher.wait_for(lambda: teacher.ids(scope) == set())


def staff_of(accounts: list[dict[str, Any]], acct: dict[str, Any]) -> dict[str, Any]:
    """A teacher of the pupil (or of the parent's first child): someone who may write to
    them at any hour."""
    pupil = acct if acct["role"] == "student" else next(
        a for a in accounts if a["login"] == acct["children"][0])
    return next(a for a in accounts if a["role"] == "teacher"
                and a["school"] == pupil["school"] and pupil["classes"][0] in a["classes"])


async def conversation_with(base: str, staff: dict[str, Any], member: int) -> int:
    chat = await ChatClient(base, await token_for(base, staff)).connect()
    try:
        made = await chat.ok("create", {"kind": "direct", "members": [member],
                                        "body": "Bonjour"})
    finally:
        await chat.close()
    return int(made["conversation_id"])


@pytest.mark.parametrize("who", ["alice", "outsider", "parent"])
async def test_pupils_and_parents_see_no_roster(demo_server: str, clients: Any, cast: Cast,
                                                board_client: Any, who: str,
                                                demo_accounts: list[dict[str, Any]]) -> None:
    board = await create_board(demo_server, cast)
    class_id = await class_id_of(demo_server, cast)
    alice = await me(demo_server, cast.alice)
    watcher = await clients.watcher(demo_server, getattr(cast, who))
    for scope in (f"board:{board}", f"class:{class_id}", f"school:{alice['school_id']}"):
        ack = await watcher.call("subscribe", {"scope": scope})
        assert ack["error"]["code"] == "not_found", (scope, ack)
    # Absent answers exactly as forbidden does.
    absent = await watcher.call("subscribe", {"scope": "board:999999"})
    assert absent["error"] == ack["error"]
    # A refused subscription changed nothing: no change reaches this connection. The
    # control: a scope it may watch (a conversation a teacher of its class opened with it),
    # which it opens itself: that join reaches the same connection, after Bob's would have.
    bob = await board_client(cast.bob)
    assert (await bob.call("join", {"board_id": board}))["ok"]
    await clients.tab(demo_server, cast.bob)
    account = getattr(cast, who)
    me_id = (await me(demo_server, account))["id"]
    conv = await conversation_with(demo_server, staff_of(demo_accounts, account), me_id)
    scope = f"conversation:{conv}"
    assert (await watcher.subscribe(scope))["ok"]
    own_chat = await ChatClient(demo_server, await token_for(demo_server, account)).connect()
    try:
        await nothing_arrived(
            lambda: [c for c in watcher.changes if c["scope"] != scope],
            control=lambda: own_chat.ok("open", {"conversation_id": conv}),
            arrived=lambda: me_id in watcher.ids(scope))
    finally:
        await own_chat.close()


async def test_connecting_without_a_token_is_refused(demo_server: str) -> None:
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(demo_server, namespaces=["/presence"], transports=["websocket"],
                             auth={"token": "forged"}, wait_timeout=5)


async def test_another_schools_cpe_sees_nothing(demo_server: str, clients: Any, cast: Cast,
                                                demo_accounts: list[dict[str, Any]]) -> None:
    other = next(a for a in demo_accounts if a["role"] == "cpe"
                 and a["school"] != cast.cpe["school"])
    board = await create_board(demo_server, cast)
    watcher = await clients.watcher(demo_server, other)
    alice = await me(demo_server, cast.alice)
    for scope in (f"board:{board}", f"school:{alice['school_id']}"):
        assert (await watcher.call("subscribe", {"scope": scope}))["error"]["code"] == "not_found"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, demo_server, other)
        async with s.get(f"{demo_server}/api/presence/board:{board}") as r:
            assert r.status == 404
        async with s.get(f"{demo_server}/api/presence/classes",
                         params={"school_id": alice["school_id"]}) as r:
            assert r.status == 404


@pytest.mark.parametrize("payload", [None, "board:1", {}, {"scope": 3}, {"scope": "board:x"},
                                     {"scope": "room:1"}, {"scope": "board:1", "extra": 1},
                                     {"scope": "b" * 100}])
async def test_bad_subscriptions_are_refused(demo_server: str, clients: Any, cast: Cast,
                                             payload: Any) -> None:
    watcher = await clients.watcher(demo_server, cast.cpe)
    ack = await watcher.call("subscribe", payload)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid"
    assert ack["error"]["message"]  # a sentence, in French, for a person


async def test_subscribing_is_rate_limited(demo_app: tuple[str, Any], clients: Any,
                                           cast: Cast) -> None:
    base, app = demo_app
    clock = freeze_budgets(app, "/presence")  # the burst is judged at one instant
    alice = await me(base, cast.alice)
    watcher = await clients.watcher(base, cast.cpe)
    scope = {"scope": f"school:{alice['school_id']}"}
    acks = await asyncio.gather(*(watcher.call("subscribe", scope) for _ in range(60)))
    codes = [a.get("error", {}).get("code", "ok") for a in acks]
    assert codes == ["ok"] * CALLS_BURST + ["rate_limited"] * (60 - CALLS_BURST)
    clock.advance(1)  # a second later, a second's worth
    acks = await asyncio.gather(*(watcher.call("subscribe", scope) for _ in range(20)))
    assert sum(a["ok"] for a in acks) == CALLS_PER_SECOND


async def test_cpe_counts_per_class(demo_server: str, clients: Any, cast: Cast) -> None:
    class_id = await class_id_of(demo_server, cast)
    await clients.tab(demo_server, cast.alice)
    await clients.tab(demo_server, cast.alice)  # two devices, one pupil
    await clients.tab(demo_server, cast.bob)
    await clients.tab(demo_server, cast.teacher)  # a teacher's tab places them in no class
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, demo_server, cast.cpe)
        async with s.get(f"{demo_server}/api/presence/classes") as r:
            assert r.status == 200
            body = await r.json()
        online = {c["class_id"]: c["online"] for c in body["classes"]}
        assert online[class_id] == 2 and sum(online.values()) == 2
        async with s.get(f"{demo_server}/api/presence/class:{class_id}") as r:
            roster = await r.json()
        assert sorted(u["devices"] for u in roster["users"]) == [1, 2]
        async with s.get(f"{demo_server}/api/presence/nope") as r:
            assert r.status == 400
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, demo_server, cast.teacher)  # a teacher sees their class, not the school
        async with s.get(f"{demo_server}/api/presence/class:{class_id}") as r:
            assert r.status == 200
        async with s.get(f"{demo_server}/api/presence/classes") as r:
            assert r.status == 404


async def test_presence_crosses_nodes_through_redis(
    start_server: Any, clients: Any, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
    redis_cleanup: aioredis.Redis, cast: Cast,
) -> None:
    a, b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix)
    alice = await me(a, cast.alice)
    scope = f"school:{alice['school_id']}"
    cpe = await clients.watcher(a, cast.cpe)
    await cpe.subscribe(scope)
    tab_b = await clients.tab(b, cast.alice)  # on the other node
    await cpe.wait_for(lambda: alice["id"] in cpe.ids(scope))
    tab_a = await clients.tab(a, cast.alice)
    await tab_b.close()
    fresh = await cpe.subscribe(scope)
    assert next(u for u in fresh["users"] if u["id"] == alice["id"])["devices"] == 1
    await tab_a.close()
    await cpe.wait_for(lambda: alice["id"] not in cpe.ids(scope))

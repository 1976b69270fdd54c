"""PostgreSQL goes away (a crash: `pg_ctl stop -m immediate`) under two running nodes: every
request that needs it answers `unavailable` (HTTP 503 with the JSON error code, a Socket.IO
ack `{ok: false, error: {code: "unavailable"}}`, a refused connection saying so) instead of
hanging or failing with a 500, while a board already open goes on through Redis; once it is
back the same node processes serve again by themselves, and the connections that were open
all along carry on.

The server stopped is a cluster of this module only (`PrivatePostgres`), never the shared
one on 5432."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
import socketio

from realtime.db import Database, Unavailable
from realtime.sio import UNAVAILABLE_MESSAGE
from tests.boards.test_socket import Cast as BoardCast
from tests.boards.test_socket import create_board
from tests.chat.conftest import Cast as ChatCast
from tests.chat.conftest import ChatClient
from tests.conftest import login, token_for, user_id
from tests.engines import ADMIN_URL
from tests.multinode.conftest import Template, running
from tests.multinode.harness import Node, Nodes, PrivatePostgres, copy_database, server_url
from tests.scale.clients import Follower, stroke

pytestmark = pytest.mark.multinode

RECOVERY_S = 30.0  # the bound within which both nodes must serve again
CALL_S = 15.0  # no request may take longer than this to answer, PostgreSQL down or not


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    pg.init()
    pg.start()
    try:
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="module")
def private_database(private_pg: PrivatePostgres, demo_template: Template,
                     tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo, copied from the shared server's template to the private cluster."""
    return copy_database(server_url(ADMIN_URL, demo_template.name), private_pg.admin_url,
                         f"ent_{secrets.token_hex(3)}", tmp_path_factory.mktemp("dump"))


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, private_database: str) -> Iterator[Nodes]:
    """This module's own two nodes, on the private cluster."""
    with running(tmp_path_factory.mktemp("nodes"), private_database) as cluster:
        yield cluster


async def http_call(method: str, url: str, token: str | None = None,
                    body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = aiohttp.ClientTimeout(total=CALL_S)
    async with aiohttp.ClientSession(timeout=timeout) as s, s.request(
        method, url, headers=headers, json=body
    ) as r:
        return r.status, await r.json()


async def refused_connection(base: str, token: str) -> Any:
    """What a new /chat connection is told when it is refused (`connect_error`)."""
    sio = socketio.AsyncClient(reconnection=False)
    told: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def on_error(data: Any) -> None:
        if not told.done():
            told.set_result(data)

    sio.on("connect_error", on_error, namespace="/chat")
    try:
        with contextlib.suppress(socketio.exceptions.ConnectionError):
            await sio.connect(base, namespaces=["/chat"], transports=["websocket"],
                              auth={"token": token}, wait_timeout=CALL_S)
        return await asyncio.wait_for(told, 1)
    finally:
        await sio.disconnect()


def unavailable(answer: tuple[int, Any]) -> bool:
    status, body = answer
    return status == 503 and body["error"]["code"] == "unavailable"


async def until_served(check: Any, what: str) -> None:
    """Poll `check()` until it holds, within RECOVERY_S."""
    deadline = time.monotonic() + RECOVERY_S
    while True:
        try:
            if await check():
                return
        except (aiohttp.ClientError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not recovered within {RECOVERY_S} s: {what}")
        await asyncio.sleep(0.25)


def every_worker_healthy(node: Node) -> Callable[[], Awaitable[bool]]:
    """A check for `until_served`: each call is one `/healthz` request (the answer names
    its worker, `X-Realtime-Pid`); it holds once every worker of the node has answered 200."""
    seen: set[int] = set()

    async def check() -> bool:
        timeout = aiohttp.ClientTimeout(total=CALL_S)
        async with aiohttp.ClientSession(timeout=timeout) as s, s.get(
                f"{node.url}/healthz") as r:
            if r.status == 200:
                seen.add(int(r.headers["X-Realtime-Pid"]))
        return seen >= node.worker_pids()

    return check


async def test_requests_answer_unavailable_while_postgres_is_down_then_nodes_recover(
    pair: tuple[Node, Node], private_pg: PrivatePostgres, demo_accounts: list[dict[str, Any]]
) -> None:
    a, b = pair
    pids = {n.name: n.worker_pids() for n in pair}
    cast = ChatCast(demo_accounts)
    token = await token_for(a.url, cast.teacher)
    alice_token = await token_for(b.url, cast.alice)
    teacher = await ChatClient(b.url, token).connect()  # open all along, on B
    alice = await ChatClient(a.url, alice_token).connect()  # open all along, on A
    board = await create_board(a.url, BoardCast(demo_accounts), "Tableau — panne")
    drawing = await Follower(token, board).connect(a.url)  # the teacher's board, on A
    watching = await Follower(alice_token, board).connect(b.url)  # Alice follows it from B
    try:
        alice_id = await user_id(a.url, cast.alice)
        conv = (await teacher.ok("create", {"kind": "direct", "members": [alice_id],
                                            "body": "avant"}))["conversation_id"]
        await alice.wait_event(conv, 1)
        before = await drawing.call("op", {"op": stroke("avant")})
        assert before["ok"], before

        private_pg.stop("immediate")

        # HTTP: a signed-in request, a login, the health check, on both nodes at once.
        for node in (a, b):
            me, signin, health = await asyncio.gather(
                http_call("GET", f"{node.url}/api/me", token),
                http_call("POST", f"{node.url}/api/login",
                          body={"login": cast.bob["login"], "code": cast.bob["code"]}),
                http_call("GET", f"{node.url}/healthz"))
            assert unavailable(me), me
            assert unavailable(signin), signin
            assert health[0] == 503 and health[1]["checks"]["database"] != "ok", health
            assert health[1]["checks"]["redis"] == "ok"
        # Socket.IO, on connections opened before: a message needs the database.
        refused = await asyncio.wait_for(teacher.call(
            "send", {"conversation_id": conv, "body": "pendant"}), CALL_S)
        assert refused == {"ok": False, "error": {
            "code": "unavailable", "message": refused["error"]["message"]}}, refused
        refused = await asyncio.wait_for(alice.call(
            "sync", {"conversation_id": conv, "since": 0}), CALL_S)
        assert refused["ok"] is False and refused["error"]["code"] == "unavailable", refused
        # A new connection cannot check its session: refused with the reason, at once (a
        # client that heard nothing would wait for its own timeout, and try again blind).
        for node in (a, b):
            assert await refused_connection(node.url, token) == {
                "message": UNAVAILABLE_MESSAGE, "data": {"code": "unavailable"}}
            async with aiohttp.ClientSession() as s:
                with pytest.raises(aiohttp.WSServerHandshakeError) as no_doc:
                    await s.ws_connect(f"{node.url.replace('http', 'ws')}/yjs/1?token={token}")
            assert no_doc.value.status == 503
        # A board already open goes on: its ops go through Redis's streams, and reach B.
        during = await asyncio.wait_for(drawing.call("op", {"op": stroke("pendant")}), CALL_S)
        assert during == {"ok": True, "seq": before["seq"] + 1}, during
        await watching.wait_for(lambda: watching.seq == during["seq"])

        private_pg.start()

        async def me_on(node: Node) -> bool:
            return (await http_call("GET", f"{node.url}/api/me", token))[0] == 200

        for node in (a, b):
            await until_served(lambda node=node: me_on(node), f"/api/me on {node.name}")
            # A node of several workers recovers worker by worker (each its own pool): the
            # next requests may reach any of them.
            await until_served(every_worker_healthy(node),
                               f"/healthz on every worker of {node.name}")
        # The same processes: nobody restarted them.
        assert {n.name: n.worker_pids() for n in pair} == pids
        assert all(n.starts == 1 for n in pair)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            for node in (a, b):
                assert await login(s, node.url, cast.bob)
                async with s.get(f"{node.url}/healthz") as r:
                    assert r.status == 200, await r.text()
        # The connections open all along work again: the message refused is sent now, and
        # arrives, after the first, on the other node.
        sent = await teacher.ok("send", {"conversation_id": conv, "body": "après"})
        assert sent["seq"] == 2
        await alice.wait_event(conv, 2)
        synced = await alice.ok("sync", {"conversation_id": conv, "since": 0})
        assert [e["message"]["body"] for e in synced["events"]] == ["avant", "après"]
        after = await drawing.call("op", {"op": stroke("apres")})
        assert after == {"ok": True, "seq": during["seq"] + 1}, after
        await watching.wait_for(lambda: watching.seq == after["seq"])
        assert [s for _e, s in watching.applied] == list(range(1, after["seq"] + 1))
        assert watching.gaps == 0 and watching.duplicates == 0
        assert {"avant", "pendant", "apres"} <= watching.items
    finally:
        for c in (teacher, alice, drawing, watching):
            await c.close()


async def test_the_database_layer_answers_unavailable_then_recovers(
    private_pg: PrivatePostgres, private_database: str
) -> None:
    """Beneath the nodes: `Database` on PostgreSQL raises `Unavailable` for reads and
    transactions while the server is away (counted), and the same object serves again once
    it is back, without being reopened."""
    db = await Database.open(private_database, migrate=False, pool_min=2, pool_max=3)
    try:
        assert await db.ping()
        private_pg.stop("immediate")
        for _ in range(3):
            with pytest.raises(Unavailable):
                await db.fetchone("SELECT count(*) AS n FROM users")
            with pytest.raises(Unavailable):
                async with db.transaction() as conn:
                    await conn.execute("UPDATE schools SET name = name WHERE id = ?", (1,))
        assert db.counters()["unavailable"] == 6
        private_pg.start()

        async def served() -> bool:
            try:
                return await db.ping()
            except Unavailable:
                return False

        await until_served(served, "Database.ping")
        async with db.transaction() as conn:
            cur = await conn.execute("SELECT count(*) AS n FROM users")
            assert (await cur.fetchone())["n"] > 1000
    finally:
        await db.close()

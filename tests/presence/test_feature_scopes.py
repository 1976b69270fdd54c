"""Presence in a conversation and in a course document, in both modes (memory and Redis).

Who has a conversation open (the messagerie's « en ligne ») and who has a course document open
(its editor's list, and a roster other ENT services read over REST): joins and leaves follow
the chat's `open`/`close` and the Yjs websocket, a user on two devices stays present until the
last one goes, a device nobody renews times out, and only those who may see the conversation
or document may read its roster.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from aiohttp import web

from realtime import keys
from realtime.app import create_app
from realtime.presence.model import Who
from tests.chat.conftest import Cast, ChatClient, Clock, paris
from tests.conftest import REDIS_URL, get_json, login, make_settings, token_for, user_id
from tests.coursedocs.conftest import YClient, new_doc
from tests.presence.conftest import PresenceClient

TIMEOUT_S = 2.0
HEARTBEAT_S = 0.25


class Node:
    def __init__(self, base: str, app: web.Application) -> None:
        self.base, self.app = base, app
        self.opened: list[Any] = []

    async def chat(self, acct: dict[str, Any], token: str | None = None) -> ChatClient:
        c = await ChatClient(self.base, token or await token_for(self.base, acct)).connect()
        self.opened.append(c)
        return c

    async def watcher(self, acct: dict[str, Any]) -> PresenceClient:
        c = await PresenceClient(self.base, await token_for(self.base, acct)).connect()
        self.opened.append(c)
        return c

    async def yjs(self, http: aiohttp.ClientSession, doc_id: int, token: str) -> YClient:
        c = await YClient(http, self.base, doc_id, token).connect()
        self.opened.append(c)
        return c


@pytest_asyncio.fixture(params=["memory", "redis"])
async def node(request: Any, aiohttp_server: Any, tmp_path: Path, demo_db_path: Path,
               redis_prefix: str, redis_cleanup: aioredis.Redis) -> AsyncIterator[Node]:
    extra = ({"redis_url": REDIS_URL, "redis_prefix": redis_prefix}
             if request.param == "redis" else {})
    app = create_app(make_settings(tmp_path, db_path=demo_db_path, presence_timeout_s=TIMEOUT_S,
                                   presence_heartbeat_s=HEARTBEAT_S, **extra))
    server = await aiohttp_server(app)
    app[keys.CHAT].clock = Clock(paris(10))  # quiet hours never depend on the hour of the run
    n = Node(str(server.make_url("")).rstrip("/"), app)
    yield n
    for c in n.opened:
        if isinstance(c, YClient):
            if c.ws is not None and not c.ws.closed:
                await c.close()
        else:
            await c.close()


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def group(node: Node, cast: Cast) -> tuple[ChatClient, int, dict[str, int]]:
    """The teacher's group with Alice and Bob; the teacher's chat client, its id, the ids."""
    ids = {name: await user_id(node.base, getattr(cast, name))
           for name in ("alice", "bob", "teacher")}
    teacher = await node.chat(cast.teacher)
    made = await teacher.ok("create", {"kind": "group", "title": "Sortie au musée",
                                       "members": [ids["alice"], ids["bob"]],
                                       "body": "Rendez-vous à 8 h."})
    return teacher, made["conversation_id"], ids


async def test_conversation_roster_follows_open_and_close(node: Node, cast: Cast) -> None:
    teacher, conv, ids = await group(node, cast)
    scope = f"conversation:{conv}"
    watcher = await node.watcher(cast.bob)  # a participant watching who reads along
    ack = await watcher.subscribe(scope)
    assert ack["ok"] and ack["users"] == []
    token = await token_for(node.base, cast.alice)
    phone, laptop = await node.chat(cast.alice, token), await node.chat(cast.alice, token)
    await phone.ok("open", {"conversation_id": conv})
    await watcher.wait_for(lambda: ids["alice"] in watcher.ids(scope))
    entry = watcher.rosters[scope][ids["alice"]]
    assert entry.role == "student" and entry.since > 0
    await laptop.ok("open", {"conversation_id": conv})  # the same pupil on a second device
    await teacher.ok("open", {"conversation_id": conv})
    await watcher.wait_for(lambda: watcher.ids(scope) == {ids["alice"], ids["teacher"]})
    status, roster = await get_json(node.base, cast.teacher, f"/api/presence/{scope}")
    assert status == 200
    assert {u["id"]: u["devices"] for u in roster["users"]} == {ids["alice"]: 2,
                                                                 ids["teacher"]: 1}
    assert roster["users"][0]["role"] == "teacher"  # teachers first
    await phone.ok("close", {"conversation_id": conv})  # one device left: still reading
    _s, roster = await get_json(node.base, cast.teacher, f"/api/presence/{scope}")
    assert {u["id"]: u["devices"] for u in roster["users"]}[ids["alice"]] == 1
    await laptop.close()  # the last device drops: Alice leaves
    await watcher.wait_for(lambda: watcher.ids(scope) == {ids["teacher"]})
    await teacher.ok("close", {"conversation_id": conv})
    await watcher.wait_for(lambda: watcher.ids(scope) == set())
    kinds = [(c["type"], c["user"]["id"]) for c in watcher.changes]
    assert kinds.count(("join", ids["alice"])) == 1 and kinds.count(("leave", ids["alice"])) == 1
    assert watcher.refetches == 0


@pytest.mark.parametrize("who", ["other_parent", "other_teacher", "far_cpe"])
async def test_outsiders_see_no_conversation_roster(node: Node, cast: Cast, who: str) -> None:
    _teacher, conv, _ids = await group(node, cast)
    outsider = await node.watcher(getattr(cast, who))
    refused = await outsider.call("subscribe", {"scope": f"conversation:{conv}"})
    assert refused["ok"] is False and refused["error"]["code"] == "not_found"
    absent = await outsider.call("subscribe", {"scope": "conversation:999999"})
    assert absent["error"] == refused["error"]  # forbidden answers as absent does
    status, _body = await get_json(node.base, getattr(cast, who),
                                   f"/api/presence/conversation:{conv}")
    assert status == 404
    # Nor can an outsider appear in it: opening is refused before presence is touched.
    chat = await node.chat(getattr(cast, who))
    assert (await chat.call("open", {"conversation_id": conv}))["error"]["code"] == "not_found"
    _s, roster = await get_json(node.base, cast.teacher, f"/api/presence/conversation:{conv}")
    assert roster["users"] == []


async def test_close_and_bad_input_are_validated(node: Node, cast: Cast) -> None:
    _teacher, conv, _ids = await group(node, cast)
    alice = await node.chat(cast.alice)
    for payload in (None, {}, {"conversation_id": "x"}, {"conversation_id": 0}):
        ack = await alice.call("close", payload)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid", payload
    assert (await alice.call("close", {"conversation_id": conv}))["ok"]  # never opened: no-op


async def test_a_device_nobody_renews_times_out(node: Node, cast: Cast) -> None:
    """A node that died holds a device nobody renews: it leaves after the timeout, while the
    devices this node holds are renewed by its heartbeat and stay."""
    teacher, conv, ids = await group(node, cast)
    scope = f"conversation:{conv}"
    await teacher.ok("open", {"conversation_id": conv})
    watcher = await node.watcher(cast.teacher)
    await watcher.subscribe(scope)
    ghost = Who(id=ids["alice"], name="Alice", role="student")
    await node.app[keys.PRESENCE].store.enter(scope, "sid-of-a-dead-node", ghost)
    await watcher.subscribe(scope)
    assert watcher.ids(scope) == {ids["alice"], ids["teacher"]}
    await watcher.wait_for(lambda: ids["alice"] not in watcher.ids(scope), TIMEOUT_S * 5)
    assert watcher.ids(scope) == {ids["teacher"]}  # renewed past the timeout: still here
    fresh = await watcher.subscribe(scope)
    assert [u["id"] for u in fresh["users"]] == [ids["teacher"]]


async def test_doc_roster_follows_the_yjs_websocket(node: Node, cast: Cast,
                                                    http: aiohttp.ClientSession) -> None:
    token = await login(http, node.base, cast.teacher)
    doc = await new_doc(http, node.base, token)
    scope = f"doc:{doc['id']}"
    owner = await user_id(node.base, cast.teacher)
    colleague = await user_id(node.base, cast.other_teacher)
    # A teacher the document is not shared with sees nothing, as for a document that is not.
    outsider = await node.watcher(cast.other_teacher)
    refused = await outsider.call("subscribe", {"scope": scope})
    assert refused["error"]["code"] == "not_found"
    assert (await outsider.call("subscribe", {"scope": "doc:999999"}))["error"] == \
        refused["error"]
    status, _b = await get_json(node.base, cast.other_teacher, f"/api/presence/{scope}")
    assert status == 404

    watcher = await node.watcher(cast.teacher)
    assert (await watcher.subscribe(scope))["users"] == []
    tab1 = await node.yjs(http, doc["id"], token)
    await watcher.wait_for(lambda: watcher.ids(scope) == {owner})
    tab2 = await node.yjs(http, doc["id"], token)  # a second device
    # Shared with the colleague as co-editor: now they may read the roster, and appear in it.
    async with http.put(f"{node.base}/api/docs/{doc['id']}/access",
                        json={"editors": [colleague], "classes": []},
                        headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200, await r.text()
    other_token = await token_for(node.base, cast.other_teacher)
    await node.yjs(http, doc["id"], other_token)
    await watcher.wait_for(lambda: watcher.ids(scope) == {owner, colleague})
    status, roster = await get_json(node.base, cast.other_teacher, f"/api/presence/{scope}")
    assert status == 200
    assert {u["id"]: u["devices"] for u in roster["users"]} == {owner: 2, colleague: 1}
    await tab1.close()  # one device left: still editing
    _s, roster = await get_json(node.base, cast.teacher, f"/api/presence/{scope}")
    assert {u["id"]: u["devices"] for u in roster["users"]}[owner] == 1
    await tab2.close()
    await watcher.wait_for(lambda: watcher.ids(scope) == {colleague})
    kinds = [(c["type"], c["user"]["id"]) for c in watcher.changes]
    assert kinds.count(("join", owner)) == 1 and kinds.count(("leave", owner)) == 1

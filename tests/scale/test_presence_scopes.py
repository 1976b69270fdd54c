"""Two real server processes on one Redis: who has a conversation or a course document open on
process B appears in the roster read on process A, and leaves it when B dies (after the
presence timeout, since nobody renews B's devices any more)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.chat.conftest import Cast, ChatClient
from tests.conftest import get_json, login, token_for
from tests.coursedocs.conftest import YClient, new_doc
from tests.presence.conftest import PresenceClient
from tests.scale.conftest import PRESENCE_TIMEOUT_S, Cluster


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def roster(base: str, acct: dict[str, Any], scope: str) -> dict[int, int]:
    """Users → devices, read over REST on `base` (what another ENT service would do)."""
    status, body = await get_json(base, acct, f"/api/presence/{scope}")
    assert status == 200, body
    return {u["id"]: u["devices"] for u in body["users"]}


async def test_conversation_and_doc_rosters_cross_processes(
        cluster: Cluster, cast: Cast, http: aiohttp.ClientSession) -> None:
    a, b = await cluster.node(), await cluster.node()
    teacher_a = await ChatClient(a.url, await token_for(a.url, cast.teacher)).connect()
    alice_b = await ChatClient(b.url, await token_for(b.url, cast.alice)).connect()
    watcher = await PresenceClient(a.url, await token_for(a.url, cast.teacher)).connect()
    opened: list[Any] = [teacher_a, alice_b, watcher]
    try:
        alice_id = alice_b.me["id"]
        made = await teacher_a.ok("create", {"kind": "group", "title": "Chorale",
                                             "members": [alice_id], "body": "Répétition."})
        conv = f"conversation:{made['conversation_id']}"
        await watcher.subscribe(conv)
        await alice_b.ok("open", {"conversation_id": made["conversation_id"]})
        # Opened on B, seen live and over REST on A.
        await watcher.wait_for(lambda: alice_id in watcher.ids(conv))
        assert await roster(a.url, cast.teacher, conv) == {alice_id: 1}

        teacher_token = await login(http, b.url, cast.teacher)
        doc = await new_doc(http, b.url, teacher_token)
        scope = f"doc:{doc['id']}"
        await watcher.subscribe(scope)
        editor = await YClient(http, b.url, doc["id"], teacher_token).connect()
        opened.append(editor)
        teacher_id = teacher_a.me["id"]
        await watcher.wait_for(lambda: watcher.ids(scope) == {teacher_id})
        assert await roster(a.url, cast.teacher, scope) == {teacher_id: 1}

        # B dies without a word: its devices expire, and A's watcher hears both leaves.
        b.kill()
        await watcher.wait_for(lambda: not watcher.ids(conv) and not watcher.ids(scope),
                               PRESENCE_TIMEOUT_S * 5)
        assert await roster(a.url, cast.teacher, conv) == {}
        assert await roster(a.url, cast.teacher, scope) == {}
    finally:
        for c in opened:
            if isinstance(c, YClient):
                if c.ws is not None and not c.ws.closed:
                    await c.close()
            else:
                await c.close()

"""Two servers on one SQLite file and one Redis: a user's devices on either node get every
message once, in order; reads on one node reach the other."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from tests.chat.conftest import Cast as ChatCast
from tests.chat.conftest import ChatClient
from tests.conftest import token_for, two_nodes, user_id


async def test_chat_across_nodes(start_server: Any, tmp_path: Path, demo_db_path: Path,
                                 redis_prefix: str, redis_cleanup: aioredis.Redis,
                                 demo_accounts: list[dict[str, Any]]) -> None:
    a, b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix)
    cast = ChatCast(demo_accounts)
    clients: list[ChatClient] = []
    try:
        teacher = await ChatClient(a, await token_for(a, cast.teacher)).connect()
        alice_token = await token_for(a, cast.alice)
        alice_a = await ChatClient(a, alice_token).connect()
        alice_b = await ChatClient(b, alice_token).connect()
        bob_b = await ChatClient(b, await token_for(b, cast.bob)).connect()
        clients = [teacher, alice_a, alice_b, bob_b]
        ids = [await user_id(a, x) for x in (cast.alice, cast.bob)]
        conv = (await teacher.ok("create", {"kind": "group", "title": "Deux nœuds",
                                            "members": ids, "body": "0"}))["conversation_id"]
        for i in range(1, 8):
            sender = (teacher, alice_b, bob_b)[i % 3]
            await sender.ok("send", {"conversation_id": conv, "body": str(i)})
        for c in clients:
            await c.wait_event(conv, 8)
            assert [e["seq"] for e in c.events] == list(range(1, 9))  # once each, in order
            assert [e["message"]["body"] for e in c.events] == [str(i) for i in range(8)]
        await alice_b.ok("read", {"conversation_id": conv, "seq": 8})
        await alice_a.wait_for(lambda: any(r["read_seq"] == 8 for r in
                                           alice_a.received["receipt"]))
    finally:
        for c in clients:
            await c.close()


async def test_a_direct_conversation_started_twice_at_once_is_one(
        start_server: Any, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
        redis_cleanup: aioredis.Redis, demo_accounts: list[dict[str, Any]]) -> None:
    """The teacher writes to a parent from a phone on node A and a laptop on node B at the
    same instant, each « new conversation »: one direct conversation holds both messages."""
    a, b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix)
    cast = ChatCast(demo_accounts)
    token = await token_for(a, cast.teacher)
    phone, laptop = await ChatClient(a, token).connect(), await ChatClient(b, token).connect()
    try:
        parent = await user_id(a, cast.parent)
        made = await asyncio.gather(*(c.ok("create", {"kind": "direct", "members": [parent],
                                                      "body": f"Bonjour ({i})"})
                                      for i, c in enumerate((phone, laptop))))
        assert made[0]["conversation_id"] == made[1]["conversation_id"]
        assert sorted(m["created"] for m in made) == [False, True]
        page = await phone.ok("history", {"conversation_id": made[0]["conversation_id"]})
        assert sorted(m["body"] for m in page["messages"]) == ["Bonjour (0)", "Bonjour (1)"]
        summaries = (await phone.ok("list", {}))["conversations"]
        assert sum(1 for c in summaries if c["kind"] == "direct"
                   and parent in [m["id"] for m in c["participants"]]) == 1
    finally:
        for c in (phone, laptop):
            await c.close()

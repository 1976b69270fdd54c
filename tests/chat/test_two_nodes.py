"""Two servers on one SQLite file and one Redis: a user's devices on either node get every
message once, in order; reads on one node reach the other."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import redis.asyncio as aioredis

from realtime.chat import store as chat_store
from tests.chat.conftest import Cast as ChatCast
from tests.chat.conftest import ChatClient
from tests.conftest import token_for, two_nodes, user_id
from tests.engines import open_test_db


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


async def test_a_message_deleted_on_one_node_is_not_edited_back_on_another(
        start_server: Any, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
        redis_cleanup: aioredis.Redis, demo_accounts: list[dict[str, Any]]) -> None:
    """The author deletes a message on the phone (node A) while the laptop (node B) sends an
    edit of it: the message ends deleted, with one deletion in its stream; an edit or a
    deletion checked before a deletion committed changes nothing."""
    a, b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix)
    cast = ChatCast(demo_accounts)
    token = await token_for(a, cast.teacher)
    phone, laptop = await ChatClient(a, token).connect(), await ChatClient(b, token).connect()
    db = await open_test_db(demo_db_path)
    try:
        alice = await user_id(a, cast.alice)
        made = await phone.ok("create", {"kind": "group", "title": "Sortie",
                                         "members": [alice], "body": "Départ 8 h"})
        conv, msg_id = made["conversation_id"], made["message_id"]
        deleted, edited = await asyncio.gather(
            phone.call("delete", {"message_id": msg_id}),
            laptop.call("edit", {"message_id": msg_id, "body": "Départ 9 h"}))
        assert deleted["ok"], deleted
        assert edited["ok"] or edited["error"]["code"] == "conflict", edited
        page = await laptop.ok("history", {"conversation_id": conv})
        assert [m["body"] for m in page["messages"]] == ["Message supprimé"]
        row = await db.fetchone("SELECT body, deleted_at FROM chat_messages WHERE id = ?",
                                (msg_id,))
        assert row["body"] == "" and row["deleted_at"] is not None
        gone = await db.fetchall("SELECT seq FROM chat_events WHERE message_id = ? AND"
                                 " kind = 'deleted'", (msg_id,))
        assert len(gone) == 1
        # As seen before the deletion committed (what the other node had checked).
        stale = msgspec.structs.replace(await chat_store.message(db, msg_id),
                                        body="Départ 8 h", deleted_at=None, deleted_by=None)
        async with db.transaction() as tx:
            assert await chat_store.edit_message(tx, stale, "Départ 10 h", 1.0) is None
            assert await chat_store.remove_message(tx, stale, alice, 1.0, recall=True) is None
        row = await db.fetchone("SELECT body, recalled_at FROM chat_messages WHERE id = ?",
                                (msg_id,))
        assert row["body"] == "" and row["recalled_at"] is None
        assert (await laptop.call("edit", {"message_id": msg_id, "body": "x"}))["error"][
            "code"] == "conflict"
    finally:
        await db.close()
        for c in (phone, laptop):
            await c.close()

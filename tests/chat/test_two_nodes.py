"""Two servers on one SQLite file and one Redis: a user's devices on either node get every
message once, in order; reads on one node reach the other."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import redis.asyncio as aioredis

from realtime.chat import store as chat_store
from tests import engines
from tests.chat.conftest import Cast as ChatCast
from tests.chat.conftest import ChatClient
from tests.conftest import token_for, two_nodes, user_id
from tests.engines import open_test_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


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


async def test_two_nodes_close_invite_and_attach_at_once(
        start_server: Any, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
        redis_cleanup: aioredis.Redis, demo_accounts: list[dict[str, Any]]) -> None:
    """The same moderator's two devices on two nodes, each doing the same thing at the same
    instant: a conversation closed once (one event), a newcomer invited once (one event,
    the other told they already take part), one upload sent with one message only."""
    a, b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix)
    cast = ChatCast(demo_accounts)
    token = await token_for(a, cast.teacher)
    phone, laptop = await ChatClient(a, token).connect(), await ChatClient(b, token).connect()
    db = await open_test_db(demo_db_path)
    try:
        alice, bob = await user_id(a, cast.alice), await user_id(a, cast.bob)
        conv = (await phone.ok("create", {"kind": "group", "title": "Club théâtre",
                                          "members": [alice], "body": "Répétition"}))[
            "conversation_id"]

        async def kinds(kind: str) -> int:
            rows = await db.fetchall("SELECT seq FROM chat_events WHERE conversation_id = ?"
                                     " AND kind = ?", (conv, kind))
            return len(rows)

        invited = await asyncio.gather(*(c.call("invite", {"conversation_id": conv,
                                                           "members": [bob]})
                                         for c in (phone, laptop)))
        assert sorted(bool(x.get("ok")) for x in invited) == [False, True], invited
        refused = next(x for x in invited if not x.get("ok"))
        assert refused["error"]["code"] == "invalid"
        assert await kinds("joined") == 1
        # The same upload in two messages at once: one takes it, the other is refused.
        async with aiohttp.ClientSession() as s, s.post(
                f"{a}/api/chat/attachments", params={"name": "affiche.png"}, data=PNG,
                headers={"Authorization": f"Bearer {token}",
                         "Content-Type": "application/octet-stream"}) as r:
            assert r.status == 201, await r.text()
            att = int((await r.json())["id"])
        sent = await asyncio.gather(*(c.call("send", {"conversation_id": conv, "body": body,
                                                      "attachments": [att]})
                                      for c, body in ((phone, "L'affiche"), (laptop, "Affiche"))))
        assert sorted(bool(x.get("ok")) for x in sent) == [False, True], sent
        assert next(x for x in sent if not x.get("ok"))["error"]["code"] in ("conflict",
                                                                              "not_found")
        owners = await db.fetchall("SELECT message_id FROM chat_attachments WHERE id = ?",
                                   (att,))
        taken = next(x for x in sent if x.get("ok"))["message_id"]
        assert [r["message_id"] for r in owners] == [taken]
        messages = await db.fetchall("SELECT id FROM chat_messages WHERE conversation_id = ?",
                                     (conv,))
        assert len(messages) == 2  # the first one and the one with the file
        closed = await asyncio.gather(*(c.call("set_open", {"conversation_id": conv,
                                                            "open": False})
                                        for c in (phone, laptop)))
        assert all(x["ok"] for x in closed), closed
        assert await kinds("closed") == 1
        row = await db.fetchone("SELECT open, last_seq FROM chat_conversations WHERE id = ?",
                                (conv,))
        assert row["open"] == 0 and {x["seq"] for x in closed} == {row["last_seq"]}
    finally:
        await db.close()
        for c in (phone, laptop):
            await c.close()


async def test_a_report_filed_while_the_purge_runs_keeps_its_message(
        demo_db_path: Path, demo_accounts: list[dict[str, Any]]) -> None:
    """Retention erases old messages unless under an open report. A report filed by another
    node while the purge runs either waits for it or is seen by it: never is the reported
    message erased with its report."""
    cast = ChatCast(demo_accounts)
    db, node_b = await open_test_db(demo_db_path), await open_test_db(demo_db_path)
    try:
        ids = {}
        for name in ("teacher", "alice"):
            row = await db.fetchone("SELECT id FROM users WHERE login = ?",
                                    (getattr(cast, name)["login"],))
            ids[name] = int(row["id"])
        school = int((await db.fetchone("SELECT MIN(id) AS id FROM schools"))["id"])
        old = time.time() - 800 * 86400
        async with db.transaction() as tx:
            conv = await chat_store.create(tx, school_id=school, kind="group", title="Ancien",
                                           creator_id=ids["teacher"],
                                           members=[ids["teacher"], ids["alice"]], now=old)
            msg, _ = await chat_store.insert_message(tx, conv, ids["teacher"], "Vieux message",
                                                     old, [])
        schema = (await db.fetchone("SELECT current_schema() AS s"))["s"] if (
            engines.POSTGRES) else None

        async def purge() -> dict[str, int]:
            async with db.transaction(lock="retention") as tx:
                counts, _keys = await chat_store.purge_before(tx, time.time() - 365 * 86400)
                return counts

        # Node B files a report and has not committed yet when the purge starts.
        async with node_b.transaction() as tx:
            assert await chat_store.report(tx, msg, ids["alice"], school, "À revoir",
                                           time.time()) is not None
            running = asyncio.create_task(purge())
            if schema is not None:  # PostgreSQL: the purge waits on the message's lock
                for _ in range(400):
                    waiting = await node_b.fetchone(
                        "SELECT 1 AS w FROM pg_stat_activity WHERE datname ="
                        " current_database() AND application_name = ? AND"
                        " wait_event_type = 'Lock'", (schema,))
                    if waiting is not None or running.done():
                        break
                    await asyncio.sleep(0.025)
                assert waiting is not None and not running.done()
            else:  # SQLite: the purge waits for the write lock node B holds
                await asyncio.sleep(0.2)
        await running
        assert await db.fetchone("SELECT id FROM chat_messages WHERE id = ?", (msg,))
        assert await db.fetchone("SELECT id FROM chat_reports WHERE message_id = ?", (msg,))
    finally:
        await db.close()
        await node_b.close()

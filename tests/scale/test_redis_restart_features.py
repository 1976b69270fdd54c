"""Redis restarted (everything in it lost) under two live processes, for chat and course
documents: the nodes reconnect and carry on, and nothing acked is lost or duplicated.

Own redis-server (tests/scale/conftest.py `own_redis`): the shared one is never touched.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests import engines
from tests.chat.conftest import Cast as ChatCast
from tests.chat.conftest import ChatClient
from tests.conftest import token_for, user_id
from tests.coursedocs.conftest import YClient, new_doc, teacher_token, until
from tests.coursedocs.test_socket import paragraph, stored_text
from tests.scale.conftest import Cluster, OwnRedis
from tests.scale.test_redis_faults import healthy


async def fan_out_back(sender: ChatClient, receiver: ChatClient, conv: int) -> None:
    """Wait until emits cross processes again, with volatile traffic that stores nothing:
    "typing" from one node is heard on the other."""
    async def probe() -> None:
        while not receiver.received["typing"]:
            await sender.sio.emit("typing", {"conversation_id": conv}, namespace="/chat")
            await asyncio.sleep(0.5)
    await asyncio.wait_for(probe(), 30)


async def test_chat_carries_on_after_redis_restart(
    cluster: Cluster, own_redis: OwnRedis, demo_accounts: list[dict[str, Any]]
) -> None:
    a, b = await cluster.node(own_redis.url), await cluster.node(own_redis.url)
    cast = ChatCast(demo_accounts)
    teacher = await ChatClient(a.url, await token_for(a.url, cast.teacher)).connect()
    alice = await ChatClient(b.url, await token_for(b.url, cast.alice)).connect()
    try:
        alice_id = await user_id(a.url, cast.alice)
        conv = (await teacher.ok("create", {"kind": "group", "title": "Panne de Redis",
                                            "members": [alice_id], "body": "avant 0"}))[
            "conversation_id"]
        for i in range(1, 5):
            await teacher.ok("send", {"conversation_id": conv, "body": f"avant {i}"})
        await alice.wait_event(conv, 5)
        await asyncio.to_thread(own_redis.restart, 1.0)  # every key gone
        await healthy(a)
        await healthy(b)
        await fan_out_back(teacher, alice, conv)
        for i in range(5):
            answer = await teacher.ok("send", {"conversation_id": conv, "body": f"après {i}"})
            assert answer["seq"] == 6 + i  # seqs live in SQLite: Redis lost nothing of them
        await alice.ok("send", {"conversation_id": conv, "body": "bien reçu"})
        bodies = [f"avant {i}" for i in range(5)] + [f"après {i}" for i in range(5)]
        bodies.append("bien reçu")
        for c in (teacher, alice):  # live, once each, in order, on both processes
            await c.wait_event(conv, 11)
            mine = [e for e in c.events if e["conversation_id"] == conv]
            assert [e["seq"] for e in mine] == list(range(1, 12))
            assert [e["message"]["body"] for e in mine] == bodies
        synced = await alice.ok("sync", {"conversation_id": conv, "since": 0})
        assert [e["message"]["body"] for e in synced["events"]] == bodies
        with engines.connect(cluster.db) as db:
            stored = db.execute("SELECT COUNT(*) FROM chat_messages WHERE conversation_id = ?",
                                (conv,)).fetchone()[0]
        assert stored == len(bodies)
    finally:
        for c in (teacher, alice):
            await c.close()


async def test_course_edits_carry_on_after_redis_restart(
    cluster: Cluster, own_redis: OwnRedis, demo_accounts: list[dict[str, Any]]
) -> None:
    a, b = await cluster.node(own_redis.url), await cluster.node(own_redis.url)
    async with aiohttp.ClientSession() as http:
        token = await teacher_token(http, a.url, demo_accounts)
        doc = await new_doc(http, a.url, token, "Sciences — la lumière")
        on_a = await YClient(http, a.url, doc["id"], token).connect()
        on_b = await YClient(http, b.url, doc["id"], token).connect()
        try:
            for i in range(3):
                paragraph(on_a, f"avant {i} é")
            await until(lambda: on_b.text().count("avant") == 3)
            await asyncio.to_thread(own_redis.restart, 1.0)
            await healthy(a)
            await healthy(b)
            for i in range(3):
                paragraph(on_a, f"après {i} — A")
            # B hears it live, or reloads from SQLite once its relay is back: either way, once.
            await until(lambda: on_b.text().count("après") == 3, 30)
            paragraph(on_b, "réponse de B")
            await until(lambda: "réponse de B" in on_a.text(), 30)
            text = on_a.text()
            assert on_b.text() == text
            for line in [f"avant {i} é" for i in range(3)] + [
                    f"après {i} — A" for i in range(3)] + ["réponse de B"]:
                assert text.count(line) == 1, (line, text)
        finally:
            await on_a.close()
            await on_b.close()
    assert await stored_text(cluster.db, doc["id"]) == text

"""Two real server processes on one Redis and one SQLite file: chat messages and read receipts,
absence pushes and course edits made on one process reach the people connected to the other —
once each, in order, and Yjs updates are relayed without an echo between the nodes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from realtime.coursedocs.relay import UPDATE
from tests.attendance.conftest import (
    AttendanceClient,
    absence_of,
    absent_and_validate,
    recent_slot,
)
from tests.attendance.conftest import Cast as AttendanceCast
from tests.chat.conftest import Cast as ChatCast
from tests.chat.conftest import ChatClient
from tests.conftest import REDIS_URL, token_for, user_id
from tests.coursedocs.conftest import YClient, new_doc, teacher_token, until
from tests.coursedocs.test_socket import paragraph, stored_text
from tests.scale.conftest import Cluster
from tests.silence import nothing_arrived

pytestmark = pytest.mark.redis

ACCENTS = "Élève : « déjà vu », ça côtoie l'œuvre de Noël — où ?"


async def test_chat_messages_and_receipts_cross_processes(
    cluster: Cluster, demo_accounts: list[dict[str, Any]]
) -> None:
    a, b = await cluster.node(), await cluster.node()
    cast = ChatCast(demo_accounts)
    teacher = await ChatClient(a.url, await token_for(a.url, cast.teacher)).connect()
    alice = await ChatClient(b.url, await token_for(b.url, cast.alice)).connect()
    bob = await ChatClient(b.url, await token_for(b.url, cast.bob)).connect()
    outsider = await ChatClient(b.url, await token_for(b.url, cast.other_teacher)).connect()
    clients = [teacher, alice, bob, outsider]
    try:
        members = [await user_id(a.url, x) for x in (cast.alice, cast.bob)]
        created = await teacher.ok("create", {"kind": "group", "title": "Sortie au musée",
                                              "members": members, "body": ACCENTS})
        conv = created["conversation_id"]
        for i in range(1, 12):
            sender = (teacher, alice, bob)[i % 3]
            await sender.ok("send", {"conversation_id": conv, "body": f"message {i} é"})
        bodies = [ACCENTS] + [f"message {i} é" for i in range(1, 12)]
        for c in (teacher, alice, bob):  # on both processes: once each, in seq order
            await c.wait_event(conv, 12)
            mine = [e for e in c.events if e["conversation_id"] == conv]
            assert [e["seq"] for e in mine] == list(range(1, 13))
            assert [e["message"]["body"] for e in mine] == bodies
        # Read receipts cross too: Alice reads on B, the teacher on A is told.
        await alice.ok("read", {"conversation_id": conv, "seq": 12})
        alice_id = members[0]
        await teacher.wait_for(lambda: any(
            r["conversation_id"] == conv and r["user_id"] == alice_id and r["read_seq"] == 12
            for r in teacher.received["receipt"]))
        # And the other way: the teacher reads on A (its own last message was seq 10), B hears.
        teacher_id = teacher.me["id"]
        assert (await teacher.ok("read", {"conversation_id": conv, "seq": 12}))
        for c in (alice, bob):
            await c.wait_for(lambda c=c: any(
                r["user_id"] == teacher_id and r["read_seq"] == 12
                for r in c.received["receipt"]))
        # The stored truth agrees, and someone outside the conversation heard nothing of it.
        synced = await bob.ok("sync", {"conversation_id": conv, "since": 0})
        assert [e["message"]["body"] for e in synced["events"]] == bodies
        # The control: the CPE, on the other process, writes to the outsider, after the
        # whole conversation; that message arrives, alone.
        cpe = await ChatClient(a.url, await token_for(a.url, cast.cpe)).connect()
        clients.append(cpe)
        outsider_id = outsider.me["id"]
        own: list[int] = []

        async def cpe_writes() -> None:
            made = await cpe.ok("create", {"kind": "direct", "members": [outsider_id],
                                           "body": "Réunion à 17 h"})
            own.append(made["conversation_id"])

        await nothing_arrived(
            lambda: [e for e in outsider.events if e["conversation_id"] == conv],
            control=cpe_writes,
            arrived=lambda: any(e["conversation_id"] in own for e in outsider.events))
        refused = await outsider.call("sync", {"conversation_id": conv, "since": 0})
        assert refused["ok"] is False and refused["error"]["code"] == "not_found"
    finally:
        for c in clients:
            await c.close()


async def attendance_client(base: str, acct: dict[str, Any]) -> AttendanceClient:
    client = await AttendanceClient(base, await token_for(base, acct)).connect()
    follow = await client.call("follow_feed", {})
    assert follow["ok"] and "snapshot" in follow, follow
    return client


async def test_absence_push_reaches_guardians_on_the_other_process_once(
    cluster: Cluster, demo_accounts: list[dict[str, Any]]
) -> None:
    a, b = await cluster.node(), await cluster.node()
    cast = AttendanceCast(demo_accounts)
    g1, g2 = cast.guardians
    teacher = await AttendanceClient(a.url, await token_for(a.url, cast.teacher)).connect()
    g1_on_b, g2_on_b = await attendance_client(b.url, g1), await attendance_client(b.url, g2)
    g1_on_a = await attendance_client(a.url, g1)
    outsider = await attendance_client(b.url, cast.other_parent)
    clients = [teacher, g1_on_b, g2_on_b, g1_on_a, outsider]
    try:
        slot, day = await recent_slot(a.url, cast.teacher, cast.class_name)
        opened = await teacher.call("open_roll", {"slot_id": slot["id"], "date": day})
        assert opened["ok"], opened
        sid = next(s["id"] for s in opened["students"] if s["name"] == cast.student["name"])
        await absent_and_validate(teacher, opened, [sid])
        for c in (g1_on_b, g2_on_b, g1_on_a):
            await c.wait_for(lambda c=c: c.events["notice"], 10)
        # A second validated roll is the marker: once its push has arrived everywhere, a
        # duplicate of the first (or a push to the outsider) would have arrived before it.
        slot2, day2 = await recent_slot(a.url, cast.teacher, cast.class_name, skip=1)
        opened2 = await teacher.call("open_roll", {"slot_id": slot2["id"], "date": day2})
        assert opened2["ok"], opened2
        await absent_and_validate(teacher, opened2, [sid])
        for c in (g1_on_b, g2_on_b, g1_on_a):
            await c.wait_for(lambda c=c: len(c.events["notice"]) >= 2, 10)
            notices = c.events["notice"]
            assert [n["seq"] for n in notices] == [1, 2]  # each push exactly once, in order
            assert {n["student_id"] for n in notices} == {sid}
            assert all(n["kind"] == "absence" and cast.student["name"] in n["body"]
                       for n in notices)
        # The outsider heard nothing of it: an absence of its own child, validated on the
        # other process after both rolls, reaches it.
        other_teacher = await AttendanceClient(
            a.url, await token_for(a.url, cast.other_child_teacher)).connect()
        clients.append(other_teacher)
        own: list[int] = []

        async def own_child_absent() -> None:
            own.append(await absence_of(a.url, other_teacher, cast.other_child_teacher,
                                        cast.other_child))

        await nothing_arrived(
            lambda: [n for n in outsider.events["notice"] if n["student_id"] == sid],
            control=own_child_absent,
            arrived=lambda: any(n["student_id"] in own for n in outsider.events["notice"]),
            wait_s=15)
        fresh = await outsider.call("follow_feed", {})
        assert all(n["student_id"] != sid for n in fresh["snapshot"])
    finally:
        for c in clients:
            await c.close()


@contextlib.asynccontextmanager
async def relay_tap(prefix: str, doc_id: int) -> AsyncIterator[list[tuple[bytes, bytes]]]:
    """Every Yjs update the nodes relay for a document, as (node, update) in publish order."""
    client = aioredis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub()
    await pubsub.subscribe(f"{prefix}:yjs:{doc_id}")
    seen: list[tuple[bytes, bytes]] = []

    async def read() -> None:
        async for msg in pubsub.listen():
            if msg["type"] == "message":
                node, _, rest = msg["data"].partition(b"\n")
                if rest[:1] == UPDATE:
                    seen.append((node, rest[1:]))

    task = asyncio.create_task(read())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pubsub.aclose()
        await client.aclose()


async def test_course_edits_cross_processes_without_echo(
    cluster: Cluster, demo_accounts: list[dict[str, Any]]
) -> None:
    a, b = await cluster.node(), await cluster.node()
    async with aiohttp.ClientSession() as http:
        token = await teacher_token(http, a.url, demo_accounts)
        doc = await new_doc(http, a.url, token, "Français — la poésie")
        async with relay_tap(cluster.prefix, doc["id"]) as relayed:
            on_a = await YClient(http, a.url, doc["id"], token).connect()
            on_b = await YClient(http, b.url, doc["id"], token).connect()
            try:
                paragraph(on_a, ACCENTS)
                await until(lambda: ACCENTS in on_b.text())
                from_a = {node for node, _ in relayed}
                assert len(from_a) == 1  # only the node where the edit was made published
                paragraph(on_b, "Réponse de Zoé, sur B")
                await until(lambda: "Zoé" in on_a.text())
                # The marker: A's last edit reaches B after anything relayed before it.
                paragraph(on_a, "Fin — merci !")
                await until(lambda: "Fin — merci" in on_b.text())
                await until(lambda: sum(node in from_a for node, _ in relayed) >= 2)
                nodes = {node for node, _ in relayed}
                assert len(nodes) == 2
                # Three local edits of two transactions each: at most six publications, and
                # no node ever republished what it received from the other.
                assert len(relayed) <= 6
                payloads = [u for _, u in relayed]
                assert len(payloads) == len(set(payloads))
                assert on_a.text() == on_b.text()
                assert on_a.text().index(ACCENTS) < on_a.text().index("Fin — merci")
            finally:
                await on_a.close()
                await on_b.close()
        assert await stored_text(cluster.db, doc["id"]) == on_a.text()

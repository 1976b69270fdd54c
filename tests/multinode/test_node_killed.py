"""A node dies (SIGKILL to all its processes, mid-session): nothing its clients were told was
done is lost, and they resume exactly on the other node — board ops from their last seq, chat
messages and a parent's notices from their last position, a course document by the Yjs sync —
then on the node itself once it is back."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.attendance.conftest import AttendanceClient
from tests.attendance.conftest import Cast as AttendanceCast
from tests.boards.test_socket import Cast, create_board
from tests.chat.conftest import Cast as ChatCast
from tests.chat.conftest import ChatClient
from tests.conftest import login, token_for, user_id
from tests.coursedocs.conftest import YClient, new_doc, until
from tests.coursedocs.test_socket import paragraph
from tests.multinode.harness import Node
from tests.multinode.people import fresh_rolls, validate_with_absent
from tests.multinode.test_cross_nodes import stored_text
from tests.scale.clients import Follower, stroke

pytestmark = pytest.mark.multinode


async def draw(f: Follower, prefix: str, n: int) -> list[int]:
    seqs = []
    for i in range(n):
        ack = await f.call("op", {"op": stroke(f"{prefix}{i}")})
        assert ack["ok"], ack
        seqs.append(ack["seq"])
    return seqs


async def test_board_clients_of_a_killed_node_resume_exactly(
    pair: tuple[Node, Node], demo_accounts: list[dict[str, Any]]
) -> None:
    a, b = pair
    cast = Cast(demo_accounts)
    board = await create_board(a.url, cast, "Tableau — nœud tué")
    carol_acct = next(x for x in demo_accounts if x["role"] == "student"
                      and x["classes"] == [cast.class_name] and x["school"] == cast.alice["school"]
                      and x["login"] not in (cast.alice["login"], cast.bob["login"]))
    teacher = await Follower(await token_for(a.url, cast.teacher), board).connect(a.url)
    alice = await Follower(await token_for(b.url, cast.alice), board).connect(b.url)
    carol = await Follower(await token_for(b.url, carol_acct), board).connect(b.url)
    try:
        grant = await teacher.call("grant", {"pen": "everyone"})
        assert grant["ok"], grant
        await draw(teacher, "t", 5)
        await alice.wait_for(lambda: alice.seq >= grant["seq"])
        # Alice draws on B; the last ack comes back, and B dies at once.
        acked = await draw(alice, "alice", 8)
        b.kill()
        await asyncio.wait_for(alice.disconnected.wait(), 10)
        await asyncio.wait_for(carol.disconnected.wait(), 10)
        # The class goes on on A meanwhile.
        during = await draw(teacher, "during", 6)
        # Alice's browser reconnects; the balancer sends it to A. Exactly what she missed.
        at = alice.seq
        await alice.connect(a.url)
        assert alice.joins[-1] == {"since": {"epoch": alice.epoch, "seq": at},
                                   "ops": during[-1] - at, "snapshot": False}
        after = await draw(teacher, "after", 3)
        await alice.wait_for(lambda: alice.seq == after[-1])
        assert [s for _e, s in alice.applied] == list(range(1, after[-1] + 1))
        assert alice.duplicates == 0 and alice.gaps == 0
        # Every op Alice was told was done is on the board, for everyone.
        await teacher.wait_for(lambda: teacher.seq == after[-1])
        assert {f"alice{i}" for i in range(len(acked))} <= teacher.items
        assert teacher.gaps == 0 and teacher.duplicates == 0
        # B comes back (same address, a fresh process): Carol resumes there, from her seq.
        b.start()
        await b.ready()
        at = carol.seq
        await carol.connect(b.url)
        assert carol.joins[-1]["since"] == {"epoch": carol.epoch, "seq": at}
        assert not carol.joins[-1]["snapshot"]
        await carol.wait_for(lambda: carol.seq == after[-1])
        assert [s for _e, s in carol.applied] == list(range(1, after[-1] + 1))
        assert carol.duplicates == 0 and carol.gaps == 0
        assert carol.items == teacher.items == alice.items
    finally:
        for c in (teacher, alice, carol):
            await c.close()


async def test_chat_and_feed_clients_of_a_killed_node_resume_exactly(
    pair: tuple[Node, Node], demo_accounts: list[dict[str, Any]]
) -> None:
    a, b = pair
    chat_cast, att_cast = ChatCast(demo_accounts), AttendanceCast(demo_accounts)
    teacher = await ChatClient(a.url, await token_for(a.url, chat_cast.teacher)).connect()
    alice_token = await token_for(b.url, chat_cast.alice)
    alice = await ChatClient(b.url, alice_token).connect()
    guardian = att_cast.guardians[0]
    parent_token = await token_for(b.url, guardian)
    parent = await AttendanceClient(b.url, parent_token).connect()
    roll_teacher = await AttendanceClient(
        a.url, await token_for(a.url, att_cast.teacher)).connect()
    clients: list[Any] = [teacher, alice, parent, roll_teacher]
    try:
        members = [await user_id(a.url, chat_cast.alice)]
        created = await teacher.ok("create", {"kind": "group", "title": "Nœud tué",
                                              "members": members, "body": "début"})
        conv = created["conversation_id"]
        sent = [await alice.ok("send", {"conversation_id": conv, "body": f"B {i}"})
                for i in range(4)]
        follow = await parent.call("follow_feed", {})
        assert follow["ok"], follow
        position = {"epoch": follow["epoch"], "seq": follow["seq"]}
        b.kill()
        await until(lambda: not alice.sio.connected and not parent.sio.connected)
        # While B is down: messages on A, and an absence of the parent's child validated on A.
        for i in range(3):
            await teacher.ok("send", {"conversation_id": conv, "body": f"A {i}"})
        rolls = await fresh_rolls(a.url, roll_teacher, att_cast.teacher, att_cast.class_name, 1)
        sid = next(s["id"] for s in rolls[0]["students"]
                   if s["name"] == att_cast.student["name"])
        await validate_with_absent(roll_teacher, rolls[0], [sid])
        # Alice reconnects to A: every message she sent and was acked is there, and she gets
        # exactly what she missed after her last seq.
        last = sent[-1]["seq"]
        alice = await ChatClient(a.url, alice_token).connect()
        clients.append(alice)
        missed = await alice.ok("sync", {"conversation_id": conv, "since": last})
        assert [e["seq"] for e in missed["events"]] == list(range(last + 1, last + 4))
        assert [e["message"]["body"] for e in missed["events"]] == [f"A {i}" for i in range(3)]
        whole = await alice.ok("sync", {"conversation_id": conv, "since": 0})
        assert [e["message"]["body"] for e in whole["events"]] == (
            ["début"] + [f"B {i}" for i in range(4)] + [f"A {i}" for i in range(3)])
        # The parent's device reconnects to A with its position: the one notice it missed.
        parent = await AttendanceClient(a.url, parent_token).connect()
        clients.append(parent)
        resumed = await parent.call("follow_feed", {"since": position})
        assert resumed["ok"] and "snapshot" not in resumed, resumed
        assert [n["seq"] for n in resumed["notices"]] == [position["seq"] + 1]
        assert resumed["notices"][0]["student_id"] == sid
    finally:
        for c in clients:
            await c.close()


async def test_a_course_document_client_of_a_killed_node_resyncs_on_the_other(
    pair: tuple[Node, Node], demo_accounts: list[dict[str, Any]], database: str
) -> None:
    a, b = pair
    acct = next(x for x in demo_accounts if x["role"] == "teacher"
                and x["school"] == "Collège Charlemagne")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        token = await login(http, a.url, acct)
        doc = await new_doc(http, a.url, token, "Histoire — nœud tué")
        on_a = await YClient(http, a.url, doc["id"], token).connect()
        on_b = await YClient(http, b.url, doc["id"], token).connect()
        try:
            for i in range(4):
                paragraph(on_b, f"écrit sur B {i}")
            await until(lambda: on_a.text().count("écrit sur B") == 4)
            b.kill()
            reader = on_b._reader
            await until(lambda: reader is not None and reader.done())  # B's socket closed
            # Written while the connection is down: kept by the client's own document.
            on_b.ws = None
            paragraph(on_b, "écrit hors ligne")
            # The editor reconnects to A with the document it holds: the Yjs sync gives each
            # side what the other lacks.
            on_b.url = on_a.url
            on_b.synced = False
            await on_b.connect()
            paragraph(on_a, "écrit sur A après")
            await until(lambda: on_a.text() == on_b.text() and "hors ligne" in on_a.text()
                        and "après" in on_b.text())
            # A stored each update before passing it on: all of it is in PostgreSQL.
            assert await stored_text(database, doc["id"]) == on_a.text()
        finally:
            await on_a.close()
            await on_b.close()

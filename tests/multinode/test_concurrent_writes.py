"""Two nodes writing at once on one PostgreSQL: what SQLite's single writer serialised must
stay serialised across machines — gap-free seqs, no lost update, one roll per course."""

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
from tests.conftest import token_for, user_id
from tests.multinode.harness import Node
from tests.multinode.people import course_days, validate_with_absent
from tests.scale.clients import Follower, stroke

pytestmark = pytest.mark.multinode

CHARLEMAGNE = "Collège Charlemagne"
PER_SENDER = 8


async def get(base: str, token: str, path: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(
        f"{base}{path}", headers={"Authorization": f"Bearer {token}"}
    ) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_board_ops_drawn_on_both_nodes_at_once_are_gap_free(
    pair: tuple[Node, Node], demo_accounts: list[dict[str, Any]]
) -> None:
    a, b = pair
    cast = Cast(demo_accounts)
    board = await create_board(a.url, cast, "Tableau à trois mains")
    teacher = await Follower(await token_for(a.url, cast.teacher), board).connect(a.url)
    alice = await Follower(await token_for(b.url, cast.alice), board).connect(b.url)
    bob = await Follower(await token_for(b.url, cast.bob), board).connect(b.url)
    authors = (teacher, alice, bob)
    try:
        grant = await teacher.call("grant", {"pen": "everyone"})
        assert grant["ok"], grant
        for f in (alice, bob):
            await f.wait_for(lambda f=f: f.seq >= grant["seq"])

        async def draw(f: Follower, name: str) -> list[int]:
            seqs = []
            for i in range(15):
                ack = await f.call("op", {"op": stroke(f"{name}{i}")})
                assert ack["ok"], ack
                seqs.append(ack["seq"])
            return seqs

        acked = await asyncio.gather(*(draw(f, n) for f, n in zip(
            authors, ("t", "a", "b"), strict=True)))
        every = sorted(s for seqs in acked for s in seqs)
        last = grant["seq"] + 45
        assert every == list(range(grant["seq"] + 1, last + 1))  # each seq once, none missing
        items = {f"{n}{i}" for n in "tab" for i in range(15)}
        for f in authors:
            await f.wait_for(lambda f=f: f.seq == last)
            assert [s for _e, s in f.applied] == list(range(1, last + 1))
            assert f.duplicates == 0 and f.gaps == 0
            assert f.items == items
        # The stored board agrees: a late member on either node gets all of it.
        cpe_token = await token_for(a.url, cast.cpe)
        for node in (a, b):
            late = await Follower(cpe_token, board).connect(node.url)
            try:
                assert late.items == items and late.seq == last
            finally:
                await late.close()
    finally:
        for f in authors:
            await f.close()


async def test_chat_messages_sent_on_both_nodes_at_once_are_gap_free(
    pair: tuple[Node, Node], demo_accounts: list[dict[str, Any]]
) -> None:
    a, b = pair
    cast = ChatCast(demo_accounts)
    teacher = await ChatClient(a.url, await token_for(a.url, cast.teacher)).connect()
    alice = await ChatClient(b.url, await token_for(b.url, cast.alice)).connect()
    bob = await ChatClient(b.url, await token_for(b.url, cast.bob)).connect()
    senders = (teacher, alice, bob)
    try:
        members = [await user_id(a.url, x) for x in (cast.alice, cast.bob)]
        conv = (await teacher.ok("create", {"kind": "group", "title": "Tous ensemble",
                                            "members": members, "body": "0"}))["conversation_id"]

        async def send(c: ChatClient, name: str) -> list[int]:
            # 8 each: with the teacher's `create`, within a connection's burst of 10 writes.
            return [(await c.ok("send", {"conversation_id": conv, "body": f"{name} {i}"}))["seq"]
                    for i in range(PER_SENDER)]

        acked = await asyncio.gather(*(send(c, n) for c, n in zip(
            senders, ("prof", "alice", "bob"), strict=True)))
        last = 1 + 3 * PER_SENDER
        assert sorted(s for seqs in acked for s in seqs) == list(range(2, last + 1))
        for seqs in acked:  # each sender's own messages in the order it sent them
            assert seqs == sorted(seqs)
        synced = await bob.ok("sync", {"conversation_id": conv, "since": 0})
        assert [e["seq"] for e in synced["events"]] == list(range(1, last + 1))
        by_seq = {e["seq"]: e["message"]["body"] for e in synced["events"]}
        for seqs, name in zip(acked, ("prof", "alice", "bob"), strict=True):
            assert [by_seq[s] for s in seqs] == [f"{name} {i}" for i in range(PER_SENDER)]
        # Live, on both nodes: each event once. Not necessarily in seq order: two nodes
        # commit seqs 3 and 4 and publish them after their commits, B's publish may reach
        # Redis first. A client applies events in seq order and asks `sync` on a gap
        # (docs/chat.md, web_client/src/chat/connection.js), as the replay below does: it
        # shows every message once, in order.
        for c in senders:
            await c.wait_for(lambda c=c: len(
                [e for e in c.events if e["conversation_id"] == conv]) >= last)
            live = [e for e in c.events if e["conversation_id"] == conv]
            assert sorted(e["seq"] for e in live) == list(range(1, last + 1))
            shown = await apply_like_the_web_client(c, conv, live)
            assert shown == [by_seq[s] for s in range(1, last + 1)]
    finally:
        for c in senders:
            await c.close()


async def apply_like_the_web_client(c: ChatClient, conv: int,
                                    live: list[dict[str, Any]]) -> list[str]:
    """The bodies a client shows that applies live events strictly in seq order and, on a
    gap, asks the server what it missed (`sync` since its head), as
    web_client/src/chat/connection.js does."""
    head, shown = 0, []
    for e in live:
        if e["seq"] <= head:
            continue
        if e["seq"] == head + 1:
            head = e["seq"]
            shown.append(e["message"]["body"])
            continue
        synced = await c.ok("sync", {"conversation_id": conv, "since": head})
        for ev in synced["events"]:
            if ev["seq"] == head + 1:
                head = ev["seq"]
                shown.append(ev["message"]["body"])
    return shown


async def test_one_roll_taken_from_two_nodes_at_once(
    pair: tuple[Node, Node], demo_accounts: list[dict[str, Any]]
) -> None:
    """The teacher's tablet on A and the CPE's computer on B open the same course at the same
    moment (one roll, not two, not an error), then mark different pupils at once: every
    mark is kept."""
    a, b = pair
    cast = AttendanceCast(demo_accounts)
    tablet = await AttendanceClient(a.url, await token_for(a.url, cast.teacher)).connect()
    cpe_token = await token_for(b.url, cast.cpe)
    desk = await AttendanceClient(b.url, cpe_token).connect()
    try:
        # A course two months back: the demo's history and the other tests never opened it.
        slot, day = await anext(course_days(a.url, cast.teacher, cast.class_name, 60))
        both = await asyncio.gather(*(
            c.call("open_roll", {"slot_id": slot["id"], "date": day}) for c in (tablet, desk)))
        assert all(o["ok"] for o in both), both
        rid = both[0]["roll"]["id"]
        assert both[1]["roll"]["id"] == rid
        pupils = [s["id"] for s in both[0]["students"]]
        half = len(pupils) // 2

        async def mark(c: AttendanceClient, ids: list[int], state: str) -> None:
            for sid in ids:
                mark = {"student_id": sid, "state": state}
                if state == "late":
                    mark["minutes"] = 5
                done = await c.call("mark", {"roll_id": rid, "marks": [mark],
                                             "reason": "Saisie à deux"})
                assert done["ok"], done

        await asyncio.gather(mark(tablet, pupils[:half], "absent"),
                             mark(desk, pupils[half:], "late"))
        seen = await desk.call("view_roll", {"roll_id": rid})
        assert seen["ok"], seen
        marks = {s["id"]: (s["mark"] or {}).get("state") for s in seen["students"]}
        assert marks == {**dict.fromkeys(pupils[:half], "absent"),
                         **dict.fromkeys(pupils[half:], "late")}
        # The roll's own row took every change: one version each, and the counts the
        # class's list of rolls shows (stored with the roll, not counted again).
        assert seen["roll"]["version"] == both[0]["roll"]["version"] + len(pupils)
        listed = await get(b.url, cpe_token, f"/api/attendance/classes/"
                           f"{seen['roll']['class_id']}/rolls?from={day}&to={day}")
        (row,) = [r for r in listed["rolls"] if r["id"] == rid]
        assert (row["absent"], row["late"]) == (half, len(pupils) - half)
    finally:
        await tablet.close()
        await desk.close()


async def test_two_teachers_rolls_validated_on_two_nodes_at_once(
    pair: tuple[Node, Node], demo_accounts: list[dict[str, Any]]
) -> None:
    """Two teachers of one class, one on each node, validate their courses at once with the
    same pupil absent: the parent gets both notices, numbered one after the other."""
    a, b = pair
    cast = AttendanceCast(demo_accounts)
    other = next(x for x in demo_accounts if x["role"] == "teacher"
                 and x["school"] == CHARLEMAGNE and cast.class_name in x["classes"]
                 and x["login"] != cast.teacher["login"])
    first = await AttendanceClient(a.url, await token_for(a.url, cast.teacher)).connect()
    second = await AttendanceClient(b.url, await token_for(b.url, other)).connect()
    parent = await AttendanceClient(a.url, await token_for(a.url, cast.guardians[0])).connect()
    try:
        follow = await parent.call("follow_feed", {})
        assert follow["ok"], follow
        rolls = []
        for teacher, acct, back in ((first, cast.teacher, 45), (second, other, 45)):
            async for slot, day in course_days(a.url, acct, cast.class_name, back):
                opened = await teacher.call("open_roll", {"slot_id": slot["id"], "date": day})
                if opened["ok"] and opened["roll"]["state"] != "done":
                    rolls.append(opened)
                    break
        assert len(rolls) == 2 and rolls[0]["roll"]["id"] != rolls[1]["roll"]["id"]
        sid = next(s["id"] for s in rolls[0]["students"] if s["name"] == cast.student["name"])
        await asyncio.gather(validate_with_absent(first, rolls[0], [sid]),
                             validate_with_absent(second, rolls[1], [sid]))
        await parent.wait_for(lambda: len(parent.events["notice"]) >= 2, 15)
        notices = parent.events["notice"]
        assert [n["seq"] for n in notices] == [follow["seq"] + 1, follow["seq"] + 2]
        assert {n["student_id"] for n in notices} == {sid}
        assert len({n["id"] for n in notices}) == 2
        again = await parent.call("follow_feed", {})
        ids = {n["id"] for n in again["snapshot"]}
        assert {n["id"] for n in notices} <= ids
    finally:
        for c in (first, second, parent):
            await c.close()

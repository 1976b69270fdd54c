"""The messagerie written by two nodes (or two requests) at once, in a chosen order
(tests/interleave.py): node A's transaction is held open at its write, node B's request
comes meanwhile. What SQLite's single writer serialised holds on PostgreSQL too; and the
events of one conversation reach every device in seq order, whichever commit's callback
runs first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
import pytest_asyncio

from realtime import keys
from realtime.app import create_app
from realtime.chat import store as chat_store
from realtime.chat.service import ChatService
from tests import engines
from tests.chat.conftest import Cast, ChatClient, ChatServer, Clock, Connect, paris
from tests.conftest import REDIS_URL, live_clients, make_settings, token_for, user_id
from tests.engines import open_test_db
from tests.interleave import Hold, until_waiting

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest_asyncio.fixture
async def nodes(aiohttp_server: Any, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
                redis_cleanup: Any) -> list[ChatServer]:
    """Two servers on one database and one Redis (two nodes), their chat at 10:00."""
    out = []
    for name in ("a", "b"):
        app = create_app(make_settings(tmp_path / name, db_path=demo_db_path,
                                       redis_url=REDIS_URL, redis_prefix=redis_prefix))
        base = str((await aiohttp_server(app)).make_url("")).rstrip("/")
        clock = Clock(paris(10))
        app[keys.CHAT].clock = clock
        out.append(ChatServer(base, app, clock))
    return out


@pytest_asyncio.fixture
async def devices(nodes: list[ChatServer]) -> AsyncIterator[Connect]:
    """`await devices(account, node)`: a connected ChatClient on that node."""
    async with live_clients(ChatClient, nodes[0].base) as make:
        async def connect(acct: dict[str, Any], node: ChatServer) -> ChatClient:
            return await make(acct, node.base)
        yield connect


async def test_two_invitations_at_once_never_pass_the_cap(
        nodes: list[ChatServer], devices: Connect, cast: Cast, demo_db_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A group of two, three people at most: the teacher invites Bob from node A and a
    parent from node B at the same moment. Each fits alone; together they would not: the
    second is refused `too_large`, counted under the conversation's lock."""
    a, b = nodes
    for node in nodes:
        svc: ChatService = node.service
        svc.limits = msgspec.structs.replace(svc.limits, participants_max=3)
    alice, bob, parent = [await user_id(a.base, x) for x in (cast.alice, cast.bob, cast.parent)]
    on_a, on_b = await devices(cast.teacher, a), await devices(cast.teacher, b)
    conv = (await on_a.ok("create", {"kind": "group", "title": "Exposé", "members": [alice],
                                     "body": "Bienvenue"}))["conversation_id"]
    hold = Hold(monkeypatch, chat_store, "add_members", when=lambda conn, cid, *_: cid == conv)
    first = asyncio.create_task(on_a.call("invite", {"conversation_id": conv,
                                                     "members": [bob]}))
    await hold.entered.wait()
    second = asyncio.create_task(on_b.call("invite", {"conversation_id": conv,
                                                      "members": [parent]}))
    await until_waiting(demo_db_path, second)
    hold.release()
    assert (await first)["ok"]
    refused = await second
    assert not refused["ok"] and refused["error"]["code"] == "too_large", refused
    db = await open_test_db(demo_db_path)
    try:
        rows = await db.fetchall("SELECT user_id FROM chat_participants WHERE"
                                 " conversation_id = ?", (conv,))
        assert sorted(r["user_id"] for r in rows) == sorted([on_a.me["id"], alice, bob])
    finally:
        await db.close()


async def test_a_conversation_closed_on_two_nodes_at_once_is_closed_once(
        nodes: list[ChatServer], devices: Connect, cast: Cast, demo_db_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The teacher closes a group from the phone (node A) and the laptop (node B) at the
    same moment: one `closed` event, and both are answered with its seq."""
    a, b = nodes
    alice = await user_id(a.base, cast.alice)
    on_a, on_b = await devices(cast.teacher, a), await devices(cast.teacher, b)
    conv = (await on_a.ok("create", {"kind": "group", "title": "Sortie", "members": [alice],
                                     "body": "Départ 8 h"}))["conversation_id"]
    hold = Hold(monkeypatch, chat_store, "set_open")
    first = asyncio.create_task(on_a.call("set_open", {"conversation_id": conv,
                                                       "open": False}))
    await hold.entered.wait()
    second = asyncio.create_task(on_b.call("set_open", {"conversation_id": conv,
                                                        "open": False}))
    await until_waiting(demo_db_path, second)
    hold.release()
    closed, again = await first, await second
    assert closed["ok"] and again["ok"], (closed, again)
    assert closed["seq"] == again["seq"] == 2
    db = await open_test_db(demo_db_path)
    try:
        rows = await db.fetchall("SELECT seq FROM chat_events WHERE conversation_id = ? AND"
                                 " kind = 'closed'", (conv,))
        assert [r["seq"] for r in rows] == [2]
    finally:
        await db.close()


async def _upload(base: str, token: str) -> int:
    async with aiohttp.ClientSession() as s, s.post(
            f"{base}/api/chat/attachments", params={"name": "sortie.pdf"}, data=PDF,
            headers={"Authorization": f"Bearer {token}",
                     "Content-Type": "application/octet-stream"}) as r:
        assert r.status == 201
        return int((await r.json())["id"])


async def test_one_file_sent_with_two_messages_at_once(
        nodes: list[ChatServer], devices: Connect, cast: Cast, demo_db_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The teacher sends one uploaded file from the phone (node A) and the laptop (node B)
    at the same moment: the first message has it; the second is refused (`conflict`, the
    file went with the first) and rolled back, rather than announced with a file that is not
    its own."""
    a, b = nodes
    alice = await user_id(a.base, cast.alice)
    on_a, on_b = await devices(cast.teacher, a), await devices(cast.teacher, b)
    conv = (await on_a.ok("create", {"kind": "group", "title": "Sortie", "members": [alice],
                                     "body": "Le programme suit"}))["conversation_id"]
    att = await _upload(a.base, await token_for(a.base, cast.teacher))
    hold = Hold(monkeypatch, chat_store, "insert_message")
    first = asyncio.create_task(on_a.call("send", {"conversation_id": conv, "body": "Voici",
                                                   "attachments": [att]}))
    await hold.entered.wait()
    second = asyncio.create_task(on_b.call("send", {"conversation_id": conv,
                                                    "body": "Voici (bis)",
                                                    "attachments": [att]}))
    await until_waiting(demo_db_path, second)
    hold.release()
    sent, refused = await first, await second
    assert sent["ok"], sent
    # On PostgreSQL node B was seen waiting inside its transaction: the claim refuses it. On
    # SQLite it may as well have checked the file after A's commit: « déjà envoyée ».
    assert not refused["ok"] and refused["error"]["code"] in (
        ("conflict",) if engines.POSTGRES else ("conflict", "not_found")), refused
    page = await on_b.ok("history", {"conversation_id": conv})
    assert [(m["body"], [f["id"] for f in m["attachments"]]) for m in page["messages"]] == [
        ("Le programme suit", []), ("Voici", [att])]
    assert page["head"] == 2  # the refused message took no seq


async def test_a_report_filed_while_the_retention_job_purges_is_kept(
        chat_server: ChatServer, chat_client: Connect, cast: Cast,
        demo_db_path: Path) -> None:
    """A pupil reports a message (node B, not yet committed) while the retention job
    purges old messages (node A): the purge waits for the report, sees it and keeps the
    message for the vie scolaire; the report stays."""
    teacher = await chat_client(cast.teacher)
    alice_id = await user_id(chat_server.base, cast.alice)
    made = await teacher.ok("create", {"kind": "group", "title": "Devoir",
                                       "members": [alice_id], "body": "Texte à signaler"})
    msg_id = made["message_id"]
    node_a, node_b = await open_test_db(demo_db_path), await open_test_db(demo_db_path)
    try:
        msg = await chat_store.message(node_a, msg_id)
        conv = await chat_store.get(node_a, made["conversation_id"])
        assert msg is not None and conv is not None
        school = conv.school_id

        async def purge() -> dict[str, int]:
            async with node_a.transaction() as conn:
                counts, _keys = await chat_store.purge_before(conn, msg.created_at + 1)
                return counts

        async with node_b.transaction() as conn:
            report = await chat_store.report(conn, msg_id, alice_id, school, "Insulte",
                                             msg.created_at + 2)
            purging = asyncio.create_task(purge())
            await until_waiting(demo_db_path, purging)
        counts = await purging
        assert counts["chat_messages"] > 0  # older messages of the demo went
        assert await chat_store.message(node_a, msg_id) is not None
        row = await node_a.fetchone("SELECT handled_at FROM chat_reports WHERE id = ?",
                                    (report,))
        assert row is not None and row["handled_at"] is None
    finally:
        await node_a.close()
        await node_b.close()


async def test_a_report_on_a_message_the_retention_job_is_erasing(
        chat_server: ChatServer, chat_client: Connect, cast: Cast,
        demo_db_path: Path) -> None:
    """The retention job has erased a message (not yet committed, node A) when a pupil
    reports it: the report waits, then is answered `not_found` (the message is gone), not
    an internal error."""
    teacher = await chat_client(cast.teacher)
    alice = await chat_client(cast.alice)
    made = await teacher.ok("create", {"kind": "group", "title": "Devoir",
                                       "members": [alice.me["id"]], "body": "Ancien"})
    node_a = await open_test_db(demo_db_path)
    try:
        msg = await chat_store.message(node_a, made["message_id"])
        assert msg is not None
        async with node_a.transaction() as conn:
            await chat_store.purge_before(conn, msg.created_at + 1)
            reporting = asyncio.create_task(alice.call(
                "report", {"message_id": made["message_id"], "reason": "Insulte"}))
            await until_waiting(demo_db_path, reporting)
        answer = await reporting
        assert not answer["ok"] and answer["error"]["code"] == "not_found", answer
    finally:
        await node_a.close()


async def test_events_reach_every_device_in_seq_order_whichever_commit_publishes_first(
        chat_server: ChatServer, chat_client: Connect, cast: Cast,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Seq 2 is committed but its publish is slow (held here); seq 3 commits meanwhile and
    its publish is ready first. Every device still gets 1, 2, 3 in that order: the later
    event waits for the earlier one of its conversation."""
    rooms = chat_server.service.rooms
    teacher = await chat_client(cast.teacher)
    token = await token_for(chat_server.base, cast.alice)
    phone, laptop = await chat_client(cast.alice, token), await chat_client(cast.alice, token)
    conv = (await teacher.ok("create", {"kind": "group", "title": "Sortie",
                                        "members": [phone.me["id"]],
                                        "body": "Un"}))["conversation_id"]
    gate, stuck = asyncio.Event(), asyncio.Event()
    real = rooms.emit_users

    async def slow_for_seq_2(user_ids: list[int], event: str, data: dict[str, Any]) -> None:
        if event == "event" and data.get("conversation_id") == conv and data["seq"] == 2:
            stuck.set()
            await gate.wait()
        await real(user_ids, event, data)

    monkeypatch.setattr(rooms, "emit_users", slow_for_seq_2)
    second = asyncio.create_task(teacher.call("send", {"conversation_id": conv,
                                                       "body": "Deux"}))
    await stuck.wait()  # seq 2 committed, its publish under way
    third = asyncio.create_task(phone.call("send", {"conversation_id": conv,
                                                    "body": "Trois"}))

    def seq_3_out() -> bool:
        return any(e["conversation_id"] == conv and e["seq"] == 3
                   for d in (teacher, phone, laptop) for e in d.events)

    # Seq 3 committed and either held back behind seq 2, or (unordered) already delivered.
    while rooms.held_back == 0 and not seq_3_out():  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    gate.set()
    assert (await second)["ok"] and (await third)["ok"]
    for device in (teacher, phone, laptop):
        await device.wait_event(conv, 3)
        await device.wait_event(conv, 2)
        got = [e["seq"] for e in device.events if e["conversation_id"] == conv]
        assert got == [1, 2, 3], got
        assert [e["message"]["body"] for e in device.events
                if e["conversation_id"] == conv] == ["Un", "Deux", "Trois"]

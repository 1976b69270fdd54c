"""Conversations over /chat: delivery to every device, order, resume, receipts, unread counts."""

from __future__ import annotations

import asyncio
from typing import Any

from realtime import keys
from tests.chat.conftest import Cast, ChatServer, Connect
from tests.conftest import token_for, user_id


async def test_parent_writes_to_the_teacher_of_their_child(
        chat_server: ChatServer, chat_client: Connect, cast: Cast) -> None:
    teacher_id = await user_id(chat_server.base, cast.teacher)
    parent = await chat_client(cast.parent)
    teacher = await chat_client(cast.teacher)
    made = await parent.ok("create", {"kind": "direct", "members": [teacher_id],
                                      "body": "Bonjour, Timéo sera absent demain."})
    conv = made["conversation_id"]
    assert made["created"] and made["seq"] == 1
    await teacher.wait_for(lambda: teacher.received["conversation"])
    assert teacher.received["conversation"][0]["id"] == conv
    event = await teacher.wait_event(conv, 1)
    assert event["kind"] == "message" and event["message"]["body"].startswith("Bonjour")
    assert event["message"]["author_id"] == parent.me["id"]
    # The same pair writing again lands in the same direct conversation.
    again = await parent.ok("create", {"kind": "direct", "members": [teacher_id],
                                       "body": "Et après-demain aussi."})
    assert again["conversation_id"] == conv and not again["created"] and again["seq"] == 2
    # Stored truth agrees with what was delivered.
    page = await teacher.ok("history", {"conversation_id": conv})
    assert [m["body"] for m in page["messages"]] == [
        "Bonjour, Timéo sera absent demain.", "Et après-demain aussi."]
    assert page["head"] == 2 and page["before"] is None


async def test_every_device_gets_every_message_in_order(
        chat_server: ChatServer, chat_client: Connect, cast: Cast) -> None:
    ids = [await user_id(chat_server.base, a) for a in (cast.alice, cast.bob, cast.parent)]
    teacher = await chat_client(cast.teacher)
    token = await token_for(chat_server.base, cast.alice)
    phone, laptop = await chat_client(cast.alice, token), await chat_client(cast.alice, token)
    bob = await chat_client(cast.bob)
    made = await teacher.ok("create", {"kind": "group", "title": "Sortie au musée",
                                       "members": ids, "body": "Rendez-vous à 8 h."})
    conv = made["conversation_id"]
    sent = await asyncio.gather(*[
        c.ok("send", {"conversation_id": conv, "body": f"{name} {i}"})
        for i in range(5) for c, name in ((teacher, "prof"), (phone, "alice"), (bob, "bob"))])
    seqs = sorted(s["seq"] for s in sent)
    assert seqs == list(range(2, 17))  # gap-free, one seq per message
    for device in (teacher, phone, laptop, bob):
        await device.wait_event(conv, 16)
        got = [e["seq"] for e in device.events if e["conversation_id"] == conv]
        assert got == list(range(1, 17)), got
    # Each device saw the same content for each seq.
    by_seq = {e["seq"]: e["message"]["body"] for e in bob.events}
    assert all({e["seq"]: e["message"]["body"] for e in d.events} == by_seq
               for d in (teacher, phone, laptop))


async def test_resume_after_reconnect_gets_exactly_what_was_missed(
        chat_server: ChatServer, chat_client: Connect, cast: Cast) -> None:
    teacher_id = await user_id(chat_server.base, cast.teacher)
    alice = await chat_client(cast.alice)
    teacher = await chat_client(cast.teacher)
    conv = (await alice.ok("create", {"kind": "direct", "members": [teacher_id],
                                      "body": "Question sur l'exercice 3"}))["conversation_id"]
    await alice.close()
    for i in range(4):
        await teacher.ok("send", {"conversation_id": conv, "body": f"réponse {i}"})
    back = await chat_client(cast.alice)
    summary = next(c for c in back.received["welcome"][0]["conversations"] if c["id"] == conv)
    assert summary["unread"] == 4 and summary["last_seq"] == 5
    assert back.received["welcome"][0]["unread"] >= 4
    missed = await back.ok("sync", {"conversation_id": conv, "since": 1})
    assert [e["seq"] for e in missed["events"]] == [2, 3, 4, 5]
    assert [e["message"]["body"] for e in missed["events"]] == [f"réponse {i}" for i in range(4)]
    assert (await back.ok("sync", {"conversation_id": conv, "since": 5}))["events"] == []
    # A position ahead of the stream is not served a partial replay.
    assert (await back.ok("sync", {"conversation_id": conv, "since": 99}))["reset"]


async def test_history_pages_by_cursor(chat_server: ChatServer, chat_client: Connect,
                                       cast: Cast) -> None:
    alice_id = await user_id(chat_server.base, cast.alice)
    teacher = await chat_client(cast.teacher)
    conv = (await teacher.ok("create", {"kind": "direct", "members": [alice_id],
                                        "body": "m0"}))["conversation_id"]
    for i in range(1, 120):
        await chat_server.service.send(await _principal(chat_server, teacher), conv, f"m{i}", [])
    seen: list[str] = []
    before = None
    while True:
        page = await teacher.ok("history", {"conversation_id": conv, "before": before})
        seen = [m["body"] for m in page["messages"]] + seen
        before = page["before"]
        if before is None:
            break
    assert seen == [f"m{i}" for i in range(120)]


async def test_read_receipts_across_two_devices(chat_server: ChatServer, chat_client: Connect,
                                                cast: Cast) -> None:
    parent_id = await user_id(chat_server.base, cast.parent)
    teacher = await chat_client(cast.teacher)
    token = await token_for(chat_server.base, cast.parent)
    phone, laptop = await chat_client(cast.parent, token), await chat_client(cast.parent, token)
    conv = (await teacher.ok("create", {"kind": "direct", "members": [parent_id],
                                        "body": "Réunion jeudi à 17 h"}))["conversation_id"]
    await teacher.ok("send", {"conversation_id": conv, "body": "Salle 12"})
    await laptop.wait_event(conv, 2)
    read = await phone.ok("read", {"conversation_id": conv, "seq": 2})
    assert read["read_seq"] == 2
    # The other device of the same person and the sender both hear of it.
    for device in (laptop, teacher):
        await device.wait_for(lambda d=device: any(
            r["conversation_id"] == conv and r["user_id"] == parent_id and r["read_seq"] == 2
            for r in d.received["receipt"]))
    detail = await teacher.ok("open", {"conversation_id": conv})
    assert detail["conversation"]["read"][str(parent_id)] == 2
    # Reading backwards never lowers the mark; reading past the head is capped.
    assert (await laptop.ok("read", {"conversation_id": conv, "seq": 1}))["read_seq"] == 2
    assert (await laptop.ok("read", {"conversation_id": conv, "seq": 50}))["read_seq"] == 2
    fresh = await chat_client(cast.parent, token)
    summary = next(c for c in fresh.received["welcome"][0]["conversations"] if c["id"] == conv)
    assert summary["unread"] == 0


async def test_typing_is_relayed_but_not_stored(chat_server: ChatServer, chat_client: Connect,
                                                cast: Cast) -> None:
    alice_id = await user_id(chat_server.base, cast.alice)
    teacher = await chat_client(cast.teacher)
    alice = await chat_client(cast.alice)
    conv = (await teacher.ok("create", {"kind": "direct", "members": [alice_id],
                                        "body": "Bonjour"}))["conversation_id"]
    await alice.sio.emit("typing", {"conversation_id": conv}, namespace="/chat")
    await teacher.wait_for(lambda: teacher.received["typing"])
    assert teacher.received["typing"][0]["user_id"] == alice_id
    assert (await teacher.ok("sync", {"conversation_id": conv, "since": 0}))["head"] == 1


async def test_mute_keeps_messages_but_leaves_the_total(
        chat_server: ChatServer, chat_client: Connect, cast: Cast) -> None:
    alice_id = await user_id(chat_server.base, cast.alice)
    teacher = await chat_client(cast.teacher)
    alice = await chat_client(cast.alice)
    conv = (await teacher.ok("create", {"kind": "direct", "members": [alice_id],
                                        "body": "Bonjour"}))["conversation_id"]
    await alice.ok("mute", {"conversation_id": conv, "muted": True})
    await teacher.ok("send", {"conversation_id": conv, "body": "Encore"})
    await alice.wait_event(conv, 2)
    again = await alice.ok("list")
    summary = next(c for c in again["conversations"] if c["id"] == conv)
    assert summary["muted"] and summary["unread"] == 2 and again["unread"] == 0


async def _principal(server: ChatServer, client: Any) -> Any:
    return await server.app[keys.IDENTITY].authenticate(client.token)

"""The chat of a board session: the class asks, the teacher deletes and closes."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.boards.conftest import BoardClient
from tests.chat.conftest import Cast, ChatServer, Connect
from tests.conftest import login, token_for
from tests.silence import nothing_arrived


async def _board(server: ChatServer, cast: Cast) -> int:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, server.base, cast.teacher)
        async with s.get(f"{server.base}/api/classes") as r:
            classes = (await r.json())["classes"]
        class_id = next(c["id"] for c in classes if c["name"] == cast.class_name)
        async with s.post(f"{server.base}/api/boards",
                          json={"title": "Théorème de Pythagore", "class_id": class_id}) as r:
            assert r.status == 201
            return int((await r.json())["id"])


async def test_live_session_chat(chat_server: ChatServer, chat_client: Connect,
                                 cast: Cast) -> None:
    board = await _board(chat_server, cast)
    teacher = await chat_client(cast.teacher)
    alice = await chat_client(cast.alice)
    bob = await chat_client(cast.bob)
    joined = [await c.ok("live_join", {"board_id": board}) for c in (teacher, alice, bob)]
    conv = joined[0]["conversation"]["id"]
    assert {j["conversation"]["id"] for j in joined} == {conv}
    assert joined[0]["conversation"]["can_moderate"] and not joined[1]["conversation"][
        "can_moderate"]
    q = await alice.ok("send", {"conversation_id": conv, "body": "Pourquoi au carré ?"})
    for c in (teacher, bob):
        event = await c.wait_event(conv, q["seq"])
        assert event["message"]["body"] == "Pourquoi au carré ?"
    spam = await bob.ok("send", {"conversation_id": conv, "body": "lol"})
    msg = (await teacher.wait_event(conv, spam["seq"]))["message"]["id"]
    # The teacher deletes a pupil's message at once; a pupil cannot delete another's.
    assert (await alice.call("delete", {"message_id": msg}))["error"]["code"] == "forbidden"
    deleted = await teacher.ok("delete", {"message_id": msg})
    assert (await bob.wait_event(conv, deleted["seq"]))["message"]["body"] == "Message supprimé"
    closed = await teacher.ok("set_open", {"conversation_id": conv, "open": False})
    assert (await alice.wait_event(conv, closed["seq"]))["kind"] == "closed"
    answer = await alice.call("send", {"conversation_id": conv, "body": "Encore une question"})
    assert answer["error"]["code"] == "forbidden"
    assert (await alice.call("set_open", {"conversation_id": conv, "open": True}))["error"][
        "code"] == "forbidden"
    await teacher.ok("set_open", {"conversation_id": conv, "open": True})
    assert (await alice.ok("send", {"conversation_id": conv, "body": "Merci !"}))
    # Someone who may not see the board does not find its chat either.
    outsider = await chat_client(cast.far_teacher)
    parent = await chat_client(cast.parent)
    for c in (outsider, parent):
        answer = await c.call("live_join", {"board_id": board})
        assert answer["error"]["code"] == "not_found"
        assert await c.call("send", {"conversation_id": conv, "body": "x"}) == await c.call(
            "send", {"conversation_id": 999_999, "body": "x"})
    # Nor does it hear the session's messages: a direct message from someone who may write
    # to it, sent after one more message of the session, reaches it alone.
    await alice.ok("send", {"conversation_id": conv, "body": "Et la suite ?"})
    for c, writer_acct in ((outsider, cast.far_cpe), (parent, cast.teacher)):
        writer = await chat_client(writer_acct)
        own: list[int] = []

        async def write_to(c: Any = c, writer: Any = writer, own: list[int] = own) -> None:
            made = await writer.ok("create", {"kind": "direct", "members": [c.me["id"]],
                                              "body": "Un mot pour vous"})
            own.append(made["conversation_id"])

        await nothing_arrived(
            lambda c=c: [e for e in c.events if e["conversation_id"] == conv],
            control=write_to,
            arrived=lambda c=c, own=own: any(e["conversation_id"] in own for e in c.events))
    # A late-comer gets the history; the ended session is read-only.
    late = await chat_client(cast.alice)
    page = await late.ok("live_join", {"board_id": board})
    assert [m["body"] for m in page["messages"]] == [
        "Pourquoi au carré ?", "Message supprimé", "Merci !", "Et la suite ?"]
    board_teacher = await BoardClient(chat_server.base,
                                      await token_for(chat_server.base, cast.teacher)).connect()
    try:
        assert (await board_teacher.call("join", {"board_id": board}))["ok"]
        assert (await board_teacher.call("end", {"board_id": board}))["ok"]
    finally:
        await board_teacher.close()
    answer = await alice.call("send", {"conversation_id": conv, "body": "Trop tard"})
    assert answer["error"]["code"] == "forbidden"

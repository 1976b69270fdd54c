"""A message or change that was rolled back reaches nobody; a committed one does (the
positive control proves the reader's channel was live the whole time). A logout rolled back
ends no connection either (identity's session end, seen from the messagerie)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from realtime import keys
from tests.chat.conftest import Cast, ChatServer, Connect
from tests.conftest import account, token_for, user_id
from tests.rollback import rolled_back


async def test_a_rolled_back_message_is_never_delivered(chat_server: ChatServer,
                                                         chat_client: Connect,
                                                         cast: Cast) -> None:
    teacher = await chat_client(cast.teacher)
    parent = await chat_client(cast.parent)
    peer = await user_id(chat_server.base, cast.parent)
    made = await teacher.ok("create", {"kind": "direct", "members": [peer],
                                       "body": "Bonjour, une question sur les devoirs."})
    conv = made["conversation_id"]
    await parent.wait_event(conv, made["seq"])
    db = chat_server.app[keys.DB]
    with rolled_back(db) as aborted:
        lost = await teacher.call("send", {"conversation_id": conv, "body": "JAMAIS ENVOYÉ"})
        muted = await parent.call("mute", {"conversation_id": conv, "muted": True})
    assert aborted == [1, 1]
    assert lost["ok"] is False and lost["error"]["code"] == "internal"
    assert muted["ok"] is False
    kept = await teacher.ok("send", {"conversation_id": conv, "body": "Message bien envoyé."})
    assert kept["seq"] == made["seq"] + 1  # the rolled-back one took no place in the stream
    event = await parent.wait_event(conv, kept["seq"])  # positive control: the channel works
    assert event["message"]["body"] == "Message bien envoyé."
    bodies = [e.get("message", {}).get("body") for e in parent.events]
    assert "JAMAIS ENVOYÉ" not in bodies
    await parent.ok("mute", {"conversation_id": conv, "muted": False})
    await parent.wait_for(lambda: parent.received["muted"])
    assert parent.received["muted"] == [{"conversation_id": conv, "muted": False}]
    history = await parent.ok("history", {"conversation_id": conv})
    assert [m["body"] for m in history["messages"]] == [
        "Bonjour, une question sur les devoirs.", "Message bien envoyé."]


async def test_a_rolled_back_logout_closes_nothing(chat_server: ChatServer,
                                                   chat_client: Connect,
                                                   demo_accounts: list[dict[str, Any]]
                                                   ) -> None:
    teacher = account(demo_accounts, "teacher")
    base = chat_server.base
    token = await token_for(base, teacher)
    device = await chat_client(teacher, token=token)
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        with rolled_back(chat_server.app[keys.DB]) as aborted:
            async with http.post(f"{base}/api/logout", headers=auth) as r:
                assert r.status == 500
        assert aborted == [1]
        assert (await device.call("list", {}))["ok"]  # still connected, still signed in
        async with http.get(f"{base}/api/me", headers=auth) as r:
            assert r.status == 200
        async with http.post(f"{base}/api/logout", headers=auth) as r:
            assert r.status == 200
        for _ in range(100):  # positive control: the committed logout cuts it
            if not device.sio.connected:
                break
            await asyncio.sleep(0.05)
        assert not device.sio.connected
        async with http.get(f"{base}/api/me", headers=auth) as r:
            assert r.status == 401

"""A message or change that was rolled back reaches nobody; a committed one does (the
positive control proves the reader's channel was live the whole time)."""

from __future__ import annotations

from realtime import keys
from tests.chat.conftest import Cast, ChatServer, Connect
from tests.conftest import user_id
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

"""Bad input gets a clear error and changes nothing: wrong types, unknown fields, oversize,
floods. Each case ends by checking the stored conversation did not move."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from realtime.chat.socket import READS_PER_SECOND
from tests.chat.conftest import Cast, ChatServer, Connect
from tests.clocks import freeze_budgets
from tests.conftest import token_for, user_id

BAD: list[tuple[str, Any, str]] = [
    ("send", None, "invalid"),
    ("send", "texte", "invalid"),
    ("send", {"conversation_id": "1", "body": "x"}, "invalid"),
    ("send", {"conversation_id": 0, "body": "x"}, "invalid"),
    ("send", {"conversation_id": -5, "body": "x"}, "invalid"),
    ("send", {"conversation_id": 2**60, "body": "x"}, "invalid"),
    ("send", {"conversation_id": 1.5, "body": "x"}, "invalid"),
    ("send", {"conversation_id": 1, "body": 42}, "invalid"),
    ("send", {"conversation_id": 1, "body": "x", "admin": True}, "invalid"),
    ("send", {"conversation_id": 1, "body": ["x"]}, "invalid"),
    ("send", {"conversation_id": 1, "body": "x", "attachments": "1"}, "invalid"),
    ("send", {"conversation_id": 1, "body": "x" * 60_000}, "too_large"),
    ("create", {"kind": "secret", "members": [1], "body": "x"}, "invalid"),
    ("create", {"kind": "direct", "members": "1", "body": "x"}, "invalid"),
    ("create", {"kind": "direct", "members": [], "body": "x"}, "invalid"),
    ("create", {"kind": "direct", "members": list(range(1, 2000)), "body": "x"}, "invalid"),
    ("read", {"conversation_id": 1, "seq": -1}, "invalid"),
    ("history", {"conversation_id": 1, "limit": 100_000}, "invalid"),
    ("sync", {"conversation_id": 1}, "invalid"),
    ("mute", {"conversation_id": 1, "muted": "oui"}, "invalid"),
    ("search", {"q": ""}, "invalid"),
    ("search", {"q": "x" * 500}, "invalid"),
    ("live_join", {"board_id": "abc"}, "invalid"),
    ("edit", {"message_id": 1}, "invalid"),
]


@pytest.mark.parametrize(("event", "data", "code"), BAD,
                         ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(BAD)])
async def test_bad_payloads_are_refused(chat_server: ChatServer, chat_client: Connect,
                                        cast: Cast, event: str, data: Any, code: str) -> None:
    alice_id = await user_id(chat_server.base, cast.alice)
    teacher = await chat_client(cast.teacher)
    conv = (await teacher.ok("create", {"kind": "direct", "members": [alice_id],
                                        "body": "Bonjour"}))["conversation_id"]
    if isinstance(data, dict) and data.get("conversation_id") == 1:
        data = {**data, "conversation_id": conv}
    answer = await teacher.call(event, data)
    assert answer["ok"] is False and answer["error"]["code"] == code, answer
    assert answer["error"]["message"]
    assert (await teacher.ok("sync", {"conversation_id": conv, "since": 0}))["head"] == 1


async def test_body_length_cap_and_empty_message(chat_server: ChatServer, chat_client: Connect,
                                                 cast: Cast) -> None:
    alice_id = await user_id(chat_server.base, cast.alice)
    teacher = await chat_client(cast.teacher)
    cap = chat_server.service.limits.body_max
    conv = (await teacher.ok("create", {"kind": "direct", "members": [alice_id],
                                        "body": "é" * cap}))["conversation_id"]
    over = await teacher.call("send", {"conversation_id": conv, "body": "é" * (cap + 1)})
    assert over["error"]["code"] == "too_large" and str(cap) in over["error"]["message"]
    empty = await teacher.call("send", {"conversation_id": conv, "body": "   \n "})
    assert empty["error"]["code"] == "invalid"
    assert (await teacher.ok("sync", {"conversation_id": conv, "since": 0}))["head"] == 1


async def test_a_flood_is_rate_limited(chat_server: ChatServer, chat_client: Connect,
                                       cast: Cast) -> None:
    clock = freeze_budgets(chat_server.app, "/chat")  # judged at one instant, however slow
    limits = chat_server.service.limits
    alice_id = await user_id(chat_server.base, cast.alice)
    teacher = await chat_client(cast.teacher)
    conv = (await teacher.ok("create", {"kind": "direct", "members": [alice_id],
                                        "body": "Bonjour"}))["conversation_id"]
    answers = [await teacher.call("send", {"conversation_id": conv, "body": f"{i}"})
               for i in range(30)]
    limited = [a for a in answers if not a["ok"]]
    assert limited and all(a["error"]["code"] == "rate_limited" for a in limited)
    accepted = [a["seq"] for a in answers if a["ok"]]
    assert len(accepted) == limits.messages_burst - 1  # the burst, less the first message
    clock.advance(1)  # a second later, a second's worth, no more
    again = [await teacher.call("send", {"conversation_id": conv, "body": "encore"})
             for _ in range(10)]
    accepted += [a["seq"] for a in again if a["ok"]]
    assert sum(a["ok"] for a in again) == limits.messages_per_second
    head = (await teacher.ok("sync", {"conversation_id": conv, "since": 0}))["head"]
    assert head == 1 + len(accepted) and accepted == list(range(2, head + 1))


async def test_rest_bad_input(chat_server: ChatServer, cast: Cast) -> None:
    token = await token_for(chat_server.base, cast.teacher)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as s:
        for url, status in (("/api/chat/conversations/abc", 404),
                            ("/api/chat/conversations/999999", 404),
                            ("/api/chat/conversations/999999/messages", 404),
                            ("/api/chat/conversations/1/messages?before=-3", 400),
                            ("/api/chat/attachments/abc", 404),
                            ("/api/chat/settings/999999", 404)):
            async with s.get(chat_server.base + url, headers=headers) as r:
                assert r.status == status, (url, await r.text())
                assert (await r.json())["error"]["message"]
        async with s.get(f"{chat_server.base}/api/chat/conversations") as r:
            assert r.status == 401
        for i in range(31):
            async with s.post(f"{chat_server.base}/api/chat/attachments?name=a.txt",
                              data=b"bonjour", headers=headers) as r:
                if i < 30:
                    assert r.status == 201
                else:
                    assert r.status == 429 and (await r.json())["error"]["code"] == \
                        "rate_limited"


async def test_reads_are_rate_limited_too(chat_server: ChatServer, chat_client: Connect,
                                          cast: Cast) -> None:
    freeze_budgets(chat_server.app, "/chat")  # judged at one instant, however slow
    alice_id = await user_id(chat_server.base, cast.alice)
    teacher = await chat_client(cast.teacher)
    conv = (await teacher.ok("create", {"kind": "direct", "members": [alice_id],
                                        "body": "Bonjour"}))["conversation_id"]
    answers = [await teacher.call("history", {"conversation_id": conv}) for _ in range(80)]
    codes = {a["error"]["code"] for a in answers if not a["ok"]}
    assert codes == {"rate_limited"} and sum(a["ok"] for a in answers) == 2 * READS_PER_SECOND

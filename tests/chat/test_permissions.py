"""Who may start, invite and post where, against a real server: the matrix, quiet hours,
other schools, and the one `not_found` for the absent and the forbidden alike."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.chat.conftest import Cast, ChatServer, Connect, paris
from tests.conftest import login, token_for, user_id
from tests.silence import nothing_arrived


async def _ids(server: ChatServer, cast: Cast, *names: str) -> list[int]:
    return [await user_id(server.base, getattr(cast, n)) for n in names]


async def _recipients(server: ChatServer, acct: dict[str, Any]) -> set[int]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, server.base, acct)
        async with s.get(f"{server.base}/api/chat/recipients") as r:
            assert r.status == 200
            return {x["id"] for x in (await r.json())["recipients"]}


async def test_who_may_start_with_whom(chat_server: ChatServer, chat_client: Connect,
                                       cast: Cast) -> None:
    names = ("teacher", "other_teacher", "alice", "bob", "parent", "other_parent", "cpe",
             "staff", "far_teacher", "far_cpe", "admin")
    ids = dict(zip(names, await _ids(chat_server, cast, *names), strict=True))
    allowed = {
        "alice": {"teacher", "cpe"},
        "parent": {"teacher", "cpe", "staff"},
        "teacher": set(names) - {"teacher", "far_teacher", "far_cpe", "admin"},
        "cpe": set(names) - {"cpe", "far_teacher", "far_cpe", "admin"},
    }
    for who, may in allowed.items():
        client = await chat_client(getattr(cast, who))
        for target in names:
            if target == who:
                continue
            answer = await client.call("create", {"kind": "direct", "members": [ids[target]],
                                                  "body": "Bonjour"})
            assert answer["ok"] is (target in may), (who, target, answer)
            if not answer["ok"]:
                assert answer["error"]["code"] == "not_found", answer
        listed = await _recipients(chat_server, getattr(cast, who))
        assert {n for n in names if ids[n] in listed} == may - {who}, who


async def test_families_cannot_open_groups_nor_reach_each_other(
        chat_server: ChatServer, chat_client: Connect, cast: Cast) -> None:
    teacher_id, bob_id, other_parent_id = await _ids(chat_server, cast, "teacher", "bob",
                                                     "other_parent")
    alice = await chat_client(cast.alice)
    parent = await chat_client(cast.parent)
    answer = await alice.call("create", {"kind": "group", "title": "Nous",
                                         "members": [teacher_id, bob_id], "body": "Salut"})
    assert answer["error"]["code"] == "forbidden"
    answer = await parent.call("create", {"kind": "direct", "members": [other_parent_id],
                                          "body": "Bonjour"})
    assert answer["error"]["code"] == "not_found"
    # Inside a group a teacher opened and invited them to, they talk to each other.
    teacher = await chat_client(cast.teacher)
    ids = await _ids(chat_server, cast, "alice", "bob", "parent", "other_parent")
    conv = (await teacher.ok("create", {"kind": "group", "title": "Projet", "members": ids,
                                        "body": "Bienvenue"}))["conversation_id"]
    assert (await alice.ok("send", {"conversation_id": conv, "body": "Salut Bob"}))["seq"] == 2
    assert (await parent.ok("send", {"conversation_id": conv, "body": "Bonjour à tous"}))
    # …but only the teacher invites.
    cpe_id = (await _ids(chat_server, cast, "cpe"))[0]
    answer = await alice.call("invite", {"conversation_id": conv, "members": [cpe_id]})
    assert answer["error"]["code"] == "forbidden"
    cpe = await chat_client(cast.cpe)
    invited = await teacher.ok("invite", {"conversation_id": conv, "members": [cpe_id]})
    await cpe.wait_for(lambda: any(c["id"] == conv for c in cpe.received["conversation"]))
    joined = await alice.wait_event(conv, invited["seq"])
    assert joined["kind"] == "joined" and joined["data"]["user_ids"] == [cpe_id]
    page = await cpe.ok("history", {"conversation_id": conv})  # the newcomer reads it all
    assert [m["body"] for m in page["messages"]][:2] == ["Bienvenue", "Salut Bob"]
    again = await teacher.call("invite", {"conversation_id": conv, "members": [cpe_id]})
    assert again["error"]["code"] == "invalid"


async def test_quiet_hours_stop_families_starting_not_staff(
        chat_server: ChatServer, chat_client: Connect, cast: Cast) -> None:
    teacher_id, parent_id = await _ids(chat_server, cast, "teacher", "parent")
    parent = await chat_client(cast.parent)
    teacher = await chat_client(cast.teacher)
    conv = (await parent.ok("create", {"kind": "direct", "members": [teacher_id],
                                       "body": "Bonjour"}))["conversation_id"]
    chat_server.clock.set(paris(21, 30))
    answer = await parent.call("create", {"kind": "direct", "members": [teacher_id],
                                          "body": "Encore moi"})
    # The refusal says why and when (not « introuvable », as if the teacher did not exist).
    assert answer["error"]["code"] == "quiet_hours"
    assert answer["error"]["message"] == (
        "Les familles et les élèves écrivent à l'établissement de 7 h à 20 h. Vous pourrez"
        " écrire demain à partir de 7 h ; une conversation déjà ouverte reste possible.")
    assert answer["error"]["details"] == {"user_id": teacher_id, "opens_at": 420,
                                          "closes_at": 1200}
    assert await _recipients(chat_server, cast.parent) == set()
    token = await token_for(chat_server.base, cast.parent)
    async with aiohttp.ClientSession() as s, s.get(
            f"{chat_server.base}/api/chat/recipients",
            headers={"Authorization": f"Bearer {token}"}) as r:
        body = await r.json()
    assert body["quiet"]["opens_at"] == 420 and "demain à partir de 7 h" in body["quiet"]["message"]
    assert body["lists"] == []
    # Someone never reachable stays « introuvable » at night too: the hour reveals nothing.
    other_id = (await _ids(chat_server, cast, "other_teacher"))[0]
    answer = await parent.call("create", {"kind": "direct", "members": [other_id],
                                          "body": "Bonsoir"})
    assert answer["error"]["code"] == "not_found"
    # Starting is what quiet hours stop; a conversation already open goes on, and the
    # school team may still write.
    assert (await parent.ok("send", {"conversation_id": conv, "body": "Merci"}))
    assert (await teacher.ok("create", {"kind": "direct", "members": [parent_id],
                                        "body": "Réponse tardive"}))
    chat_server.clock.set(paris(6, 59))
    early = await parent.call("create", {"kind": "direct", "members": [teacher_id],
                                         "body": "Tôt"})
    assert early["error"]["code"] == "quiet_hours"
    assert "Vous pourrez écrire à partir de 7 h ;" in early["error"]["message"]
    chat_server.clock.set(paris(7, 0))
    assert (await parent.ok("create", {"kind": "direct", "members": [teacher_id],
                                       "body": "Bonjour"}))


async def test_school_settings_change_the_rules(chat_server: ChatServer, chat_client: Connect,
                                                cast: Cast) -> None:
    teacher_id = (await _ids(chat_server, cast, "teacher"))[0]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, chat_server.base, cast.staff)
        async with s.get(f"{chat_server.base}/api/me") as r:
            school_id = (await r.json())["user"]["school_id"]
        url = f"{chat_server.base}/api/chat/settings/{school_id}"
        async with s.get(url) as r:
            rules = await r.json()
        assert rules["day_start_min"] == 420 and rules["day_end_min"] == 1200
        rules.update(parents_to_teachers=False, quiet_hours=False)
        async with s.put(url, json=rules) as r:
            assert r.status == 200
        async with s.put(url, json={**rules, "day_start_min": 1300}) as r:
            assert r.status == 400
        async with s.put(url, json={**rules, "extra": 1}) as r:
            assert r.status == 400
    parent = await chat_client(cast.parent)
    answer = await parent.call("create", {"kind": "direct", "members": [teacher_id],
                                          "body": "Bonjour"})
    assert answer["error"]["code"] == "not_found"
    chat_server.clock.set(paris(23))  # quiet hours are off for this school now
    cpe_id = (await _ids(chat_server, cast, "cpe"))[0]
    assert (await parent.ok("create", {"kind": "direct", "members": [cpe_id], "body": "Allô"}))
    # A teacher, a parent, another school's staff may not change them: not found.
    for acct in (cast.teacher, cast.parent):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            await login(s, chat_server.base, acct)
            async with s.put(url, json=rules) as r:
                assert r.status == 404


async def test_unknown_and_forbidden_conversations_look_the_same(
        chat_server: ChatServer, chat_client: Connect, cast: Cast) -> None:
    alice_id = (await _ids(chat_server, cast, "alice"))[0]
    teacher = await chat_client(cast.teacher)
    conv = (await teacher.ok("create", {"kind": "direct", "members": [alice_id],
                                        "body": "Privé"}))["conversation_id"]
    msg = (await teacher.ok("history", {"conversation_id": conv}))["messages"][0]["id"]
    alice = await chat_client(cast.alice)  # the member, who must hear nothing of intruders
    bob = await chat_client(cast.bob)
    far = await chat_client(cast.far_teacher)
    for client in (bob, far):
        for event, data in (
                ("send", {"conversation_id": conv, "body": "intrus"}),
                ("history", {"conversation_id": conv}),
                ("sync", {"conversation_id": conv, "since": 0}),
                ("open", {"conversation_id": conv}),
                ("read", {"conversation_id": conv, "seq": 1}),
                ("edit", {"message_id": msg, "body": "x"}),
                ("delete", {"message_id": msg}),
                ("report", {"message_id": msg})):
            forbidden = await client.call(event, data)
            absent = await client.call(event, {**data, **{k: 999_999 for k in data
                                                          if k.endswith("_id")}})
            assert forbidden["ok"] is False and forbidden == absent, (event, forbidden, absent)
    # Nothing leaked into the conversation, nor reached its member live: the teacher's next
    # message, after every attempt, does, and alone.
    page = await teacher.ok("history", {"conversation_id": conv})
    assert [m["body"] for m in page["messages"]] == ["Privé"] and page["head"] == 1
    await nothing_arrived(
        lambda: [e for e in alice.events if e["seq"] != 2],
        control=lambda: teacher.ok("send", {"conversation_id": conv, "body": "Suite"}),
        arrived=lambda: any(e["seq"] == 2 for e in alice.events))
    assert [e["message"]["body"] for e in alice.events] == ["Suite"]


async def test_information_takes_no_reply_and_counts_acknowledgements(
        chat_server: ChatServer, chat_client: Connect, cast: Cast) -> None:
    ids = await _ids(chat_server, cast, "parent", "other_parent", "teacher")
    staff = await chat_client(cast.staff)
    parent = await chat_client(cast.parent)
    made = await staff.ok("create", {"kind": "information", "title": "Fermeture exceptionnelle",
                                     "members": ids, "body": "Le collège ferme vendredi."})
    conv = made["conversation_id"]
    event = await parent.wait_event(conv, 1)
    msg_id = event["message"]["id"]
    reply = await parent.call("send", {"conversation_id": conv, "body": "D'accord"})
    assert reply["error"]["code"] == "forbidden"
    first = await parent.ok("ack", {"message_id": msg_id})
    again = await parent.ok("ack", {"message_id": msg_id})
    assert first["at"] == again["at"]  # the first acknowledgement's time stays
    await staff.wait_for(lambda: staff.received["acked"])
    page = await staff.ok("history", {"conversation_id": conv})
    assert page["messages"][0]["acks"] == {str(ids[0]): first["at"]}
    # A recipient sees their own acknowledgement only.
    other = await chat_client(cast.other_parent)
    assert (await other.ok("history", {"conversation_id": conv}))["messages"][0]["acks"] == {}
    assert (await staff.call("ack", {"message_id": msg_id}))["error"]["code"] == "invalid"
    # Live events carry the same view: after an edit, each sees the acknowledgements theirs.
    assert event["message"]["acks"] == {}
    edited = await staff.ok("edit", {"message_id": msg_id, "body": "Le collège ferme lundi."})
    for client, expected in ((parent, {str(ids[0]): first["at"]}), (other, {}),
                             (staff, {str(ids[0]): first["at"]})):
        got = await client.wait_event(conv, edited["seq"])
        assert got["message"]["acks"] == expected, client.me

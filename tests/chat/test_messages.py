"""Edit, delete, recall, report, search and attachments, with a real server and files."""

from __future__ import annotations

from typing import Any

import aiohttp

from realtime import keys
from realtime.files import read_all
from tests.chat.conftest import Cast, ChatClient, ChatServer, Connect, hurtful_message
from tests.conftest import token_for, user_id

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"


async def _direct(server: ChatServer, author: ChatClient, to: dict[str, Any], body: str
                  ) -> tuple[int, int]:
    peer = await user_id(server.base, to)
    made = await author.ok("create", {"kind": "direct", "members": [peer], "body": body})
    page = await author.ok("history", {"conversation_id": made["conversation_id"]})
    return made["conversation_id"], page["messages"][-1]["id"]


async def test_edit_and_delete_within_the_window(chat_server: ChatServer, chat_client: Connect,
                                                 cast: Cast) -> None:
    alice = await chat_client(cast.alice)
    teacher = await chat_client(cast.teacher)
    conv, msg = await _direct(chat_server, alice, cast.teacher, "Je n'ai pas compri")
    edited = await alice.ok("edit", {"message_id": msg, "body": "Je n'ai pas compris"})
    event = await teacher.wait_event(conv, edited["seq"])
    assert event["kind"] == "edited" and event["message"]["body"] == "Je n'ai pas compris"
    assert event["message"]["state"] == "edited"
    assert (await teacher.call("edit", {"message_id": msg, "body": "x"}))["error"]["code"] \
        == "forbidden"
    deleted = await alice.ok("delete", {"message_id": msg})
    event = await teacher.wait_event(conv, deleted["seq"])
    assert event["message"]["body"] == "Message supprimé" and event["message"]["state"] == \
        "deleted"
    # The stored truth keeps the place, not the words; a replay from the start agrees.
    replay = await teacher.ok("sync", {"conversation_id": conv, "since": 0})
    assert [e["kind"] for e in replay["events"]] == ["message", "edited", "deleted"]
    assert all(e["message"]["body"] == "Message supprimé" for e in replay["events"])
    assert (await alice.call("delete", {"message_id": msg}))["error"]["code"] == "conflict"
    # Past the window, nobody edits or deletes their own message.
    conv2 = await alice.ok("send", {"conversation_id": conv, "body": "Autre question"})
    late = (await alice.ok("history", {"conversation_id": conv}))["messages"][-1]["id"]
    assert conv2["seq"] == 4
    chat_server.clock.advance(16 * 60)
    for event_name, data in (("edit", {"message_id": late, "body": "y"}),
                             ("delete", {"message_id": late})):
        answer = await alice.call(event_name, data)
        assert answer["error"]["code"] == "forbidden", answer


async def test_teacher_recalls_a_message_at_any_time(chat_server: ChatServer,
                                                     chat_client: Connect, cast: Cast) -> None:
    teacher = await chat_client(cast.teacher)
    parent = await chat_client(cast.parent)
    conv, msg = await _direct(chat_server, teacher, cast.parent, "Note : 8/20")
    chat_server.clock.advance(3 * 3600)
    recalled = await teacher.ok("recall", {"message_id": msg})
    event = await parent.wait_event(conv, recalled["seq"])
    assert event["kind"] == "recalled"
    assert event["message"]["body"] == "Message retiré par son auteur"
    search = await parent.ok("search", {"q": "note"})
    assert search["messages"] == []
    # A parent cannot recall (only delete, within the window).
    conv_id, mine = conv, (await parent.ok("send", {"conversation_id": conv, "body": "Ok"}))
    page = await parent.ok("history", {"conversation_id": conv_id})
    answer = await parent.call("recall", {"message_id": page["messages"][-1]["id"]})
    assert answer["error"]["code"] == "forbidden" and mine["seq"] == 3


async def test_search_own_conversations_ignoring_accents(
        chat_server: ChatServer, chat_client: Connect, cast: Cast) -> None:
    teacher = await chat_client(cast.teacher)
    await _direct(chat_server, teacher, cast.alice, "Un élève très sérieux en français")
    await _direct(chat_server, teacher, cast.bob, "Rendez-vous pour l'élève Bob")
    alice = await chat_client(cast.alice)
    found = await alice.ok("search", {"q": "eleve"})
    assert [m["body"] for m in found["messages"]] == ["Un élève très sérieux en français"]
    assert len((await teacher.ok("search", {"q": "ELEVE"}))["messages"]) == 2
    assert (await teacher.ok("search", {"q": "franc"}))["messages"][0]["body"].startswith("Un")
    # FTS5 syntax in a query is just words.
    assert (await teacher.ok("search", {"q": 'eleve" OR NEAR(* AND'}))["messages"] == []
    assert (await teacher.call("search", {"q": "***"}))["error"]["code"] == "invalid"
    async with aiohttp.ClientSession() as s:
        token = await token_for(chat_server.base, cast.bob)
        async with s.get(f"{chat_server.base}/api/chat/search", params={"q": "élève"},
                         headers={"Authorization": f"Bearer {token}"}) as r:
            assert [m["body"] for m in (await r.json())["messages"]] == [
                "Rendez-vous pour l'élève Bob"]


async def _upload(server: ChatServer, token: str, data: bytes, name: str
                  ) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.post(
            f"{server.base}/api/chat/attachments", params={"name": name}, data=data,
            headers={"Authorization": f"Bearer {token}",
                     "Content-Type": "application/octet-stream"}) as r:
        return r.status, await r.json()


async def _download(server: ChatServer, token: str, att_id: int) -> tuple[int, bytes, str]:
    async with aiohttp.ClientSession() as s, s.get(
            f"{server.base}/api/chat/attachments/{att_id}",
            headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status, await r.read(), r.headers.get("Content-Type", "")


async def test_attachments_limits_and_access(chat_server: ChatServer, chat_client: Connect,
                                             cast: Cast) -> None:
    t_token = await token_for(chat_server.base, cast.teacher)
    p_token = await token_for(chat_server.base, cast.parent)
    o_token = await token_for(chat_server.base, cast.other_parent)
    limits = chat_server.service.limits
    status, body = await _upload(chat_server, t_token, PDF, "../../convocation.pdf")
    assert status == 201 and body["mime"] == "application/pdf"
    assert body["name"] == "convocation.pdf"
    status, big = await _upload(chat_server, t_token, PNG + b"\x00" * limits.attachment_max_bytes,
                                "photo.png")
    assert status == 413 and big["error"]["code"] == "too_large"
    # A large file arrives whole (read in chunks up to the cap), and comes back identical.
    photo = PNG + bytes(range(256)) * 8000
    status, stored = await _upload(chat_server, t_token, photo, "photo.png")
    assert status == 201 and stored["size"] == len(photo)
    assert (await _download(chat_server, t_token, stored["id"]))[1] == photo
    status, bad = await _upload(chat_server, t_token, b"MZ\x90\x00 executable", "cours.pdf")
    assert status == 415 and bad["error"]["code"] == "unsupported_media_type"
    status, _ = await _upload(chat_server, t_token, b"", "vide.txt")
    assert status == 400
    # Before it is sent, only its uploader can fetch it.
    assert (await _download(chat_server, p_token, body["id"]))[0] == 404
    assert (await _download(chat_server, t_token, body["id"]))[0] == 200
    teacher = await chat_client(cast.teacher, t_token)
    parent_id = await user_id(chat_server.base, cast.parent)
    made = await teacher.ok("create", {"kind": "direct", "members": [parent_id], "body": "",
                                       "attachments": [body["id"]]})
    status, data, mime = await _download(chat_server, p_token, body["id"])
    assert status == 200 and data == PDF and mime == "application/pdf"
    assert (await _download(chat_server, o_token, body["id"]))[0] == 404
    assert (await _download(chat_server, o_token, 999_999))[0] == 404
    # An attachment goes in one message only; someone else's upload cannot be used.
    again = await teacher.call("send", {"conversation_id": made["conversation_id"], "body": "x",
                                        "attachments": [body["id"]]})
    assert again["error"]["code"] == "not_found"
    many = [(await _upload(chat_server, t_token, PNG, f"p{i}.png"))[1]["id"] for i in range(6)]
    answer = await teacher.call("send", {"conversation_id": made["conversation_id"],
                                         "body": "photos", "attachments": many})
    assert answer["error"]["code"] == "too_large"
    # Deleting the message removes the file (from disk or the database).
    msg = (await teacher.ok("history", {"conversation_id": made["conversation_id"]}))[
        "messages"][0]
    principal = await chat_server.app[keys.IDENTITY].authenticate(t_token)
    assert principal is not None
    stored = await chat_server.service.attachments.attachment(principal, body["id"])
    files = chat_server.service.attachments.files
    assert await read_all(files, stored.storage_key) == PDF
    await teacher.ok("delete", {"message_id": msg["id"]})
    assert await read_all(files, stored.storage_key) is None
    assert (await _download(chat_server, p_token, body["id"]))[0] == 404


async def test_report_reaches_the_cpe(chat_server: ChatServer, chat_client: Connect,
                                      cast: Cast) -> None:
    msg_id, _teacher, alice, bob = await hurtful_message(chat_server, chat_client, cast)
    cpe = await chat_client(cast.cpe)
    await alice.ok("report", {"message_id": msg_id, "reason": "Insulte"})
    await cpe.wait_for(lambda: cpe.received["report"])
    async with aiohttp.ClientSession() as s:
        token = await token_for(chat_server.base, cast.cpe)
        async with s.get(f"{chat_server.base}/api/chat/reports",
                         headers={"Authorization": f"Bearer {token}"}) as r:
            reports = (await r.json())["reports"]
        assert reports[0]["body"] == "Message blessant" and reports[0]["reason"] == "Insulte"
        token = await token_for(chat_server.base, cast.teacher)
        async with s.get(f"{chat_server.base}/api/chat/reports",
                         headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 404
    answer = await bob.call("report", {"message_id": msg_id})
    assert answer["error"]["code"] == "invalid"


async def test_files_never_sent_are_purged_after_a_day(chat_server: ChatServer,
                                                        cast: Cast) -> None:
    token = await token_for(chat_server.base, cast.teacher)
    status, kept = await _upload(chat_server, token, PDF, "a.pdf")
    assert status == 201
    principal = await chat_server.app[keys.IDENTITY].authenticate(token)
    assert principal is not None
    files = chat_server.service.attachments.files
    key = (await chat_server.service.attachments.attachment(principal, kept["id"])).storage_key
    assert await chat_server.service.attachments.purge_pending() == 0
    assert await read_all(files, key) == PDF
    chat_server.clock.advance(25 * 3600)
    assert await chat_server.service.attachments.purge_pending() == 1
    assert await read_all(files, key) is None
    assert (await _download(chat_server, token, kept["id"]))[0] == 404

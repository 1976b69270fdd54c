"""Read receipts by name, acknowledgements by name, a report's outcome for its reporter, and
class distribution lists — over real Socket.IO clients and HTTP on a real server."""

from __future__ import annotations

from typing import Any

import aiohttp

from realtime.chat import french
from tests.chat.conftest import Cast, ChatServer, Connect, hurtful_message
from tests.conftest import token_for, user_id


async def _get(server: ChatServer, acct: dict[str, Any], path: str) -> tuple[int, Any]:
    token = await token_for(server.base, acct)
    async with aiohttp.ClientSession() as s, s.get(
            f"{server.base}{path}", headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status, await r.json()


async def _post(server: ChatServer, acct: dict[str, Any], path: str, body: Any) -> int:
    token = await token_for(server.base, acct)
    async with aiohttp.ClientSession() as s, s.post(
            f"{server.base}{path}", json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status


def test_french_elision_and_hours() -> None:
    assert french.de("Alice Martin") == "d'Alice Martin"
    assert french.de("Émile Roux") == "d'Émile Roux"
    assert french.de("Hugo Petit") == "d'Hugo Petit"
    assert french.de("Bruno Lefèvre") == "de Bruno Lefèvre"
    assert (french.hour(420), french.hour(450), french.hour(1200)) == ("7 h", "7 h 30", "20 h")


async def test_read_receipts_per_recipient_by_name_live(
        chat_server: ChatServer, chat_client: Connect, cast: Cast) -> None:
    alice_id, bob_id = (await user_id(chat_server.base, cast.alice),
                        await user_id(chat_server.base, cast.bob))
    teacher = await chat_client(cast.teacher)
    teacher_tbi = await chat_client(cast.teacher)  # the same teacher on the board's screen
    made = await teacher.ok("create", {"kind": "group", "title": "Exposé", "members": [
        alice_id, bob_id], "body": "Qui présente lundi ?"})
    conv, msg_id = made["conversation_id"], made["message_id"]
    before = await teacher.ok("receipts", {"message_id": msg_id})
    assert (before["read"], before["total"]) == (0, 2)
    assert {r["name"] for r in before["recipients"]} == {cast.alice["name"], cast.bob["name"]}

    alice = await chat_client(cast.alice)
    answer = await alice.ok("read", {"conversation_id": conv, "seq": made["seq"]})
    assert answer["read_seq"] == made["seq"]
    for device in (teacher, teacher_tbi):  # live, on every device of the author
        await device.wait_for(lambda d=device: any(
            r["user_id"] == alice_id and r["read_seq"] >= made["seq"]
            for r in d.received["receipt"]))
    after = await teacher.ok("receipts", {"message_id": msg_id})
    rows = {r["user_id"]: r for r in after["recipients"]}
    assert rows[alice_id]["read"] and rows[alice_id]["read_at"] is not None
    assert not rows[bob_id]["read"] and rows[bob_id]["read_at"] is None
    assert after["read"] == 1 and after["recipients"][0]["user_id"] == alice_id  # read first
    # A later read keeps the time Alice first reached the message.
    second = await teacher.ok("send", {"conversation_id": conv, "body": "Réponse avant jeudi"})
    chat_server.clock.advance(3600)
    await alice.ok("read", {"conversation_id": conv, "seq": second["seq"]})
    again = {r["user_id"]: r for r in (await teacher.ok(
        "receipts", {"message_id": msg_id}))["recipients"]}
    assert again[alice_id]["read_at"] == rows[alice_id]["read_at"]
    # Over HTTP too; and only for the author: others are told it does not exist.
    status, body = await _get(chat_server, cast.teacher, f"/api/chat/messages/{msg_id}/receipts")
    assert status == 200 and body["read"] == 1
    assert (await alice.call("receipts", {"message_id": msg_id}))["error"]["code"] == "not_found"
    status, _ = await _get(chat_server, cast.bob, f"/api/chat/messages/{msg_id}/receipts")
    assert status == 404


async def test_acknowledgements_by_name(chat_server: ChatServer, chat_client: Connect,
                                        cast: Cast) -> None:
    alice_id, bob_id = (await user_id(chat_server.base, cast.alice),
                        await user_id(chat_server.base, cast.bob))
    teacher = await chat_client(cast.teacher)
    made = await teacher.ok("create", {"kind": "information", "title": "Sortie au musée",
                                       "members": [alice_id, bob_id],
                                       "body": "Départ 8 h devant le collège."})
    alice = await chat_client(cast.alice)
    await alice.ok("ack", {"message_id": made["message_id"]})
    await teacher.wait_for(lambda: teacher.received["acked"])
    acked = teacher.received["acked"][0]
    assert acked["user_id"] == alice_id and acked["name"] == cast.alice["name"]
    got = await teacher.ok("receipts", {"message_id": made["message_id"]})
    rows = {r["user_id"]: r for r in got["recipients"]}
    assert got["acked"] == 1 and got["kind"] == "information"
    assert rows[alice_id]["acked_at"] == acked["at"] and rows[bob_id]["acked_at"] is None


async def test_the_reporter_hears_the_outcome(chat_server: ChatServer, chat_client: Connect,
                                              cast: Cast) -> None:
    msg_id, teacher, alice, _bob = await hurtful_message(chat_server, chat_client, cast)
    alice_phone = await chat_client(cast.alice)
    await alice.ok("report", {"message_id": msg_id, "reason": "Insulte"})
    await teacher.ok("report", {"message_id": msg_id, "reason": "Propos blessants"})
    await teacher.sio.disconnect()  # the teacher is offline when the CPE decides
    status, mine = await _get(chat_server, cast.alice, "/api/chat/reports/mine")
    assert status == 200 and [r["state"] for r in mine["reports"]] == ["open"]
    status, body = await _get(chat_server, cast.cpe, "/api/chat/reports")
    report_id = body["reports"][0]["id"]
    assert await _post(chat_server, cast.cpe, f"/api/chat/reports/{report_id}/handle",
                       {"note": "Parents de Bob reçus"}) == 200

    expected = (f"La vie scolaire a traité votre signalement du message"
                f" {french.de(cast.bob['name'])} (")
    for device in (alice, alice_phone):
        await device.wait_for(lambda d=device: d.received["report_outcome"])
        outcome = device.received["report_outcome"][0]
        assert outcome["message"].startswith(expected) and outcome["message_id"] == msg_id
        assert "Parents de Bob" not in outcome["message"]  # the CPE's note stays internal
    status, mine = await _get(chat_server, cast.alice, "/api/chat/reports/mine")
    assert mine["reports"][0]["state"] == "handled" and "note" not in mine["reports"][0]
    # Offline: the outcome waits in the next welcome, until a device says it was seen.
    back = await chat_client(cast.teacher)
    waiting = back.received["welcome"][0]["report_outcomes"]
    assert [o["message_id"] for o in waiting] == [msg_id]
    assert (await back.ok("outcomes_seen", {"report_ids": [waiting[0]["report_id"]]}))[
        "seen"] == 1
    later = await chat_client(cast.teacher)
    assert later.received["welcome"][0]["report_outcomes"] == []
    # Someone else's report ids change nothing.
    assert (await alice.ok("outcomes_seen", {"report_ids": [waiting[0]["report_id"]]}))[
        "seen"] == 0


async def test_class_distribution_lists(chat_server: ChatServer, chat_client: Connect,
                                        cast: Cast) -> None:
    db = chat_server.service.db
    start = (await db.fetchone("SELECT COUNT(*) FROM chat_conversations"))[0]
    status, body = await _get(chat_server, cast.teacher, "/api/chat/recipients")
    lists = body["lists"]
    assert status == 200 and {x["class_name"] for x in lists} == set(cast.teacher["classes"])
    mine = next(x for x in lists if x["class_name"] == cast.class_name
                and x["audience"] == "parents")
    parents = {r["id"] for r in await db.fetchall(
        "SELECT DISTINCT g.guardian_id AS id FROM guardianships g JOIN enrollments e"
        " ON e.student_id = g.student_id WHERE e.class_id = ?", (mine["class_id"],))}
    assert mine["count"] == len(parents) > 0
    parent = await chat_client(cast.parent)  # a parent of that class, connected
    teacher = await chat_client(cast.teacher)
    made = await teacher.ok("create", {"kind": "information", "body": "Réunion jeudi 18 h",
                                       "lists": [{"class_id": mine["class_id"],
                                                  "audience": "parents"}]})
    await parent.wait_for(lambda: parent.received["conversation"])
    conv = parent.received["conversation"][0]
    assert conv["title"] == f"Parents des élèves de {cast.class_name}"
    teacher_id = await user_id(chat_server.base, cast.teacher)
    assert {x["id"] for x in conv["participants"]} == parents | {teacher_id}
    assert made["created"]

    # Only the classes one teaches; not a parent; not as a direct message.
    marks = ",".join("?" * len(cast.teacher["classes"]))
    other = await db.fetchone(
        "SELECT c.id FROM classes c WHERE c.school_id = (SELECT school_id FROM classes"
        f" WHERE id = ?) AND c.name NOT IN ({marks}) LIMIT 1",
        (mine["class_id"], *cast.teacher["classes"]))
    refused = await teacher.call("create", {"kind": "group", "body": "x", "lists": [
        {"class_id": other["id"], "audience": "parents"}]})
    assert refused["error"]["code"] == "not_found"
    refused = await teacher.call("create", {"kind": "direct", "body": "x", "lists": [
        {"class_id": mine["class_id"], "audience": "parents"}]})
    assert refused["error"]["code"] == "invalid"
    refused = await parent.call("create", {"kind": "group", "body": "x", "lists": [
        {"class_id": mine["class_id"], "audience": "parents"}]})
    assert refused["error"]["code"] in ("forbidden", "not_found")
    # The CPE: every class of their school, pupils too; another school's CPE: none of them.
    cpe = await chat_client(cast.cpe)
    status, body = await _get(chat_server, cast.cpe, "/api/chat/recipients")
    assert {x["class_id"] for x in body["lists"]} >= {mine["class_id"], other["id"]}
    sent = await cpe.ok("create", {"kind": "group", "title": "Délégués", "body": "Bonjour",
                                   "lists": [{"class_id": other["id"],
                                              "audience": "students"}]})
    assert sent["created"]
    far = await chat_client(cast.far_cpe)
    refused = await far.call("create", {"kind": "group", "title": "x", "body": "x", "lists": [
        {"class_id": mine["class_id"], "audience": "parents"}]})
    assert refused["error"]["code"] == "not_found"
    count = (await db.fetchone("SELECT COUNT(*) FROM chat_conversations"))[0]
    assert count == start + 2  # the refusals created nothing


def test_french_dates() -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo
    paris_tz = ZoneInfo("Europe/Paris")
    ts = dt.datetime(2026, 3, 1, 9, 0, tzinfo=paris_tz).timestamp()
    assert french.day_and_time(ts, paris_tz) == "le 1er mars à 9 h"
    ts = dt.datetime(2026, 12, 4, 10, 2, tzinfo=paris_tz).timestamp()
    assert french.day_and_time(ts, paris_tz) == "le 4 décembre à 10 h 02"

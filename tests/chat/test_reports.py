"""Reported messages: a CPE marks them « traité » with a note, or reopens them; live."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.chat.conftest import Cast, ChatClient, ChatServer, Connect, hurtful_message
from tests.conftest import token_for, user_id
from tests.silence import nothing_arrived

NOTE = "Élève averti, parents prévenus"


async def _call(server: ChatServer, token: str, method: str, path: str,
                body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.request(
            method, f"{server.base}{path}", json=body,
            headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status, await r.json()


async def _rows(server: ChatServer, msg_id: int) -> list[dict[str, Any]]:
    """The stored truth, not the API's view of it."""
    rows = await server.service.db.fetchall(
        "SELECT id, handled_at, handled_by, note FROM chat_reports WHERE message_id = ?"
        " ORDER BY id", (msg_id,))
    return [dict(r) for r in rows]


async def _reports(server: ChatServer, token: str) -> list[dict[str, Any]]:
    status, body = await _call(server, token, "GET", "/api/chat/reports")
    assert status == 200, body
    return body["reports"]


async def _reported(server: ChatServer, chat_client: Connect, cast: Cast
                    ) -> tuple[int, ChatClient, ChatClient]:
    """A teacher's group where Bob writes something hurtful; Alice and the teacher report it.
    Returns (message id, the CPE's socket, a second socket of the same CPE)."""
    msg_id, teacher, alice, _bob = await hurtful_message(server, chat_client, cast)
    cpe = await chat_client(cast.cpe)
    cpe2 = await chat_client(cast.cpe)
    await alice.ok("report", {"message_id": msg_id, "reason": "Insulte"})
    await teacher.ok("report", {"message_id": msg_id, "reason": "Propos blessants"})
    await cpe.wait_for(lambda: len(cpe.received["report"]) == 2)
    return msg_id, cpe, cpe2


async def test_cpe_handles_then_reopens_a_reported_message(
        chat_server: ChatServer, chat_client: Connect, cast: Cast) -> None:
    msg_id, cpe, cpe2 = await _reported(chat_server, chat_client, cast)
    token = await token_for(chat_server.base, cast.cpe)
    before = await _reports(chat_server, token)
    assert len(before) == 2 and all(r["handled_at"] is None and r["note"] is None
                                    and r["handled_by_name"] is None for r in before)
    report_id = before[0]["id"]

    status, body = await _call(chat_server, token, "POST",
                               f"/api/chat/reports/{report_id}/handle", {"note": NOTE})
    assert status == 200, body
    assert body["ok"] is True
    handled = body["report"]
    assert handled["id"] == report_id and handled["note"] == NOTE
    assert handled["handled_at"] is not None and handled["handled_by_name"] == cast.cpe["name"]

    # Both reports of that message are handled; both CPE sockets are told.
    after = await _reports(chat_server, token)
    assert {r["id"] for r in after} == {r["id"] for r in before}
    for r in after:
        assert r["note"] == NOTE and r["handled_by_name"] == cast.cpe["name"]
        assert r["handled_at"] == handled["handled_at"]
    for sock in (cpe, cpe2):
        await sock.wait_for(lambda s=sock: s.received["report_handled"])
        event = sock.received["report_handled"][0]
        assert event == {"message_id": msg_id, "report_ids": sorted(r["id"] for r in before),
                         "handled_at": handled["handled_at"],
                         "handled_by_name": cast.cpe["name"], "note": NOTE, "handled": True}

    # Reopen: the three fields are cleared, live as well.
    status, body = await _call(chat_server, token, "POST",
                               f"/api/chat/reports/{report_id}/handle", {"handled": False})
    assert status == 200, body
    assert body["report"]["handled_at"] is None and body["report"]["note"] is None
    assert body["report"]["handled_by_name"] is None
    assert all(r["handled_at"] is None and r["note"] is None
               for r in await _reports(chat_server, token))
    await cpe.wait_for(lambda: len(cpe.received["report_handled"]) == 2)
    reopened = cpe.received["report_handled"][1]
    assert reopened["handled"] is False and reopened["handled_at"] is None
    assert reopened["note"] is None and reopened["handled_by_name"] is None


async def test_open_reports_come_before_handled_ones(
        chat_server: ChatServer, chat_client: Connect, cast: Cast) -> None:
    teacher = await chat_client(cast.teacher)
    ids = [await user_id(chat_server.base, a) for a in (cast.alice, cast.bob)]
    conv = (await teacher.ok("create", {"kind": "group", "title": "Groupe", "members": ids,
                                        "body": "Bienvenue"}))["conversation_id"]
    bob = await chat_client(cast.bob)
    msgs = []
    for text in ("Premier", "Deuxième", "Troisième"):
        sent = await bob.ok("send", {"conversation_id": conv, "body": text})
        msgs.append((await teacher.wait_event(conv, sent["seq"]))["message"]["id"])
    for m in msgs:
        chat_server.clock.advance(60)
        await teacher.ok("report", {"message_id": m, "reason": "Hors sujet"})
    token = await token_for(chat_server.base, cast.cpe)
    reports = await _reports(chat_server, token)
    assert [r["body"] for r in reports] == ["Troisième", "Deuxième", "Premier"]
    status, _ = await _call(chat_server, token, "POST",
                            f"/api/chat/reports/{reports[0]['id']}/handle", {})
    assert status == 200
    reports = await _reports(chat_server, token)
    assert [r["body"] for r in reports] == ["Deuxième", "Premier", "Troisième"]
    assert reports[-1]["handled_at"] is not None and reports[-1]["note"] is None


async def test_refusals_change_nothing(chat_server: ChatServer, chat_client: Connect,
                                       cast: Cast) -> None:
    msg_id, cpe, _cpe2 = await _reported(chat_server, chat_client, cast)
    token = await token_for(chat_server.base, cast.cpe)
    before = await _reports(chat_server, token)
    stored = await _rows(chat_server, msg_id)
    assert len(stored) == 2 and all(r["handled_at"] is None for r in stored)
    path = f"/api/chat/reports/{before[0]['id']}/handle"
    for who in (cast.teacher, cast.parent, cast.alice):
        other = await token_for(chat_server.base, who)
        status, body = await _call(chat_server, other, "POST", path, {"note": "x"})
        assert status == 403 and body["error"]["code"] == "forbidden", (who["role"], body)
    # Another school's CPE: as if it did not exist.
    far = await token_for(chat_server.base, cast.far_cpe)
    far_answer = await _call(chat_server, far, "POST", path, {"note": "x"})
    assert far_answer[0] == 404 and far_answer[1]["error"]["code"] == "not_found"
    status, body = await _call(chat_server, token, "POST",
                               "/api/chat/reports/999999/handle", {"note": "x"})
    assert status == 404 and body["error"]["code"] == "not_found"
    for bad in ({"note": "x", "by": 3}, {"note": "x" * 501}, {"note": 12},
                {"handled": "oui"}):
        status, body = await _call(chat_server, token, "POST", path, bad)
        assert status == 400 and body["error"]["code"] == "invalid", (bad, body)
    assert await _reports(chat_server, token) == before
    assert await _rows(chat_server, msg_id) == stored
    # No refusal told the CPE anything; a note of exactly 500 characters is fine, and that
    # one is told (the control: the same CPE connection hears the next handling).
    fine: list[dict[str, Any]] = []

    async def handle_fine() -> None:
        status, body = await _call(chat_server, token, "POST", path, {"note": "é" * 500})
        assert status == 200 and body["report"]["note"] == "é" * 500
        fine.append(body)

    await nothing_arrived(
        lambda: [e for e in cpe.received["report_handled"] if e["note"] != "é" * 500],
        control=handle_fine, arrived=lambda: cpe.received["report_handled"])
    assert len(cpe.received["report_handled"]) == 1


async def test_a_report_is_not_handled_twice(chat_server: ChatServer, chat_client: Connect,
                                             cast: Cast) -> None:
    """Two CPE (or two tabs) on one report: the second is told who handled it; the first
    note stays, no second event. Reopening an open report is refused the same way."""
    msg_id, cpe, _cpe2 = await _reported(chat_server, chat_client, cast)
    token = await token_for(chat_server.base, cast.cpe)
    path = f"/api/chat/reports/{(await _reports(chat_server, token))[0]['id']}/handle"
    status, _ = await _call(chat_server, token, "POST", path, {"note": NOTE})
    assert status == 200
    stored = await _rows(chat_server, msg_id)
    await cpe.wait_for(lambda: len(cpe.received["report_handled"]) == 1)
    status, body = await _call(chat_server, token, "POST", path, {"note": "Autre note"})
    assert status == 409 and body["error"]["code"] == "conflict"
    assert body["error"]["message"] == f"Ce signalement a déjà été traité par {cast.cpe['name']}."
    assert await _rows(chat_server, msg_id) == stored
    handled = cpe.received["report_handled"]

    async def reopen() -> None:
        status, _ = await _call(chat_server, token, "POST", path, {"handled": False})
        assert status == 200

    # No second event for the refused handling: the reopening, after it, is the control.
    await nothing_arrived(lambda: handled[1:] and handled[1]["handled"],
                          control=reopen, arrived=lambda: len(handled) >= 2)
    status, body = await _call(chat_server, token, "POST", path, {"handled": False})
    assert status == 409 and body["error"]["message"].startswith("Ce signalement n'est pas")

    async def handle_again() -> None:
        status, _ = await _call(chat_server, token, "POST", path, {"note": "Troisième fois"})
        assert status == 200

    # Nor for the refused reopening: a handling after it is the control.
    await nothing_arrived(lambda: [e for e in handled[2:] if not e["handled"]],
                          control=handle_again, arrived=lambda: len(handled) >= 3)
    assert [(e["handled"], e["note"]) for e in handled] == [
        (True, NOTE), (False, None), (True, "Troisième fois")]


async def test_a_late_report_of_a_handled_message_is_open(
        chat_server: ChatServer, chat_client: Connect, cast: Cast) -> None:
    """Someone reports a message after it was handled: that report is new work, and handling
    it leaves the earlier reports with their own handler and note."""
    msg_id, teacher, alice, _bob = await hurtful_message(chat_server, chat_client, cast)
    cpe = await chat_client(cast.cpe)
    await alice.ok("report", {"message_id": msg_id, "reason": "Insulte"})
    await cpe.wait_for(lambda: len(cpe.received["report"]) == 1)
    token = await token_for(chat_server.base, cast.cpe)
    first = await _reports(chat_server, token)
    status, _ = await _call(chat_server, token, "POST",
                            f"/api/chat/reports/{first[0]['id']}/handle", {"note": NOTE})
    assert status == 200
    await teacher.ok("report", {"message_id": msg_id, "reason": "Je regrette"})
    await cpe.wait_for(lambda: len(cpe.received["report"]) == 2)
    reports = await _reports(chat_server, token)
    assert reports[0]["handled_at"] is None and reports[0]["reason"] == "Je regrette"
    assert all(r["note"] == NOTE for r in reports[1:])
    chat_server.clock.advance(60)
    status, _ = await _call(chat_server, token, "POST",
                            f"/api/chat/reports/{reports[0]['id']}/handle", {"note": "Vu"})
    assert status == 200
    await cpe.wait_for(lambda: len(cpe.received["report_handled"]) == 2)
    assert cpe.received["report_handled"][1]["report_ids"] == [reports[0]["id"]]
    notes = {r["id"]: r["note"] for r in await _rows(chat_server, msg_id)}
    assert notes == {reports[0]["id"]: "Vu", **{r["id"]: NOTE for r in reports[1:]}}

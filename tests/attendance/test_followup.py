"""Issue 19 on real servers, real Socket.IO clients and the real SQLite: reminders (not
started, left « en cours », unfinished; courses and permanences; socket and Web Push) with
the server's clock set, no reminder on a day without classes, closures imported, past rolls
bounded, a roll's history, guardians' proposals with a document and the CPE's decisions,
advance declarations on the teacher's roll, counts, CSV cells and the monthly flags."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp

from realtime import keys
from tests.attendance.conftest import PARIS, Cast, absent_and_validate, recent_slot, session_for
from tests.attendance.test_dashboard import at
from tests.attendance.test_socket import student_id
from tests.attendance.test_webpush import Browser, push_service
from tests.engines import open_test_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # the first bytes are what the server checks


async def test_reminders_not_started_in_progress_unfinished(
        att_app: Any, att_client: Any, aiohttp_server: Any, cast: Cast) -> None:
    push_base, received = await push_service(aiohttp_server)
    base, app = await att_app(push_allow_http=True, push_allowed_hosts=("127.0.0.1",))
    slot, day = await recent_slot(base, cast.teacher, cast.class_name)
    hub = app[keys.ATTENDANCE]
    browser = Browser(f"{push_base}/push/teacher-phone")
    async with await session_for(base, cast.teacher) as s:  # the teacher's phone
        async with s.post(f"{base}/api/push/subscriptions", json=browser.subscription) as r:
            assert r.status == 201
    start = at(day, slot["start"])
    hub.ctx.clock = lambda: start + 10 * 60
    teacher = await att_client(cast.teacher, base)
    cpe = await att_client(cast.cpe, base)
    await cpe.call("watch_dashboard", {"date": day})

    assert await hub.dashboard.send_reminders() >= 1
    await teacher.wait_for(lambda: any(r["slot_id"] == slot["id"]
                                       for r in teacher.events["reminder"]))
    [first] = [r for r in teacher.events["reminder"] if r["slot_id"] == slot["id"]]
    assert first["kind"] == "not_started" and "salle Salle" not in first["message"]
    await cpe.wait_for(lambda: any(a["slot_id"] == slot["id"] and a["alert"] == "not_started"
                                   for a in cpe.events["roll_alert"]))
    # On every device: the teacher's phone got it by Web Push, encrypted for it.
    for _ in range(100):  # the push goes out in the background, after the emit
        if received:
            break
        await asyncio.sleep(0.05)
    pushed = [browser.decrypt(body) for _, _, body in received]
    assert any(p["url"].endswith(f"slot={slot['id']}&date={day}") for p in pushed), pushed
    assert await hub.dashboard.send_reminders() == 0  # once only, across processes

    # Opened but left « en cours »: a second reminder 20 minutes after the start.
    opened = await teacher.call("open_roll", {"slot_id": slot["id"], "date": day})
    assert opened["ok"], opened
    hub.ctx.clock = lambda: start + 19 * 60
    grid = await cpe.call("watch_dashboard", {"date": day})
    assert next(r for r in grid["rows"] if r["slot_id"] == slot["id"])["alert"] is None
    hub.ctx.clock = lambda: start + 20 * 60
    await hub.dashboard.send_reminders()
    await teacher.wait_for(lambda: any(r["slot_id"] == slot["id"] and r["kind"] == "in_progress"
                                       for r in teacher.events["reminder"]))
    grid = await cpe.call("watch_dashboard", {"date": day})
    row = next(r for r in grid["rows"] if r["slot_id"] == slot["id"])
    assert (row["alert"], row["alert_label"]) == ("in_progress", "en cours, non validé")

    # Still not validated at the end of the slot: flagged on the grid.
    hub.ctx.clock = lambda: at(day, slot["end"]) + 60
    await hub.dashboard.send_reminders()
    await cpe.wait_for(lambda: any(a["slot_id"] == slot["id"] and a["alert"] == "unfinished"
                                   for a in cpe.events["roll_alert"]))
    await absent_and_validate(teacher, opened, [])
    grid = await cpe.call("watch_dashboard", {"date": day})
    assert next(r for r in grid["rows"] if r["slot_id"] == slot["id"])["alert"] is None


async def test_permanence_supervisor_is_reminded(att_app: Any, att_client: Any,
                                                 cast: Cast) -> None:
    base, app = await att_app()
    _, day = await recent_slot(base, cast.teacher, cast.class_name)
    hub = app[keys.ATTENDANCE]
    cpe = await att_client(cast.cpe, base)
    hub.ctx.clock = lambda: at(day, "08:00") + 12 * 60
    grid = await cpe.call("watch_dashboard", {"date": day})
    halls = [r for r in grid["rows"] if r["study_hall_id"] and r["start"] == "08:00"]
    assert halls and all(r["alert"] == "not_started" for r in halls)  # the demo's permanences
    await hub.dashboard.send_reminders()
    await cpe.wait_for(lambda: any(r["study_hall_id"] == halls[0]["study_hall_id"]
                                   for r in cpe.events["reminder"]))  # the supervisor: the CPE


async def test_no_reminder_nor_lateness_on_a_day_without_classes(
        att_app: Any, att_client: Any, cast: Cast) -> None:
    base, app = await att_app()
    hub = app[keys.ATTENDANCE]
    hub.ctx.clock = lambda: at("2026-11-11", "15:00")  # Wednesday 11 November: Armistice
    cpe = await att_client(cast.cpe, base)
    grid = await cpe.call("watch_dashboard", {})
    assert grid["date"] == "2026-11-11" and grid["closed"] == "Armistice"
    assert grid["rows"] and not any(r["overdue"] or r["alert"] for r in grid["rows"])
    assert await hub.dashboard.send_reminders() == 0
    teacher = await att_client(cast.teacher, base)
    async with await session_for(base, cast.teacher) as s:
        async with s.get(f"{base}/api/attendance/my-rolls") as r:
            mine = await r.json()
    assert mine["closed"] == "Armistice" and mine["rolls"] == []
    slots = [r for r in grid["rows"] if r["slot_id"]]
    refused = await teacher.call("open_roll", {"slot_id": slots[0]["slot_id"]})
    assert refused["error"]["message"] == "Pas de cours ce jour-là : Armistice."


async def test_closures_imported_by_the_cpe(att_app: Any, att_client: Any, cast: Cast) -> None:
    base, app = await att_app()
    hub = app[keys.ATTENDANCE]
    hub.ctx.clock = lambda: at("2026-12-03", "10:30")  # a Thursday of classes
    async with await session_for(base, cast.cpe) as s:
        async with s.get(f"{base}/api/me") as r:
            school_id = (await r.json())["school"]["id"]
        url = f"{base}/api/attendance/schools/{school_id}"
        async with s.post(f"{url}/closures?filename=x.csv", data=b"2026-12-03;;X\n2026-13-01;;Y\n",
                          headers={"Content-Type": "text/csv"}) as r:
            bad = await r.json()
        assert r.status == 400 and "Ligne 2 : date invalide" in bad["error"]["message"]
        ics = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//FR\r\nBEGIN:VEVENT\r\nUID:1\r\n"
               b"DTSTART;VALUE=DATE:20261203\r\nDTEND;VALUE=DATE:20261204\r\n"
               b"SUMMARY:Journ\xc3\xa9e p\xc3\xa9dagogique\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
        async with s.post(f"{url}/closures?filename=ferme.ics", data=ics,
                          headers={"Content-Type": "text/calendar"}) as r:
            assert r.status == 201 and (await r.json()) == {"read": 1, "added": 1}
        async with s.get(f"{url}/calendar") as r:
            cal = await r.json()
    assert cal["zone"] == "B" and cal["can_edit"]
    assert [c["label"] for c in cal["closures"]] == ["Journée pédagogique"]
    assert {"date": "2026-12-25", "label": "Noël"} in cal["days_off"]
    cpe = await att_client(cast.cpe, base)
    grid = await cpe.call("watch_dashboard", {})
    assert grid["closed"] == "Journée pédagogique"
    await hub.dashboard.send_reminders()  # the other collège has classes; this one none
    row = await app[keys.DB].fetchone(
        "SELECT COUNT(*) AS n FROM roll_alerts WHERE school_id = ?", (school_id,))
    assert row["n"] == 0
    async with await session_for(base, cast.teacher) as s:  # a teacher may not
        async with s.post(f"{url}/closures", data=ics,
                          headers={"Content-Type": "text/calendar"}) as r:
            assert r.status == 403


async def test_past_rolls_are_the_vie_scolaires_with_a_reason_and_kept_in_history(
        att_app: Any, att_client: Any, cast: Cast) -> None:
    base, app = await att_app(attendance_teacher_past_days=0, attendance_correction_days=150)
    slot, day = await recent_slot(base, cast.teacher, cast.class_name)
    hub = app[keys.ATTENDANCE]
    hub.ctx.clock = lambda: at(day, "18:00") + 86400 * 2  # two days later
    teacher = await att_client(cast.teacher, base)
    cpe = await att_client(cast.cpe, base)
    refused = await teacher.call("open_roll", {"slot_id": slot["id"], "date": day})
    assert refused["error"]["code"] == "forbidden"
    assert "cours du jour" in refused["error"]["message"]
    opened = await cpe.call("open_roll", {"slot_id": slot["id"], "date": day})
    assert opened["ok"] and opened["roll"]["needs_reason"] and opened["roll"]["state"] == "todo"
    rid = opened["roll"]["id"]
    no_reason = await cpe.call("all_present", {"roll_id": rid})
    assert no_reason["error"]["message"] == "Indiquez le motif de cette saisie d'un jour passé."
    assert (await cpe.call("all_present", {"roll_id": rid, "reason": "Appel papier"}))["ok"]
    sid = student_id(opened, cast.student)
    assert (await cpe.call("mark", {"roll_id": rid, "reason": "Appel papier", "marks": [
        {"student_id": sid, "state": "left_early", "minutes": 30}]}))["ok"]
    done = await cpe.call("validate", {"roll_id": rid, "reason": "Appel papier"})
    assert done["ok"] and done["notified"] == 2  # départ anticipé: both guardians told
    # The teacher sees the roll and its history (who, what, when, why), without changing it.
    view = await teacher.call("open_roll", {"slot_id": slot["id"], "date": day})
    assert view["ok"] and view["roll"]["read_only"]
    history = await teacher.call("roll_history", {"roll_id": rid})
    actions = [(e["action"], e["reason"]) for e in history["entries"]]
    assert actions[-1] == ("validate", "Appel papier")
    left = next(e for e in history["entries"] if e["student_id"] == sid
                and e["after"]["state"] == "left_early")
    assert left["before"]["state"] == "present" and left["by_name"] == cast.cpe["name"]
    assert left["student_name"] == cast.student["name"]
    async with await session_for(base, cast.guardians[0]) as s:
        async with s.get(f"{base}/api/attendance/students/{sid}") as r:
            record = await r.json()
    assert record["counts"]["left_early"] == 1
    # Beyond the window: no more.
    hub.ctx.clock = lambda: at(day, "18:00") + 86400 * 200
    late = await cpe.call("mark", {"roll_id": rid, "reason": "x", "marks": [
        {"student_id": sid, "state": "present"}]})
    assert late["error"]["code"] == "forbidden"


async def _form(reason: str, comment: str, document: bytes | None,
                name: str = "certificat.png") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("reason_code", reason)
    form.add_field("comment", comment)
    if document is not None:
        form.add_field("document", document, filename=name, content_type="image/png")
    return form


async def test_proposals_of_both_guardians_a_document_and_the_cpes_decision(
        demo_server: str, att_client: Any, cast: Cast) -> None:
    teacher = await att_client(cast.teacher)
    cpe = await att_client(cast.cpe)
    await cpe.call("watch_dashboard", {})
    slot, day = await recent_slot(demo_server, cast.teacher, cast.class_name)
    opened = await teacher.call("open_roll", {"slot_id": slot["id"], "date": day})
    sid = student_id(opened, cast.student)
    await absent_and_validate(teacher, opened, [sid])
    [event] = [a for a in (await cpe.call("watch_dashboard", {"date": day}))["pending"]
               if a["student_id"] == sid and a["roll_id"] == opened["roll"]["id"]]
    url = f"{demo_server}/api/attendance/absences/{event['id']}/reason"
    async with await session_for(demo_server, cast.guardians[0]) as g1:
        async with g1.post(url, data=await _form("maladie", "Fièvre", PNG)) as r:
            first = await r.json()
            assert r.status == 200, first
        async with g1.post(url, data=await _form("maladie", "", b"MZ\x90\x00 an exe")) as r:
            assert r.status == 400 and "photo" in (await r.json())["error"]["message"]
        doc_url = first["proposals"][0]["documents"][0]["url"]
        async with g1.get(f"{demo_server}{doc_url}") as r:
            assert r.status == 200 and await r.read() == PNG
            assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert first["justification"] == "given"  # a proposal, not a decision
    async with await session_for(demo_server, cast.guardians[1]) as g2:
        async with g2.post(url, json={"reason_code": "rendez_vous_medical",
                                      "comment": "Dentiste"}) as r:
            second = await r.json()
    assert [p["comment"] for p in second["proposals"]] == ["Dentiste"]  # their own only
    # The CPE sees both, live, with the document.
    await cpe.wait_for(lambda: any(a["id"] == event["id"] and len(a["proposals"]) == 2
                                   for a in cpe.events["absence_update"]))
    pending = (await cpe.call("watch_dashboard", {"date": day}))["pending"]
    both = next(a for a in pending if a["id"] == event["id"])["proposals"]
    assert [(p["guardian_name"], p["comment"]) for p in both] == [
        (cast.guardians[0]["name"], "Fièvre"), (cast.guardians[1]["name"], "Dentiste")]
    async with await session_for(demo_server, cast.teacher) as t:
        async with t.get(f"{demo_server}{doc_url}") as r:
            assert r.status == 404  # a certificate is not the teachers' business
    async with await session_for(demo_server, cast.cpe) as c:
        async with c.get(f"{demo_server}{doc_url}") as r:
            assert r.status == 200
    refused = await cpe.call("decide", {"event_id": event["id"], "decision": "refuse",
                                        "comment": "Certificat illisible"})
    accepted = await cpe.call("decide", {"event_id": event["id"], "decision": "accept",
                                         "reason_code": "maladie", "comment": "Vu l'original"})
    assert refused["ok"] and accepted["ok"]
    decisions = accepted["absence"]["decisions"]
    assert [(d["accepted"], d["comment"], d["by_name"]) for d in decisions] == [
        (False, "Certificat illisible", cast.cpe["name"]),
        (True, "Vu l'original", cast.cpe["name"])]
    assert [p["comment"] for p in accepted["absence"]["proposals"]] == ["Fièvre", "Dentiste"]


async def test_advance_declaration_shows_on_the_roll_and_becomes_a_proposal(
        att_app: Any, att_client: Any, cast: Cast) -> None:
    base, app = await att_app()
    slot, day = await recent_slot(base, cast.teacher, cast.class_name)
    hub = app[keys.ATTENDANCE]
    hub.ctx.clock = lambda: at(day, "07:00") - 86400  # the evening before, roughly
    teacher = await att_client(cast.teacher, base)
    async with await session_for(base, cast.guardians[0]) as g:
        async with g.get(f"{base}/api/attendance/me") as r:
            child = next(c for c in (await r.json())["children"]
                         if c["student"]["name"] == cast.student["name"])
        sid = child["student"]["id"]
        async with g.post(f"{base}/api/attendance/students/{sid}/declarations",
                          json={"date_from": day, "reason_code": "rendez_vous_medical",
                                "comment": "Orthodontiste"}) as r:
            assert r.status == 201, await r.text()
        async with g.post(f"{base}/api/attendance/students/{sid}/declarations",
                          json={"date_from": "2020-01-01", "reason_code": "maladie"}) as r:
            assert r.status == 400  # the past is for reasons, not declarations
    hub.ctx.clock = lambda: at(day, slot["start"]) + 5 * 60
    opened = await teacher.call("open_roll", {"slot_id": slot["id"], "date": day})
    declared = next(s for s in opened["students"] if s["id"] == sid)["declared"]
    assert declared == {"part": "day", "label": "Absence signalée par la famille"}
    await absent_and_validate(teacher, opened, [sid])
    async with await session_for(base, cast.cpe) as c:
        async with c.get(f"{base}/api/attendance/absences?from={day}&to={day}") as r:
            pending = (await r.json())["absences"]
    event = next(a for a in pending if a["student_id"] == sid)
    assert event["justification"] == "given" and event["reason_code"] == "rendez_vous_medical"
    assert event["proposals"][0]["declaration_id"] and event["proposals"][0][
        "comment"] == "Orthodontiste"


async def test_counts_csv_neutralised_and_monthly_flags(
        att_app: Any, att_client: Any, cast: Cast, demo_db_path: Any) -> None:
    from realtime.demo.attendance import seed_history

    db = await open_test_db(demo_db_path)
    try:
        await seed_history(db, dt.date(2026, 12, 4), PARIS)
    finally:
        await db.close()
    base, app = await att_app()
    app[keys.ATTENDANCE].ctx.clock = lambda: at("2026-12-04", "17:00")
    teacher = await att_client(cast.teacher, base)
    slot, day = await recent_slot(base, cast.teacher, cast.class_name)
    opened = await teacher.call("open_roll", {"slot_id": slot["id"], "date": day})
    rid = opened["roll"]["id"]
    if opened["roll"]["state"] != "done":
        await teacher.call("all_present", {"roll_id": rid})
    sid = student_id(opened, cast.student)
    await teacher.call("mark", {"roll_id": rid, "reason": "test", "marks": [
        {"student_id": sid, "state": "absent", "comment": "=HYPERLINK(\"http://x\")"}]})
    await teacher.call("validate", {"roll_id": rid})
    async with await session_for(base, cast.cpe) as s:
        async with s.get(f"{base}/api/attendance/export.csv?from={day}&to={day}") as r:
            text = (await r.read()).decode("utf-8-sig")
        async with s.get(f"{base}/api/attendance/counts?from=2026-11-01&to=2026-12-04") as r:
            counts = await r.json()
        async with s.get(f"{base}/api/attendance/counts.csv?from=2026-11-01&to=2026-12-04") as r:
            counts_csv = (await r.read()).decode("utf-8-sig")
        async with s.get(f"{base}/api/attendance/alerts?month=2026-11") as r:
            flags = await r.json()
    assert "'=HYPERLINK" in text and ";=HYPERLINK" not in text
    assert counts["pupils"] and counts["pupils"][0]["unjustified"] >= 4
    assert counts_csv.splitlines()[0].startswith("eleve;classe;demi_journees")
    assert flags["threshold"] == 4 and len(flags["pupils"]) >= 2
    top = flags["pupils"][0]
    assert top["count"] >= 4 and len(top["half_days"]) == top["count"]
    async with await session_for(base, cast.teacher) as s:  # the whole school: not a teacher
        async with s.get(f"{base}/api/attendance/alerts") as r:
            assert r.status == 404

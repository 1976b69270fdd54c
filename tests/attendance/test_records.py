"""Justification, history, half-days, the CSV export, the access log and retention, through
the real REST API and /attendance namespace, checked against the SQLite file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from realtime import keys
from tests import engines
from tests.attendance.conftest import (
    Cast,
    absent_and_validate,
    ids,
    recent_slot,
    session_for,
)
from tests.attendance.test_socket import student_id, take_roll


async def test_parent_gives_a_reason_and_the_cpe_decides(
        demo_server: str, att_client: Any, cast: Cast) -> None:
    teacher, cpe, parent = [await att_client(a) for a in (cast.teacher, cast.cpe,
                                                          cast.guardians[0])]
    other_parent, colleague = await att_client(cast.other_parent), await att_client(
        cast.other_teacher)
    await parent.call("follow_feed", {})
    opened = await take_roll(demo_server, cast, teacher)
    sid, mate = student_id(opened, cast.student), student_id(opened, cast.classmate)
    grid = await cpe.call("watch_dashboard", {"date": opened["roll"]["date"]})
    assert grid["ok"]
    await absent_and_validate(teacher, opened, [sid], {mate: 5})
    await parent.wait_for(lambda: parent.events["notice"])
    event_id = parent.events["notice"][0]["event_id"]

    # Straight from the notice: a reason that is not "justifying" waits for the CPE.
    for who, code in ((other_parent, "not_found"), (colleague, "not_found"),
                      (teacher, "forbidden")):
        ack = await who.call("give_reason", {"event_id": event_id, "reason_code": "convenance"})
        assert ack["error"]["code"] == code, (who, ack)
    bad = await parent.call("give_reason", {"event_id": event_id, "reason_code": "inventé"})
    assert bad["error"]["code"] == "invalid"
    given = await parent.call("give_reason", {"event_id": event_id, "reason_code": "convenance",
                                              "comment": "Rendez-vous familial"})
    assert given["ok"] and given["absence"]["justification"] == "given", given
    await cpe.wait_for(lambda: cpe.events["absence_update"])
    assert cpe.events["absence_update"][-1]["id"] == event_id
    assert parent.events["notices_read"]  # acting on the notice marked it read
    async with await session_for(demo_server, cast.cpe) as s:
        async with s.get(f"{demo_server}/api/attendance/absences") as r:
            pending = (await r.json())["absences"]
    assert {a["student_id"] for a in pending} >= {sid, mate}

    refused = await cpe.call("decide", {"event_id": event_id, "decision": "refuse"})
    assert refused["absence"]["justification"] == "refused"
    # After a refusal a guardian may propose again (a certificate found later).
    again = await parent.call("give_reason", {"event_id": event_id, "reason_code": "maladie"})
    assert again["ok"] and again["absence"]["justification"] == "given"
    assert [p["reason_code"] for p in again["absence"]["proposals"]] == ["convenance", "maladie"]
    accepted = await cpe.call("decide", {"event_id": event_id, "decision": "accept",
                                         "reason_code": "maladie"})
    assert accepted["absence"]["justification"] == "accepted"
    assert accepted["absence"]["reason_label"] == "Maladie de l'enfant"
    # The guardians hear of each decision.
    await parent.wait_for(lambda: len(parent.events["notice"]) == 3)
    refused_notice, accepted_notice = parent.events["notice"][1:]
    assert refused_notice["kind"] == "decision" and "refusé" in refused_notice["body"]
    assert accepted_notice["title"].startswith("Motif accepté")
    assert "« Maladie de l'enfant »" in accepted_notice["body"]
    assert not accepted_notice["can_justify"]


async def test_justifying_reason_waits_for_the_cpe_and_half_days_count(
        demo_server: str, att_client: Any, cast: Cast) -> None:
    teacher = await att_client(cast.teacher)
    opened = await take_roll(demo_server, cast, teacher)
    sid = student_id(opened, cast.student)
    await absent_and_validate(teacher, opened, [sid])
    async with await session_for(demo_server, cast.guardians[1]) as s:
        async with s.get(f"{demo_server}/api/attendance/me") as r:
            [child] = [c for c in (await r.json())["children"] if c["student"]["id"] == sid]
        [event] = child["events"]
        assert child["half_days"] == {"total": 1, "justified": 0, "unjustified": 1}
        assert child["can_justify"] and any(x["code"] == "maladie" for x in child["reasons"])
        async with s.post(f"{demo_server}/api/attendance/absences/{event['id']}/reason",
                          json={"reason_code": "maladie", "comment": "Fièvre"}) as r:
            # A proposal, even with a justifying reason: the CPE decides (issue 19).
            assert r.status == 200 and (await r.json())["justification"] == "given"
        async with s.get(f"{demo_server}/api/attendance/students/{sid}") as r:
            assert (await r.json())["half_days"]["justified"] == 0
        async with await session_for(demo_server, cast.cpe) as c:
            async with c.post(f"{demo_server}/api/attendance/absences/{event['id']}/decision",
                              json={"accept": True}) as r:
                assert r.status == 200 and (await r.json())["justification"] == "accepted"
        async with s.get(f"{demo_server}/api/attendance/students/{sid}") as r:
            record = await r.json()
        assert record["half_days"] == {"total": 1, "justified": 1, "unjustified": 0}
    # The student sees their own record, and only theirs.
    async with await session_for(demo_server, cast.student) as s:
        async with s.get(f"{demo_server}/api/attendance/me") as r:
            own = await r.json()
        assert own["student"]["id"] == sid and own["events"][0]["reason_code"] == "maladie"
        assert not own["can_justify"]
        mate = student_id(opened, cast.classmate)
        async with s.get(f"{demo_server}/api/attendance/students/{mate}") as r:
            assert r.status == 404


async def test_history_export_and_the_access_log(
        demo_server: str, att_client: Any, cast: Cast, demo_db_path: Path) -> None:
    teacher = await att_client(cast.teacher)
    opened = await take_roll(demo_server, cast, teacher)
    sid = student_id(opened, cast.student)
    await absent_and_validate(teacher, opened, [sid])
    class_id = (await ids(demo_server, cast.teacher))["classes"][cast.class_name]
    day = opened["roll"]["date"]
    async with await session_for(demo_server, cast.teacher) as s:
        async with s.get(f"{demo_server}/api/attendance/classes/{class_id}/rolls"
                         f"?from={day}&to={day}") as r:
            history = await r.json()
        [roll] = [x for x in history["rolls"] if x["id"] == opened["roll"]["id"]]
        assert roll["state"] == "done" and roll["absent"] == 1
        assert [m["student_name"] for m in roll["marks"]] == [cast.student["name"]]
        async with s.get(f"{demo_server}/api/attendance/classes/{class_id}/half-days") as r:
            halves = {x["student_id"]: x for x in (await r.json())["students"]}
        assert halves[sid]["total"] == 1
        async with s.get(f"{demo_server}/api/attendance/export.csv") as r:
            assert r.status == 404  # the export is the vie scolaire's
    async with await session_for(demo_server, cast.other_teacher) as s:
        async with s.get(f"{demo_server}/api/attendance/classes/{class_id}/rolls") as r:
            assert r.status == 404
        async with s.get(f"{demo_server}/api/attendance/students/{sid}") as r:
            assert r.status == 404
    async with await session_for(demo_server, cast.cpe) as s:
        async with s.get(f"{demo_server}/api/attendance/export.csv?from={day}&to={day}") as r:
            assert r.status == 200 and r.content_type == "text/csv"
            text = (await r.read()).decode("utf-8-sig")
        lines = text.strip().splitlines()
        assert lines[0].startswith("date;debut;fin;classe;matiere;eleve;marque")
        assert any(cast.student["name"] in line and ";absent·e;" in line
                   and "Sans motif" in line for line in lines)
        async with s.get(f"{demo_server}/api/attendance/students/{sid}") as r:
            assert r.status == 200
        async with s.get(f"{demo_server}/api/attendance/export.csv?from=2026-01-02&to=2025-01-01"
                         ) as r:
            assert r.status == 400
    teacher_id = (await ids(demo_server, cast.teacher))["id"]
    cpe_id = (await ids(demo_server, cast.cpe))["id"]
    with engines.connect(demo_db_path) as conn:
        log = conn.execute("SELECT actor_id, actor_role, what FROM attendance_access_log"
                           " WHERE student_id = ? ORDER BY id", (sid,)).fetchall()
    assert (teacher_id, "teacher", f"class:{class_id}") in log
    assert (teacher_id, "teacher", f"half_days:{class_id}") in log
    assert (cpe_id, "cpe", "export") in log and (cpe_id, "cpe", "student") in log
    # Reads by the student or a guardian are theirs, not staff's: not logged.
    assert {role for _, role, _ in log} <= {"teacher", "cpe", "staff"}


async def test_reason_lists(demo_server: str, cast: Cast, demo_accounts: list[dict]) -> None:
    admin = next(a for a in demo_accounts if a["role"] == "admin")
    async with await session_for(demo_server, cast.cpe) as s:
        async with s.get(f"{demo_server}/api/me") as r:
            school = (await r.json())["user"]["school_id"]
        url = f"{demo_server}/api/attendance/schools/{school}/reasons"
        async with s.get(url) as r:
            reasons = (await r.json())["reasons"]
        assert [x["code"] for x in reasons if x["legal"]][:2] == ["maladie", "maladie_famille"]
        mine = [{k: x[k] for k in ("code", "label", "justifying", "active")} for x in reasons]
        async with s.put(url, json={"reasons": mine[1:]}) as r:  # without « maladie »
            assert r.status == 400 and "légal" in (await r.json())["error"]["message"]
        mine.append({"code": "sortie", "label": "Sortie scolaire", "justifying": True})
        async with s.put(url, json={"reasons": mine}) as r:
            assert r.status == 200
        async with s.get(url) as r:
            assert (await r.json())["reasons"][-1]["code"] == "sortie"
    for acct in (cast.teacher, admin):
        async with await session_for(demo_server, acct) as s:
            async with s.put(url, json={"reasons": mine}) as r:
                assert r.status == 404


async def test_retention_purges_old_details(att_app: Any, att_client: Any, cast: Cast,
                                            demo_db_path: Path) -> None:
    from realtime.attendance.calendar import SchoolCalendar

    base, app = await att_app(attendance_retention_years=2, attendance_teacher_past_days=2000)
    teacher = await att_client(cast.teacher, base)
    slot, day = await recent_slot(base, cast.teacher, cast.class_name)
    old = dt.date.fromisoformat(day) - dt.timedelta(weeks=52 * 3)
    while SchoolCalendar("B").closed(old):  # a school day, the same weekday
        old -= dt.timedelta(weeks=1)
    old_day = old.isoformat()
    rolls = []
    for date in (old_day, day):
        opened = await teacher.call("open_roll", {"slot_id": slot["id"], "date": date})
        await absent_and_validate(teacher, opened, [student_id(opened, cast.student)])
        rolls.append(opened["roll"]["id"])
    removed = await app[keys.ATTENDANCE].purge()
    assert removed["marks"] > 0 and removed["absence_events"] == 1 and removed["rolls"] == 1
    with engines.connect(demo_db_path) as conn:
        def n(sql: str, roll: int) -> int:
            return conn.execute(sql, (roll,)).fetchone()[0]
        old, new = rolls
        for roll, expected in ((old, 0), (new, 1)):
            assert n("SELECT COUNT(*) FROM absence_events WHERE roll_id = ?", roll) == expected
            assert n("SELECT COUNT(*) FROM notifications n JOIN absence_events e"
                     " ON e.id = n.event_id WHERE e.roll_id = ?", roll) == expected * 2
        assert n("SELECT COUNT(*) FROM marks WHERE roll_id = ?", old) == 0
        assert n("SELECT COUNT(*) FROM marks WHERE roll_id = ?", new) > 20
        # The old roll stays as a statistic without names.
        assert conn.execute("SELECT state, absent_count, roster FROM rolls WHERE id = ?",
                            (old,)).fetchone() == ("done", 1, "[]")
    assert await app[keys.ATTENDANCE].purge() == {
        "notifications": 0, "absence_events": 0, "roll_corrections": 0, "roll_history": 0,
        "absence_declarations": 0, "roll_alerts": 0, "marks": 0, "roll_reminders": 0,
        "attendance_access_log": 0, "rolls": 0}


async def test_outbox_publishes_what_a_crash_left_behind(
        att_app: Any, att_client: Any, cast: Cast, demo_db_path: Path) -> None:
    """A notice committed but never appended (the process died in between) is published by
    the maintenance sweep, once."""
    import json

    base, app = await att_app()
    guardian = await att_client(cast.guardians[0], base)
    await guardian.call("follow_feed", {})
    me = (await ids(base, cast.guardians[0]))["id"]
    student = (await ids(base, cast.student))["id"]
    payload = {"kind": "absence", "student_id": student, "student_name": cast.student["name"],
               "date": "2026-11-27", "start": "08:00", "end": "09:00", "subject": "",
               "state": "absent", "minutes": None, "event_id": None, "title": "Absence",
               "body": "…", "can_justify": False}
    with engines.connect(demo_db_path) as conn:
        conn.execute("INSERT INTO notifications (guardian_id, student_id, date, payload,"
                     " created_at) VALUES (?, ?, ?, ?, ?)",
                     (me, student, "2026-11-27", json.dumps(payload), 1.0))
    hub = app[keys.ATTENDANCE]
    await hub.tick()
    await hub.tick()
    await guardian.wait_for(lambda: guardian.events["notice"])
    assert [n["seq"] for n in guardian.events["notice"]] == [1]
    with engines.connect(demo_db_path) as conn:
        assert conn.execute("SELECT stream_seq FROM notifications").fetchall() == [(1,)]


async def test_bad_rest_input(demo_server: str, cast: Cast, demo_db_path: Path) -> None:
    async with await session_for(demo_server, cast.guardians[0]) as s:
        for method, path, body, status in (
            ("post", "/api/attendance/absences/1/reason", {"reason_code": 3}, 400),
            ("post", "/api/attendance/absences/1/reason", {"reason_code": "x", "y": 1}, 400),
            ("post", "/api/attendance/absences/999999/reason", {"reason_code": "maladie"},
             404),
            ("post", "/api/attendance/notices/read", {"ids": [0]}, 400),
            ("post", "/api/attendance/notices/read", {"ids": list(range(1, 600))}, 400),
            ("get", "/api/attendance/students/abc", None, 404),
            ("get", "/api/attendance/me?from=hier", None, 400),
            ("get", "/api/attendance/absences", None, 400),  # a parent has no school
        ):
            async with s.request(method, f"{demo_server}{path}", json=body) as r:
                assert r.status == status, (path, body, await r.text())
                assert (await r.json())["error"]["message"]
    with engines.connect(demo_db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM notifications WHERE read_at IS NOT NULL"
                            ).fetchone()[0] == 0


async def test_rest_writes_are_rate_limited(demo_server: str, cast: Cast,
                                            demo_db_path: Path) -> None:
    async with await session_for(demo_server, cast.guardians[0]) as s:
        statuses = []
        for _ in range(65):
            async with s.post(f"{demo_server}/api/attendance/notices/read", json={}) as r:
                statuses.append(r.status)
                if r.status == 429:
                    body = await r.json()
                    assert int(r.headers["Retry-After"]) >= 1
                    assert body["error"]["code"] == "rate_limited"
        assert statuses[:60] == [200] * 60 and statuses[60:] == [429] * 5

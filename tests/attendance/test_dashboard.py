"""The CPE's live grid and the reminder for rolls not taken 10 minutes after the start, with
the server's clock set to a school morning; also across two nodes on the real Redis."""

from __future__ import annotations

import datetime as dt
from typing import Any

from realtime import keys
from tests.attendance.conftest import PARIS, Cast, absent_and_validate, recent_slot
from tests.attendance.test_socket import student_id
from tests.conftest import REDIS_URL


def at(day: str, hm: str) -> float:
    h, m = map(int, hm.split(":"))
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(h, m), PARIS).timestamp()


async def test_live_grid_overdue_and_reminder(att_app: Any, att_client: Any,
                                              cast: Cast) -> None:
    base, app = await att_app()
    slot, day = await recent_slot(base, cast.teacher, cast.class_name)
    hub = app[keys.ATTENDANCE]
    hub.ctx.clock = lambda: at(day, slot["start"]) + 9 * 60  # 9 minutes after the start

    cpe = await att_client(cast.cpe, base)
    teacher = await att_client(cast.teacher, base)
    grid = await cpe.call("watch_dashboard", {})
    assert grid["ok"] and grid["date"] == day and grid["overdue_after_min"] == 10
    row = next(r for r in grid["rows"] if r["slot_id"] == slot["id"])
    assert row["state"] == "todo" and row["class_name"] == cast.class_name
    assert row["overdue"] is False and row["teacher_name"] == cast.teacher["name"]
    await hub.dashboard.send_reminders()  # earlier rolls of the day may be flagged, not this
    assert not any(r["slot_id"] == slot["id"] for r in teacher.events["reminder"])

    hub.ctx.clock = lambda: at(day, slot["start"]) + 11 * 60
    grid = await cpe.call("watch_dashboard", {"date": day})
    assert next(r for r in grid["rows"] if r["slot_id"] == slot["id"])["overdue"] is True
    assert await hub.dashboard.send_reminders() >= 1
    assert await hub.dashboard.send_reminders() == 0  # once only
    await teacher.wait_for(lambda: any(r["slot_id"] == slot["id"]
                                       for r in teacher.events["reminder"]))
    reminder = next(r for r in teacher.events["reminder"] if r["slot_id"] == slot["id"])
    assert "pas encore fait" in reminder["message"]
    await cpe.wait_for(lambda: any(o["slot_id"] == slot["id"] for o in cpe.events["overdue"]))

    # The teacher takes the roll: the grid follows live.
    opened = await teacher.call("open_roll", {"slot_id": slot["id"]})
    assert opened["ok"] and opened["roll"]["date"] == day
    await cpe.wait_for(lambda: any(u["slot_id"] == slot["id"] and u["state"] == "in_progress"
                                   for u in cpe.events["roll_update"]))
    await absent_and_validate(teacher, opened, [student_id(opened, cast.student)])
    await cpe.wait_for(lambda: any(u["slot_id"] == slot["id"] and u["state"] == "done"
                                   and u["absent"] == 1 for u in cpe.events["roll_update"]))
    grid = await cpe.call("watch_dashboard", {"date": day})
    row = next(r for r in grid["rows"] if r["slot_id"] == slot["id"])
    assert (row["state"], row["absent"], row["overdue"]) == ("done", 1, False)
    assert any(a["student_id"] == student_id(opened, cast.student) for a in grid["pending"])

    # Nobody else gets the grid.
    for acct in (cast.teacher, cast.guardians[0], cast.student):
        other = await att_client(acct, base)
        assert (await other.call("watch_dashboard", {}))["error"]["code"] == "not_found"


async def test_replacement_named_by_the_cpe_takes_the_roll(att_app: Any, att_client: Any,
                                                           cast: Cast) -> None:
    base, _ = await att_app()
    slot, day = await recent_slot(base, cast.teacher, cast.class_name)
    cpe = await att_client(cast.cpe, base)
    substitute = await att_client(cast.other_teacher, base)
    opening = {"slot_id": slot["id"], "date": day}
    assert (await substitute.call("open_roll", opening))["error"]["code"] == "not_found"
    sub_id = (await substitute.call("follow_feed", {}))  # not a parent: refused
    assert sub_id["error"]["code"] == "not_found"
    from tests.attendance.conftest import ids

    named = await cpe.call("replace", {**opening, "teacher_id": (await ids(
        base, cast.other_teacher))["id"]})
    assert named["ok"] and named["roll"]["replacement_name"] == cast.other_teacher["name"]
    opened = await substitute.call("open_roll", opening)
    assert opened["ok"] and opened["roll"]["state"] == "in_progress"
    # The replacement cannot name anyone; only the CPE can.
    again = await substitute.call("replace", {**opening, "teacher_id": None})
    assert again["error"]["code"] == "forbidden"


async def test_guardians_on_two_nodes_through_redis(
        start_server: Any, tmp_path: Any, demo_db_path: Any, redis_prefix: str,
        redis_cleanup: Any, att_client: Any, cast: Cast) -> None:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, db_path=demo_db_path, redis_url=REDIS_URL,
                             redis_prefix=redis_prefix)
    node_a, node_b = await start_server(settings), await start_server(settings)
    g1, g2 = cast.guardians
    on_a, on_b = await att_client(g1, node_a), await att_client(g2, node_b)
    for c in (on_a, on_b):
        assert (await c.call("follow_feed", {}))["ok"]
    cpe_b = await att_client(cast.cpe, node_b)
    teacher = await att_client(cast.teacher, node_a)
    slot, day = await recent_slot(node_a, cast.teacher, cast.class_name)
    await cpe_b.call("watch_dashboard", {"date": day})
    opened = await teacher.call("open_roll", {"slot_id": slot["id"], "date": day})
    await absent_and_validate(teacher, opened, [student_id(opened, cast.student)])
    for c in (on_a, on_b):
        await c.wait_for(lambda c=c: c.events["notice"])
        assert [n["seq"] for n in c.events["notice"]] == [1]
    await cpe_b.wait_for(lambda: any(u["state"] == "done" for u in cpe_b.events["roll_update"]))


async def test_study_hall_roll_adds_present_students(att_app: Any, att_client: Any,
                                                     cast: Cast) -> None:
    base, _ = await att_app()
    _, day = await recent_slot(base, cast.teacher, cast.class_name)
    cpe = await att_client(cast.cpe, base)
    guardian = await att_client(cast.guardians[0], base)
    await guardian.call("follow_feed", {})
    grid = await cpe.call("watch_dashboard", {"date": day})
    hall = next(r for r in grid["rows"] if r["kind"] == "study_hall")
    assert hall["class_name"] == "Permanence" and hall["teacher_name"] == cast.cpe["name"]
    opened = await cpe.call("open_roll", {"study_hall_id": hall["study_hall_id"], "date": day})
    assert opened["ok"] and opened["students"] == [] and opened["roll"]["kind"] == "study_hall"
    teacher_view = await att_client(cast.teacher, base)
    who = await teacher_view.call("open_roll", {"slot_id": (await recent_slot(
        base, cast.teacher, cast.class_name))[0]["id"], "date": day})
    sid, mate = student_id(who, cast.student), student_id(who, cast.classmate)
    rid = opened["roll"]["id"]
    ack = await cpe.call("mark", {"roll_id": rid, "marks": [
        {"student_id": mate, "state": "present"},
        {"student_id": sid, "state": "late", "minutes": 7}]})
    assert ack["ok"] and ack["counts"]["present"] == 1 and ack["counts"]["late"] == 1
    refused = await cpe.call("mark", {"roll_id": rid, "marks": [
        {"student_id": mate, "state": "absent"}]})
    assert refused["error"]["code"] == "invalid"
    view = await cpe.call("view_roll", {"roll_id": rid})
    assert {s["id"] for s in view["students"]} == {sid, mate}
    assert (await cpe.call("validate", {"roll_id": rid}))["notified"] == 2  # two guardians
    await guardian.wait_for(lambda: guardian.events["notice"])
    notice = guardian.events["notice"][0]
    assert notice["kind"] == "late" and "Permanence" in notice["body"]
    # The class's teacher cannot take the permanence roll.
    assert (await teacher_view.call("validate", {"roll_id": rid}))["error"]["code"] == (
        "not_found")
    # Only students of the school come into its permanence.
    outsider = await cpe.call("mark", {"roll_id": rid, "marks": [
        {"student_id": 1, "state": "present"}]})
    assert outsider["error"]["code"] == "not_found"


async def test_teacher_day_lists_own_and_replaced_rolls(att_app: Any, att_client: Any,
                                                         cast: Cast) -> None:
    from tests.attendance.conftest import ids, session_for

    base, _ = await att_app()
    slot, day = await recent_slot(base, cast.teacher, cast.class_name)
    cpe = await att_client(cast.cpe, base)
    sub = (await ids(base, cast.other_teacher))["id"]
    assert (await cpe.call("replace", {"slot_id": slot["id"], "date": day,
                                       "teacher_id": sub}))["ok"]
    async with await session_for(base, cast.other_teacher) as s:
        async with s.get(f"{base}/api/attendance/my-rolls?date={day}") as r:
            rolls = (await r.json())["rolls"]
    [given] = [x for x in rolls if x["slot_id"] == slot["id"]]
    assert given["replacing"] == cast.teacher["name"] and given["state"] == "todo"
    async with await session_for(base, cast.teacher) as s:
        async with s.get(f"{base}/api/attendance/my-rolls?date={day}") as r:
            mine = (await r.json())["rolls"]
    assert slot["id"] not in {x["slot_id"] for x in mine}  # given to the replacement
    async with await session_for(base, cast.cpe) as s:
        async with s.get(f"{base}/api/attendance/my-rolls") as r:
            assert r.status == 404

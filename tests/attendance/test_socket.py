"""The /attendance namespace with a real server and real Socket.IO clients: the roll, the
guardians' pushes, catching up, corrections, duplicates, refusals and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import engines
from tests.attendance.conftest import Cast, absence_of, absent_and_validate, ids, recent_slot
from tests.silence import nothing_arrived


async def take_roll(base: str, cast: Cast, teacher: Any, skip: int = 0) -> dict[str, Any]:
    slot, day = await recent_slot(base, cast.teacher, cast.class_name, skip)
    opened = await teacher.call("open_roll", {"slot_id": slot["id"], "date": day})
    assert opened["ok"], opened
    return opened


def student_id(opened: dict[str, Any], acct: dict[str, Any]) -> int:
    return next(s["id"] for s in opened["students"] if s["name"] == acct["name"])


def counts(db: Path) -> dict[str, int]:
    with engines.connect(db) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in (
            "rolls", "marks", "absence_events", "notifications", "roll_corrections")}


async def test_validated_absence_reaches_every_guardian_device_once(
        demo_server: str, att_client: Any, cast: Cast) -> None:
    teacher = await att_client(cast.teacher)
    g1, g2 = cast.guardians
    g1_phone, g1_laptop, g2_phone = [await att_client(g) for g in (g1, g1, g2)]
    outsider = await att_client(cast.other_parent)
    for c in (g1_phone, g1_laptop, g2_phone, outsider):
        follow = await c.call("follow_feed", {})
        assert follow["ok"] and "snapshot" in follow, follow

    opened = await take_roll(demo_server, cast, teacher)
    roll = opened["roll"]
    assert roll["state"] == "in_progress" and roll["class_name"] == cast.class_name
    assert len(opened["students"]) >= 22 and all(s["mark"] is None for s in opened["students"])
    sid = student_id(opened, cast.student)
    mate = student_id(opened, cast.classmate)

    ack = await teacher.call("all_present", {"roll_id": roll["id"]})
    assert ack["ok"] and ack["counts"]["present"] == len(opened["students"])
    ack = await teacher.call("mark", {"roll_id": roll["id"], "marks": [
        {"student_id": sid, "state": "absent"},
        {"student_id": mate, "state": "late", "minutes": 10}]})
    assert ack["ok"] and ack["changed"] == 2
    assert not any(c.events["notice"] for c in (g1_phone, g2_phone))  # nothing before validation
    # (proven with a positive control in test_marks_tell_guardians_nothing_until_validated)
    done = await teacher.call("validate", {"roll_id": roll["id"]})
    assert done["ok"] and done["state"] == "done", done

    for c in (g1_phone, g1_laptop, g2_phone):
        await c.wait_for(lambda c=c: c.events["notice"])
        [n] = c.events["notice"]
        assert n["kind"] == "absence" and n["student_id"] == sid and n["seq"] == 1
        assert cast.student["name"] in n["body"] and "absent" in n["body"]
        assert n["can_justify"] and n["event_id"] and not n["read"]
    # The outsider heard nothing of it; the control is an absence of its own child, which
    # it must hear (its feed was live all along).
    other_teacher = await att_client(cast.other_child_teacher)
    own: list[int] = []

    async def own_child_absent() -> None:
        own.append(await absence_of(demo_server, other_teacher, cast.other_child_teacher,
                                    cast.other_child))

    await nothing_arrived(
        lambda: [x for x in outsider.events["notice"] if x["student_id"] == sid],
        control=own_child_absent,
        arrived=lambda: any(x["student_id"] in own for x in outsider.events["notice"]))

    # Stored truth agrees: a fresh device of guardian 2 sees it in its snapshot, unread.
    fresh = await att_client(g2)
    snap = await fresh.call("follow_feed", {})
    assert [n["student_id"] for n in snap["snapshot"]] == [sid] and snap["unread"] == 1


async def test_marks_tell_guardians_nothing_until_validated(
        demo_server: str, att_client: Any, cast: Cast) -> None:
    """Marks under way are the teacher's draft: the guardians hear of the absence when the
    roll is validated, not before. The control: another roll of the same pupil, validated
    after those marks, reaches the same device."""
    teacher = await att_client(cast.teacher)
    phone = await att_client(cast.guardians[0])
    assert (await phone.call("follow_feed", {}))["ok"]
    slot, day = await recent_slot(demo_server, cast.teacher, cast.class_name)
    draft = await teacher.call("open_roll", {"slot_id": slot["id"], "date": day})
    sid = student_id(draft, cast.student)
    await teacher.call("all_present", {"roll_id": draft["roll"]["id"]})
    ack = await teacher.call("mark", {"roll_id": draft["roll"]["id"], "marks": [
        {"student_id": sid, "state": "absent"}]})
    assert ack["ok"] and ack["changed"] == 1
    other_slot, other_day = await recent_slot(demo_server, cast.teacher, cast.class_name, 1)

    def of(notice: dict[str, Any], s: dict[str, Any], d: str) -> bool:
        return bool(notice["date"] == d and notice["start"] == s["start"])

    async def validate_another_roll() -> None:
        other = await teacher.call("open_roll", {"slot_id": other_slot["id"], "date": other_day})
        assert other["ok"], other
        await absent_and_validate(teacher, other, [sid])

    await nothing_arrived(lambda: [n for n in phone.events["notice"] if of(n, slot, day)],
                          control=validate_another_roll,
                          arrived=lambda: any(of(n, other_slot, other_day)
                                              for n in phone.events["notice"]))
    assert (await teacher.call("validate", {"roll_id": draft["roll"]["id"]}))["ok"]
    await phone.wait_for(lambda: any(of(n, slot, day) for n in phone.events["notice"]))
    assert [n["seq"] for n in phone.events["notice"]] == [1, 2]


async def test_offline_guardian_catches_up_exactly_once(
        demo_server: str, att_client: Any, cast: Cast) -> None:
    g1, _ = cast.guardians
    device = await att_client(g1)
    first = await device.call("follow_feed", {})
    position = {"epoch": first["epoch"], "seq": first["seq"]}
    await device.close()  # the parent closes the app

    teacher = await att_client(cast.teacher)
    opened = await take_roll(demo_server, cast, teacher)
    sid = student_id(opened, cast.student)
    await teacher.call("all_present", {"roll_id": opened["roll"]["id"]})
    await teacher.call("mark", {"roll_id": opened["roll"]["id"], "marks": [
        {"student_id": sid, "state": "late", "minutes": 15}]})
    assert (await teacher.call("validate", {"roll_id": opened["roll"]["id"]}))["ok"]

    back = await att_client(g1)
    resumed = await back.call("follow_feed", {"since": position})
    assert resumed["ok"] and "snapshot" not in resumed
    [n] = resumed["notices"]
    assert n["kind"] == "late" and n["minutes"] == 15 and resumed["seq"] == n["seq"]
    # Reconnecting again from where it is now brings nothing twice, and nothing live either.
    again = await (await att_client(g1)).call(
        "follow_feed", {"since": {"epoch": resumed["epoch"], "seq": resumed["seq"]}})
    assert again["notices"] == []
    # Read state: reading on one device is seen by the others, and survives.
    read = await back.call("read_notices", {"ids": [n["id"]]})
    assert read["ok"] and read["read"] == [n["id"]] and read["unread"] == 0
    snap = await (await att_client(g1)).call("follow_feed", {})
    assert snap["snapshot"][0]["read"] is True
    # Nothing live either: the control is the next absence, which must arrive live, alone.
    second = await take_roll(demo_server, cast, teacher, skip=1)

    async def absent_again() -> None:
        await teacher.call("all_present", {"roll_id": second["roll"]["id"]})
        await teacher.call("mark", {"roll_id": second["roll"]["id"], "marks": [
            {"student_id": sid, "state": "absent"}]})
        assert (await teacher.call("validate", {"roll_id": second["roll"]["id"]}))["ok"]

    await nothing_arrived(
        lambda: [x for x in back.events["notice"] if x["seq"] <= resumed["seq"]],
        control=absent_again,
        arrived=lambda: any(x["seq"] > resumed["seq"] for x in back.events["notice"]))
    assert [x["seq"] for x in back.events["notice"]] == [resumed["seq"] + 1]


async def test_teacher_of_another_class_is_refused(
        demo_server: str, att_client: Any, cast: Cast, demo_db_path: Path) -> None:
    teacher = await att_client(cast.teacher)
    opened = await take_roll(demo_server, cast, teacher)
    before = counts(demo_db_path)
    intruder = await att_client(cast.other_teacher)
    slot, day = await recent_slot(demo_server, cast.teacher, cast.class_name)
    for event, data in (
        ("open_roll", {"slot_id": slot["id"], "date": day}),
        ("view_roll", {"roll_id": opened["roll"]["id"]}),
        ("all_present", {"roll_id": opened["roll"]["id"]}),
        ("validate", {"roll_id": opened["roll"]["id"]}),
        ("mark", {"roll_id": opened["roll"]["id"], "marks": [
            {"student_id": opened["students"][0]["id"], "state": "absent"}]}),
    ):
        ack = await intruder.call(event, data)
        assert not ack["ok"] and ack["error"]["code"] == "not_found", (event, ack)
    # A parent or a student cannot either; the ack is the same as for a roll that is not there.
    parent = await att_client(cast.guardians[0])
    assert (await parent.call("all_present", {"roll_id": opened["roll"]["id"]}))[
        "error"]["code"] == "not_found"
    assert (await parent.call("all_present", {"roll_id": 999_999}))["error"]["code"] == (
        "not_found")
    assert counts(demo_db_path) == before


async def test_duplicates_are_idempotent(demo_server: str, att_client: Any, cast: Cast,
                                         demo_db_path: Path) -> None:
    teacher = await att_client(cast.teacher)
    tbi = await att_client(cast.teacher)  # the same teacher on the TBI
    opened = await take_roll(demo_server, cast, teacher)
    rid = opened["roll"]["id"]
    again = await tbi.call("open_roll", {"slot_id": opened["roll"]["slot_id"],
                                         "date": opened["roll"]["date"]})
    assert again["roll"]["id"] == rid and again["roll"]["version"] == opened["roll"]["version"]
    sid = student_id(opened, cast.student)
    one = {"roll_id": rid, "marks": [{"student_id": sid, "state": "absent"}]}
    first = await teacher.call("mark", one)
    second = await teacher.call("mark", one)
    assert first["changed"] == 1 and second["changed"] == 0
    assert second["version"] == first["version"]
    await tbi.wait_for(lambda: tbi.events["marks"])  # the TBI saw the phone's mark
    assert tbi.events["marks"][0]["marks"][0]["student_id"] == sid
    await teacher.call("all_present", {"roll_id": rid})
    v1 = await teacher.call("validate", {"roll_id": rid})
    v2 = await tbi.call("validate", {"roll_id": rid})
    assert v1["notified"] == 2 and v2["ok"] and v2["notified"] == 0
    assert counts(demo_db_path)["notifications"] == 2  # two guardians, once each


async def test_corrections_tell_guardians_and_keep_an_audit(
        demo_server: str, att_client: Any, cast: Cast) -> None:
    teacher = await att_client(cast.teacher)
    cpe = await att_client(cast.cpe)
    guardian = await att_client(cast.guardians[0])
    await guardian.call("follow_feed", {})
    opened = await take_roll(demo_server, cast, teacher)
    rid, sid = opened["roll"]["id"], student_id(opened, cast.student)
    await teacher.call("all_present", {"roll_id": rid})
    await teacher.call("mark", {"roll_id": rid, "marks": [{"student_id": sid,
                                                            "state": "absent"}]})
    await teacher.call("validate", {"roll_id": rid})
    await guardian.wait_for(lambda: len(guardian.events["notice"]) == 1)

    # The student was in fact late: the CPE corrects the validated roll.
    late = [{"student_id": sid, "state": "late", "minutes": 25, "comment": "Bus en retard"}]
    refused = await cpe.call("mark", {"roll_id": rid, "marks": late})  # no reason: refused
    assert refused["error"] == {"code": "invalid",
                                "message": "Indiquez le motif de la correction."}
    fix = await cpe.call("mark", {"roll_id": rid, "marks": late,
                                  "reason": "Mot du transporteur"})
    assert fix["ok"] and fix["state"] == "done", fix
    await guardian.wait_for(lambda: len(guardian.events["notice"]) == 2)
    corr = guardian.events["notice"][1]
    assert corr["kind"] == "correction" and corr["seq"] == 2 and corr["minutes"] == 25
    assert "au lieu de « absent·e »" in corr["body"]
    view = await teacher.call("view_roll", {"roll_id": rid})
    [audit] = view["corrections"]
    assert audit["before"]["state"] == "absent" and audit["after"]["state"] == "late"
    assert audit["by"] == (await ids(demo_server, cast.cpe))["id"]
    assert audit["reason"] == "Mot du transporteur"
    # Then present after all: the absence event is cancelled, a correction is sent.
    await cpe.call("mark", {"roll_id": rid, "marks": [{"student_id": sid, "state": "present"}],
                            "reason": "Était au CDI"})
    await guardian.wait_for(lambda: len(guardian.events["notice"]) == 3)
    last = guardian.events["notice"][2]
    assert last["state"] == "present" and not last["can_justify"]


@pytest.mark.parametrize(("event", "payload", "code"), [
    ("mark", {"roll_id": "x", "marks": []}, "invalid"),
    ("mark", {"roll_id": 1, "marks": [{"student_id": 1, "state": "gone"}]}, "invalid"),
    ("mark", {"roll_id": 1, "marks": [{"student_id": 1, "state": "absent"}], "x": 1},
     "invalid"),
    ("mark", {"roll_id": 1, "marks": [{"student_id": 1, "state": "present"}] * 61}, "invalid"),
    ("mark", {"roll_id": 1, "marks": [{"student_id": 1, "state": "present",
                                       "comment": "x" * 20_000}]}, "too_large"),
    ("open_roll", {}, "invalid"),
    ("open_roll", {"slot_id": 1, "study_hall_id": 1}, "invalid"),
    ("open_roll", {"slot_id": 1, "date": "demain"}, "invalid"),
    ("validate", None, "invalid"),
    ("follow_feed", {"since": {"epoch": "e", "seq": -1}}, "invalid"),
])
async def test_bad_input_changes_nothing(demo_server: str, att_client: Any, cast: Cast,
                                         demo_db_path: Path, event: str, payload: Any,
                                         code: str) -> None:
    teacher = await att_client(cast.teacher)
    before = counts(demo_db_path)
    ack = await teacher.call(event, payload)
    assert not ack["ok"] and ack["error"]["code"] == code, ack
    assert ack["error"]["message"]
    assert counts(demo_db_path) == before


async def test_model_refusals_change_nothing(demo_server: str, att_client: Any, cast: Cast,
                                             demo_db_path: Path) -> None:
    teacher = await att_client(cast.teacher)
    opened = await take_roll(demo_server, cast, teacher)
    rid = opened["roll"]["id"]
    before = counts(demo_db_path)
    for marks, code in (
        ([{"student_id": 1, "state": "present"}], "not_found"),  # not in the class
        ([{"student_id": opened["students"][0]["id"], "state": "late"}], "invalid"),
    ):
        ack = await teacher.call("mark", {"roll_id": rid, "marks": marks})
        assert ack["error"]["code"] == code
    ack = await teacher.call("validate", {"roll_id": rid})
    assert ack["error"]["code"] == "conflict" and "sans marque" in ack["error"]["message"]
    assert counts(demo_db_path) == before


async def test_rate_limit(demo_server: str, att_client: Any, cast: Cast) -> None:
    teacher = await att_client(cast.teacher)
    acks = [await teacher.call("validate", {"roll_id": 999_999}) for _ in range(60)]
    codes = {a["error"]["code"] for a in acks}
    assert codes == {"not_found", "rate_limited"}
    limited = next(a for a in acks if a["error"]["code"] == "rate_limited")
    assert "patientez" in limited["error"]["message"]


async def test_colleague_of_the_class_sees_but_does_not_take(
        demo_server: str, att_client: Any, cast: Cast, demo_accounts: list[dict[str, Any]],
        demo_db_path: Path) -> None:
    colleague_acct = next(a for a in demo_accounts if a["role"] == "teacher"
                          and a is not cast.teacher and cast.class_name in a["classes"]
                          and a["school"] == cast.teacher["school"])
    teacher = await att_client(cast.teacher)
    opened = await take_roll(demo_server, cast, teacher)
    colleague = await att_client(colleague_acct)
    seen = await colleague.call("view_roll", {"roll_id": opened["roll"]["id"]})
    assert seen["ok"] and len(seen["students"]) == len(opened["students"])
    before = counts(demo_db_path)
    ack = await colleague.call("all_present", {"roll_id": opened["roll"]["id"]})
    assert ack["error"]["code"] == "forbidden" and ack["error"]["message"]
    assert counts(demo_db_path) == before

"""Study halls (permanence): the vie scolaire opens one for a slot and a day and adds the
pupils who are there; nobody else may. Service (a real SQLite file, the hub's services
called with real principals) and socket (a real server, real clients), then the stored
truth fetched fresh and compared."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from realtime import keys
from realtime.attendance.calendar import SchoolCalendar
from realtime.errors import AppError
from realtime.identity import store as identity_store
from realtime.identity.model import Principal
from tests import engines
from tests.attendance.conftest import CHARLEMAGNE, PARIS, Cast, ids, session_for


def past_day(back: int = 7) -> str:
    """A day already gone (a roll is never taken ahead of time), with classes (none on a
    public or school holiday of the demo's zone B)."""
    day = dt.datetime.now(PARIS).date() - dt.timedelta(days=back)
    while SchoolCalendar("B").closed(day):
        day -= dt.timedelta(days=7)
    return day.isoformat()


def stored(db: Path) -> dict[str, int]:
    with engines.connect(db) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("study_halls", "rolls", "marks")}


async def principal(app: Any, login: str) -> Principal:
    found = await identity_store.user_by_login(app[keys.DB], login)
    assert found is not None
    return await app[keys.IDENTITY].principal_for(found[0])


def outsider_student(accounts: list[dict[str, Any]]) -> dict[str, Any]:
    return next(a for a in accounts if a["role"] == "student" and a["school"] != CHARLEMAGNE)


async def test_service_creates_the_hall_and_adds_present_pupils(
        att_app: Any, cast: Cast, demo_db_path: Path) -> None:
    base, app = await att_app()
    hub = app[keys.ATTENDANCE]
    cpe = await principal(app, cast.cpe["login"])
    student = (await ids(base, cast.student))["id"]
    classmate = (await ids(base, cast.classmate))["id"]
    day = past_day()

    out = await hub.rolls.create_study_hall(
        cpe, school_id=None, room="  Salle   d'étude 2 ", start="10:00", end="11:00",
        date=day, supervisor_id=None, students=[student])
    roll = out["roll"]
    assert (roll["kind"], roll["date"], roll["start"], roll["end"]) == (
        "study_hall", day, "10:00", "11:00")
    assert roll["state"] == "in_progress" and roll["teacher_id"] == cpe.id
    assert [(s["id"], s["mark"]["state"]) for s in out["students"]] == [(student, "present")]

    # The same slot again is the same hall and the same roll; more pupils join it.
    again = await hub.rolls.create_study_hall(
        cpe, school_id=cpe.school_id, room="Salle d'étude 2", start="10:00", end="11:00",
        date=day, supervisor_id=None, students=[classmate])
    assert again["roll"]["id"] == roll["id"]
    stored_roll = await hub.rolls.view(cpe, roll["id"])  # fresh from the database
    assert {s["id"]: s["mark"]["state"] for s in stored_roll["students"]} == {
        student: "present", classmate: "present"}
    assert "Salle d'étude 2" in stored_roll["roll"]["subject"]
    with engines.connect(demo_db_path) as conn:
        halls = conn.execute("SELECT room, weekday, supervisor_id FROM study_halls WHERE"
                             " room = ?", ("Salle d'étude 2",)).fetchall()
    assert halls == [("Salle d'étude 2", dt.date.fromisoformat(day).isoweekday(), cpe.id)]

    # The CPE's grid of that day lists it with its roll.
    grid = await hub.dashboard.grid(cpe, None, day)
    row = next(r for r in grid["rows"] if r["roll_id"] == roll["id"])
    assert row["kind"] == "study_hall" and row["room"] == "Salle d'étude 2"


async def test_service_refuses_others_and_bad_input(
        att_app: Any, cast: Cast, demo_db_path: Path,
        demo_accounts: list[dict[str, Any]]) -> None:
    base, app = await att_app()
    hub = app[keys.ATTENDANCE]
    cpe = await principal(app, cast.cpe["login"])
    student = (await ids(base, cast.student))["id"]
    stranger = (await ids(base, outsider_student(demo_accounts)))["id"]
    before = stored(demo_db_path)
    good = {"school_id": None, "room": "Perm B", "start": "14:00", "end": "15:00",
            "date": past_day(), "supervisor_id": None, "students": [student]}

    for login, code in ((cast.teacher["login"], "forbidden"),
                        (cast.student["login"], "forbidden"),
                        (cast.guardians[0]["login"], "not_found")):
        with pytest.raises(AppError) as err:
            await hub.rolls.create_study_hall(await principal(app, login), **good)
        assert err.value.code == code, login
    # Another school's CPE gets the same answer as for a school that does not exist.
    with pytest.raises(AppError) as err:
        await hub.rolls.create_study_hall(cpe, **{**good, "school_id": 999_999})
    assert err.value.code == "not_found"

    parent_id = (await ids(base, cast.guardians[0]))["id"]
    future = (dt.datetime.now(PARIS).date() + dt.timedelta(days=3)).isoformat()
    for bad, code in (({"end": "13:00"}, "invalid"), ({"start": "25:00"}, "invalid"),
                      ({"room": "   "}, "invalid"), ({"date": future}, "invalid"),
                      ({"students": [stranger]}, "not_found"),
                      ({"students": [student, student]}, "invalid"),
                      ({"supervisor_id": parent_id}, "invalid")):
        with pytest.raises(AppError) as err:
            await hub.rolls.create_study_hall(cpe, **{**good, **bad})
        assert err.value.code == code, bad
    assert stored(demo_db_path) == before  # nothing half-done


async def test_socket_and_rest(demo_server: str, att_client: Any, cast: Cast,
                               demo_db_path: Path) -> None:
    cpe = await att_client(cast.cpe)
    supervisor = await att_client(cast.cpe)  # a second screen on the same roll
    student = (await ids(demo_server, cast.student))["id"]
    classmate = (await ids(demo_server, cast.classmate))["id"]
    day = past_day(8)

    opened = await cpe.call("create_study_hall", {
        "room": "Perm C", "start": "09:00", "end": "10:00", "date": day,
        "students": [student]})
    assert opened["ok"], opened
    rid = opened["roll"]["id"]
    assert (await supervisor.call("view_roll", {"roll_id": rid}))["ok"]
    # A pupil who arrives later is marked present: the roster grows, other screens follow.
    ack = await cpe.call("mark", {"roll_id": rid, "marks": [
        {"student_id": classmate, "state": "present", "comment": "arrivé à 9 h 20"}]})
    assert ack["ok"] and ack["counts"]["present"] == 2
    await supervisor.wait_for(lambda: any(
        m["student_id"] == classmate for e in supervisor.events["marks"] for m in e["marks"]))
    # Only presence is recorded in a permanence.
    refused = await cpe.call("mark", {"roll_id": rid, "marks": [
        {"student_id": classmate, "state": "absent"}]})
    assert refused["error"]["code"] == "invalid"
    assert (await cpe.call("validate", {"roll_id": rid}))["ok"]

    async with await session_for(demo_server, cast.cpe) as http:
        async with http.get(f"{demo_server}/api/attendance/rolls/{rid}") as r:
            fresh = await r.json()
        assert fresh["roll"]["state"] == "done"
        assert {s["id"]: (s["mark"]["state"], s["mark"]["comment"])
                for s in fresh["students"]} == {student: ("present", ""),
                                               classmate: ("present", "arrivé à 9 h 20")}
        # The same through REST.
        async with http.post(f"{demo_server}/api/attendance/study-halls", json={
                "room": "Perm D", "start": "11:00", "end": "12:00", "date": day}) as r:
            assert r.status == 201
            made = await r.json()
        assert made["roll"]["kind"] == "study_hall" and made["students"] == []
        async with http.post(f"{demo_server}/api/attendance/study-halls", json={
                "room": "Perm D", "start": "11h", "end": "12:00"}) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "invalid"

    before = stored(demo_db_path)
    payload = {"room": "Perm E", "start": "15:00", "end": "16:00", "date": day,
               "students": [student]}
    for acct, code in ((cast.teacher, "forbidden"), (cast.student, "forbidden"),
                       (cast.guardians[0], "not_found")):
        client = await att_client(acct)
        ack = await client.call("create_study_hall", payload)
        assert not ack["ok"] and ack["error"]["code"] == code, (acct["role"], ack)
        assert ack["error"]["message"]
        async with await session_for(demo_server, acct) as http:
            async with http.post(f"{demo_server}/api/attendance/study-halls",
                                 json=payload) as r:
                assert r.status in (403, 404), acct["role"]
    for bad in ({**payload, "start": "9:00"}, {**payload, "room": ""},
                {**payload, "students": [0]}, {**payload, "extra": 1}, "texte"):
        ack = await cpe.call("create_study_hall", bad)
        assert not ack["ok"] and ack["error"]["code"] == "invalid", bad
    assert stored(demo_db_path) == before


async def test_a_teacher_supervises_the_study_hall(demo_server: str, att_client: Any,
                                                   cast: Cast) -> None:
    """The CPE gives a permanence to a teacher: it is on the teacher's day, and the teacher
    takes its roll; another teacher may not."""
    teacher_id = (await ids(demo_server, cast.teacher))["id"]
    student = (await ids(demo_server, cast.student))["id"]
    day = past_day(9)
    cpe = await att_client(cast.cpe)
    made = await cpe.call("create_study_hall", {"room": "Perm F", "start": "16:00",
                                                "end": "17:00", "date": day,
                                                "supervisor_id": teacher_id})
    assert made["ok"] and made["roll"]["teacher_id"] == teacher_id
    hall_id = made["roll"]["study_hall_id"]
    async with await session_for(demo_server, cast.teacher) as http:
        async with http.get(f"{demo_server}/api/attendance/my-rolls?date={day}") as r:
            mine = (await r.json())["rolls"]
    assert [(x["start"], x["room"], x["state"]) for x in mine
            if x.get("study_hall_id") == hall_id] == [("16:00", "Perm F", "in_progress")]
    teacher = await att_client(cast.teacher)
    opened = await teacher.call("open_roll", {"study_hall_id": hall_id, "date": day})
    assert opened["ok"] and opened["roll"]["id"] == made["roll"]["id"]
    ack = await teacher.call("mark", {"roll_id": opened["roll"]["id"], "marks": [
        {"student_id": student, "state": "late", "minutes": 10}]})
    assert ack["ok"] and ack["counts"]["late"] == 1
    other = await att_client(cast.other_teacher)
    refused = await other.call("open_roll", {"study_hall_id": hall_id, "date": day})
    assert refused["error"]["code"] == "not_found"


async def test_unauthenticated_rest_is_refused(demo_server: str) -> None:
    async with aiohttp.ClientSession() as http, http.post(
            f"{demo_server}/api/attendance/study-halls",
            json={"room": "X", "start": "09:00", "end": "10:00"}) as r:
        assert r.status == 401

"""Directory reads scoped by policy, for each role, through the real HTTP API."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.conftest import account, login

MONDAY = "2026-11-30"
SUNDAY = "2026-11-29"
CHARLEMAGNE, SAINT_GOBAIN = "Collège Charlemagne", "Collège de Saint-Gobain"


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as r:
        return r.status, await r.json()


@pytest.fixture
async def class_ids(demo_server: str, demo_accounts: list[dict[str, Any]]) -> dict[tuple, int]:
    """(school name, class name) → id, read as the département administrator."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, demo_server, account(demo_accounts, "admin"))
        status, body = await get(s, f"{demo_server}/api/classes")
        assert status == 200
        school_names = {}
        for school_id in {c["school_id"] for c in body["classes"]}:
            school_names[school_id] = (await get(s, f"{demo_server}/api/schools/{school_id}"))[1][
                "name"]
    out = {(school_names[c["school_id"]], c["name"]): c["id"] for c in body["classes"]}
    assert len(out) == 20
    return out


async def test_teacher_sees_own_classes_and_timetable(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    class_ids: dict[tuple, int],
) -> None:
    teacher = account(demo_accounts, "teacher", CHARLEMAGNE)
    await login(http, demo_server, teacher)
    status, body = await get(http, f"{demo_server}/api/classes")
    assert status == 200
    assert sorted(c["name"] for c in body["classes"]) == sorted(teacher["classes"])
    assert all(set(c) >= {"id", "name", "school_id"} for c in body["classes"])

    own = class_ids[(CHARLEMAGNE, teacher["classes"][0])]
    status, body = await get(http, f"{demo_server}/api/classes/{own}/students")
    assert status == 200 and 24 <= len(body["students"]) <= 27
    students_of_class = {a["login"] for a in demo_accounts if a["role"] == "student"
                         and a["school"] == CHARLEMAGNE and a["classes"] == [teacher["classes"][0]]}
    assert {s["login"] for s in body["students"]} == students_of_class

    not_taught = next(n for (school, n) in class_ids if school == CHARLEMAGNE
                      and n not in teacher["classes"])
    other_school = class_ids[(SAINT_GOBAIN, "6e A")]
    for cid in (class_ids[(CHARLEMAGNE, not_taught)], other_school, 987654):
        status, body = await get(http, f"{demo_server}/api/classes/{cid}/students")
        assert status == 404 and body["error"]["code"] == "not_found"

    status, body = await get(http, f"{demo_server}/api/timetable?date={MONDAY}")
    assert status == 200 and body["date"] == MONDAY and body["weekday"] == 1
    assert body["slots"], "a demo teacher teaches on Mondays"
    me = (await get(http, f"{demo_server}/api/me"))[1]["user"]
    assert all(s["teacher_id"] == me["id"] for s in body["slots"])
    assert all(s["class_name"] in teacher["classes"] for s in body["slots"])
    starts = [s["start"] for s in body["slots"]]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)

    status, body = await get(http, f"{demo_server}/api/timetable?date={SUNDAY}")
    assert status == 200 and body["slots"] == []

    status, _ = await get(http, f"{demo_server}/api/timetable?date={MONDAY}&class_id={own}")
    assert status == 200
    status, _ = await get(
        http, f"{demo_server}/api/timetable?date={MONDAY}&class_id={other_school}")
    assert status == 404


async def test_student_sees_own_class_only(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    class_ids: dict[tuple, int],
) -> None:
    student = account(demo_accounts, "student", SAINT_GOBAIN)
    await login(http, demo_server, student)
    status, body = await get(http, f"{demo_server}/api/classes")
    assert [c["name"] for c in body["classes"]] == student["classes"]
    own = class_ids[(SAINT_GOBAIN, student["classes"][0])]
    status, _ = await get(http, f"{demo_server}/api/classes/{own}/students")
    assert status == 404  # classmates' list is for the school team and teachers
    status, body = await get(http, f"{demo_server}/api/timetable?date={MONDAY}")
    assert status == 200 and body["slots"]
    assert {s["class_name"] for s in body["slots"]} == set(student["classes"])


async def test_parent_sees_only_their_children(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    class_ids: dict[tuple, int],
) -> None:
    parent = next(a for a in demo_accounts if a["role"] == "parent" and len(a["children"]) == 2)
    await login(http, demo_server, parent)
    status, body = await get(http, f"{demo_server}/api/children")
    assert status == 200
    assert sorted(c["login"] for c in body["children"]) == sorted(parent["children"])
    kids = {a["login"]: a for a in demo_accounts if a["login"] in parent["children"]}
    for child in body["children"]:
        assert [child["class_name"]] == kids[child["login"]]["classes"]
        status, tt = await get(
            http, f"{demo_server}/api/timetable?date={MONDAY}&student_id={child['id']}")
        assert status == 200 and {s["class_name"] for s in tt["slots"]} == {child["class_name"]}

    status, body = await get(http, f"{demo_server}/api/classes")
    assert sorted(c["name"] for c in body["classes"]) == sorted(
        {k["classes"][0] for k in kids.values()})
    child_class = class_ids[(parent["school"], kids[parent["children"][0]]["classes"][0])]
    status, _ = await get(http, f"{demo_server}/api/classes/{child_class}/students")
    assert status == 404

    # Another family's child: the same answer as a student that does not exist.
    other = next(a for a in demo_accounts if a["role"] == "parent"
                 and not set(a["children"]) & set(parent["children"]))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, demo_server, other)
        other_child_id = (await get(s, f"{demo_server}/api/children"))[1]["children"][0]["id"]
    for sid in (other_child_id, 99999999):
        status, body = await get(http, f"{demo_server}/api/timetable?student_id={sid}")
        assert status == 404 and body["error"]["message"] == "Élève introuvable."


@pytest.mark.parametrize("role", ["cpe", "staff"])
async def test_school_team_sees_their_school(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    class_ids: dict[tuple, int], role: str,
) -> None:
    member = account(demo_accounts, role, CHARLEMAGNE)
    await login(http, demo_server, member)
    status, body = await get(http, f"{demo_server}/api/classes")
    names = sorted(c["name"] for c in body["classes"])
    assert names == sorted(n for (school, n) in class_ids if school == CHARLEMAGNE)
    assert all(c["student_count"] >= 24 for c in body["classes"])
    for (school, name), cid in class_ids.items():
        status, _ = await get(http, f"{demo_server}/api/classes/{cid}/students")
        assert status == (200 if school == CHARLEMAGNE else 404), (school, name)
    status, body = await get(http, f"{demo_server}/api/timetable?date={MONDAY}")
    assert status == 200
    assert {s["class_name"] for s in body["slots"]} == set(names)


async def test_admin_sees_every_school(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
) -> None:
    await login(http, demo_server, account(demo_accounts, "admin"))
    status, body = await get(http, f"{demo_server}/api/classes")
    assert status == 200 and len(body["classes"]) == 20
    status, body = await get(http, f"{demo_server}/api/timetable")
    assert status == 400  # no "own" timetable: name a class, a student or a teacher


async def test_directory_requires_login(demo_server: str, http: aiohttp.ClientSession) -> None:
    for path in ("/api/classes", "/api/classes/1/students", "/api/timetable", "/api/children"):
        status, body = await get(http, f"{demo_server}{path}")
        assert status == 401 and body["error"]["code"] == "unauthorized"

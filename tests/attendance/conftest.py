"""Real servers, real Socket.IO clients on /attendance, and the demo people of one class."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import pytest_asyncio

from tests.conftest import LiveClient, live_clients, login, make_settings

NS = "/attendance"
CHARLEMAGNE = "Collège Charlemagne"
PARIS = ZoneInfo("Europe/Paris")


class AttendanceClient(LiveClient):
    """A real socketio.AsyncClient on /attendance that records what the server sends."""

    NS = NS
    EVENTS = ("notice", "feed_reset", "notices_read", "marks", "roll_state", "roll_update",
              "reminder", "overdue", "absence_update", "roll_alert", "declaration")

    @property
    def events(self) -> dict[str, list[Any]]:
        return self.received


class Cast:
    """One Charlemagne class: its teacher, a student with two guardians, a classmate, the
    guardian of a child of another class, a teacher of another class, the CPE."""

    def __init__(self, accounts: list[dict[str, Any]]) -> None:
        by_login = {a["login"]: a for a in accounts}
        parents = [a for a in accounts if a["role"] == "parent"]
        self.teacher = next(a for a in accounts if a["role"] == "teacher"
                            and a["school"] == CHARLEMAGNE)
        self.class_name = self.teacher["classes"][0]
        pupils = [a for a in accounts if a["role"] == "student" and a["school"] == CHARLEMAGNE
                  and a["classes"] == [self.class_name]]
        self.student = next(s for s in pupils
                            if sum(s["login"] in p["children"] for p in parents) == 2)
        self.guardians = [p for p in parents if self.student["login"] in p["children"]]
        self.classmate = next(s for s in pupils if s is not self.student)
        self.other_parent = next(
            p for p in parents if all(by_login[c]["classes"] != [self.class_name]
                                      for c in p["children"]))
        self.other_teacher = next(a for a in accounts if a["role"] == "teacher"
                                  and a["school"] == CHARLEMAGNE
                                  and self.class_name not in a["classes"])
        self.cpe = next(a for a in accounts if a["role"] == "cpe" and a["school"] == CHARLEMAGNE)
        # The outsider's own child and one of its teachers: a notice the outsider must get,
        # the positive control of « the outsider heard nothing of the others' ».
        self.other_child = by_login[self.other_parent["children"][0]]
        self.other_child_teacher = next(
            a for a in accounts if a["role"] == "teacher"
            and a["school"] == self.other_child["school"]
            and self.other_child["classes"][0] in a["classes"])


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


@pytest_asyncio.fixture
async def att_client(asked_demo_server: str | None, start_server: Any, tmp_path: Any,
                     demo_db_path: Any) -> AsyncIterator[Any]:
    """Factory: `await att_client(account, base=None)` → a connected AttendanceClient, on
    `base` or else on the demo server (the test's `demo_server`, or one started at the first
    client that needs it). A test that starts its own servers (`att_app`) and names them gets
    no second, idle server on its database: on PostgreSQL a server without Redis refuses to
    start beside another one on the same database (docs/deployment.md)."""
    default = [asked_demo_server] if asked_demo_server else []

    async with live_clients(AttendanceClient, "") as make:
        async def connect(acct: dict[str, Any], base: str | None = None,
                          token: str | None = None) -> Any:
            if base is None and not default:
                default.append(await start_server(make_settings(tmp_path,
                                                                db_path=demo_db_path)))
            return await make(acct, base or default[0], token)

        yield connect


async def ids(base: str, acct: dict[str, Any]) -> dict[str, Any]:
    """The account's user id and, for a teacher, the classes it sees by name."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, acct)
        async with s.get(f"{base}/api/me") as r:
            me = await r.json()
        async with s.get(f"{base}/api/classes") as r:
            classes = (await r.json())["classes"]
    return {"id": me["user"]["id"], "classes": {c["name"]: c["id"] for c in classes}}


async def recent_slot(base: str, acct: dict[str, Any], class_name: str,
                      skip: int = 0) -> tuple[dict[str, Any], str]:
    """A course of the teacher with that class on a recent past school day (or today)."""
    today = dt.datetime.now(PARIS).date()
    found = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, acct)
        async with s.get(f"{base}/api/me") as r:
            school_id = (await r.json())["school"]["id"]
        async with s.get(f"{base}/api/attendance/schools/{school_id}/calendar") as r:
            days_off = {d["date"] for d in (await r.json())["days_off"]}
        for back in range(0, 120):  # back over the holidays (the summer's too)
            day = today - dt.timedelta(days=back)
            if day.isoformat() in days_off:
                continue
            async with s.get(f"{base}/api/timetable?date={day.isoformat()}") as r:
                slots = (await r.json())["slots"]
            found += [(sl, day.isoformat()) for sl in slots if sl["class_name"] == class_name]
            if len(found) > skip:
                return found[skip]
    raise AssertionError("no recent course")


@pytest_asyncio.fixture
async def att_app(aiohttp_server: Any, tmp_path: Any, demo_db_path: Any) -> Any:
    """Factory: `await att_app(**settings)` → (base URL, app), to reach the hub's clock."""
    from realtime.app import create_app
    from tests.conftest import make_settings

    async def start(**overrides: Any) -> tuple[str, Any]:
        app = create_app(make_settings(tmp_path, db_path=demo_db_path, **overrides))
        server = await aiohttp_server(app)
        return str(server.make_url("")).rstrip("/"), app

    return start


async def session_for(base: str, acct: dict[str, Any]) -> aiohttp.ClientSession:
    s = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    await login(s, base, acct)
    return s


async def absent_and_validate(teacher: AttendanceClient, opened: dict[str, Any],
                              absent: list[int], late: dict[int, int] | None = None
                              ) -> dict[str, Any]:
    rid = opened["roll"]["id"]
    assert (await teacher.call("all_present", {"roll_id": rid}))["ok"]
    marks = [{"student_id": s, "state": "absent"} for s in absent] + [
        {"student_id": s, "state": "late", "minutes": m} for s, m in (late or {}).items()]
    if marks:
        assert (await teacher.call("mark", {"roll_id": rid, "marks": marks}))["ok"]
    done = await teacher.call("validate", {"roll_id": rid})
    assert done["ok"], done
    return done


async def absence_of(base: str, teacher: AttendanceClient, teacher_acct: dict[str, Any],
                     child: dict[str, Any]) -> int:
    """`child` marked absent on a validated roll of its class: its guardians are told.
    Returns the child's id."""
    slot, day = await recent_slot(base, teacher_acct, child["classes"][0])
    opened = await teacher.call("open_roll", {"slot_id": slot["id"], "date": day})
    assert opened["ok"], opened
    sid = next(s["id"] for s in opened["students"] if s["name"] == child["name"])
    await absent_and_validate(teacher, opened, [sid])
    return sid

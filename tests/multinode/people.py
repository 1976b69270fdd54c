"""What the multi-node tests do as people of the demo: find their courses, take rolls."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from tests.attendance.conftest import AttendanceClient
from tests.conftest import login

PARIS = ZoneInfo("Europe/Paris")


async def course_days(base: str, acct: dict[str, Any], class_name: str, start_back: int = 0,
                      end_back: int = 140) -> AsyncIterator[tuple[dict[str, Any], str]]:
    """(slot, day) of the teacher's courses with that class, from `start_back` days ago
    backwards, school days only (the school's calendar)."""
    today = dt.datetime.now(PARIS).date()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, acct)
        async with s.get(f"{base}/api/me") as r:
            school_id = (await r.json())["school"]["id"]
        async with s.get(f"{base}/api/attendance/schools/{school_id}/calendar") as r:
            days_off = {d["date"] for d in (await r.json())["days_off"]}
        for back in range(start_back, end_back):
            day = (today - dt.timedelta(days=back)).isoformat()
            if day in days_off:
                continue
            async with s.get(f"{base}/api/timetable?date={day}") as r:
                slots = (await r.json())["slots"]
            for slot in slots:
                if slot["class_name"] == class_name:
                    yield slot, day


async def fresh_rolls(base: str, teacher: AttendanceClient, acct: dict[str, Any],
                      class_name: str, n: int) -> list[dict[str, Any]]:
    """`n` rolls of the teacher's courses with that class, opened (`open_roll`'s answers),
    not yet validated: `demo` wrote three weeks of validated rolls, so the search goes back
    over those to the courses nobody took yet (within the last 40 days: a test that needs a
    course nobody ever opened looks further back, `course_days(start_back=60)`)."""
    found: list[dict[str, Any]] = []
    async for slot, day in course_days(base, acct, class_name, 0, 40):
        opened = await teacher.call("open_roll", {"slot_id": slot["id"], "date": day})
        if opened["ok"] and opened["roll"]["state"] != "done":
            found.append(opened)
            if len(found) == n:
                return found
    raise AssertionError(f"fewer than {n} courses of {class_name} left to take")


async def validate_with_absent(teacher: AttendanceClient, opened: dict[str, Any],
                               absent: list[int]) -> dict[str, Any]:
    """Everyone present but `absent`, then validated: the guardians are told."""
    rid = opened["roll"]["id"]
    done = await teacher.call("all_present", {"roll_id": rid})
    assert done["ok"], done
    marks = [{"student_id": s, "state": "absent"} for s in absent]
    if marks:
        done = await teacher.call("mark", {"roll_id": rid, "marks": marks})
        assert done["ok"], done
    done = await teacher.call("validate", {"roll_id": rid})
    assert done["ok"], done
    return done

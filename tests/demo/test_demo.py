"""The demo: deterministic, idempotent, realistic enough to try the product."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from realtime.cli import cli
from realtime.demo.plan import DemoPlan, build_plan
from realtime.demo.seed import seed
from tests import engines
from tests.conftest import TEST_KDF
from tests.engines import clone_db, open_test_db


def test_plan_is_deterministic(demo_plan: DemoPlan) -> None:
    again = build_plan()
    assert again.people == demo_plan.people
    assert [s.slots for s in again.schools] == [s.slots for s in demo_plan.schools]


def test_plan_shape(demo_plan: DemoPlan) -> None:
    assert [(s.name, s.town) for s in demo_plan.schools] == [
        ("Collège Charlemagne", "Laon"), ("Collège de Saint-Gobain", "Saint-Gobain")]
    for school in demo_plan.schools:
        assert len(school.classes) >= 8
        people = [p for p in demo_plan.people if p.school_uai == school.uai]
        roles = Counter(p.role for p in people)
        assert 15 <= roles["teacher"] <= 25
        assert roles["cpe"] >= 1 and roles["staff"] >= 1
        for cname in school.classes:
            size = sum(1 for p in people if p.role == "student" and p.classes == [cname])
            assert 22 <= size <= 28, (cname, size)
        # No one is in two places at once.
        for key in (lambda s: (s.class_name,), lambda s: (s.teacher_login,), lambda s: (s.room,)):
            seen = Counter((*key(s), s.weekday, s.start) for s in school.slots)
            assert max(seen.values()) == 1
        # Every class has a full week (25–26 hours) on Monday to Friday.
        per_class = Counter(s.class_name for s in school.slots)
        assert all(25 <= n <= 26 for n in per_class.values())
        assert {s.weekday for s in school.slots} == {1, 2, 3, 4, 5}
    logins = [p.login for p in demo_plan.people]
    assert len(logins) == len(set(logins))
    students = {p.login for p in demo_plan.people if p.role == "student"}
    parents = [p for p in demo_plan.people if p.role == "parent"]
    assert all(p.children and set(p.children) <= students for p in parents)
    assert any(len(p.children) > 1 for p in parents)  # siblings at the same collège
    assert all(any(s in p.children for p in parents) for s in students)


async def test_seed_is_idempotent(tmp_path: Path, demo_plan: DemoPlan) -> None:
    path = tmp_path / "demo.sqlite3"
    db = await open_test_db(path)
    try:
        first = await seed(db, demo_plan, TEST_KDF)
        snapshot = _dump(path)
        second = await seed(db, demo_plan, TEST_KDF)
    finally:
        await db.close()
    assert first == second
    assert _dump(path) == snapshot  # same ids, same hashes, same slots: nothing changed
    assert first["schools"] == 2 and first["classes"] == 20
    assert first["study_halls"] == 2 * 32  # every hour of the week, in each collège


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with engines.connect(path) as conn:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
            for t in ("schools", "classes", "users", "enrollments", "guardianships",
                      "teachings", "course_slots", "study_halls")
        }


def test_demo_command_writes_accounts(tmp_path: Path, monkeypatch: Any) -> None:
    for name, value in zip(("REALTIME_KDF_TIME_COST", "REALTIME_KDF_MEMORY_KIB",
                            "REALTIME_KDF_PARALLELISM"), TEST_KDF, strict=True):
        monkeypatch.setenv(name, str(value))
    path = tmp_path / "d.sqlite3"
    for name, value in engines.db_env(path).items():  # DATABASE_URL on PostgreSQL
        monkeypatch.setenv(name, value)
    out = tmp_path / "demo-accounts.json"
    result = CliRunner().invoke(cli, ["--db", str(path), "demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    where = engines.db_url(path).split("?")[0] if engines.POSTGRES else str(path)
    assert f"Données de démonstration prêtes dans {where}" in result.output
    accounts = json.loads(out.read_text(encoding="utf-8"))
    assert isinstance(accounts, list) and len(accounts) > 1000
    with engines.connect(path) as conn:  # the accounts are in the engine under test
        assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == len(accounts)
    for a in accounts:
        assert {"login", "code", "role", "name", "school", "classes", "children"} <= set(a)
    teacher = next(a for a in accounts if a["role"] == "teacher")
    assert teacher["school"] == "Collège Charlemagne" and teacher["classes"]
    parent = next(a for a in accounts if a["role"] == "parent")
    assert parent["children"] and not parent["classes"]
    assert any("é" in a["name"] for a in accounts)  # the file keeps accents, not \\u escapes
    assert "é" in out.read_text(encoding="utf-8")


def _hash_of(path: Path, login: str) -> str:
    with engines.connect(path) as conn:
        return conn.execute("SELECT code_hash FROM users WHERE login = ?", (login,)).fetchone()[0]


async def test_demo_hashes_are_cheap_then_upgraded_at_first_login(
    tmp_path: Path, demo_plan: DemoPlan, demo_accounts: list[dict[str, Any]], start_server: Any
) -> None:
    import aiohttp

    from realtime.demo.seed import DEMO_KDF
    from tests.conftest import account, login, make_settings

    path = tmp_path / "demo.sqlite3"
    db = await open_test_db(path)
    try:
        await seed(db, demo_plan)  # the demo's own cheap parameters
    finally:
        await db.close()
    teacher = account(demo_accounts, "teacher")
    cheap = _hash_of(path, teacher["login"])
    assert f"m={DEMO_KDF[1]},t={DEMO_KDF[0]},p={DEMO_KDF[2]}" in cheap

    # The server runs with stronger parameters: the first login stores a hash made with them.
    base = await start_server(make_settings(tmp_path, db_path=path, kdf_time_cost=2,
                                            kdf_memory_kib=8192))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, teacher)
    upgraded = _hash_of(path, teacher["login"])
    assert "m=8192,t=2,p=1" in upgraded

    # Seeding again keeps the upgraded hash (it verifies the demo code) and the login works.
    db = await open_test_db(path)
    try:
        await seed(db, demo_plan)
    finally:
        await db.close()
    assert _hash_of(path, teacher["login"]) == upgraded
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, teacher)
async def test_attendance_history_is_deterministic_idempotent_and_fast(
        tmp_path: Path, demo_db_path: Path) -> None:
    """`python -m realtime demo` adds three weeks of validated rolls with absences (some
    accepted, some proposed, some without reason, two pupils per collège over the monthly
    threshold), skipping holidays; again changes nothing; another copy gets the same."""
    import datetime as dt
    import time
    from zoneinfo import ZoneInfo

    from realtime.attendance.absences import DEFAULT_REASONS, months_over_threshold
    from realtime.attendance.store import events_of_school_between
    from realtime.demo.attendance import seed_history

    paris = ZoneInfo("Europe/Paris")
    today = dt.date(2026, 12, 4)  # a Friday: three weeks back reach 11 November (Armistice)
    copy = tmp_path / "copy.sqlite3"
    clone_db(demo_db_path, copy)
    db = await open_test_db(demo_db_path)
    try:
        started = time.perf_counter()
        first = await seed_history(db, today, paris)
        took = time.perf_counter() - started
        again = await seed_history(db, today, paris)
        rolls = await db.fetchall("SELECT date, slot_id, state, absent_count FROM rolls"
                                  " ORDER BY slot_id, date")
        states = await db.fetchall("SELECT justification, COUNT(*) AS n FROM absence_events"
                                   " GROUP BY 1")
        events = await events_of_school_between(db, 1, "2026-11-01", "2026-11-30")
    finally:
        await db.close()
    assert first["rolls"] > 500 and first["absence_events"] > 300, first
    assert again == {"rolls": 0, "absence_events": 0, "notifications": 0}
    assert took < 30  # a generous bound on a loaded machine: it is one transaction
    days = {r["date"] for r in rolls}
    assert "2026-11-11" not in days and "2026-12-04" not in days  # holiday; today left to do
    assert {r["state"] for r in rolls} == {"done"}
    assert {s["justification"] for s in states} == {"none", "given", "accepted", "refused"}
    by_pupil: dict[int, list[Any]] = {}
    for e in events:
        by_pupil.setdefault(e.student_id, []).append(e)
    reasons = {r.code: r for r in DEFAULT_REASONS}
    assert sum(1 for evs in by_pupil.values()
               if months_over_threshold(evs, reasons, 4)) >= 2
    db2 = await open_test_db(copy)
    try:
        assert await seed_history(db2, today, paris) == first  # deterministic
    finally:
        await db2.close()

"""Attendance written by two nodes at once, in a chosen order (tests/interleave.py): node A's
transaction is held open at its write, node B's request comes meanwhile. What SQLite's
single writer serialised holds on PostgreSQL too: B waits for A and works from what A
wrote."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from realtime.attendance import justify_store, schooldays
from realtime.attendance import store as att_store
from realtime.attendance.calendar import Closure
from realtime.attendance.model import StudyHall
from tests.attendance.conftest import Cast, absence_of, session_for
from tests.conftest import live_clients, two_nodes
from tests.engines import open_test_db
from tests.interleave import Hold, until_waiting


async def _guardian_of_a_pupil(db: Any) -> tuple[int, int, int]:
    row = await db.fetchone(
        "SELECT g.guardian_id, g.student_id, c.school_id FROM guardianships g"
        " JOIN enrollments e ON e.student_id = g.student_id JOIN classes c ON c.id = e.class_id"
        " ORDER BY g.student_id, g.guardian_id LIMIT 1")
    return int(row["guardian_id"]), int(row["student_id"]), int(row["school_id"])


async def test_one_declaration_cancelled_on_two_nodes_at_once(demo_db_path: Path) -> None:
    """Both guardians cancel « absent jeudi » at the same moment: the first cancellation's
    time stays, and both are answered with it."""
    a, b = await open_test_db(demo_db_path), await open_test_db(demo_db_path)
    try:
        guardian, student, school = await _guardian_of_a_pupil(a)
        async with a.transaction() as conn:
            d = await justify_store.add_declaration(conn, justify_store.Declaration(
                id=0, school_id=school, student_id=student, guardian_id=guardian,
                date_from="2026-12-10", date_to="2026-12-10", part="day",
                reason_code="maladie", comment="", created_at=50.0))

        async def second() -> Any:
            async with b.transaction() as conn:
                return await justify_store.cancel_declaration(conn, d.id, 200.0)

        async with a.transaction() as conn:
            first = await justify_store.cancel_declaration(conn, d.id, 100.0)
            other = asyncio.create_task(second())
            await until_waiting(demo_db_path, other)
        assert first is not None and first.cancelled_at == 100.0
        assert (await other).cancelled_at == 100.0
        row = await a.fetchone("SELECT cancelled_at FROM absence_declarations WHERE id = ?",
                               (d.id,))
        assert row["cancelled_at"] == 100.0
    finally:
        await a.close()
        await b.close()


async def test_one_study_hall_created_on_two_nodes_at_once(demo_db_path: Path) -> None:
    """Two surveillants open the permanence of room 12, Monday 10:00, at the same moment on
    two nodes: one hall, and both are given it."""
    a, b = await open_test_db(demo_db_path), await open_test_db(demo_db_path)
    try:
        _, _, school = await _guardian_of_a_pupil(a)
        cpe = await a.fetchone("SELECT id FROM users WHERE role = 'cpe' AND school_id = ?"
                               " ORDER BY id LIMIT 1", (school,))
        hall = StudyHall(id=0, school_id=school, supervisor_id=int(cpe["id"]),
                         room="Salle 12", weekday=1, start="10:00", end="11:00")

        async def second() -> StudyHall:
            async with b.transaction() as conn:
                return await att_store.add_study_hall(conn, hall)

        async with a.transaction() as conn:
            first = await att_store.add_study_hall(conn, hall)
            other = asyncio.create_task(second())
            await until_waiting(demo_db_path, other)
        assert (await other).id == first.id
        row = await a.fetchone("SELECT COUNT(*) AS n FROM study_halls WHERE school_id = ? AND"
                               " room = 'Salle 12'", (school,))
        assert row["n"] == 1
    finally:
        await a.close()
        await b.close()


async def test_closures_replaced_on_two_nodes_at_once(
        demo_db_path: Path, monkeypatch: Any) -> None:
    """Two CPE import the school's closures with « replace » at the same moment: the list
    is the second import's, not a mix of both."""
    a, b = await open_test_db(demo_db_path), await open_test_db(demo_db_path)
    try:
        _, _, school = await _guardian_of_a_pupil(a)
        await schooldays.save_closures(a, school, [Closure("2027-01-04", "2027-01-04", "Ancien")],
                                       None, 10.0, replace=False)
        first = [Closure("2027-02-01", "2027-02-01", "Pédagogique A")]
        second = [Closure("2027-03-01", "2027-03-01", "Pédagogique B")]
        hold = Hold(monkeypatch, schooldays, "_write_closures")
        importing_a = asyncio.create_task(
            schooldays.save_closures(a, school, first, None, 20.0, replace=True))
        await hold.entered.wait()
        importing_b = asyncio.create_task(
            schooldays.save_closures(b, school, second, None, 30.0, replace=True))
        await until_waiting(demo_db_path, importing_b)
        hold.release()
        assert await importing_a == 1 and await importing_b == 1
        cal = await schooldays.load_calendar(b, school)
        assert [(c.start, c.label) for c in cal.closures] == [("2027-03-01", "Pédagogique B")]
    finally:
        await a.close()
        await b.close()


async def _school_of(s: aiohttp.ClientSession, base: str) -> int:
    async with s.get(f"{base}/api/me") as r:
        return int((await r.json())["user"]["school_id"])


async def test_reason_lists_saved_on_two_nodes_at_once(
        start_server: Any, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
        redis_cleanup: Any, cast: Cast, monkeypatch: Any) -> None:
    """Two CPE save the school's list of reasons on two nodes at the same moment: both are
    answered, and the list is the second one, whole (not a mix, not an error)."""
    node_a, node_b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix)
    async with await session_for(node_a, cast.cpe) as sa, \
            await session_for(node_b, cast.cpe) as sb:
        url = f"{{}}/api/attendance/schools/{await _school_of(sa, node_a)}/reasons"
        async with sa.get(url.format(node_a)) as r:
            base = [{k: x[k] for k in ("code", "label", "justifying", "active")}
                    for x in (await r.json())["reasons"]]
        list_a = [*base, {"code": "sortie", "label": "Sortie scolaire", "justifying": True}]
        list_b = [*base, {"code": "stage", "label": "Stage", "justifying": True}]

        async def put(s: aiohttp.ClientSession, node: str, items: list[Any]) -> int:
            async with s.put(url.format(node), json={"reasons": items}) as r:
                return r.status

        hold = Hold(monkeypatch, att_store, "replace_reasons")
        saving_a = asyncio.create_task(put(sa, node_a, list_a))
        await hold.entered.wait()
        saving_b = asyncio.create_task(put(sb, node_b, list_b))
        await until_waiting(demo_db_path, saving_b)
        hold.release()
        assert (await saving_a, await saving_b) == (200, 200)
        async with sa.get(url.format(node_a)) as r:
            codes = [x["code"] for x in (await r.json())["reasons"]]
    assert codes == [x["code"] for x in list_b]


async def test_a_reason_given_while_the_cpe_accepts(
        start_server: Any, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
        redis_cleanup: Any, cast: Cast, monkeypatch: Any) -> None:
    """The CPE accepts an absence on node A while a guardian gives a reason for it on node
    B: the guardian waits for the decision and is told it was accepted; the decision stays
    (a proposal written from the « before » would have put the absence back to « given »)."""
    node_a, node_b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix)
    from tests.attendance.conftest import AttendanceClient

    async with live_clients(AttendanceClient, node_a) as make:
        teacher = await make(cast.teacher, node_a)
        sid = await absence_of(node_a, teacher, cast.teacher, cast.student)
    db = await open_test_db(demo_db_path)
    try:
        row = await db.fetchone("SELECT id FROM absence_events WHERE student_id = ?"
                                " ORDER BY id DESC LIMIT 1", (sid,))
        event_id = int(row["id"])
        async with await session_for(node_a, cast.cpe) as cpe, \
                await session_for(node_b, cast.guardians[0]) as guardian:
            hold = Hold(monkeypatch, att_store, "upsert_event")

            async def post(s: aiohttp.ClientSession, url: str, body: dict[str, Any]
                           ) -> tuple[int, Any]:
                async with s.post(url, json=body) as r:
                    return r.status, await r.json()

            path = f"/api/attendance/absences/{event_id}"
            deciding = asyncio.create_task(post(cpe, f"{node_a}{path}/decision",
                                                {"accept": True, "reason_code": "maladie"}))
            await hold.entered.wait()
            giving = asyncio.create_task(post(guardian, f"{node_b}{path}/reason",
                                              {"reason_code": "rendez_vous_medical",
                                               "comment": "Dentiste"}))
            await until_waiting(demo_db_path, giving)
            hold.release()
            decided, given = await deciding, await giving
        assert decided[0] == 200, decided
        assert given[0] == 409 and given[1]["error"]["code"] == "conflict", given
        event = await db.fetchone("SELECT justification, reason_code, decided_by FROM"
                                  " absence_events WHERE id = ?", (event_id,))
        assert (event["justification"], event["reason_code"]) == ("accepted", "maladie")
        assert event["decided_by"] is not None
    finally:
        await db.close()

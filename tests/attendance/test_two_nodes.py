"""Two nodes of one ENT (two servers on one database and one Redis) writing the same
attendance at the same moment: what SQLite's single writer serialised must hold on
PostgreSQL too, where both nodes write at once (row locks, conflict-tolerant inserts, claimed
outbox rows)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from realtime import keys
from tests import engines
from tests.attendance.conftest import AttendanceClient, Cast, ids, recent_slot
from tests.conftest import REDIS_URL, live_clients, make_settings


async def test_two_nodes_take_one_roll_at_once(
        start_server: Any, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
        redis_cleanup: Any, cast: Cast) -> None:
    """The teacher's phone on node A and the board's screen on node B open the course's roll
    at the same instant (one roll, both told it), then mark the class one pupil per call,
    from both nodes at once: every mark is kept and the roll's counts and version agree
    with its marks."""
    settings = make_settings(tmp_path, db_path=demo_db_path, redis_url=REDIS_URL,
                             redis_prefix=redis_prefix)
    node_a, node_b = await start_server(settings), await start_server(settings)
    slot, day = await recent_slot(node_a, cast.teacher, cast.class_name)
    async with live_clients(AttendanceClient, node_a) as make:
        phone, board = await make(cast.teacher, node_a), await make(cast.teacher, node_b)
        opened = await asyncio.gather(*(c.call("open_roll", {"slot_id": slot["id"],
                                                             "date": day})
                                        for c in (phone, board)))
        assert all(o["ok"] for o in opened), opened
        assert opened[0]["roll"]["id"] == opened[1]["roll"]["id"]
        roll_id = opened[0]["roll"]["id"]
        pupils = sorted(s["id"] for s in opened[0]["students"])
        assert len(pupils) >= 4
        version = max(o["roll"]["version"] for o in opened)

        async def mark_each(client: AttendanceClient, students: list[int]) -> None:
            for s in students:
                ack = await client.call("mark", {"roll_id": roll_id, "marks": [
                    {"student_id": s, "state": "absent"}]})
                assert ack["ok"], ack

        await asyncio.gather(mark_each(phone, pupils[0::2]), mark_each(board, pupils[1::2]))
        check = await board.call("open_roll", {"slot_id": slot["id"], "date": day})
    assert sorted(s["id"] for s in check["students"]
                  if (s["mark"] or {}).get("state") == "absent") == pupils
    with engines.connect(demo_db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM rolls WHERE slot_id = ? AND date = ?",
                            (slot["id"], day)).fetchone()[0] == 1
        absent, stored_version = conn.execute(
            "SELECT absent_count, version FROM rolls WHERE id = ?", (roll_id,)).fetchone()
        marks = conn.execute("SELECT COUNT(*) FROM marks WHERE roll_id = ? AND state ="
                             " 'absent'", (roll_id,)).fetchone()[0]
        history = conn.execute("SELECT COUNT(*) FROM roll_history WHERE roll_id = ? AND"
                               " action = 'mark'", (roll_id,)).fetchone()[0]
    assert absent == marks == history == len(pupils)
    assert stored_version == version + len(pupils)  # one step per call, none lost


async def test_two_nodes_sweep_the_outbox_once(
        aiohttp_server: Any, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
        redis_cleanup: Any, cast: Cast) -> None:
    """Notices a crash left unpublished, swept by both nodes' maintenance at the same
    moment: each reaches the guardian's stream once."""
    from realtime.app import create_app

    apps = []
    for _ in range(2):
        app = create_app(make_settings(tmp_path, db_path=demo_db_path, redis_url=REDIS_URL,
                                       redis_prefix=redis_prefix))
        apps.append((str((await aiohttp_server(app)).make_url("")).rstrip("/"), app))
    base = apps[0][0]
    me = (await ids(base, cast.guardians[0]))["id"]
    student = (await ids(base, cast.student))["id"]
    payload = {"kind": "absence", "student_id": student, "student_name": cast.student["name"],
               "date": "2026-11-27", "start": "08:00", "end": "09:00", "subject": "",
               "state": "absent", "minutes": None, "event_id": None, "title": "Absence",
               "body": "…", "can_justify": False}
    left = 5
    with engines.connect(demo_db_path) as conn:
        conn.executemany("INSERT INTO notifications (guardian_id, student_id, date, payload,"
                         " created_at) VALUES (?, ?, ?, ?, ?)",
                         [(me, student, "2026-11-27", json.dumps(payload), 1.0)] * left)
    hubs = [app[keys.ATTENDANCE] for _, app in apps]
    for _ in range(3):
        await asyncio.gather(*(h.tick() for h in hubs))
    async with live_clients(AttendanceClient, base) as make:
        guardian = await make(cast.guardians[0])
        feed = await guardian.call("follow_feed", {})
    assert feed["ok"] and feed["seq"] == left, feed  # the stream holds each notice once
    with engines.connect(demo_db_path) as conn:
        seqs = [r[0] for r in conn.execute(
            "SELECT stream_seq FROM notifications WHERE guardian_id = ? AND created_at = ?"
            " ORDER BY stream_seq", (me, 1.0)).fetchall()]
    assert seqs == list(range(1, left + 1))

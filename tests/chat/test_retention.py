"""The one retention job on a real demo database with a fixed clock: rows before and after,
attachment files gone (from disk or the database), a dry run that reports exactly what a real
run removes and changes nothing, and the CLI's report."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from realtime import keys, retention
from realtime.attendance.absences import retention_cutoff
from realtime.files import read_all
from tests import engines
from tests.chat.conftest import Cast, ChatServer, Connect, paris
from tests.conftest import ROOT, token_for, user_id

DAY = 24 * 3600.0
NOW = paris(10)  # the job's fixed clock
OLD = NOW - 400 * DAY  # beyond the default year for messages and boards
RECENT = NOW - 10 * DAY
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def _upload(server: ChatServer, acct: dict[str, Any], name: str) -> int:
    token = await token_for(server.base, acct)
    async with aiohttp.ClientSession() as s, s.post(
            f"{server.base}/api/chat/attachments?name={name}", data=PNG,
            headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 201, await r.text()
        return int((await r.json())["id"])


async def _stored(server: ChatServer, key: str) -> bool:
    return await read_all(server.service.attachments.files, key) == PNG


async def _count(server: ChatServer, sql: str, args: tuple[Any, ...] = ()) -> int:
    row = await server.service.db.fetchone(sql, args)
    assert row is not None
    return int(row[0])


async def _snapshot(server: ChatServer) -> dict[str, int]:
    tables = ("chat_messages", "chat_attachments", "chat_conversations", "chat_reports",
              "chat_events", "chat_acks", "boards", "board_images", "course_docs", "marks")
    if not engines.POSTGRES:  # SQLite's search index (PostgreSQL indexes chat_messages)
        tables += ("chat_fts",)
    return {t: await _count(server, f"SELECT COUNT(*) FROM {t}") for t in tables}


async def _fixture_data(server: ChatServer, chat_client: Connect, cast: Cast
                        ) -> dict[str, Any]:
    """Old and recent things of every category, made through the real API where one
    exists (messages, files, reports) and in SQL where the feature's own tests do."""
    db = server.service.db
    ids = {k: await user_id(server.base, getattr(cast, k))
           for k in ("teacher", "alice", "bob", "parent", "other_teacher")}
    teacher, alice = await chat_client(cast.teacher), await chat_client(cast.alice)
    server.clock.set(OLD)
    old_file = await _upload(server, cast.teacher, "vieux.png")
    group = (await teacher.ok("create", {
        "kind": "group", "title": "Sortie de l'an dernier", "members": [ids["alice"], ids["bob"]],
        "body": "Rendez-vous à 8 h", "attachments": [old_file]}))["conversation_id"]
    info = (await teacher.ok("create", {
        "kind": "information", "title": "Réunion", "members": [ids["alice"]],
        "body": "Réunion parents-professeurs"}))
    await alice.ok("ack", {"message_id": info["message_id"]})
    silent = (await teacher.ok("create", {"kind": "direct", "members": [ids["bob"]],
                                          "body": "Vieux message"}))["conversation_id"]
    reported = await alice.ok("send", {"conversation_id": group, "body": "Message blessant"})
    kept_report_msg = reported["message_id"]
    await teacher.ok("report", {"message_id": kept_report_msg, "reason": "À voir"})
    server.clock.set(RECENT)
    recent_file = await _upload(server, cast.teacher, "recent.png")
    recent = await teacher.ok("send", {"conversation_id": group, "body": "Cette année",
                                       "attachments": [recent_file]})
    files = {}
    for att in (old_file, recent_file):
        key = (await db.fetchone("SELECT storage_key FROM chat_attachments WHERE id = ?",
                                 (att,)))["storage_key"]
        files[att] = key
        assert await _stored(server, key)

    # Boards: one untouched for 400 days (with an image), one of this year.
    klass = (await db.fetchone("SELECT class_id FROM teachings WHERE teacher_id = ? LIMIT 1",
                               (ids["teacher"],)))["class_id"]
    school = (await db.fetchone("SELECT school_id FROM classes WHERE id = ?",
                                (klass,)))["school_id"]
    boards = []
    async with db.transaction() as conn:
        for when in (OLD, RECENT):
            cur = await conn.execute(
                "INSERT INTO boards (school_id, class_id, owner_id, title, state, created_at,"
                " updated_at) VALUES (?, ?, ?, 'Théorème de Pythagore', 'ended', ?, ?)"
                " RETURNING id", (school, klass, ids["teacher"], when, when))
            board = (await cur.fetchone())[0]
            boards.append(board)
            await conn.execute("INSERT INTO board_images VALUES (?, 'ab', 'image/png', ?, ?)",
                               (board, PNG, when))
        # Course documents: the departed teacher's own, one a colleague co-edits, and the
        # colleague's own document.
        docs = []
        for owner in (ids["other_teacher"], ids["other_teacher"], ids["teacher"]):
            cur = await conn.execute(
                "INSERT INTO course_docs (school_id, owner_id, title, created_at, updated_at)"
                " VALUES (?, ?, 'Cours', ?, ?) RETURNING id", (school, owner, OLD, OLD))
            docs.append((await cur.fetchone())[0])
        await conn.execute("INSERT INTO course_doc_editors VALUES (?, ?)",
                           (docs[1], ids["teacher"]))
        # The colleague left 100 days ago (the trigger stamps the real time: set it).
        await conn.execute("UPDATE users SET disabled = 1, disabled_at = ? WHERE id = ?",
                           (NOW - 100 * DAY, ids["other_teacher"]))
        # Attendance: a roll of three school years ago with a mark, and one of this week.
        rolls = []
        for date in ("2023-01-10", dt_today()):
            cur = await conn.execute(
                "INSERT INTO rolls (school_id, kind, class_id, date, start, \"end\", teacher_id,"
                " state, roster) VALUES (?, 'course', ?, ?, '08:00', '09:00', ?, 'done', ?)"
                " RETURNING id", (school, klass, date, ids["teacher"], json.dumps([ids["alice"]])))
            roll = (await cur.fetchone())[0]
            rolls.append(roll)
            await conn.execute("INSERT INTO marks (roll_id, student_id, state, by, at)"
                               " VALUES (?, ?, 'absent', ?, ?)",
                               (roll, ids["alice"], ids["teacher"], OLD))
    return {"group": group, "silent": silent, "info": info["conversation_id"],
            "kept_report_msg": kept_report_msg, "recent_msg": recent["message_id"],
            "files": files, "old_file": old_file, "recent_file": recent_file,
            "boards": boards, "docs": docs, "rolls": rolls, "ids": ids}


def dt_today() -> str:
    return dt.datetime.fromtimestamp(NOW, ZoneInfo("Europe/Paris")).date().isoformat()


async def test_dry_run_then_purge_every_category(
        chat_server: ChatServer, chat_client: Connect, cast: Cast) -> None:
    data = await _fixture_data(chat_server, chat_client, cast)
    db, settings = chat_server.service.db, chat_server.app[keys.SETTINGS]
    before = await _snapshot(chat_server)

    dry = await retention.purge(db, settings, NOW, dry_run=True)
    assert await _snapshot(chat_server) == before  # nothing changed…
    for key in data["files"].values():  # …not even the files (on disk or in the database)
        assert await _stored(chat_server, key)

    real = await retention.purge(db, settings, NOW)
    assert [c.rows for c in real.categories] == [c.rows for c in dry.categories]
    by = {c.category: c for c in real.categories}
    assert by["chat"].files == 1 and dry.categories[2].files == 1
    # The old conversations' messages went; the reported one stays until a CPE handles it.
    assert by["chat"].rows["chat_messages"] == 3  # the group's first, the information, the direct
    assert by["chat"].rows["chat_conversations"] == 2  # the information and the silent direct
    assert by["chat"].rows["chat_acks"] == 1
    after = await _snapshot(chat_server)
    assert after["chat_messages"] == before["chat_messages"] - 3
    assert not await _stored(chat_server, data["files"][data["old_file"]])
    assert await _stored(chat_server, data["files"][data["recent_file"]])
    left = {r["id"] for r in await db.fetchall(
        "SELECT id FROM chat_messages WHERE conversation_id = ?", (data["group"],))}
    assert left == {data["kept_report_msg"], data["recent_msg"]}
    assert await _count(chat_server, "SELECT COUNT(*) FROM chat_conversations WHERE id IN"
                                     " (?, ?)", (data["silent"], data["info"])) == 0
    if not engines.POSTGRES:
        assert after["chat_fts"] == await _count(
            chat_server, "SELECT COUNT(*) FROM chat_messages WHERE body != ''")
    # Boards: the old one and its image are gone, this year's stays.
    assert by["boards"].rows == {"boards": 1, "board_images": 1}
    assert [r["id"] for r in await db.fetchall("SELECT id FROM boards WHERE id IN (?, ?)",
                                               tuple(data["boards"]))] == [data["boards"][1]]
    # Course documents of the departed: erased, unless a colleague co-edits it (then theirs).
    assert by["departed"].rows == {"course_docs": 1, "course_docs_transferred": 1}
    _own, shared, colleague = data["docs"]
    owners = {r["id"]: r["owner_id"] for r in await db.fetchall(
        "SELECT id, owner_id FROM course_docs WHERE id IN (?, ?, ?)", tuple(data["docs"]))}
    assert owners == {shared: data["ids"]["teacher"], colleague: data["ids"]["teacher"]}
    # Attendance keeps its own rule (REALTIME_ATTENDANCE_RETENTION_YEARS): same cutoff.
    today = dt.date.fromisoformat(dt_today())
    assert by["attendance"].cutoff == retention_cutoff(today, 2).isoformat()
    old_roll, new_roll = data["rolls"]
    assert await _count(chat_server, "SELECT COUNT(*) FROM marks WHERE roll_id = ?",
                        (old_roll,)) == 0
    assert await _count(chat_server, "SELECT COUNT(*) FROM marks WHERE roll_id = ?",
                        (new_roll,)) == 1

    # A second run finds nothing more; a category at 0 days is never purged.
    again = await retention.purge(db, settings, NOW)
    assert all(not any(c.rows.values()) for c in again.categories)
    off = settings.with_(retention_chat_days=0)
    report = await retention.purge(db, off, NOW + 900 * DAY, dry_run=True)
    assert next(c for c in report.categories if c.category == "chat").cutoff is None
    assert "conservation illimitée" in report.text(settings.tz)


async def test_purged_history_resets_a_resuming_client(
        chat_server: ChatServer, chat_client: Connect, cast: Cast) -> None:
    """A device that last saw the conversation before the purge is told to reload (reset)
    rather than replayed events whose messages are gone."""
    data = await _fixture_data(chat_server, chat_client, cast)
    await retention.purge(chat_server.service.db, chat_server.app[keys.SETTINGS], NOW)
    alice = await chat_client(cast.alice)
    answer = await alice.ok("sync", {"conversation_id": data["group"], "since": 1})
    assert answer.get("reset") is True
    page = await alice.ok("history", {"conversation_id": data["group"]})
    assert [m["id"] for m in page["messages"]] == [data["kept_report_msg"], data["recent_msg"]]
    # Once the CPE handled the report, the next purge takes the message.
    report_id = (await chat_server.service.db.fetchone(
        "SELECT id FROM chat_reports WHERE message_id = ?", (data["kept_report_msg"],)))["id"]
    token = await token_for(chat_server.base, cast.cpe)
    async with aiohttp.ClientSession() as s, s.post(
            f"{chat_server.base}/api/chat/reports/{report_id}/handle", json={},
            headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200
    report = await retention.purge(chat_server.service.db, chat_server.app[keys.SETTINGS], NOW)
    assert report.categories[2].rows["chat_messages"] == 1


def test_cli_prints_a_report_per_category(tmp_path: Path, demo_db_path: Path) -> None:
    env = {**os.environ, **engines.db_env(demo_db_path), "REALTIME_LOG_JSON": "false"}
    out = subprocess.run([sys.executable, "-m", "realtime", "retention", "purge", "--dry-run"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    for label in retention.LABELS_FR.values():
        assert label in out.stdout
    assert "Simulation (rien n'est supprimé)" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "realtime", "retention", "purge"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60,
                         env={**env, "REALTIME_RETENTION_CHAT_DAYS": "-3"})
    assert bad.returncode == 2 and "chat_days" in bad.stderr


async def test_disabling_an_account_starts_its_departure_clock(
        chat_server: ChatServer, cast: Cast) -> None:
    """However an account is disabled (directory import, SQL), the database stamps when; an
    account enabled again stops counting."""
    db = chat_server.service.db
    uid = await user_id(chat_server.base, cast.other_teacher)
    async with db.transaction() as conn:
        await conn.execute("UPDATE users SET disabled = 1 WHERE id = ?", (uid,))
    row = await db.fetchone("SELECT disabled_at FROM users WHERE id = ?", (uid,))
    assert row["disabled_at"] is not None and abs(row["disabled_at"] - _now()) < 120
    async with db.transaction() as conn:
        await conn.execute("UPDATE users SET disabled = 0 WHERE id = ?", (uid,))
    row = await db.fetchone("SELECT disabled_at FROM users WHERE id = ?", (uid,))
    assert row["disabled_at"] is None


def _now() -> float:
    import time
    return time.time()


async def test_a_negative_duration_stops_the_start(aiohttp_server: Any, tmp_path: Path) -> None:
    """A typo in a retention setting must not start a server that would erase too much."""
    import pytest

    from realtime.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path, retention_boards_days=-1))
    with pytest.raises(ValueError, match="boards_days"):
        await aiohttp_server(app)


async def test_the_server_runs_the_job_in_the_background(
        aiohttp_server: Any, tmp_path: Path, demo_db_path: Path, monkeypatch: Any) -> None:
    """Started with the server (here without its minute of delay): an old board goes."""
    import asyncio
    import time

    from realtime.app import create_app
    from tests.conftest import make_settings

    with engines.connect(demo_db_path) as conn:
        school, klass, owner = conn.execute(
            "SELECT c.school_id, c.id, t.teacher_id FROM classes c JOIN teachings t"
            " ON t.class_id = c.id LIMIT 1").fetchone()
        old = time.time() - 400 * DAY
        board = conn.execute(
            "INSERT INTO boards (school_id, class_id, owner_id, title, created_at, updated_at)"
            " VALUES (?, ?, ?, 'Ancien', ?, ?) RETURNING id",
            (school, klass, owner, old, old)).fetchone()[0]
    monkeypatch.setattr(retention, "FIRST_RUN_S", 0.0)
    app = create_app(make_settings(tmp_path, db_path=demo_db_path))
    await aiohttp_server(app)
    db = app[keys.DB]
    for _ in range(200):
        if await db.fetchone("SELECT 1 FROM boards WHERE id = ?", (board,)) is None:
            break
        await asyncio.sleep(0.05)
    assert await db.fetchone("SELECT 1 FROM boards WHERE id = ?", (board,)) is None

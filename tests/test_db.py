"""Migrations from an empty file, WAL and foreign keys, idempotent re-runs."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from realtime import db as db_module
from realtime.db import Database, migration_files


async def test_migrations_from_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    db = await Database.open(path)
    try:
        assert await db.schema_version() == migration_files()[-1][0]
        row = await db.fetchone("PRAGMA journal_mode")
        assert row is not None and row[0] == "wal"
        row = await db.fetchone("PRAGMA foreign_keys")
        assert row is not None and row[0] == 1
        tables = {r["name"] for r in await db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"users", "sessions", "schools", "classes", "course_slots", "streams"} <= tables
        assert await db.migrate() == []  # nothing left to apply
    finally:
        await db.close()
    # Reopening applies nothing and keeps the version.
    db = await Database.open(path)
    try:
        assert await db.schema_version() == migration_files()[-1][0]
    finally:
        await db.close()


async def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "fk.sqlite3")
    try:
        with pytest.raises(sqlite3.IntegrityError):
            await db.execute(
                "INSERT INTO classes (school_id, name, level) VALUES (999, '6e A', '6e')"
            )
    finally:
        await db.close()


async def test_failed_transaction_changes_nothing(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "tx.sqlite3")
    try:
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO schools (uai, name, town) VALUES ('0020001A', 'X', 'Y')"
                )
                raise RuntimeError("boom")
        assert await db.fetchall("SELECT * FROM schools") == []
    finally:
        await db.close()


def test_migrations_are_numbered_uniquely_in_order() -> None:
    versions = [v for v, _, _ in migration_files()]
    assert versions[0] == 1 and versions == sorted(set(versions))


async def test_write_batch_is_one_transaction(tmp_path: Path) -> None:
    """All of `fn` commits, or none of it: a failure half-way rolls back the first half."""
    db = await Database.open(tmp_path / "batch.sqlite3")
    try:
        def write(conn: sqlite3.Connection, names: list[str]) -> int:
            for name in names:
                conn.execute("INSERT INTO streams (name, epoch, seq, trimmed_to)"
                             " VALUES (?, 'e', 0, 0)", (name,))
            return len(names)

        assert await db.write_batch(write, ["a", "b"]) == 2
        with pytest.raises(sqlite3.IntegrityError):
            await db.write_batch(write, ["c", "a"])  # "a" exists: "c" must not stay either
        rows = await db.fetchall("SELECT name FROM streams ORDER BY name")
        assert [r["name"] for r in rows] == ["a", "b"]
        async with db.transaction() as conn:  # the connection is usable afterwards
            await conn.execute("DELETE FROM streams WHERE name = 'b'")
    finally:
        await db.close()


def _insert(conn: sqlite3.Connection, names: list[str]) -> int:
    conn.executemany("INSERT INTO streams (name, epoch, seq, trimmed_to) VALUES (?, 'e', 0, 0)",
                     [(n,) for n in names])
    return len(names)


async def test_write_batch_runs_on_the_loop_and_checkpoints_run_beside(tmp_path: Path) -> None:
    """Commits are WAL writes on the loop's thread; the WAL is checkpointed by the background
    connection, never by a commit (the main connection's automatic checkpoint is off)."""
    db = await Database.open(tmp_path / "wal.sqlite3")
    try:
        row = await db.fetchone("PRAGMA wal_autocheckpoint")
        assert row is not None and row[0] == 0
        row = await db.fetchone("PRAGMA synchronous")
        assert row is not None and row[0] == 1  # NORMAL
        for i in range(20):
            assert await db.write_batch(_insert, [f"s{i}a", f"s{i}b"]) == 2
        assert db.inline_writes == 20

        for _ in range(400):  # the checkpointer wakes every second
            if db.checkpoints:
                break
            await asyncio.sleep(0.05)
        assert db.checkpoints
        # Everything written so far is in the database file: another connection's own
        # passive checkpoint finds no frame left to copy.
        other = sqlite3.connect(tmp_path / "wal.sqlite3")
        try:
            busy, frames, copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            assert busy == 0 and frames == copied
            assert other.execute("SELECT COUNT(*) FROM streams").fetchone()[0] == 40
        finally:
            other.close()
    finally:
        await db.close()


async def test_write_batch_waits_off_the_loop_for_another_process(tmp_path: Path) -> None:
    """Another process holding the write lock: the batch waits for it in aiosqlite's thread,
    the event loop keeps running meanwhile, and the batch commits once the lock is free."""
    path = tmp_path / "busy.sqlite3"
    db = await Database.open(path)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO streams (name, epoch, seq, trimmed_to) VALUES ('x', 'e', 0, 0)")
        write = asyncio.ensure_future(db.write_batch(_insert, ["y"]))
        ticks = 0
        while ticks < 5:  # the loop is not blocked while the batch waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not write.done()
        other.execute("COMMIT")
        assert await asyncio.wait_for(write, 20) == 1
        assert db.inline_writes == 0
        rows = await db.fetchall("SELECT name FROM streams ORDER BY name")
        assert [r["name"] for r in rows] == ["x", "y"]
    finally:
        other.close()
        await db.close()


async def test_the_wal_starts_over_under_sustained_writes(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Passive checkpoints alone never rewind a WAL that commits keep landing in: past
    WAL_RESTART_FRAMES the checkpointer restarts it, so the file stays bounded while writes go
    on, and nothing written is lost."""
    monkeypatch.setattr(db_module, "CHECKPOINT_EVERY_S", 0.05)
    monkeypatch.setattr(db_module, "WAL_RESTART_FRAMES", 64)
    path = tmp_path / "steady.sqlite3"
    db = await Database.open(path)
    wal = path.with_name(path.name + "-wal")
    try:
        largest = 0
        for i in range(1500):  # a steady trickle of commits, as a busy server makes
            assert await db.write_batch(_insert, [f"s{i}"]) == 1
            largest = max(largest, wal.stat().st_size)
            await asyncio.sleep(0.001)
        assert db.wal_restarts >= 2, (db.checkpoints, db.wal_restarts)
        # Each commit adds about three pages: 1,500 of them without a restart make ~18 MB.
        assert largest < 4 * 1024 * 1024, largest
        row = await db.fetchone("SELECT COUNT(*) FROM streams")
        assert row is not None and row[0] == 1500
    finally:
        await db.close()
    other = sqlite3.connect(path)
    try:
        assert other.execute("SELECT COUNT(*) FROM streams").fetchone()[0] == 1500
    finally:
        other.close()


async def test_on_commit_runs_after_the_commit_and_never_after_a_rollback(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "t.sqlite3")
    seen: list[object] = []
    try:
        await db.execute("CREATE TABLE t (v TEXT PRIMARY KEY)")

        async def count_rows() -> None:  # a coroutine callback sees the committed row
            row = await db.fetchone("SELECT COUNT(*) AS n FROM t")
            seen.append(("rows", row["n"] if row else None))

        async with db.transaction() as conn:
            await conn.execute("INSERT INTO t VALUES ('a')")
            conn.on_commit(lambda: seen.append("first"))
            conn.on_commit(count_rows)
            conn.on_commit(lambda: seen.append("third"))
            assert seen == []  # nothing before the commit
        assert seen == ["first", ("rows", 1), "third"]

        seen.clear()
        with pytest.raises(sqlite3.IntegrityError):
            async with db.transaction() as conn:
                conn.on_commit(lambda: seen.append("rolled back"))
                await conn.execute("INSERT INTO t VALUES ('b')")
                await conn.execute("INSERT INTO t VALUES ('a')")  # duplicate: rollback
        assert seen == []
        assert (await db.fetchone("SELECT COUNT(*) AS n FROM t"))["n"] == 1

        with pytest.raises(RuntimeError):
            db.on_commit(lambda: None)  # outside a transaction: a programming error
    finally:
        await db.close()


async def test_in_memory_database_shares_one_store_between_its_connections() -> None:
    db = await Database.open(":memory:", migrate=False)
    try:
        await db.execute("CREATE TABLE t (v TEXT)")

        def write(conn: sqlite3.Connection, values: list[str]) -> int:
            conn.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
            return len(values)

        assert await db.write_batch(write, ["x", "y"]) == 2
        rows = await db.fetchall("SELECT v FROM t ORDER BY v")
        assert [r["v"] for r in rows] == ["x", "y"]
    finally:
        await db.close()

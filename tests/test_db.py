"""Migrations from an empty file, WAL and foreign keys, idempotent re-runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

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

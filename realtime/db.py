"""The embedded store: one aiosqlite connection in WAL mode, numbered SQL migrations.

SQLite takes one writer at a time anyway, so a single connection guarded by an asyncio lock
serialises transactions without "database is locked" retries; WAL keeps readers of other
processes (a second worker, the CLI) unblocked.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every packaged migration, in order."""
    out = []
    for entry in resources.files("realtime.migrations").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            out.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    out.sort()
    versions = [v for v, _, _ in out]
    # Numbers are assigned per feature ahead of time (DESIGN.md), so a branch may lack some;
    # what must never happen is two files with one number.
    if len(set(versions)) != len(versions) or (versions and versions[0] != 1):
        raise RuntimeError(f"migrations must be numbered uniquely from 1, got {versions}")
    return out


T = TypeVar("T")


def _in_transaction(conn: sqlite3.Connection, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


class Database:
    """An open SQLite database. Use `transaction()` for every write."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        self._closed = False
        # (kind, seconds, size) after each committed write: the app's metrics.
        self.observer: Callable[[str, float, int], None] | None = None

    @classmethod
    async def open(cls, path: Path | str, *, migrate: bool = True) -> Database:
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(str(path), isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA busy_timeout=5000")
        db = cls(conn, path)
        if migrate:
            await db.migrate()
        return db

    async def migrate(self) -> list[int]:
        """Apply every migration not yet applied, each in its own transaction."""
        applied: list[int] = []
        async with self._lock:
            await self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
            )
            for version, name, sql in migration_files():
                # BEGIN IMMEDIATE takes the write lock first, so two workers starting together
                # cannot both apply the same migration.
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    cur = await self._conn.execute(
                        "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
                    )
                    if await cur.fetchone():
                        await self._conn.execute("ROLLBACK")
                        continue
                    for statement in _split_sql(sql):
                        await self._conn.execute(statement)
                    await self._conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                        (version, name),
                    )
                    await self._conn.execute("COMMIT")
                except BaseException:
                    await self._conn.execute("ROLLBACK")
                    raise
                applied.append(version)
                log.info("migration applied", extra={"version": version, "migration": name})
        return applied

    async def schema_version(self) -> int:
        row = await self.fetchone("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        return int(row["v"]) if row else 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction; commits on success, rolls back on any exception."""
        async with self._lock:
            if self._closed:
                raise RuntimeError("database is closed")
            start = time.perf_counter()
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            else:
                await self._conn.execute("COMMIT")
                if self.observer is not None:
                    self.observer("transaction", time.perf_counter() - start, 1)

    async def write_batch(self, fn: Callable[..., T], *args: Any, size: int = 1) -> T:
        """`fn(sqlite3_connection, *args)` inside one write transaction, in a single trip to
        the database thread (BEGIN, fn, COMMIT or ROLLBACK together): for hot paths where the
        per-statement round trips of `transaction()` cost more than the statements.
        `size`: how many items the batch carries (for the metrics)."""
        async with self._lock:
            if self._closed:
                raise RuntimeError("database is closed")
            start = time.perf_counter()
            result = await self._conn._execute(_in_transaction, self._conn._conn, fn, args)
            if self.observer is not None:
                self.observer("batch", time.perf_counter() - start, size)
            return result

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        async with self._lock:
            cur = await self._conn.execute(sql, tuple(params))
            return await cur.fetchone()

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        async with self._lock:
            cur = await self._conn.execute(sql, tuple(params))
            return list(await cur.fetchall())

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> None:
        """A single-statement write in its own transaction."""
        async with self.transaction() as conn:
            await conn.execute(sql, tuple(params))

    async def ping(self) -> bool:
        row = await self.fetchone("SELECT 1 AS one")
        return bool(row and row["one"] == 1)

    async def close(self) -> None:
        """Wait for the transaction under way, then close."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            await self._conn.close()


def _split_sql(sql: str) -> list[str]:
    """Split a migration on statement boundaries (sqlite3.complete_statement knows triggers)."""
    import sqlite3

    statements, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements

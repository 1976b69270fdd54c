"""The embedded store: one aiosqlite connection in WAL mode, numbered SQL migrations.

SQLite takes one writer at a time anyway, so a single connection guarded by an asyncio lock
serialises transactions without "database is locked" retries; WAL keeps readers of other
processes (a second worker, the CLI) unblocked.

Durability: WAL with `synchronous=NORMAL`. A commit is a `write` of its pages to the WAL file,
without `fsync`: once it returns, the transaction survives a crash or kill of the server
process (the operating system holds the file's pages), which is what "an acked op is never
lost on restart" asks. A power cut or kernel crash may lose the transactions since the WAL was
last synced (at most one checkpoint interval, about a second); the database stays consistent.
`synchronous=FULL` would fsync on every commit, milliseconds each on a shared disk.

Checkpoints (copying the WAL into the database file, with the fsyncs) do not run inside a
commit, as SQLite's automatic checkpoint does: a background connection, in its own thread,
runs a PASSIVE checkpoint every `CHECKPOINT_EVERY_S` after writes, beside the writer. So
commits never wait for a disk sync, and `write_batch` can run on the event loop's own thread.

A PASSIVE checkpoint alone never lets the WAL start over while writes keep coming (SQLite
rewinds the WAL only when a writer finds it entirely copied, and a commit always lands during
the copy): under a steady load the file grew by megabytes a second. So once the WAL holds
`WAL_RESTART_FRAMES`, the checkpointer runs a RESTART checkpoint: it takes the write lock for
the little the passive one left, and the next commit writes the WAL from its start again
(`journal_size_limit` then trims the file). Meanwhile a `write_batch` finds the lock taken and
waits in its connection's own thread, never on the loop.

`write_batch` runs on a connection of its own: a plain `sqlite3` connection this module owns,
used from the loop's thread and, when another process holds the write lock, from a one-thread
executor (no aiosqlite internals). Every write of the process, on either connection, holds the
same asyncio lock, so they never overlap.

Publishing after commit is the database's job: `transaction()` yields a connection with
`on_commit(fn)`; the callbacks run once the COMMIT returned, in order, and are dropped on a
rollback, so nobody is told of a change that did not happen.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiosqlite

from realtime.private import private_file, tighten

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
CHECKPOINT_EVERY_S = 1.0
WAL_RESTART_FRAMES = 4096  # pages (16 MiB at 4 KiB): the WAL is started over past this
WAL_SIZE_LIMIT = 32 * 1024 * 1024  # bytes of WAL file kept after it starts over

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files(engine: str = "sqlite") -> list[tuple[int, str, str]]:
    """(version, name, sql) for every packaged migration of that engine, in order: SQLite's
    in `realtime/migrations/`, PostgreSQL's in `realtime/migrations/postgres/`, numbered and
    named alike."""
    out = []
    package = "realtime.migrations" if engine == "sqlite" else "realtime.migrations.postgres"
    for entry in resources.files(package).iterdir():
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
    return _then_commit(conn, fn, args)


def _then_commit(conn: sqlite3.Connection, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    """`fn` inside the transaction just begun: COMMIT, or ROLLBACK if it raised."""
    try:
        result = fn(conn, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


class _Busy(Exception):
    """Another process holds the write lock: the inline path steps aside."""


def _in_transaction_now(conn: sqlite3.Connection, fn: Callable[..., T], args: tuple[Any, ...]
                        ) -> T:
    """`_in_transaction` on the calling thread, without waiting for another process's write
    lock (busy timeout 0 for the BEGIN): waiting for it here would stop the event loop."""
    conn.execute("PRAGMA busy_timeout=0")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise _Busy from exc
        raise
    finally:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return _then_commit(conn, fn, args)


class Unavailable(Exception):
    """The database cannot be reached (PostgreSQL restarting, failing over, or every pooled
    connection busy past the wait): the request fails with `unavailable` and may be tried
    again; nothing was written."""


class Cursor(Protocol):
    """What `Transaction.execute` returns, on either engine."""

    rowcount: int

    async def fetchone(self) -> Any: ...  # pragma: no cover
    async def fetchall(self) -> Iterable[Any]: ...  # pragma: no cover


class Transaction(Protocol):
    """The connection `transaction()` yields, on either engine: one query text (`?`
    placeholders), rows read by column name or index, `on_commit` callbacks."""

    async def execute(self, sql: str, params: Iterable[Any] = ...) -> Any: ...
    async def executemany(self, sql: str, seq: Iterable[Iterable[Any]]) -> Any: ...
    def on_commit(self, fn: Callable[[], Any]) -> None: ...  # pragma: no cover


@functools.lru_cache(maxsize=4096)
def sqlite_sql(sql: str) -> str:
    """A portable query as SQLite takes it: without ` FOR UPDATE` / ` FOR SHARE` (its writer
    is single: a transaction holds the write lock from BEGIN IMMEDIATE, so nothing else needs
    locking)."""
    for clause in (" FOR UPDATE", " FOR SHARE"):
        if clause in sql:
            sql = sql.replace(clause, "")
    return sql


def unique_violation(exc: BaseException) -> str | None:
    """What a UNIQUE constraint refused, on either engine (SQLite: « users.login »;
    PostgreSQL: the constraint's name, « users_login_key »), or None for any other error.
    A user's request that meets one (an account created meanwhile by another node or
    another request) answers `conflict`, not an internal error."""
    if isinstance(exc, sqlite3.IntegrityError):
        text = str(exc)
        prefix = "UNIQUE constraint failed: "
        return text[len(prefix):] if text.startswith(prefix) else None
    if getattr(exc, "sqlstate", None) == "23505":  # psycopg's UniqueViolation
        diag = getattr(exc, "diag", None)
        return str(getattr(diag, "constraint_name", None) or "unique")
    return None


def foreign_key_violation(exc: BaseException) -> bool:
    """A row that references one deleted meanwhile (SQLite's « FOREIGN KEY constraint
    failed », PostgreSQL's foreign_key_violation): the thing asked about is gone."""
    if isinstance(exc, sqlite3.IntegrityError):
        return str(exc).startswith("FOREIGN KEY constraint failed")
    return getattr(exc, "sqlstate", None) == "23503"


def _try_flock(path: Path) -> int | None:
    """An open descriptor holding an exclusive `flock` on `path` (created 0600), or None
    when another open file holds it (another process, or another `Database` here)."""
    import fcntl

    private_file(path)
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class _SqliteTransaction:
    """The aiosqlite connection as a `Transaction`: portable query text, `on_commit`."""

    __slots__ = ("_callbacks", "_conn")

    def __init__(self, conn: aiosqlite.Connection, callbacks: list[Callable[[], Any]]) -> None:
        self._conn = conn
        self._callbacks = callbacks

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Cursor:
        return await self._conn.execute(sqlite_sql(sql), tuple(params))

    async def executemany(self, sql: str, seq: Iterable[Iterable[Any]]) -> aiosqlite.Cursor:
        return await self._conn.executemany(sqlite_sql(sql), seq)

    def on_commit(self, fn: Callable[[], Any]) -> None:
        self._callbacks.append(fn)


async def run_after_commit(callbacks: list[Callable[[], Any]]) -> None:
    """A committed transaction's `on_commit` callbacks, in order, on either engine: each a
    function, or one returning a coroutine to await; one that fails is logged and the next
    still runs (the change is committed whatever a listener does)."""
    for fn in callbacks:
        try:
            result = fn()
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            log.exception("after-commit callback failed")


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


class Database:
    """An open database: SQLite (the embedded default) or PostgreSQL (`DATABASE_URL`).

    Every feature uses this interface alone, with one query text for both engines (the
    rules are in docs/architecture.md, « One query text »): `transaction(lock=…)` for every
    write, `fetchone`/`fetchall` for reads outside one. `engine` is "sqlite" or "postgres",
    for the few places where the engines truly differ (full-text search, stream appends,
    the copy tool)."""

    engine: str = ""
    path: Path | None = None
    # (kind, seconds, size) after each committed write: the app's metrics.
    observer: Callable[[str, float, int], None] | None = None

    @staticmethod
    async def open(target: Path | str, *, migrate: bool = True, pool_min: int = 2,
                   pool_max: int = 10) -> Database:
        """A SQLite file (a path, or ":memory:") or a PostgreSQL database (a
        `postgresql://` URL, with a pool of `pool_min`..`pool_max` connections)."""
        if is_postgres_url(target):
            from realtime.pg import PostgresDatabase

            return await PostgresDatabase.connect(str(target), migrate=migrate,
                                                  pool_min=pool_min, pool_max=pool_max)
        return await SQLiteDatabase.open_file(target, migrate=migrate)

    def counters(self) -> dict[str, int]:
        raise NotImplementedError

    async def migrate(self) -> list[int]:
        raise NotImplementedError

    async def schema_version(self) -> int:
        row = await self.fetchone("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        return int(row["v"]) if row else 0

    def transaction(self, lock: str | None = None) -> AbstractAsyncContextManager[Transaction]:
        """One write transaction; commits on success, rolls back on any exception. The
        connection it yields takes `on_commit(fn)`: `fn()` runs after the COMMIT (publish
        after commit), never after a rollback. `lock`: a name this transaction holds to
        its end, so that read-then-write sequences on one thing never interleave across
        nodes (PostgreSQL: `pg_advisory_xact_lock`; SQLite's single writer holds
        everything already)."""
        raise NotImplementedError

    def exclusive(self, name: str) -> AbstractAsyncContextManager[bool]:
        """A named job that must not run twice at once across every process sharing the
        database (the AAF import): yields True when this process now holds `name` until
        the block ends, False at once when another holds it (nothing waits). Held across
        transactions, and let go by a process that dies (PostgreSQL: a session advisory
        lock on a connection kept for the block; SQLite: `flock` on a file beside the
        database)."""
        raise NotImplementedError

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Any:
        raise NotImplementedError

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        raise NotImplementedError

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> None:
        """A single-statement write in its own transaction."""
        async with self.transaction() as conn:
            await conn.execute(sql, tuple(params))

    async def ping(self) -> bool:
        row = await self.fetchone("SELECT 1 AS one")
        return bool(row and row["one"] == 1)

    async def close(self) -> None:
        raise NotImplementedError


async def open_database(settings: Any, *, migrate: bool = True) -> Database:
    """The database `settings` name (`realtime.settings.Settings`): PostgreSQL at
    `database_url` when set, else the SQLite file at `db_path`."""
    return await Database.open(settings.db_target, migrate=migrate,
                               pool_min=settings.db_pool_min, pool_max=settings.db_pool_max)


class SQLiteDatabase(Database):
    """An open SQLite database. Use `transaction()` for every write."""

    engine = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, path: Path,
                 batch_conn: sqlite3.Connection | None = None) -> None:
        self._conn = conn
        self._batch_conn = batch_conn
        # The batch connection's thread for when it must wait for another process's lock.
        self._batch_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-batch")
        self._after_commit: list[Callable[[], Any]] | None = None
        self.path = path
        self._lock = asyncio.Lock()
        self._closed = False
        self.observer = None
        self._writes = 0  # transactions committed, for the checkpointer
        self._checkpointer: asyncio.Task[None] | None = None
        self._checkpoint_conn: aiosqlite.Connection | None = None
        self.inline_writes = 0  # write_batch calls run on the loop's thread (observability)
        self.checkpoints = 0
        self.wal_restarts = 0  # RESTART checkpoints: the WAL started over
        self._exclusive: set[str] = set()  # `exclusive` names held, for an in-memory database

    def counters(self) -> dict[str, int]:
        """For the metrics page (`realtime.metrics.Counted`)."""
        return {"wal_restarts": self.wal_restarts}

    @classmethod
    async def open_file(cls, path: Path | str, *, migrate: bool = True) -> SQLiteDatabase:
        path = Path(path)
        in_memory = str(path) == ":memory:"
        if in_memory:  # one in-memory database shared by this module's two connections
            target, uri = f"file:ent-{secrets.token_hex(8)}?mode=memory&cache=shared", True
        else:
            # 0600 before SQLite opens it: its -wal and -shm files take the same mode.
            private_file(path)
            for extra in ("-wal", "-shm"):
                tighten(path.with_name(path.name + extra))
            target, uri = str(path), False
        conn = await aiosqlite.connect(target, isolation_level=None, uri=uri)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if not in_memory:
            await conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job
            await conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        # check_same_thread=False: used from the loop's thread, or from `_batch_thread` while
        # the loop awaits it, always under the lock: never from two threads at once.
        batch_conn = sqlite3.connect(target, isolation_level=None, uri=uri,
                                     check_same_thread=False)
        for pragma in ("foreign_keys=ON", "synchronous=NORMAL",
                       f"busy_timeout={BUSY_TIMEOUT_MS}"):
            batch_conn.execute(f"PRAGMA {pragma}")
        if not in_memory:
            batch_conn.execute("PRAGMA wal_autocheckpoint=0")
        db = cls(conn, path, batch_conn)
        if migrate:
            await db.migrate()
        if not in_memory:
            # Connected here, not in the task: a close() right after open() must not cancel a
            # connect whose thread would then answer a closed loop.
            checkpoint_conn = await aiosqlite.connect(str(path), isolation_level=None)
            await checkpoint_conn.execute("PRAGMA synchronous=NORMAL")
            await checkpoint_conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await checkpoint_conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            db._checkpoint_conn = checkpoint_conn
            db._checkpointer = asyncio.create_task(db._checkpoints(checkpoint_conn),
                                                   name="sqlite-checkpoint")
        return db

    async def _checkpoints(self, conn: aiosqlite.Connection) -> None:
        """PASSIVE checkpoints from a second connection (its own thread), after writes: they
        copy what readers no longer need and sync the files, never blocking the writer; a
        RESTART one when the WAL has grown past `WAL_RESTART_FRAMES` (module docstring).
        `close()` closes the connection (also when this task is cancelled before it ran)."""
        done = 0
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            if self._writes == done:
                continue
            done = self._writes
            try:
                cursor = await conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                row = await cursor.fetchone()
                self.checkpoints += 1
                if row is not None and row[1] >= WAL_RESTART_FRAMES:
                    await conn.execute("PRAGMA wal_checkpoint(RESTART)")
                    self.wal_restarts += 1
            except sqlite3.Error as exc:  # tried again after the next writes
                log.warning("checkpoint failed", extra={"error": repr(exc)})

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
                # A migration that rebuilds a table (SQLite's documented 12-step ALTER) says
                # so on a line of its own: foreign keys are off around its transaction (the
                # pragma is a no-op inside one), so dropping the old table cascades nothing,
                # and `foreign_key_check` must find nothing broken before the commit.
                fk_off = FK_OFF_MARK in sql.splitlines()
                if fk_off:
                    await self._conn.execute("PRAGMA foreign_keys=OFF")
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
                    if fk_off:
                        cur = await self._conn.execute("PRAGMA foreign_key_check")
                        if await cur.fetchone():
                            raise RuntimeError(f"migration {version} broke a foreign key")
                    await self._conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                        (version, name),
                    )
                    await self._conn.execute("COMMIT")
                except BaseException:
                    await self._conn.execute("ROLLBACK")
                    raise
                finally:
                    if fk_off:
                        await self._conn.execute("PRAGMA foreign_keys=ON")
                applied.append(version)
                log.info("migration applied", extra={"version": version, "migration": name})
        return applied

    @asynccontextmanager
    async def transaction(self, lock: str | None = None) -> AsyncIterator[Transaction]:
        """One write transaction; commits on success, rolls back on any exception. The
        connection it yields takes `on_commit(fn)`: `fn()` runs after the COMMIT (publish
        after commit), never after a rollback."""
        async with self._lock:
            if self._closed:
                raise RuntimeError("database is closed")
            start = time.perf_counter()
            callbacks: list[Callable[[], Any]] = []
            self._after_commit = callbacks
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTransaction(self._conn, callbacks)
            except BaseException:
                self._after_commit = None
                await self._conn.execute("ROLLBACK")
                raise
            else:
                self._after_commit = None
                await self._conn.execute("COMMIT")
                self._writes += 1
                if self.observer is not None:
                    self.observer("transaction", time.perf_counter() - start, 1)
        # Outside the lock: a callback may start another transaction.
        await run_after_commit(callbacks)

    def on_commit(self, fn: Callable[[], Any]) -> None:
        """Run `fn()` (a function, or one returning a coroutine to await) once the
        transaction under way has committed; outside a transaction, a programming error."""
        if self._after_commit is None:
            raise RuntimeError("on_commit outside a transaction")
        self._after_commit.append(fn)

    async def write_batch(self, fn: Callable[..., T], *args: Any, size: int = 1) -> T:
        """`fn(sqlite3_connection, *args)` inside one write transaction (BEGIN, fn, COMMIT or
        ROLLBACK together): for hot paths, small and quick, such as stream appends. `size`:
        how many items the batch carries (for the metrics).

        It runs on the event loop's thread. A commit here is a write to the WAL, without
        fsync and without a checkpoint (see the module's docstring): well under a
        millisecond for a few hundred rows. Handing it to aiosqlite's thread instead cost more
        than the work under load: every SQLite statement releases the GIL and takes it back,
        and taking it back from a busy event loop waits up to the interpreter's switch
        interval (5 ms), several times per transaction. If another process holds the write
        lock, the transaction waits for it in aiosqlite's thread, as before."""
        async with self._lock:
            if self._closed:
                raise RuntimeError("database is closed")
            start = time.perf_counter()
            conn = self._batch_conn
            assert conn is not None
            loop = asyncio.get_running_loop()
            result: T
            if self._checkpointer is not None:  # a file in WAL mode, checkpoints elsewhere
                try:
                    result = _in_transaction_now(conn, fn, args)
                except _Busy:
                    result = await loop.run_in_executor(
                        self._batch_thread, _in_transaction, conn, fn, args)
                else:
                    self.inline_writes += 1
            else:
                result = await loop.run_in_executor(
                    self._batch_thread, _in_transaction, conn, fn, args)
            self._writes += 1
            if self.observer is not None:
                self.observer("batch", time.perf_counter() - start, size)
            return result

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        """`Database.exclusive` for the processes of one machine sharing the file: an
        exclusive `flock` on `<database>.<name>.lock` (a file of its own, never the
        database's: SQLite's own locks stay out of it), or, in memory, this process's."""
        if self.path is None or str(self.path) == ":memory:":
            if name in self._exclusive:
                yield False
                return
            self._exclusive.add(name)
            try:
                yield True
            finally:
                self._exclusive.discard(name)
            return
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        fd = _try_flock(self.path.with_name(f"{self.path.name}.{safe}.lock"))
        if fd is None:
            yield False
            return
        try:
            yield True
        finally:
            os.close(fd)  # lets the flock go

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        async with self._lock:
            cur = await self._conn.execute(sqlite_sql(sql), tuple(params))
            return await cur.fetchone()

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        async with self._lock:
            cur = await self._conn.execute(sqlite_sql(sql), tuple(params))
            return list(await cur.fetchall())

    async def close(self) -> None:
        """Wait for the transaction under way, then close."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._checkpointer is not None:
                self._checkpointer.cancel()
                await asyncio.gather(self._checkpointer, return_exceptions=True)
            if self._checkpoint_conn is not None:
                await self._checkpoint_conn.close()  # after any checkpoint under way
            if self._batch_conn is not None:
                self._batch_conn.close()
            self._batch_thread.shutdown(wait=False)
            await self._conn.close()  # the last connection to close checkpoints the WAL


FK_OFF_MARK = "-- migrate: foreign_keys off"


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

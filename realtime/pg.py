"""PostgreSQL: the shared store of several nodes (`DATABASE_URL=postgresql://…`).

psycopg 3 (async) with psycopg_pool, not asyncpg, for one reason: the project keeps **one
query text** for both engines (docs/architecture.md, « One query text »), written for SQLite
with `?` placeholders. psycopg takes `%s` placeholders, a mechanical rewrite, and sends
strings with the "unknown" type so that the server types them from their context, as SQLite's
affinity does; asyncpg's `$n` parameters are typed by the server and refuse a Python value of
another type (a float for a BIGINT, an int for a TEXT), which SQLite code passes freely. The
rest is what asyncpg also has: a pool, prepared statements (psycopg prepares a statement after
its fifth run), pipelining.

What this module adds on top of psycopg, so that the stores run unchanged:

- the query rewrite (`pg_sql`): `?` → `%s` outside string literals and quoted names, `%` →
  `%%`; cached per query text;
- rows readable by column name and by index (`Row`), like `sqlite3.Row`;
- Python booleans sent as integers (boolean columns are integers 0/1 on both engines), and
  `numeric` results (`SUM` of integers) read back as `int` (or `float` with a fraction);
- `transaction(lock=…)`: a `pg_advisory_xact_lock` for read-then-write sequences that
  SQLite's single writer serialised;
- every connection failure raised as `realtime.db.Unavailable`: the request answers
  `unavailable` and may be tried again; the pool drops its broken connections and reconnects
  once the server is back (a restart or a failover behind the same address), within a few
  seconds however long it was away (`RECONNECT_S`).

Transactions run at READ COMMITTED (PostgreSQL's default); stream sequences take row locks
(`UPDATE … RETURNING`), and the few read-then-write sequences take a named lock or
`SELECT … FOR UPDATE` (docs/pg-audit.md lists them).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, ClassVar

import psycopg
from psycopg.adapt import Dumper, Loader
from psycopg.postgres import types as pg_types
from psycopg.rows import RowMaker
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from realtime.db import Database, Transaction, Unavailable, migration_files, run_after_commit

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0  # a connection attempt
POOL_WAIT_S = 5.0  # waiting for a free pooled connection before answering `unavailable`
# The same wait while the server is known to be away (a connection failed, nothing succeeded
# since): a request answers `unavailable` at once rather than after POOL_WAIT_S, and a live
# connection's next events (handled one at a time) are not held up behind it.
POOL_WAIT_DOWN_S = 0.5
# How long one reconnection attempt of the pool goes on (retrying after 1, 2, 4 s) before it
# gives up; the next request that finds no connection starts a fresh one at once. Not
# infinite: psycopg_pool doubles the delay between retries without a ceiling, so a node whose
# server was away 135 s first tried again 95 s after it was back (measured); with a bound,
# while requests come the pool tries at least every few seconds.
RECONNECT_S = 10.0


@functools.lru_cache(maxsize=8192)
def pg_sql(sql: str) -> str:
    """A portable query (`?` placeholders) as psycopg takes it (`%s`, `%` doubled).

    Quoted text ('…', "…") is copied as it is, but for `%`, which psycopg reads everywhere."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            if ch == quote:
                quote = None
            out.append("%%" if ch == "%" else ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            if ch in "'\"":
                quote = ch
            out.append(ch)
    return "".join(out)


class Row(tuple):  # type: ignore[type-arg]
    """A result row: `row["name"]`, `row[0]`, `dict(row)` (like `sqlite3.Row`)."""

    __slots__ = ()
    _index: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@functools.lru_cache(maxsize=4096)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    return type("Row", (Row,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})


def _rows(cursor: psycopg.AsyncCursor[Any]) -> RowMaker[Row]:
    desc = cursor.description
    if desc is None:
        return Row
    cls = _row_class(tuple(d.name for d in desc))
    return cls  # type: ignore[return-value]


class _BoolAsInt(Dumper):
    """Booleans are INTEGER 0/1 columns on both engines: send True/False as 1/0."""

    oid = pg_types["int8"].oid

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class _NumericAsNumber(Loader):
    """`numeric` (what SUM of integers returns) as int, or float when it has a fraction, as
    SQLite returns them, rather than Decimal."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        if text in ("NaN", "Infinity", "-Infinity"):
            return float(text)
        return int(text) if "." not in text and "e" not in text.lower() else float(text)


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    conn.adapters.register_dumper(bool, _BoolAsInt)
    conn.adapters.register_loader("numeric", _NumericAsNumber)
    conn.row_factory = _rows  # type: ignore[assignment]


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for `pg_advisory_xact_lock`, the same on every node."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big",
                          signed=True)


class _PgTransaction:
    """A pooled connection inside its transaction, as a `Transaction`."""

    __slots__ = ("_callbacks", "_conn")
    # Like `Database.engine`, for a store function handed only the transaction (chat's
    # search rows exist on SQLite only); SQLite's transaction has none: "sqlite" by default.
    engine = "postgres"

    def __init__(self, conn: psycopg.AsyncConnection[Any],
                 callbacks: list[Callable[[], Any]]) -> None:
        self._conn = conn
        self._callbacks = callbacks

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> psycopg.AsyncCursor[Any]:
        return await self._conn.execute(pg_sql(sql), tuple(params))

    async def executemany(self, sql: str, seq: Iterable[Iterable[Any]]
                          ) -> psycopg.AsyncCursor[Any]:
        cur = self._conn.cursor()
        await cur.executemany(pg_sql(sql), [tuple(p) for p in seq])
        return cur

    def on_commit(self, fn: Callable[[], Any]) -> None:
        self._callbacks.append(fn)


def _is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.OperationalError) and not isinstance(
        exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable)


class PostgresDatabase(Database):
    """A PostgreSQL database through a connection pool (one per process)."""

    engine = "postgres"

    def __init__(self, pool: AsyncConnectionPool, url: str) -> None:
        self._pool = pool
        self.url = url
        self.path = None
        self.observer = None
        self._closed = False
        self.unavailable = 0  # requests refused because the server could not be reached
        self._checking: asyncio.Task[None] | None = None
        self._down = False  # a connection failed and no request has succeeded since

    @classmethod
    async def connect(cls, url: str, *, migrate: bool = True, pool_min: int = 2,
                      pool_max: int = 10) -> PostgresDatabase:
        url = url.replace("postgres://", "postgresql://", 1)
        pool = AsyncConnectionPool(
            url, min_size=pool_min, max_size=max(pool_min, pool_max), open=False,
            timeout=POOL_WAIT_S, configure=_configure, name="ent",
            kwargs={"autocommit": True, "connect_timeout": int(CONNECT_TIMEOUT_S)},
            reconnect_timeout=RECONNECT_S,
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
        except BaseException:
            await pool.close()
            raise
        db = cls(pool, url)
        if migrate:
            try:
                await db.migrate()
            except BaseException:
                await pool.close()
                raise
        return db

    def counters(self) -> dict[str, int]:
        return {"unavailable": self.unavailable}

    def _lost(self, exc: BaseException) -> Unavailable:
        """A connection failure: counted, the pool asked to drop every broken connection at
        once (not one failed request per stale connection), and `Unavailable` to raise."""
        self.unavailable += 1
        if not isinstance(exc, PoolTimeout):  # a broken connection, not a busy pool
            self._down = True
        log.warning("PostgreSQL unreachable", extra={"error": repr(exc)})
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._check(), name="pg-pool-check")
        return Unavailable(str(exc) or type(exc).__name__)

    def _wait(self) -> float:
        """How long a request waits for a pooled connection."""
        return POOL_WAIT_DOWN_S if self._down else POOL_WAIT_S

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """Around every use of a pooled connection: a connection failure becomes
        `Unavailable` (counted, the pool checked: `_lost`); any other error passes as is."""
        try:
            yield
        except psycopg.OperationalError as exc:
            if _is_connection_error(exc):
                raise self._lost(exc) from exc
            raise

    async def _check(self) -> None:
        try:
            await self._pool.check()
        except Exception:  # the next failure schedules another check
            pass

    async def migrate(self) -> list[int]:
        """Apply every PostgreSQL migration not yet applied, each in its own transaction,
        under a session advisory lock keyed by the schema, so nodes starting together apply
        each migration once."""
        applied: list[int] = []
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT current_schema() AS s")
            row = await cur.fetchone()
            key = lock_key(f"migrations:{row['s'] if row else ''}")
            await conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version BIGINT PRIMARY KEY, name TEXT NOT NULL,"
                    " applied_at TEXT NOT NULL DEFAULT"
                    " to_char(clock_timestamp() AT TIME ZONE 'UTC',"
                    " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))")
                for version, name, text in migration_files("postgres"):
                    async with conn.transaction():
                        cur = await conn.execute(
                            "SELECT 1 FROM schema_migrations WHERE version = %s", (version,))
                        if await cur.fetchone():
                            continue
                        # No parameters: psycopg sends the file as one simple query, every
                        # statement in it, `%` untouched.
                        await conn.execute(text)  # type: ignore[arg-type]
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                            (version, name))
                    applied.append(version)
                    log.info("migration applied",
                             extra={"version": version, "migration": name})
            finally:
                if not conn.closed:
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        return applied

    @asynccontextmanager
    async def transaction(self, lock: str | None = None) -> AsyncIterator[Transaction]:
        if self._closed:
            raise RuntimeError("database is closed")
        start = time.perf_counter()
        callbacks: list[Callable[[], Any]] = []
        with self._reachable():
            async with self._pool.connection(timeout=self._wait()) as conn, \
                    conn.transaction():
                if lock is not None:
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(lock),))
                yield _PgTransaction(conn, callbacks)
        self._down = False
        if self.observer is not None:
            self.observer("transaction", time.perf_counter() - start, 1)
        await run_after_commit(callbacks)

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        """`Database.exclusive`: `pg_try_advisory_lock` on a pooled connection kept for the
        block (a node that dies loses its session, and the lock with it); unlocked at the
        end, or the connection closed rather than handed back still holding it."""
        if self._closed:
            raise RuntimeError("database is closed")
        key = lock_key(name)
        with self._reachable():
            async with self._pool.connection() as conn:
                cur = await conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (key,))
                row = await cur.fetchone()
                got = bool(row and row["got"])
                try:
                    yield got
                finally:
                    if got:
                        try:
                            await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                        except BaseException:
                            await conn.close()  # the pool drops it, the lock goes with it
                            raise

    async def write_statement(self, sql: str, params: Iterable[Any] = (), *,
                              size: int = 1) -> list[Row]:
        """One statement that writes, committed on its own (the pool's connections are in
        autocommit), and its rows once the commit returned: for hot paths whose whole write
        fits in one statement (a group of stream appends: realtime/streams/sql.py). One
        round trip, where `transaction()` takes three (BEGIN, the statement, COMMIT), and
        still one transaction: a statement is atomic. `size`: the items it carries, for the
        metrics (as SQLite's `write_batch`)."""
        if self._closed:
            raise RuntimeError("database is closed")
        start = time.perf_counter()
        rows = list(await self._query(sql, params, False))
        if self.observer is not None:
            self.observer("batch", time.perf_counter() - start, size)
        return rows

    async def _query(self, sql: str, params: Iterable[Any], one: bool) -> Any:
        with self._reachable():
            async with self._pool.connection(timeout=self._wait()) as conn:
                cur = await conn.execute(pg_sql(sql), tuple(params))
                rows = await cur.fetchone() if one else await cur.fetchall()
        self._down = False
        return rows

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        return await self._query(sql, params, True)  # type: ignore[no-any-return]

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        return list(await self._query(sql, params, False))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._checking is not None:
            self._checking.cancel()
        await self._pool.close()

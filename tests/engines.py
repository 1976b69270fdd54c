"""The suite on either engine: `REALTIME_TEST_DB=postgres` runs every test on PostgreSQL.

A test names its database by a SQLite path, as it always has (`tmp_path / "ent.sqlite3"`,
the demo copy, two nodes sharing one file). On PostgreSQL that path stands for a schema of
its own in one fresh database per test run (created when pytest starts, dropped when it
ends): two servers given one path share one schema, as two nodes share one database.

- `db_target(path)`: what `Database.open` and `Settings.database_url` take for it;
- `open_test_db(path)`: `Database.open` on it;
- `clone_db(src, dst)`: the demo database copied for one test (a file copy on SQLite; the
  migrations, then every table's rows, on PostgreSQL);
- `db_env(path)`: the environment a `python -m realtime …` subprocess needs to open it.

The server under test is the real one, on a real PostgreSQL 15 (127.0.0.1:5432 by default,
`REALTIME_TEST_PG` names another admin URL)."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

ENGINE = os.environ.get("REALTIME_TEST_DB", "sqlite")
if ENGINE not in ("sqlite", "postgres"):
    raise RuntimeError(f"REALTIME_TEST_DB: sqlite or postgres, not {ENGINE!r}")
POSTGRES = ENGINE == "postgres"
ADMIN_URL = os.environ.get("REALTIME_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

_run_db: str | None = None
_admin: Any = None  # one psycopg connection to the run's database, for the schema pool
_assigned: dict[str, str] = {}  # resolved path -> schema
_kept: set[str] = set()  # schemas assigned outside a test (the demo template): never recycled
_this_test: list[str] = []  # schemas assigned during the running test
_free: list[str] = []  # migrated, empty schemas ready for the next test
_made = 0


def _server_url(dbname: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


def start_run() -> None:
    """One fresh database for this test run (PostgreSQL mode)."""
    global _run_db, _admin
    import psycopg

    name = f"ent_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'')
    except psycopg.OperationalError as exc:  # CI must fail, not skip
        raise RuntimeError(f"PostgreSQL is not answering on {ADMIN_URL}: {exc}") from exc
    with psycopg.connect(_server_url(name), autocommit=True) as conn:
        # Extensions live in `public`, which every test schema's search path ends with.
        conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")
        # A test database need not survive a power cut: commits without waiting for fsync.
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    _run_db = name
    _admin = psycopg.connect(_server_url(name), autocommit=True)


def end_run() -> None:
    global _run_db, _admin
    if _run_db is None:
        return
    import psycopg

    if _admin is not None:
        _admin.close()
        _admin = None
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_run_db}" WITH (FORCE)')
    _run_db = None


@contextmanager
def fresh_database(label: str) -> Iterator[str]:
    """A PostgreSQL database of its own, empty (its `public` schema only), dropped after:
    for what needs a whole database rather than a schema (the `db copy` target), in either
    engine's run."""
    import psycopg

    name = f"ent_{label}_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'')
    except psycopg.OperationalError as exc:  # CI must fail, not skip
        raise RuntimeError(f"PostgreSQL is not answering on {ADMIN_URL}: {exc}") from exc
    try:
        yield _server_url(name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _new_schema() -> str:
    """A schema with every migration applied, in one transaction (the server's own
    `migrate` then finds nothing to do)."""
    global _made
    from realtime.db import migration_files

    _made += 1
    schema = f"t{_made}"
    with _admin.transaction():
        _admin.execute(f'CREATE SCHEMA "{schema}"')
        _admin.execute(f'SET LOCAL search_path = "{schema}", public')
        _admin.execute("CREATE TABLE schema_migrations ("
                       " version BIGINT PRIMARY KEY, name TEXT NOT NULL,"
                       " applied_at TEXT NOT NULL DEFAULT '')")
        for version, name, text in migration_files("postgres"):
            _admin.execute(text)
            _admin.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                           (version, name))
    return schema


def _tables(schema: str) -> list[str]:
    return [r[0] for r in _admin.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
        " AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'"
        " ORDER BY table_name", (schema,))]


def _reset_identities(schema: str) -> None:
    """Every identity sequence moved just past its column's largest value (1 when empty)."""
    for table, column in _admin.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND is_identity = 'YES'", (schema,)).fetchall():
        _admin.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{schema}\".\"{table}\"', '{column}'),"
            f" COALESCE((SELECT MAX(\"{column}\") FROM \"{schema}\".\"{table}\"), 0) + 1,"
            " false)")


def _recycle(schema: str) -> None:
    """A schema a finished test used, emptied for the next one: its connections ended (a
    server or process the test left behind), every row deleted, the identities reset."""
    _admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                   " WHERE datname = current_database() AND application_name = %s", (schema,))
    with _admin.transaction():
        _admin.execute("SET LOCAL session_replication_role = replica")
        for table in _tables(schema):
            _admin.execute(f'DELETE FROM "{schema}"."{table}"')
        _reset_identities(schema)
    _free.append(schema)


def schema_for(path: Path | str, *, kept: bool = False) -> str:
    """The schema standing for that path: assigned on first use, from the pool of empty
    migrated schemas (recycled after each test) or made new."""
    assert _run_db is not None, "the PostgreSQL test database was not created"
    key = str(Path(path).resolve())
    schema = _assigned.get(key)
    if schema is None:
        schema = _free.pop() if _free else _new_schema()
        _assigned[key] = schema
        (_kept.add if kept else _this_test.append)(schema)
    return schema


def release_test_schemas() -> None:
    """After each test: its schemas back to the pool (tests/conftest.py calls this)."""
    if not POSTGRES:
        return
    while _this_test:
        schema = _this_test.pop()
        for key in [k for k, v in _assigned.items() if v == schema]:
            del _assigned[key]
        _recycle(schema)


def db_url(path: Path | str, *, kept: bool = False) -> str:
    """The PostgreSQL URL standing for that SQLite path. Its connections carry the schema's
    name as application_name, so that a recycled schema's stragglers can be ended."""
    schema = schema_for(path, kept=kept)
    assert _run_db is not None
    options = quote(f"-c search_path={schema},public", safe="")
    return f"{_server_url(_run_db)}?options={options}&application_name={schema}"


def db_target(path: Path | str) -> Path | str:
    return db_url(path) if POSTGRES else Path(path)


async def open_test_db(path: Path | str, **kwargs: Any) -> Any:
    from realtime.db import Database

    return await Database.open(db_target(path), **kwargs)


def db_env(path: Path | str) -> dict[str, str]:
    env = {"REALTIME_DB": str(path)}
    if POSTGRES:
        env["DATABASE_URL"] = db_url(path)
    return env


def clone_db(src: Path, dst: Path) -> None:
    """`dst` becomes a copy of the database at `src`."""
    if not POSTGRES:
        shutil.copyfile(src, dst)
        return
    s_src, s_dst = schema_for(src), schema_for(dst)
    with _admin.transaction():
        # Rows as they are: no triggers, no foreign-key checks (replica), then the
        # identity sequences moved past the copied ids.
        _admin.execute("SET LOCAL session_replication_role = replica")
        for table in _tables(s_src):
            cols = [r[0] for r in _admin.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s AND is_generated = 'NEVER'"
                " ORDER BY ordinal_position", (s_src, table))]
            names = ", ".join(f'"{c}"' for c in cols)
            _admin.execute(f'DELETE FROM "{s_dst}"."{table}"')
            _admin.execute(f'INSERT INTO "{s_dst}"."{table}" ({names})'
                           f' SELECT {names} FROM "{s_src}"."{table}"')
        _reset_identities(s_dst)


class _SyncPg:
    """A psycopg connection taking the project's query text (`?` placeholders), for tests
    that look into or arrange the database directly, as `sqlite3.connect(path)` does."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Any = ()) -> Any:
        from realtime.pg import pg_sql

        return self._conn.execute(pg_sql(sql), tuple(params))

    def executemany(self, sql: str, seq: Any) -> Any:
        from realtime.pg import pg_sql

        cur = self._conn.cursor()
        cur.executemany(pg_sql(sql), [tuple(p) for p in seq])
        return cur

    def commit(self) -> None:
        self._conn.commit()

    def __enter__(self) -> _SyncPg:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._conn.__exit__(*exc)  # commit (or roll back on an error), then close


def connect(path: Path | str, **kwargs: Any) -> Any:
    """`sqlite3.connect(path)` on SQLite; on PostgreSQL, a connection to the schema that path
    stands for, with the same `execute(sql, params)` and `with` (commit on exit)."""
    if not POSTGRES:
        import sqlite3

        return sqlite3.connect(path, **kwargs)
    import psycopg

    return _SyncPg(psycopg.connect(db_url(path)).__enter__())

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

import hashlib
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
_schemas: set[str] = set()


def _server_url(dbname: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


def start_run() -> None:
    """One fresh database for this test run (PostgreSQL mode)."""
    global _run_db
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
    _run_db = name


def end_run() -> None:
    global _run_db
    if _run_db is None:
        return
    import psycopg

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


def schema_for(path: Path | str) -> str:
    digest = hashlib.blake2b(str(Path(path).resolve()).encode(), digest_size=10).hexdigest()
    return f"t_{digest}"


def _ensure_schema(schema: str) -> None:
    if schema in _schemas:
        return
    import psycopg

    assert _run_db is not None, "the PostgreSQL test database was not created"
    with psycopg.connect(_server_url(_run_db), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    _schemas.add(schema)


def db_url(path: Path | str) -> str:
    """The PostgreSQL URL standing for that SQLite path (its schema created if new)."""
    schema = schema_for(path)
    _ensure_schema(schema)
    assert _run_db is not None
    options = quote(f"-c search_path={schema},public", safe="")
    return f"{_server_url(_run_db)}?options={options}"


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
    import psycopg

    from realtime.db import migration_files

    s_src, s_dst = schema_for(src), schema_for(dst)
    _ensure_schema(s_dst)
    assert _run_db is not None
    with psycopg.connect(_server_url(_run_db), autocommit=True) as conn:
        conn.execute(f"SET search_path = {s_dst}, public")
        with conn.transaction():
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                         " version BIGINT PRIMARY KEY, name TEXT NOT NULL,"
                         " applied_at TEXT NOT NULL DEFAULT '')")
            for version, name, text in migration_files("postgres"):
                conn.execute(text)  # type: ignore[arg-type]
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                             (version, name))
            # Rows as they are: no triggers, no foreign-key checks (replica), then the
            # identity sequences moved past the copied ids.
            conn.execute("SET LOCAL session_replication_role = replica")
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = %s AND table_type = 'BASE TABLE'"
                " AND table_name <> 'schema_migrations'", (s_src,))]
            for table in tables:
                cols = [r[0] for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = %s AND table_name = %s AND is_generated = 'NEVER'"
                    " ORDER BY ordinal_position", (s_src, table))]
                names = ", ".join(f'"{c}"' for c in cols)
                conn.execute(f'INSERT INTO {s_dst}."{table}" ({names})'  # type: ignore[arg-type]
                             f' SELECT {names} FROM {s_src}."{table}"')
            for table, column in conn.execute(
                    "SELECT table_name, column_name FROM information_schema.columns"
                    " WHERE table_schema = %s AND is_identity = 'YES'", (s_dst,)).fetchall():
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{s_dst}.\"{table}\"', "  # type: ignore[arg-type]
                    f"'{column}'), COALESCE((SELECT MAX(\"{column}\") FROM {s_dst}.\"{table}\"), 0)"
                    " + 1, false)")

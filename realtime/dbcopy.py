"""`python -m realtime db copy | verify`: a pilot's SQLite file moved into PostgreSQL, verified.

What an operator moving an ENT from one machine to several needs to trust the move:

- **The source is never written, and may be live.** The file is opened read-only and copied
  first, with SQLite's backup API in one step (one read transaction, seconds for a large
  file), to a snapshot in `$TMPDIR`: every table comes from one instant, and the running
  server is never held up by a long read (a read transaction open for the whole copy would
  stall its WAL checkpoints). What the server writes after that instant is not copied: for
  the real move, stop the server first (docs/deployment.md, « Moving a pilot »).
- **Same schema on both sides.** The snapshot's applied migrations must be exactly this
  code's SQLite migrations (an older file: migrate it first; a newer one: use the code that
  wrote it), the target is migrated to this code's PostgreSQL migrations (the same numbers),
  and both must have the same tables and columns, except SQLite's FTS5 index of the chat
  (`chat_fts` and its shadow tables: PostgreSQL indexes `chat_messages.body` itself) and
  columns PostgreSQL generates. The snapshot must pass `PRAGMA quick_check` and
  `foreign_key_check`.
- **The node's files move with it.** What a SQLite node keeps beside its database and a
  PostgreSQL node keeps in it (migration 0016) comes from the file's directory (or
  `--data-dir`): chat attachments as rows of `stored_files`, the generated secrets as rows of
  `shared_secrets` (realtime/files.py, realtime/shared.py), copied in the same transaction
  and compared with those tables' rows, read one file at a time.
- **An empty target, or `--force`.** A target holding rows is refused with the tables'
  counts; `--force` empties those tables (TRUNCATE, in the copy's own transaction).
- **All or nothing.** One PostgreSQL transaction: tables in foreign-key order, each with one
  binary `COPY` fed row by row from the snapshot (memory bounded by one batch of rows, not by
  the table), user triggers off meanwhile (`ALTER TABLE … DISABLE TRIGGER USER`: the chat's
  seq trigger must not renumber copied messages; foreign keys stay checked), then verified,
  then the identity sequences moved past the copied ids (and past SQLite's AUTOINCREMENT
  high-water marks, so an id deleted before the move is not reused after it), then COMMIT.
  A failed copy or a failed verification rolls everything back: the target is as it was.
- **Verified by counts and checksums.** For every table, both sides are read back in
  primary-key order (text keys in byte order on both: SQLite's BINARY, PostgreSQL's "C"
  collation) and every row's values normalised the same way (type tag, then the value:
  integers in decimal, floats exactly with `float.hex`, text as UTF-8, bytes as they are,
  NULL apart) into one SHA-256 per table. The report prints rows and checksums per table, the
  first key that differs, and exit status 1 on any difference. `db verify` runs the same
  comparison again later, read-only.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import heapq
import itertools
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from realtime.db import migration_files
from realtime.settings import redact_url as redact

BATCH_ROWS = 1000
# Rows of a table with a binary column (board and course images, up to a few MiB each) are
# read fewer at a time: memory stays bounded by a batch, whatever the table's size.
BATCH_ROWS_WITH_BLOBS = 16
PROGRESS_ROWS = 10_000  # a progress line every so many rows of a table
LOCK_WAIT = "10s"  # a table the copy must lock (TRUNCATE, DISABLE TRIGGER) held by someone else
# SQLite's FTS5 index of the chat has no PostgreSQL table: a GIN index on chat_messages.body.
FTS_SHADOWS = ("_data", "_idx", "_content", "_docsize", "_config")
TEXT_TYPES = {"text", "varchar", "bpchar", "name"}

Progress = Callable[[str], None]


class CopyError(Exception):
    """The copy or the verification was refused or could not finish (nothing kept): a message
    for the operator, in French."""


@dataclass
class TableCheck:
    """One table's verification: rows and checksum on each side."""

    name: str
    source_rows: int = 0
    target_rows: int = 0
    source_sum: str = ""
    target_sum: str = ""
    first_difference: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.source_rows == self.target_rows and self.source_sum == self.target_sum
                and not self.problems)


@dataclass
class Report:
    tables: list[TableCheck]
    skipped: list[str]
    data: Path | None = None  # the SQLite node's data directory
    files: dict[str, int] = field(default_factory=dict)  # its files' rows, per table
    copied: bool = False

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    def lines(self) -> list[str]:
        head = ("table", "lignes SQLite", "lignes PostgreSQL", "somme SQLite",
                "somme PostgreSQL", "état")
        rows = [head] + [
            (t.name, f"{t.source_rows}", f"{t.target_rows}", t.source_sum[:16],
             t.target_sum[:16], _state(t)) for t in sorted(self.tables, key=lambda t: t.name)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
        out = []
        for r in rows:
            cells = [r[0].ljust(widths[0])]
            cells += [c.rjust(w) for c, w in zip(r[1:3], widths[1:3], strict=True)]
            cells += [c.ljust(w) for c, w in zip(r[3:5], widths[3:5], strict=True)]
            out.append("  ".join([*cells, r[5]]).rstrip())
        if self.skipped:
            out.append("Non copiées : " + ", ".join(self.skipped) + " (l'index plein texte de "
                       "SQLite ; PostgreSQL indexe chat_messages.body lui-même).")
        if self.data is not None:
            out.append(f"Fichiers du dossier {self.data} : "
                       f"{self.files.get('stored_files', 0)} pièce(s) jointe(s) (stored_files),"
                       f" {self.files.get('shared_secrets', 0)} secret(s) (shared_secrets), "
                       "comptés avec les lignes SQLite.")
        bad = sorted(t.name for t in self.tables if not t.ok)
        total = sum(t.source_rows for t in self.tables)
        if bad:
            out.append(f"VÉRIFICATION ÉCHOUÉE : {len(bad)} table(s) diffèrent : "
                       + ", ".join(bad))
        else:
            out.append(f"Vérification réussie : {len(self.tables)} tables, {total} lignes, "
                       "comptes et sommes identiques.")
        return out


def _state(t: TableCheck) -> str:
    if t.ok:
        return "ok"
    why = []
    if t.source_rows != t.target_rows:
        why.append("nombre de lignes")
    elif t.source_sum != t.target_sum:
        why.append("contenu")
    if t.first_difference:
        why.append(f"première différence : {t.first_difference}")
    why += t.problems
    return "DIFFÉRENT (" + " ; ".join(why) + ")"


def parse_source(value: str) -> Path:
    """`sqlite:PATH` (or a plain path) → the file."""
    text = value[len("sqlite:"):] if value.startswith("sqlite:") else value
    if text.startswith("///"):  # sqlite:///abs/path, the SQLAlchemy spelling
        text = text[2:]
    if not text:
        raise CopyError("--from : attendu sqlite:CHEMIN")
    return Path(text)


# ---------------------------------------------------------------- the source's snapshot


@contextmanager
def snapshot(path: Path) -> Iterator[sqlite3.Connection]:
    """A consistent, private copy of the SQLite file (backup API, one step), opened; removed
    afterwards. The source is opened read-only."""
    if not path.is_file():
        raise CopyError(f"pas de fichier SQLite à {path}")
    tmp = Path(tempfile.mkdtemp(prefix="ent-db-copy-"))
    try:
        try:
            src = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise CopyError(f"{path} : {exc}") from exc
        copy = sqlite3.connect(tmp / "snapshot.sqlite3")
        try:
            src.backup(copy)  # pages=-1: every page in one step, one read transaction
        except sqlite3.DatabaseError as exc:
            raise CopyError(f"{path} n'est pas une base SQLite lisible : {exc}") from exc
        finally:
            src.close()
        try:
            yield copy
        finally:
            copy.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class SourceTable:
    name: str
    columns: list[str]
    rows: int  # in the SQLite file
    # Rows PostgreSQL keeps for what a SQLite node keeps beside its database (below), each
    # read when copied or compared: (its key, a function returning the row in `columns`
    # order), in key order.
    local: list[tuple[str, Callable[[], tuple[Any, ...]]]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.rows + len(self.local)


def _local_state(tables: dict[str, SourceTable], data: Path) -> dict[str, int]:
    """Attach to `tables` what a SQLite node kept in its data directory `data` and a
    PostgreSQL node keeps in the database (migration 0016): chat attachments' bytes as rows of
    `stored_files`, the generated secrets (`secret.key`, `vapid_private.pem`) as rows of
    `shared_secrets`, so that the pilot's attachments, sessions and push subscriptions move
    with it, copied and verified with the rest. How many of each."""
    from realtime.chat.files import DIR
    from realtime.files import disk_files, stored_row
    from realtime.shared import secret_rows

    found: dict[str, list[tuple[str, Callable[[], dict[str, Any]]]]] = {
        "stored_files": [(p.name, functools.partial(stored_row, p))
                         for p in disk_files(data / DIR)],
        "shared_secrets": [(r["name"], functools.partial(dict, r)) for r in secret_rows(data)],
    }
    for name, rows in found.items():
        table = tables.get(name)
        if table is None:
            if rows:
                raise CopyError(f"le fichier SQLite n'a pas de table {name} pour les fichiers "
                                f"de {data}")
            continue
        table.local = [(key, functools.partial(_in_order, load, table)) for key, load in rows]
    return {name: len(rows) for name, rows in found.items()}


def _in_order(load: Callable[[], dict[str, Any]], table: SourceTable) -> tuple[Any, ...]:
    row = load()
    if set(row) != set(table.columns):
        raise CopyError(f"{table.name} : colonnes {sorted(table.columns)}, les fichiers "
                        f"donnent {sorted(row)}")
    return tuple(row[c] for c in table.columns)


def _check_source(src: sqlite3.Connection) -> None:
    """Intact, consistent, and at this code's schema version."""
    problems = [r[0] for r in src.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        raise CopyError("le fichier SQLite est endommagé (PRAGMA quick_check) : "
                        + "; ".join(problems[:5]))
    broken = src.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        sample = ", ".join(f"{r[0]} ligne {r[1]} → {r[2]}" for r in broken[:5])
        raise CopyError(f"le fichier SQLite a {len(broken)} référence(s) cassée(s) "
                        f"(PRAGMA foreign_key_check) : {sample}")
    try:
        have = {r[0] for r in src.execute("SELECT version FROM schema_migrations")}
    except sqlite3.OperationalError as exc:
        raise CopyError("le fichier SQLite n'a pas de table schema_migrations : "
                        "ce n'est pas une base de l'ENT") from exc
    want = {v for v, _, _ in migration_files("sqlite")}
    if have != want:
        older, newer = sorted(want - have), sorted(have - want)
        if newer:
            raise CopyError(
                f"le fichier SQLite a des migrations que ce code ne connaît pas ({newer}) : "
                "utilisez la version du code qui l'a écrit")
        raise CopyError(
            f"le fichier SQLite n'a pas les migrations {older} de ce code : migrez-le "
            "d'abord (python -m realtime --db CHEMIN migrate), serveur arrêté")


def _source_tables(src: sqlite3.Connection) -> tuple[list[SourceTable], list[str]]:
    rows = src.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"
                       " ORDER BY name").fetchall()
    virtual = [n for n, s in rows if (s or "").upper().startswith("CREATE VIRTUAL TABLE")]
    shadows = {v + s for v in virtual for s in FTS_SHADOWS}
    tables, skipped = [], []
    for name, _ in rows:
        if name.startswith("sqlite_") or name == "schema_migrations":
            continue
        if name in virtual or name in shadows:
            skipped.append(name)
            continue
        cols = [r[1] for r in src.execute(f"PRAGMA table_xinfo({_q(name)})") if r[6] == 0]
        count = src.execute(f"SELECT COUNT(*) FROM {_q(name)}").fetchone()[0]
        tables.append(SourceTable(name, cols, count))
    return tables, skipped


def _autoincrement(src: sqlite3.Connection) -> dict[str, int]:
    try:
        return {n: int(s) for n, s in src.execute("SELECT name, seq FROM sqlite_sequence")}
    except sqlite3.OperationalError:  # no AUTOINCREMENT table in this schema
        return {}


# ---------------------------------------------------------------- the target's schema


@dataclass
class TargetTable:
    name: str
    oid: int
    columns: dict[str, tuple[int, str]]  # copied column -> (type oid, type name)
    generated: list[str]
    key: list[str]  # primary key columns (or every copied column, none declared)
    identity: list[str]
    has_triggers: bool

    @property
    def batch(self) -> int:
        blobs = any(typname == "bytea" for _, typname in self.columns.values())
        return BATCH_ROWS_WITH_BLOBS if blobs else BATCH_ROWS


def _target_tables(conn: psycopg.Connection[Any]) -> dict[str, TargetTable]:
    out: dict[str, TargetTable] = {}
    for oid, name in conn.execute(
            "SELECT c.oid, c.relname FROM pg_class c"
            " WHERE c.relnamespace = current_schema()::regnamespace"
            " AND c.relkind IN ('r', 'p') AND c.relname <> 'schema_migrations'"):
        columns: dict[str, tuple[int, str]] = {}
        generated, identity = [], []
        for attname, typoid, typname, attgenerated, attidentity in conn.execute(
                "SELECT a.attname, a.atttypid, t.typname, a.attgenerated, a.attidentity"
                " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
                " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped"
                " ORDER BY a.attnum", (oid,)):
            if attgenerated:
                generated.append(attname)
                continue
            columns[attname] = (typoid, typname)
            if attidentity:
                identity.append(attname)
        key = [r[0] for r in conn.execute(
            "SELECT a.attname FROM pg_index i"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = %s AND i.indisprimary"
            " ORDER BY array_position(i.indkey::int2[], a.attnum)", (oid,))]
        triggers = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_trigger"
                                " WHERE tgrelid = %s AND NOT tgisinternal)", (oid,)).fetchone()
        out[name] = TargetTable(name, oid, columns, generated, key or list(columns), identity,
                                bool(triggers and triggers[0]))
    return out


def _fk_order(conn: psycopg.Connection[Any], tables: dict[str, TargetTable]) -> list[str]:
    """Tables with those they reference first (a table referencing itself is copied by one
    COPY statement, whose foreign-key checks run at its end)."""
    by_oid = {t.oid: t.name for t in tables.values()}
    needs: dict[str, set[str]] = {name: set() for name in tables}
    for child, parent in conn.execute(
            "SELECT conrelid, confrelid FROM pg_constraint WHERE contype = 'f'"
            " AND connamespace = current_schema()::regnamespace"):
        if child in by_oid and parent in by_oid and child != parent:
            needs[by_oid[child]].add(by_oid[parent])
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(needs):
        ready = sorted(n for n, deps in needs.items() if n not in done and deps <= done)
        if not ready:
            cycle = sorted(n for n in needs if n not in done)
            raise CopyError(f"références circulaires entre les tables {cycle}")
        order += ready
        done.update(ready)
    return order


def _check_target_schema(conn: psycopg.Connection[Any]) -> None:
    want = {v for v, _, _ in migration_files("postgres")}
    if want != {v for v, _, _ in migration_files("sqlite")}:
        raise CopyError("ce code n'a pas les mêmes migrations pour SQLite et PostgreSQL")
    found = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
    if not found or found[0] is None:
        raise CopyError("la base PostgreSQL n'a pas le schéma de l'ENT (pas de table "
                        "schema_migrations) : python -m realtime migrate")
    have = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    if have != want:
        raise CopyError(f"la base PostgreSQL est au schéma {sorted(have)}, ce code attend "
                        f"{sorted(want)}")


def _match(source: list[SourceTable], target: dict[str, TargetTable]) -> None:
    problems = []
    names = {t.name for t in source}
    if names - set(target):
        problems.append(f"tables absentes de PostgreSQL : {sorted(names - set(target))}")
    if set(target) - names:
        problems.append(f"tables absentes du fichier SQLite : {sorted(set(target) - names)}")
    for s in source:
        t = target.get(s.name)
        if t is None:
            continue
        if set(s.columns) != set(t.columns):
            only_s, only_t = set(s.columns) - set(t.columns), set(t.columns) - set(s.columns)
            problems.append(f"{s.name} : colonnes SQLite seules {sorted(only_s)}, "
                            f"PostgreSQL seules {sorted(only_t)}")
    if problems:
        raise CopyError("les deux schémas diffèrent : " + " ; ".join(problems))


# ---------------------------------------------------------------- checksums


def _encode(value: Any) -> bytes:
    """One value, normalised the same way whichever side it came from."""
    if value is None:
        return b"N;"
    if isinstance(value, bool):  # not expected (booleans are 0/1 on both), but exact
        value = int(value)
    if isinstance(value, int):
        payload, tag = str(value).encode(), b"I"
    elif isinstance(value, float):
        payload, tag = value.hex().encode(), b"F"
    elif isinstance(value, str):
        payload, tag = value.encode("utf-8", "surrogatepass"), b"T"
    elif isinstance(value, bytes | bytearray | memoryview):
        payload, tag = bytes(value), b"B"
    else:
        payload, tag = str(value).encode(), b"?" + type(value).__name__.encode()
    return tag + str(len(payload)).encode() + b":" + payload


def _encode_row(row: Sequence[Any]) -> bytes:
    return b"".join(_encode(v) for v in row) + b"\n"


def _key_text(columns: list[str], key: list[str], row: Sequence[Any]) -> str:
    values = {c: row[i] for i, c in enumerate(columns)}
    return ", ".join(f"{k}={values[k]!r}" for k in key)


def _compare(check: TableCheck, columns: list[str], key: list[str],
             source: Iterable[Sequence[Any]], target: Iterable[Sequence[Any]]) -> None:
    """Both sides read in key order: counts, checksums, the first key that differs."""
    hs, ht = hashlib.sha256(), hashlib.sha256()
    for a, b in itertools.zip_longest(source, target):
        ea = _encode_row(a) if a is not None else None
        eb = _encode_row(b) if b is not None else None
        if ea is not None:
            hs.update(ea)
            check.source_rows += 1
        if eb is not None:
            ht.update(eb)
            check.target_rows += 1
        if ea != eb and check.first_difference is None:
            check.first_difference = _key_text(columns, key, a if a is not None else b)
    check.source_sum, check.target_sum = hs.hexdigest(), ht.hexdigest()


def _source_rows(src: sqlite3.Connection, t: TargetTable, s: SourceTable
                 ) -> Iterator[tuple[Any, ...]]:
    columns = s.columns
    order = ", ".join(f"{_q(k)} COLLATE BINARY" for k in t.key)
    cur = src.execute(f"SELECT {', '.join(map(_q, columns))} FROM {_q(t.name)} ORDER BY {order}")

    def table() -> Iterator[tuple[Any, ...]]:
        while batch := cur.fetchmany(t.batch):
            yield from batch

    if not s.local:
        yield from table()
        return
    # The files' rows, in key order too (str order is UTF-8 byte order, PostgreSQL's "C").
    at = [columns.index(k) for k in t.key]
    yield from heapq.merge(table(), (load() for _, load in s.local),
                           key=lambda row: tuple(row[i] for i in at))


def _target_rows(conn: psycopg.Connection[Any], t: TargetTable, columns: list[str]
                 ) -> Iterator[tuple[Any, ...]]:
    order = sql.SQL(", ").join(
        sql.SQL("{} COLLATE \"C\"").format(sql.Identifier(k))
        if t.columns[k][1] in TEXT_TYPES else sql.Identifier(k) for k in t.key)
    query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(t.name), order)
    with conn.cursor(name=f"verify_{t.oid}", row_factory=psycopg.rows.tuple_row) as cur:
        cur.itersize = t.batch
        cur.execute(query)
        yield from cur


def _check_sequences(conn: psycopg.Connection[Any], t: TargetTable, check: TableCheck,
                     autoincrement: dict[str, int]) -> None:
    for column in t.identity:
        row = conn.execute(
            sql.SQL("SELECT COALESCE(MAX({c}), 0) FROM {t}").format(
                c=sql.Identifier(column), t=sql.Identifier(t.name))).fetchone()
        high = max(int(row[0]) if row else 0, autoincrement.get(t.name, 0))
        seq = conn.execute("SELECT pg_get_serial_sequence(%s, %s)",
                           (_qualified(conn, t.name), column)).fetchone()
        if not seq or not seq[0] or high == 0:
            continue
        last, called = conn.execute(
            sql.SQL("SELECT last_value, is_called FROM {}").format(
                sql.SQL(seq[0]))).fetchone()  # type: ignore[misc]
        next_id = last + 1 if called else last
        if next_id <= high:
            check.problems.append(f"séquence de {column} à {next_id}, ids copiés jusqu'à {high}")


def _qualified(conn: psycopg.Connection[Any], table: str) -> str:
    schema = conn.execute("SELECT current_schema()").fetchone()
    return f"{_q(schema[0] if schema else 'public')}.{_q(table)}"


def _verify(conn: psycopg.Connection[Any], src: sqlite3.Connection, plan: Plan,
            autoincrement: dict[str, int], progress: Progress) -> list[TableCheck]:
    checks = []
    for name in plan.order:
        t = plan.target[name]
        columns = plan.source[name].columns
        check = TableCheck(name)
        _compare(check, columns, t.key, _source_rows(src, t, plan.source[name]),
                 _target_rows(conn, t, columns))
        _check_sequences(conn, t, check, autoincrement)
        progress(f"vérifiée : {name} ({check.target_rows} lignes)"
                 + ("" if check.ok else " DIFFÉRENTE"))
        checks.append(check)
    return checks


# ---------------------------------------------------------------- copy and verify


def migrate_target(url: str) -> list[int]:
    """The target brought to this code's schema (what a node does at start-up)."""
    from realtime.db import Database, Unavailable

    async def go() -> list[int]:
        db = await Database.open(url, migrate=False, pool_min=1, pool_max=1)
        try:
            return await db.migrate()
        finally:
            await db.close()

    try:
        return asyncio.run(go())
    except (psycopg.OperationalError, Unavailable) as exc:
        raise CopyError(f"PostgreSQL ne répond pas à {redact(url)} : {exc}") from exc


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url.replace("postgres://", "postgresql://", 1),
                               connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise CopyError(f"PostgreSQL ne répond pas à {redact(url)} : {exc}") from exc


def _copy_table(conn: psycopg.Connection[Any], src: sqlite3.Connection, s: SourceTable,
                t: TargetTable, progress: Progress) -> None:
    cols = s.columns
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(t.name), sql.SQL(", ").join(map(sql.Identifier, cols)))
    if t.has_triggers:
        conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(
            sql.Identifier(t.name)))
    cur = src.execute(f"SELECT {', '.join(map(_q, cols))} FROM {_q(s.name)}")
    done = 0
    try:
        with conn.cursor() as pg, pg.copy(copy_sql) as copy:
            copy.set_types([t.columns[c][0] for c in cols])
            while batch := cur.fetchmany(t.batch):
                for row in batch:
                    try:
                        copy.write_row(row)
                    except (TypeError, ValueError, OverflowError, psycopg.DataError) as exc:
                        raise CopyError(
                            f"{s.name}, ligne {_key_text(cols, t.key, row)} : une valeur ne "
                            f"tient pas dans le type PostgreSQL de sa colonne ({exc})") from exc
                if (done + len(batch)) // PROGRESS_ROWS > done // PROGRESS_ROWS:
                    progress(f"{s.name} : {done + len(batch)} / {s.total}")
                done += len(batch)
            for _key, load in s.local:  # the node's files, one in memory at a time
                copy.write_row(load())
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        # A constraint of the target refused a row (the server names it, and the COPY line).
        where = f" ({exc.diag.context.strip()})" if exc.diag.context else ""
        raise CopyError(f"{s.name} : PostgreSQL refuse une ligne : "
                        f"{exc.diag.message_primary or exc}{where}") from exc
    if t.has_triggers:
        conn.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER USER").format(
            sql.Identifier(t.name)))
    progress(f"copiée : {s.name} ({s.total} lignes)")


def _move_sequences(conn: psycopg.Connection[Any], t: TargetTable,
                    autoincrement: dict[str, int]) -> None:
    for column in t.identity:
        row = conn.execute(sql.SQL("SELECT COALESCE(MAX({c}), 0) FROM {t}").format(
            c=sql.Identifier(column), t=sql.Identifier(t.name))).fetchone()
        high = max(int(row[0]) if row else 0, autoincrement.get(t.name, 0))
        if high > 0:
            conn.execute("SELECT setval(pg_get_serial_sequence(%s, %s), %s, true)",
                         (_qualified(conn, t.name), column, high))


def _target_counts(conn: psycopg.Connection[Any], names: Iterable[str]) -> dict[str, int]:
    out = {}
    for name in names:
        row = conn.execute(sql.SQL("SELECT COUNT(*) FROM {}").format(
            sql.Identifier(name))).fetchone()
        if row and row[0]:
            out[name] = int(row[0])
    return out


@dataclass
class Plan:
    order: list[str]  # foreign-key order
    source: dict[str, SourceTable]
    target: dict[str, TargetTable]
    skipped: list[str]
    files: dict[str, int]  # rows from the node's data directory, per table


def _plan(conn: psycopg.Connection[Any], src: sqlite3.Connection, data: Path) -> Plan:
    _check_source(src)
    _check_target_schema(conn)
    source_list, skipped = _source_tables(src)
    target = _target_tables(conn)
    _match(source_list, target)
    source = {s.name: s for s in source_list}
    files = _local_state(source, data)
    return Plan(_fk_order(conn, target), source, target, skipped, files)


def copy_database(source: Path, target_url: str, *, force: bool = False,
                  data: Path | None = None, progress: Progress = lambda _line: None) -> Report:
    """Copy the SQLite file, and the files its node kept in `data` (default: the file's
    directory), into the (migrated) PostgreSQL database and verify it: committed only if every
    table matches (otherwise rolled back, the report says where)."""
    try:
        return _copy_database(source, target_url, force, data or source.parent, progress)
    except psycopg.errors.LockNotAvailable as exc:
        raise CopyError("la base PostgreSQL est en cours d'utilisation (une table n'a pas pu "
                        f"être verrouillée en {LOCK_WAIT}) : arrêtez les nœuds qui s'en "
                        "servent ; rien n'a été copié") from exc
    except psycopg.OperationalError as exc:
        raise CopyError(f"la connexion à PostgreSQL a échoué pendant la copie ({exc}) : rien "
                        "n'a été gardé, relancez la copie") from exc


def _copy_database(source: Path, target_url: str, force: bool, data: Path,
                   progress: Progress) -> Report:
    with snapshot(source) as src, _connect(target_url) as conn:
        conn.execute("SET statement_timeout = 0")
        conn.execute("SET idle_in_transaction_session_timeout = 0")
        conn.execute(f"SET lock_timeout = '{LOCK_WAIT}'")
        got = conn.execute("SELECT pg_try_advisory_xact_lock(hashtext('realtime db copy'))"
                           ).fetchone()
        if not got or not got[0]:
            raise CopyError("une autre copie vers cette base est en cours")
        plan = _plan(conn, src, data)
        order = plan.order
        busy = _target_counts(conn, order)
        if busy and not force:
            listed = ", ".join(f"{n} ({c})" for n, c in sorted(busy.items()))
            raise CopyError("la base PostgreSQL n'est pas vide : " + listed
                            + ". --force la vide (TRUNCATE) avant de copier.")
        if busy:
            progress(f"--force : {sum(busy.values())} lignes effacées dans {len(busy)} tables")
            conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                sql.SQL(", ").join(sql.Identifier(n) for n in order)))
        autoincrement = _autoincrement(src)
        for name in order:
            _copy_table(conn, src, plan.source[name], plan.target[name], progress)
        for name in order:
            _move_sequences(conn, plan.target[name], autoincrement)
        checks = _verify(conn, src, plan, autoincrement, progress)
        report = Report(checks, plan.skipped, data, plan.files)
        if not report.ok:
            conn.rollback()
            return report
        conn.commit()
        report.copied = True
        conn.autocommit = True
        for name in order:  # fresh statistics for the planner after a bulk load
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(name)))
        return report


def verify_database(source: Path, target_url: str, *, data: Path | None = None,
                    progress: Progress = lambda _line: None) -> Report:
    """Compare the SQLite file and its node's files (in `data`, default: the file's
    directory) with the PostgreSQL database, read-only on both sides."""
    data = data or source.parent
    with snapshot(source) as src, _connect(target_url) as conn:
        # One snapshot of the target for every table, as the source's.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        conn.execute("SET statement_timeout = 0")
        plan = _plan(conn, src, data)
        checks = _verify(conn, src, plan, _autoincrement(src), progress)
        conn.rollback()
        return Report(checks, plan.skipped, data, plan.files)

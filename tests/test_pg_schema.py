"""The PostgreSQL migrations build the schema the SQLite ones build, and keep doing so.

Every SQLite migration is applied to a fresh SQLite file and every PostgreSQL migration
(realtime/migrations/postgres/) to a fresh PostgreSQL database on the local server; then both
catalogues are read and compared: tables, columns in order with their nullability, types (per
the mapping of docs/architecture.md), defaults, collations and identities, primary keys,
UNIQUE constraints, indexes (name, uniqueness, columns and order, partial predicate), foreign
keys (with their ON DELETE), CHECK constraints (count and literals) and triggers. A migration
added to one engine without its twin fails here, as does any difference the two do not
document below.

Then the behaviour SQLite's schema gives and PostgreSQL's must give too: chat search (accents,
case, prefixes, all words required; FTS5 and PostgreSQL asked the same questions), the seq the
message trigger takes when two connections write to one conversation at once, the users'
triggers, case-insensitive logins.

These tests run on both engines whatever REALTIME_TEST_DB says. PostgreSQL must be running on
127.0.0.1:5432 (user postgres, trust auth; `scripts/dev.sh test` starts it), or at the admin
URL REALTIME_TEST_PG names (tests/engines.py): if it is not reachable they fail, they do not
skip.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql as pgsql

from realtime.chat import model as chat_model
from realtime.chat import store as chat_store
from realtime.db import Database, migration_files
from tests.engines import ADMIN_URL

# The migrators' own bookkeeping (realtime/db.py, realtime/pg.py), not a migration's table.
MIGRATOR_TABLES = {"schema_migrations"}
# What only one engine has, and why: SQLite's full-text search is an FTS5 virtual table and
# its shadow tables; PostgreSQL indexes chat_messages.body instead
# (migrations/postgres/0005_chat.sql).
SQLITE_ONLY_TABLES = MIGRATOR_TABLES | {
    "chat_fts", "chat_fts_data", "chat_fts_idx", "chat_fts_content", "chat_fts_docsize",
    "chat_fts_config"}
PG_ONLY_INDEXES = {"chat_messages_search"}

TYPES = {"INTEGER": "bigint", "REAL": "double precision", "BLOB": "bytea", "TEXT": "text"}
ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL",
             "d": "SET DEFAULT"}


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {ADMIN_URL} ({exc}). These tests need the"
                    " local server: `scripts/dev.sh test` installs and starts it, or set"
                    " REALTIME_TEST_PG.", pytrace=False)


def _url_for(dbname: str) -> str:
    """The admin URL with another database (a URL: `Database.open` takes it for PostgreSQL)."""
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


async def _migrate(target: Path | str) -> None:
    """What start-up does: `Database.open` applies the engine's migrations."""
    db = await Database.open(target)
    await db.close()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh database (not the suite's: these tests run whatever REALTIME_TEST_DB says)
    migrated by realtime/pg.py, dropped afterwards."""
    name = f"test_pgschema_{secrets.token_hex(6)}"
    with _admin() as admin:
        admin.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
    try:
        asyncio.run(_migrate(_url_for(name)))
        yield _url_for(name)
    finally:
        with _admin() as admin:
            admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                          .format(pgsql.Identifier(name)))


@pytest.fixture(scope="module")
def sqlite_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh SQLite file migrated by realtime/db.py."""
    path = tmp_path_factory.mktemp("pgschema") / "ent.sqlite3"
    asyncio.run(_migrate(path))
    return path


# --- reading both catalogues ----------------------------------------------------------------

def _check_literals(defs: list[str]) -> list[str]:
    """The string literals of CHECK constraints; a PostgreSQL regex '^…$' stands for a
    SQLite GLOB (which matches the whole text) over the same brackets."""
    return sorted(lit.removeprefix("^").removesuffix("$")
                  for d in defs for lit in re.findall(r"'((?:[^']|'')*)'", d))


def _sqlite_checks(create_sql: str) -> list[str]:
    """The text of every CHECK (...) in a CREATE TABLE (balanced parentheses)."""
    out = []
    for m in re.finditer(r"\bCHECK\s*\(", create_sql, re.IGNORECASE):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(create_sql[i], 0)
            i += 1
        out.append(create_sql[m.start():i])
    return out


def _predicate(text: str | None) -> str | None:
    return None if text is None else re.sub(r"[\s()]", "", text).lower()


def _default(text: str | None) -> str | None:
    """Literal defaults as written; an expression (a clock) only as '<expr>'."""
    if text is None:
        return None
    text = re.sub(r"::(text|bigint|double precision)$", "", text.strip())
    if re.fullmatch(r"-?\d+(\.\d+)?|'(?:[^']|'')*'", text):
        return text
    return "<expr>"


def sqlite_schema(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        tables: dict[str, Any] = {}
        triggers = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        for name, create in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name").fetchall():
            if name in SQLITE_ONLY_TABLES:
                continue
            cols = conn.execute(f"PRAGMA table_info({name})").fetchall()
            fks: dict[int, list[Any]] = {}
            for fid, _seq, ref, frm, to, _upd, on_delete, _match in conn.execute(
                    f"PRAGMA foreign_key_list({name})"):
                fks.setdefault(fid, [[], ref, [], on_delete])
                fks[fid][0].append(frm)
                fks[fid][2].append(to)
            fk_cols = {c for f in fks.values() for c in f[0]}
            pk = [c[1] for c in sorted(cols, key=lambda c: c[5]) if c[5]]
            nocase = set(re.findall(r"^\s*(\w+)\s[^,]*COLLATE NOCASE", create,
                                    re.IGNORECASE | re.MULTILINE))
            columns = []
            for _cid, col, ctype, notnull, dflt, pkpos in cols:
                # SQLite's rowid alias: the table's own id, given by the database.
                rowid = ctype == "INTEGER" and pk == [col] and col not in fk_cols
                columns.append({
                    "name": col, "type": TYPES[ctype], "not_null": bool(notnull or pkpos),
                    "default": _default(dflt), "identity": rowid,
                    "collation": "nocase" if col in nocase else None})
            indexes, uniques = {}, set()
            for _seq, idx, unique, origin, partial in conn.execute(f"PRAGMA index_list({name})"):
                keys = [(r[2], bool(r[3])) for r in conn.execute(f"PRAGMA index_xinfo({idx})")
                        if r[5]]
                if origin == "u":
                    uniques.add(tuple(k for k, _ in keys))
                elif origin == "c":
                    (idx_sql,) = conn.execute(
                        "SELECT sql FROM sqlite_master WHERE name = ?", (idx,)).fetchone()
                    where = re.search(r"\bWHERE\b(.*)$", idx_sql, re.IGNORECASE | re.DOTALL)
                    indexes[idx] = {"unique": bool(unique), "columns": keys,
                                    "where": _predicate(where.group(1)) if where else None}
                    assert bool(partial) == bool(where)
            checks = _sqlite_checks(create)
            tables[name] = {
                "columns": columns, "pk": pk, "uniques": uniques, "indexes": indexes,
                "fks": {(tuple(f[0]), f[1], tuple(f[2]), f[3]) for f in fks.values()},
                "checks": len(checks), "check_literals": _check_literals(checks)}
        return {"tables": tables, "triggers": triggers}
    finally:
        conn.close()


def pg_schema(conn: psycopg.Connection) -> dict[str, Any]:
    """The same description of the current schema, read on `conn` (in its transaction)."""
    def rows(query: str, *args: Any) -> list[tuple[Any, ...]]:
        return conn.execute(query, args).fetchall()  # type: ignore[arg-type]

    tables: dict[str, Any] = {}
    triggers = {r[0] for r in rows(
        "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal")}
    for (name, oid) in rows(
            "SELECT relname, oid FROM pg_class WHERE relkind IN ('r', 'p')"
            " AND relnamespace = current_schema()::regnamespace ORDER BY relname"):
        if name in MIGRATOR_TABLES:
            continue
        columns = [{"name": col, "type": ctype, "not_null": not_null,
                    "default": _default(dflt), "identity": identity == "d",
                    "collation": None if coll == "default" else coll}
                   for col, ctype, not_null, dflt, identity, coll in rows(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
            " pg_get_expr(d.adbin, d.adrelid), a.attidentity, co.collname"
            " FROM pg_attribute a LEFT JOIN pg_attrdef d"
            " ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " LEFT JOIN pg_collation co ON co.oid = a.attcollation"
            " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY a.attnum", oid)]
        cons = rows(
            "SELECT contype, ARRAY(SELECT a.attname FROM unnest(conkey) WITH ORDINALITY"
            " AS k(n, o) JOIN pg_attribute a ON a.attrelid = conrelid AND a.attnum = k.n"
            " ORDER BY k.o), confrelid::regclass::text,"
            " ARRAY(SELECT a.attname FROM unnest(confkey) WITH ORDINALITY AS k(n, o)"
            " JOIN pg_attribute a ON a.attrelid = confrelid AND a.attnum = k.n"
            " ORDER BY k.o), confdeltype, pg_get_constraintdef(oid), conindid"
            " FROM pg_constraint WHERE conrelid = %s", oid)
        constraint_indexes = {c[6] for c in cons if c[0] in ("p", "u")}
        indexes = {}
        for idx_oid, idx, unique, pred in rows(
                "SELECT i.oid, i.relname, x.indisunique, pg_get_expr(x.indpred, x.indrelid)"
                " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
                " WHERE x.indrelid = %s", oid):
            if idx_oid in constraint_indexes or idx in PG_ONLY_INDEXES:
                continue
            keys = rows(
                "SELECT coalesce(a.attname, '<expression>'),"
                " pg_index_column_has_property(x.indexrelid, k.o::int, 'desc')"
                " FROM pg_index x CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY"
                " AS k(n, o)"
                " LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n"
                " WHERE x.indexrelid = %s AND k.o <= x.indnkeyatts ORDER BY k.o", idx_oid)
            indexes[idx] = {"unique": unique, "columns": [(k, bool(d)) for k, d in keys],
                            "where": _predicate(pred)}
        checks = [c[5] for c in cons if c[0] == "c"]
        tables[name] = {
            "columns": columns,
            "pk": next((list(c[1]) for c in cons if c[0] == "p"), []),
            "uniques": {tuple(c[1]) for c in cons if c[0] == "u"},
            "indexes": indexes,
            "fks": {(tuple(c[1]), c[2], tuple(c[3]), ON_DELETE[c[4]])
                    for c in cons if c[0] == "f"},
            "checks": len(checks), "check_literals": _check_literals(checks)}
    return {"tables": tables, "triggers": triggers}


# --- the schemas ----------------------------------------------------------------------------

def test_every_migration_has_its_postgres_twin() -> None:
    sqlite_names = [name for _, name, _ in migration_files()]
    pg_names = [name for _, name, _ in migration_files("postgres")]
    assert pg_names == sqlite_names


def test_the_two_schemas_are_the_same(sqlite_path: Path, pg_url: str) -> None:
    lite = sqlite_schema(sqlite_path)
    with psycopg.connect(pg_url) as conn:
        pg = pg_schema(conn)
    assert sorted(pg["tables"]) == sorted(lite["tables"])
    assert len(lite["tables"]) > 40
    for name, want in lite["tables"].items():
        got = pg["tables"][name]
        assert [c["name"] for c in got["columns"]] == [c["name"] for c in want["columns"]], name
        for g, w in zip(got["columns"], want["columns"], strict=True):
            assert g == w, f"{name}.{w['name']}"
        for key in ("pk", "uniques", "indexes", "fks", "checks", "check_literals"):
            assert got[key] == want[key], f"{name}: {key}"
    assert pg["triggers"] == lite["triggers"]


def test_the_comparison_sees_a_difference(sqlite_path: Path, pg_url: str) -> None:
    """The reader is not blind: a column, an index, a foreign key's action and a CHECK's
    value changed on PostgreSQL only all show."""
    with psycopg.connect(pg_url) as conn:
        before = pg_schema(conn)["tables"]
        conn.execute("ALTER TABLE boards ADD COLUMN extra BIGINT")
        conn.execute("DROP INDEX marks_student")
        conn.execute("ALTER TABLE sessions DROP CONSTRAINT sessions_user_id_fkey,"
                     " ADD FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL")
        conn.execute("ALTER TABLE absence_events DROP CONSTRAINT absence_events_kind_check,"
                     " ADD CONSTRAINT absence_events_kind_check CHECK (kind IN ('absent'))")
        after = pg_schema(conn)["tables"]
        conn.rollback()
        again = pg_schema(conn)["tables"]
    assert after["boards"]["columns"] != before["boards"]["columns"]
    assert after["marks"]["indexes"] != before["marks"]["indexes"]
    assert after["sessions"]["fks"] != before["sessions"]["fks"]
    assert after["absence_events"]["check_literals"] != before["absence_events"]["check_literals"]
    assert again == before


# --- the same statements on both engines ----------------------------------------------------

class Both:
    """One SQLite and one PostgreSQL connection (autocommit) running the same `?` query text,
    as the stores write it."""

    def __init__(self, sqlite_path: Path, pg_url: str) -> None:
        self.lite = sqlite3.connect(sqlite_path, isolation_level=None)
        self.lite.execute("PRAGMA foreign_keys=ON")
        self.pg = psycopg.connect(pg_url, autocommit=True)

    def run(self, query: str, params: tuple[Any, ...] = ()) -> tuple[list[Any], list[Any]]:
        """The rows each engine returns (as tuples)."""
        lite = [tuple(r) for r in self.lite.execute(query, params).fetchall()]
        cur = self.pg.execute(query.replace("?", "%s"), params)  # type: ignore[arg-type]
        return lite, [tuple(r) for r in cur.fetchall()] if cur.description else []

    def same(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        lite, pg = self.run(query, params)
        assert lite == pg, query
        return lite

    def close(self) -> None:
        self.lite.close()
        self.pg.close()


@pytest.fixture
def both(sqlite_path: Path, pg_url: str) -> Iterator[Both]:
    b = Both(sqlite_path, pg_url)
    yield b
    b.close()


# Schools and users get explicit ids here: a failed INSERT spends an identity value on
# PostgreSQL and none on SQLite, so generated ids would part ways after one.
_ids = iter(range(1000, 10**6))


def _school(both: Both, uai: str) -> int:
    (row,) = both.same("INSERT INTO schools (id, uai, name, town) VALUES (?, ?, ?, ?)"
                       " RETURNING id", (next(_ids), uai, "Collège " + uai, "Metz"))
    return int(row[0])


def _user(both: Both, login: str, school_id: int, role: str = "teacher") -> int:
    (row,) = both.same(
        "INSERT INTO users (id, login, role, name, school_id, code_hash)"
        " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (next(_ids), login, role, login.title(), school_id, "x"))
    return int(row[0])


def test_logins_ignore_case_on_both(both: Both) -> None:
    school = _school(both, "0570001A")
    uid = _user(both, "Jean.Dupont", school)
    assert both.same("SELECT id, login FROM users WHERE login = ?",
                     ("JEAN.DUPONT",)) == [(uid, "Jean.Dupont")]
    with pytest.raises(sqlite3.IntegrityError):
        both.lite.execute("INSERT INTO users (login, role, name, school_id, code_hash)"
                          " VALUES ('jean.DUPONT', 'teacher', 'J', ?, 'x')", (school,))
    with pytest.raises(psycopg.errors.UniqueViolation):
        both.pg.execute("INSERT INTO users (login, role, name, school_id, code_hash)"
                        " VALUES ('jean.DUPONT', 'teacher', 'J', %s, 'x')", (school,))
    # The default creation time has the same shape on both: 2024-09-02T07:55:01.123Z.
    lite, pg = both.run("SELECT created_at FROM users WHERE id = ?", (uid,))
    for (stamp,) in lite + pg:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp), stamp


def test_users_disabled_at_triggers_on_both(both: Both) -> None:
    school = _school(both, "0570002B")
    uid = _user(both, "marie.curie", school)
    both.same("UPDATE users SET disabled = 1 WHERE id = ? RETURNING id", (uid,))
    stamps = [both.lite.execute("SELECT disabled_at FROM users WHERE id = ?",
                                (uid,)).fetchone()[0],
              both.pg.execute("SELECT disabled_at FROM users WHERE id = %s",
                              (uid,)).fetchone()[0]]  # type: ignore[index]
    for stamp in stamps:  # whole epoch seconds, set by the trigger
        assert isinstance(stamp, float) and stamp > 1.6e9 and stamp == int(stamp)
    both.same("UPDATE users SET disabled = 0 WHERE id = ? RETURNING id", (uid,))
    assert both.same("SELECT disabled_at FROM users WHERE id = ?", (uid,)) == [(None,)]
    # Disabled with an explicit time: the trigger leaves it.
    both.same("UPDATE users SET disabled = 1, disabled_at = 123.0 WHERE id = ? RETURNING id",
              (uid,))
    assert both.same("SELECT disabled_at FROM users WHERE id = ?", (uid,)) == [(123.0,)]


def test_course_doc_ids_start_at_one_on_both(both: Both) -> None:
    first = both.same("INSERT INTO course_doc_ids DEFAULT VALUES RETURNING id")
    second = both.same("INSERT INTO course_doc_ids DEFAULT VALUES RETURNING id")
    assert second[0][0] == first[0][0] + 1


# --- chat: the message trigger and search ---------------------------------------------------

# realtime/chat/store.py, insert_message: the conversation's next seq in the INSERT itself.
INSERT_MESSAGE = (
    "INSERT INTO chat_messages (conversation_id, seq, author_id, body, created_at)"
    " VALUES (?, (SELECT last_seq + 1 FROM chat_conversations WHERE id = ?), ?, ?, ?)"
    " RETURNING id, seq")


def _conversation(both: Both, school: int, creator: int, members: list[int]) -> int:
    (row,) = both.same(
        "INSERT INTO chat_conversations (id, school_id, kind, creator_id, created_at, last_at)"
        " VALUES (?, ?, 'group', ?, 0, 0) RETURNING id", (next(_ids), school, creator))
    for uid in members:
        both.same("INSERT INTO chat_participants (conversation_id, user_id, added_at)"
                  " VALUES (?, ?, 0)", (row[0], uid))
    return int(row[0])


def test_message_trigger_writes_the_stream_event_on_both(both: Both) -> None:
    school = _school(both, "0570003C")
    uid = _user(both, "paul.verlaine", school)
    conv = _conversation(both, school, uid, [uid])
    ids = {}
    for i in (1, 2, 3):
        lite, pg = both.run(INSERT_MESSAGE, (conv, conv, uid, f"message {i}", 10.0 + i))
        assert lite[0][1] == pg[0][1] == i
        ids[i] = (lite[0][0], pg[0][0])
    lite, pg = both.run("SELECT seq, kind, message_id, data, at FROM chat_events"
                        " WHERE conversation_id = ? ORDER BY seq", (conv,))
    assert lite == [(i, "message", ids[i][0], "{}", 10.0 + i) for i in (1, 2, 3)]
    assert pg == [(i, "message", ids[i][1], "{}", 10.0 + i) for i in (1, 2, 3)]
    assert both.same("SELECT last_seq, last_at FROM chat_conversations WHERE id = ?",
                     (conv,)) == [(3, 13.0)]


def test_two_writers_in_one_conversation_get_consecutive_seqs(pg_url: str) -> None:
    """Two PostgreSQL connections insert into one conversation at once. The second computed
    its seq from a snapshot where the first was not committed yet; the trigger takes the seq
    under the conversation's row lock, so it waits for the first and takes the next seq,
    where SQLite's trigger (which trusts the INSERT's seq) would make it fail on
    UNIQUE (conversation_id, seq)."""
    school, uid, conv = next(_ids), next(_ids), next(_ids)
    with psycopg.connect(pg_url, autocommit=True) as setup:
        setup.execute("INSERT INTO schools (id, uai, name, town) VALUES (%s, '0570004D', 'C',"
                      " 'T')", (school,))
        setup.execute("INSERT INTO users (id, login, role, name, school_id, code_hash)"
                      " VALUES (%s, 'two.writers', 'teacher', 'T', %s, 'x')", (uid, school))
        setup.execute("INSERT INTO chat_conversations (id, school_id, kind, creator_id,"
                      " created_at, last_at) VALUES (%s, %s, 'group', %s, 0, 0)",
                      (conv, school, uid))
    query = INSERT_MESSAGE.replace("?", "%s")
    with psycopg.connect(pg_url) as first, psycopg.connect(pg_url) as second, \
            psycopg.connect(pg_url, autocommit=True) as watch:
        got: dict[str, Any] = {}
        (_, seq1) = first.execute(query, (conv, conv, uid, "un", 1.0)).fetchone()  # type: ignore[misc]
        second_pid = second.info.backend_pid

        def write_second() -> None:
            try:
                got["row"] = second.execute(query, (conv, conv, uid, "deux", 2.0)).fetchone()
                second.commit()
            except Exception as exc:  # reported by the assertion below
                got["error"] = exc

        writer = threading.Thread(target=write_second)
        writer.start()
        # Until the second writer waits for the first one's row lock (it cannot finish first).
        waiting = None
        while waiting != "Lock" and writer.is_alive():
            waiting = watch.execute("SELECT wait_event_type FROM pg_stat_activity"
                                    " WHERE pid = %s", (second_pid,)).fetchone()[0]  # type: ignore[index]
        assert waiting == "Lock", got
        first.commit()
        writer.join()
        assert "error" not in got, got
        assert (seq1, got["row"][1]) == (1, 2)
        rows = watch.execute("SELECT seq, message_id FROM chat_events WHERE conversation_id = %s"
                             " ORDER BY seq", (conv,)).fetchall()
        assert [r[0] for r in rows] == [1, 2]
        assert rows[1][1] == got["row"][0]
        assert watch.execute("SELECT last_seq FROM chat_conversations WHERE id = %s",
                             (conv,)).fetchone() == (2,)


SEARCH_CORPUS = [  # (key, in the reader's conversation, deleted, body)
    ("eleve", True, False, "L'élève est arrivé en retard avec les chevaux"),
    ("francais", True, False, "Français : rédaction à rendre jeudi"),
    ("eleves", True, False, "ÉLÈVES de 6e A : sortie au musée"),
    ("cheval", True, False, "Le cheval du centre équestre"),
    ("rdv", True, False, "Rendez-vous à 14h30 avec M. Dupont-Moretti"),
    ("elsewhere", False, False, "élève absent (une conversation où le lecteur n'est pas)"),
    ("deleted", True, True, "élève supprimé"),
    ("stopword", True, False, "Il ne viendra pas demain"),
]
# What FTS5 (SQLite) finds today, and PostgreSQL must find too.
SEARCHES = {
    "eleve": {"eleve", "eleves"},
    "élè": {"eleve", "eleves"},
    "ÉLÈVE": {"eleve", "eleves"},
    "chevau": {"eleve"},  # a prefix of the word as written ("chevaux"; its stem is "cheval")
    "eleve retard": {"eleve"},  # every word required
    "franc": {"francais"},
    "francais redaction": {"francais"},
    "dupont": {"rdv"},
    "moretti": {"rdv"},
    "rendez vous": {"rdv"},
    "14h30": {"rdv"},
    "6e": {"eleves"},
    "musee sortie": {"eleves"},
    "supprime": set(),
    "absent": set(),  # only in a conversation the reader is not in
    "xyzzy": set(),
    "pas": {"stopword"},  # a French stop word, still searchable as with FTS5
}
# Where PostgreSQL's French stemming finds more than FTS5 (SQLite, PostgreSQL): a plural's
# stem is its singular's.
PG_ALSO = {"cheval": ({"cheval"}, {"cheval", "eleve"}),
           "Eleves": ({"eleves"}, {"eleve", "eleves"}),
           # "les" is still found (the words as written are indexed too), and its stem "le"
           # is a prefix of "Le" as well.
           "les": ({"eleve"}, {"eleve", "cheval"})}


async def test_search_finds_on_postgres_what_fts5_finds(both: Both, sqlite_path: Path,
                                                         pg_url: str) -> None:
    school = _school(both, "0570005E")
    reader = _user(both, "lecteur", school)
    other = _user(both, "autre", school)
    mine = _conversation(both, school, reader, [reader, other])
    theirs = _conversation(both, school, other, [other])
    lite_keys: dict[int, str] = {}  # message id -> corpus key, per engine
    pg_keys: dict[int, str] = {}
    for n, (key, in_mine, deleted, body) in enumerate(SEARCH_CORPUS):
        conv = mine if in_mine else theirs
        lite_rows, pg_rows = both.run(INSERT_MESSAGE, (conv, conv, other, body, 100.0 + n))
        lite_keys[lite_rows[0][0]] = pg_keys[pg_rows[0][0]] = key
        if deleted:
            both.lite.execute("UPDATE chat_messages SET deleted_at = 1 WHERE id = ?",
                              (lite_rows[0][0],))
            both.pg.execute("UPDATE chat_messages SET deleted_at = 1 WHERE id = %s",
                            (pg_rows[0][0],))

    # The store's own functions on each engine's Database.
    lite = await Database.open(sqlite_path, migrate=False)
    pg = await Database.open(pg_url, migrate=False)
    assert (lite.engine, pg.engine) == ("sqlite", "postgres")
    engines = ((lite, lite_keys, "SQLite"), (pg, pg_keys, "PostgreSQL"))
    try:
        async def ask(db: Database, keys: dict[int, str], text: str) -> set[str]:
            found = await chat_store.search(db, reader, chat_model.fts_query(text), 50)
            return {keys[m.id] for m in found}

        for db, keys, engine in engines:
            for text, want in SEARCHES.items():
                assert await ask(db, keys, text) == want, f"{engine}: {text!r}"
            for text, (on_lite, on_pg) in PG_ALSO.items():
                assert await ask(db, keys, text) == (on_pg if db is pg else on_lite), text

        # An edit is searched by its new text only; a removed message is not found.
        for db, keys, _engine in engines:
            ids = {v: k for k, v in keys.items()}
            edited = await chat_store.message(db, ids["francais"])
            removed = await chat_store.message(db, ids["rdv"])
            assert edited is not None and removed is not None
            async with db.transaction() as conn:
                await chat_store.edit_message(conn, edited, "Histoire-géographie : la carte",
                                              500.0)
                await chat_store.remove_message(conn, removed, other, 501.0, recall=False)
            assert await ask(db, keys, "franc") == set()
            assert await ask(db, keys, "geographie carte") == {"francais"}
            assert await ask(db, keys, "dupont") == set()
    finally:
        await lite.close()
        await pg.close()


def test_search_quotes_what_it_hands_to_to_tsquery(pg_url: str) -> None:
    """A match expression carrying tsquery syntax (quotes, backslashes, operators) is taken
    as words, never as operators, and does not break the query."""
    with psycopg.connect(pg_url) as conn:
        for match in ['"l\'élève"*', '"a\\\\b"*', '"x | y"*', '"!z"* "(w"*']:
            query, params = chat_store.pg_search_query(1, match, 5)
            conn.execute(query.replace("?", "%s"), params).fetchall()  # type: ignore[arg-type]
        query, params = chat_store.pg_search_query(1, '"l\'élève"*', 5)
        assert params[1] == "'l''élève':*"


def test_search_uses_the_gin_index(pg_url: str) -> None:
    """The store's expression is the index's: PostgreSQL can answer from chat_messages_search
    (with sequential scans off, as a large table would choose)."""
    with psycopg.connect(pg_url) as conn:
        conn.execute("SET enable_seqscan = off")
        query, params = chat_store.pg_search_query(1, chat_model.fts_query("eleve franc"), 50)
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN " + query.replace("?", "%s"), params).fetchall())  # type: ignore[arg-type]
        assert "chat_messages_search" in plan, plan

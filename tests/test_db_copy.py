"""`python -m realtime db copy | verify`: a pilot's SQLite file moved into PostgreSQL, run as an
operator would (subprocesses), into a fresh PostgreSQL database of its own (in either engine's
run: the source is always a SQLite file, the target always PostgreSQL)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from realtime.app import create_app
from tests.boards.conftest import BoardClient, stroke
from tests.boards.test_socket import Cast, create_board
from tests.conftest import login, make_settings, token_for
from tests.engines import fresh_database

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64
FTS = {"chat_fts", "chat_fts_config", "chat_fts_content", "chat_fts_data", "chat_fts_docsize",
       "chat_fts_idx"}


def realtime(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REALTIME_DB")}
    return subprocess.run([sys.executable, "-m", "realtime", *args], capture_output=True,
                          text=True, timeout=600, check=False, env={**base, **env})


@pytest.fixture(scope="module")
def pilot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pilot's SQLite file: the demo, as `scripts/dev.sh demo` seeds it (three weeks of
    rolls and absences, conversations)."""
    folder = tmp_path_factory.mktemp("pilot")
    done = realtime("--db", str(folder / "ent.sqlite3"), "demo", "--out",
                    str(folder / "accounts.json"))
    assert done.returncode == 0, done.stderr
    return folder / "ent.sqlite3"


@pytest.fixture
def source(pilot: Path, tmp_path: Path) -> Path:
    path = tmp_path / "sqlite" / "ent.sqlite3"
    path.parent.mkdir()
    with sqlite3.connect(pilot) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    return path


@pytest.fixture
def target() -> Iterator[str]:
    with fresh_database("copy") as url:
        yield url


def copy(source: Path, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return realtime("db", "copy", "--from", f"sqlite:{source}", "--to", target, *extra)


def tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name <> 'schema_migrations' ORDER BY name") if r[0] not in FTS]


def counts(source: Path, target: str) -> tuple[dict[str, int], dict[str, int]]:
    """Every table's rows on each side, counted here, not by the tool: on the SQLite side,
    with the files its node kept beside it (attachments and secrets, rows on PostgreSQL)."""
    names = tables(source)
    with sqlite3.connect(source) as s:
        left = {n: s.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}
    left["stored_files"] += len(list(source.parent.glob("chat-files/*/*")))
    left["shared_secrets"] += sum((source.parent / f).is_file()
                                  for f in ("secret.key", "vapid_private.pem"))
    with psycopg.connect(target) as p:
        right = {n: p.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0]  # type: ignore[index]
                 for n in names}
    return left, right


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def report_line(output: str, table: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(table + " "))


async def test_a_pilot_moves_to_postgresql_and_a_node_serves_it(
        aiohttp_server: Any, tmp_path: Path, source: Path, target: str,
        demo_accounts: list[dict[str, Any]]) -> None:
    cast = Cast(demo_accounts)
    # The pilot at work on SQLite: a board with strokes and an image, two course documents
    # (the second deleted: SQLite's AUTOINCREMENT never gives its id again), a chat
    # attachment, its generated secrets (no REALTIME_SECRET): files beside its database.
    sqlite_node = await aiohttp_server(create_app(make_settings(
        tmp_path / "node-sqlite", db_path=source).with_(database_url=None, secret=None)))
    base = str(sqlite_node.make_url("")).rstrip("/")
    session = await token_for(base, cast.teacher)  # still open after the move
    bearer = {"Authorization": f"Bearer {session}"}
    board = await create_board(base, cast, title="Avant le déménagement")
    teacher = await BoardClient(base, await token_for(base, cast.teacher)).connect()
    assert (await teacher.call("join", {"board_id": board}))["ok"]
    for i in range(3):
        assert (await teacher.call("op", {"board_id": board, "op": stroke(f"s{i}", x=i)}))["ok"]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, cast.teacher)
        async with s.post(f"{base}/api/boards/{board}/images", data=PNG,
                          headers={"Content-Type": "image/png"}) as r:
            assert r.status == 201, await r.text()
            image_src = (await r.json())["src"]
        docs = []
        for title in ("Les fractions", "Brouillon"):
            async with s.post(f"{base}/api/docs", json={"title": title}) as r:
                assert r.status == 201, await r.text()
                docs.append((await r.json())["id"])
        async with s.delete(f"{base}/api/docs/{docs[1]}") as r:
            assert r.status == 204
        async with s.post(f"{base}/api/chat/attachments", params={"name": "schéma.png"},
                          data=PNG) as r:
            assert r.status == 201, await r.text()
            attachment = (await r.json())["url"]
        async with s.get(f"{base}/api/push/key") as r:
            push_key = (await r.json())["public_key"]
    assert {p.name for p in source.parent.iterdir()} >= {
        "secret.key", "vapid_private.pem", "chat-files"}
    await teacher.close()
    await sqlite_node.close()  # its boards snapshotted, as before a real move
    before = file_digest(source)

    done = copy(source, target)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Vérification réussie" in done.stdout and "chat_fts" in done.stdout
    assert file_digest(source) == before  # read-only: not one byte of the pilot changed
    left, right = counts(source, target)
    assert left == right and left["marks"] > 10_000 and left["board_images"] == 1
    assert right["stored_files"] == 1 and right["shared_secrets"] == 2
    assert "ok" in report_line(done.stdout, "marks").split()
    assert "ok" in report_line(done.stdout, "stored_files").split()
    assert "1 pièce(s) jointe(s) (stored_files), 2 secret(s)" in done.stdout
    again = realtime("db", "verify", "--from", f"sqlite:{source}", "--to", target)
    assert again.returncode == 0 and "Vérification réussie" in again.stdout

    # A node on PostgreSQL serves the moved ENT: the pilot's session still open, the board as
    # it was, the image's and the attachment's bytes, the same push key, new ids past the old
    # ones, the chat's search.
    pg_node = await aiohttp_server(create_app(
        make_settings(tmp_path / "node-pg", database_url=target, secret=None)))
    base = str(pg_node.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/api/me", headers=bearer) as r:
            assert r.status == 200 and (await r.json())["user"]["login"] == cast.teacher[
                "login"]
        async with s.get(f"{base}{attachment}", headers=bearer) as r:
            assert r.status == 200 and await r.read() == PNG
        async with s.get(f"{base}/api/push/key", headers=bearer) as r:
            assert (await r.json())["public_key"] == push_key
    teacher = await BoardClient(base, await token_for(base, cast.teacher)).connect()
    try:
        joined = await teacher.call("join", {"board_id": board})
        assert joined["ok"], joined
        assert [i["id"] for i in joined["snapshot"]["items"] if i["kind"] == "stroke"] == [
            "s0", "s1", "s2"]
        drawn = await teacher.call("op", {"board_id": board, "op": stroke("s3")})
        assert drawn["ok"] and drawn["seq"] > 3, drawn  # the copied stream goes on
    finally:
        await teacher.close()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, cast.teacher)
        async with s.get(f"{base}{image_src}") as r:
            assert r.status == 200 and await r.read() == PNG
        async with s.post(f"{base}/api/docs", json={"title": "Après"}) as r:
            assert r.status == 201, await r.text()
            assert (await r.json())["id"] > docs[1]
        second = await create_board(base, cast, title="Après le déménagement")
        assert second > board
    # The chat's search: PostgreSQL's own index over the copied messages.
    with psycopg.connect(target) as p:
        author = p.execute(
            "SELECT u.login FROM chat_messages m JOIN users u ON u.id = m.author_id"
            " WHERE m.body LIKE %s ORDER BY m.id LIMIT 1", ("%fractions%",)).fetchone()
    assert author is not None
    writer = next(a for a in demo_accounts if a["login"] == author[0])
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, writer)
        async with s.get(f"{base}/api/chat/search", params={"q": "fraction"}) as r:
            assert r.status == 200, await r.text()
            found = (await r.json())["messages"]
    assert found and all("fractions" in m["body"] for m in found)
    await pg_node.close()


def test_the_verification_catches_a_target_that_alters_values(source: Path,
                                                             target: str) -> None:
    """A target column one type too narrow (a 4-byte float for times) accepts every row but
    rounds them: the checksum sees it, nothing is kept, exit 1."""
    assert realtime("migrate", DATABASE_URL=target).returncode == 0
    with psycopg.connect(target) as p:
        p.execute("ALTER TABLE absence_events ALTER COLUMN given_at TYPE real")
    done = copy(source, target)
    assert done.returncode == 1, done.stdout + done.stderr
    line = report_line(done.stdout, "absence_events")
    assert "DIFFÉRENT (contenu ; première différence : id=" in line
    assert "VÉRIFICATION ÉCHOUÉE : 1 table(s) diffèrent : absence_events" in done.stdout
    assert "ok" in report_line(done.stdout, "users").split()
    assert "Rien n'a été copié" in done.stderr
    _left, right = counts(source, target)
    assert set(right.values()) == {0}  # rolled back: the target is as it was


def test_verify_finds_what_changed_after_the_copy(source: Path, target: str) -> None:
    assert copy(source, target).returncode == 0
    same = realtime("db", "verify", "--from", f"sqlite:{source}", "--to", target)
    assert same.returncode == 0 and "Vérification réussie" in same.stdout
    with psycopg.connect(target) as p:
        user = p.execute("SELECT id FROM users ORDER BY id LIMIT 1 OFFSET 41").fetchone()
        assert user is not None
        p.execute("UPDATE users SET name = name || '.' WHERE id = %s", (user[0],))
        p.execute("DELETE FROM notifications WHERE id = (SELECT MAX(id) FROM notifications)")
    changed = realtime("db", "verify", "--from", f"sqlite:{source}", "--to", target)
    assert changed.returncode == 1
    assert f"DIFFÉRENT (contenu ; première différence : id={user[0]})" in report_line(
        changed.stdout, "users")
    assert "DIFFÉRENT (nombre de lignes" in report_line(changed.stdout, "notifications")
    assert "2 table(s) diffèrent" in changed.stdout


def test_a_target_with_rows_is_refused_unless_forced(source: Path, target: str) -> None:
    assert copy(source, target).returncode == 0
    again = copy(source, target)
    assert again.returncode == 2
    assert "n'est pas vide" in again.stderr and "users (" in again.stderr and "--force" in (
        again.stderr)
    with psycopg.connect(target) as p:
        p.execute("INSERT INTO schools (uai, name, town) VALUES ('9999999Z', 'En trop', 'Laon')")
    forced = copy(source, target, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    left, right = counts(source, target)
    assert left == right


def test_a_source_at_another_schema_version_is_refused(source: Path, target: str) -> None:
    with sqlite3.connect(source) as conn:
        latest = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
        conn.execute("DELETE FROM schema_migrations WHERE version = ?", (latest,))
    older = copy(source, target)
    assert older.returncode == 2 and "migrez-le d'abord" in older.stderr
    assert f"n'a pas les migrations [{latest}]" in older.stderr
    with sqlite3.connect(source) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, 'x'), "
                     "(9999, 'demain')", (latest,))
    newer = copy(source, target)
    assert newer.returncode == 2 and "9999" in newer.stderr
    _left, right = counts(source, target)
    assert set(right.values()) == {0}


def test_a_live_source_is_copied_as_of_one_instant(source: Path, target: str) -> None:
    """Another process writes to the pilot during the copy: the copy is of one instant (the
    snapshot), so it verifies, and the writer was never blocked out."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(source)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        done = copy(source, target)
    finally:
        writer.terminate()
        writer.wait(timeout=10)
    assert done.returncode == 0, done.stdout + done.stderr
    with sqlite3.connect(source) as s, psycopg.connect(target) as p:
        total = s.execute("SELECT COUNT(*) FROM streams").fetchone()[0]
        copied = p.execute("SELECT COUNT(*) FROM streams").fetchone()
    assert copied is not None and 0 < copied[0] < total


# Writes a stream row at a time, each in its own transaction, until killed.
WRITER = """
import sqlite3, sys, itertools
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA busy_timeout=5000")
for i in itertools.count():
    conn.execute("INSERT INTO streams (name, epoch) VALUES (?, 'e')", (f"live-{i}",))
    if i == 50:
        print("writing", flush=True)
"""


def test_a_row_the_target_refuses_stops_the_copy_with_its_table(source: Path,
                                                                target: str) -> None:
    assert realtime("migrate", DATABASE_URL=target).returncode == 0
    with psycopg.connect(target) as p:
        p.execute("ALTER TABLE users ADD CONSTRAINT short_names CHECK (length(name) < 12)")
    done = copy(source, target)
    assert done.returncode == 2
    assert "users : PostgreSQL refuse une ligne" in done.stderr and "short_names" in (
        done.stderr)
    _left, right = counts(source, target)
    assert set(right.values()) == {0}


def test_a_target_in_use_is_refused_rather_than_waited_for(source: Path, target: str) -> None:
    """A node still writing (here: a transaction holding what an INSERT holds on a table the
    copy must alter) makes the copy give up after its lock wait, with a message."""
    assert realtime("migrate", DATABASE_URL=target).returncode == 0
    with psycopg.connect(target) as node:
        node.execute("LOCK TABLE chat_messages IN ROW EXCLUSIVE MODE")
        done = copy(source, target)
    assert done.returncode == 2
    assert "en cours d'utilisation" in done.stderr and "arrêtez les nœuds" in done.stderr
    _left, right = counts(source, target)
    assert set(right.values()) == {0}

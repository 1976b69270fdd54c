"""What a node used to keep beside its SQLite file is the same on every node sharing the
database (issue 14; realtime/files.py, realtime/shared.py).

On PostgreSQL the two nodes here have one database but each its own data directory, as two
machines would, and no REALTIME_SECRET nor REALTIME_VAPID_PRIVATE_KEY: a token signed by one
node is accepted by the other, a file uploaded through one downloads through the other, both
push with one VAPID key, and nothing of it is written to either directory. On SQLite (one
machine) two nodes share the file and its directory, where those files stay as before."""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from py_vapid import Vapid

from realtime.files import CHUNK, DatabaseFiles, DiskFiles, FileStore, file_store, read_all
from realtime.settings import Settings
from realtime.shared import (
    SESSION_SECRET,
    VAPID_PRIVATE_KEY,
    adopt_local_state,
    session_secret,
    shared_secret,
)
from tests import engines
from tests.conftest import REDIS_URL, StartServer, account, login, make_settings

LOCAL_FILES = ("secret.key", "vapid_private.pem", "chat-files")


def node(tmp_path: Path, name: str, shared_db: Path, **overrides: Any) -> Settings:
    """One node's settings, without the suite's fixed secret: on PostgreSQL its own data
    directory (`tmp_path/name`) and the shared database; on SQLite the shared file."""
    if engines.POSTGRES:
        return make_settings(tmp_path / name, database_url=engines.db_url(shared_db),
                             secret=None, **overrides)
    return make_settings(tmp_path / name, db_path=shared_db, secret=None, **overrides)


def big_pdf(size: int) -> bytes:
    """A PDF-looking file of `size` random bytes (random: nothing compresses it away)."""
    return b"%PDF-1.7\n" + secrets.token_bytes(size - 9)


async def test_two_nodes_share_secrets_and_files(start_server: StartServer, tmp_path: Path,
                                                 demo_db_path: Path,
                                                 demo_accounts: list[dict[str, Any]],
                                                 redis_prefix: str,
                                                 redis_cleanup: aioredis.Redis) -> None:
    # Nodes on one database have one Redis (realtime/node_guard.py refuses two without).
    settings_a = node(tmp_path, "a", demo_db_path, redis_url=REDIS_URL,
                      redis_prefix=redis_prefix)
    settings_b = node(tmp_path, "b", demo_db_path, redis_url=REDIS_URL,
                      redis_prefix=redis_prefix)
    assert settings_a.secret is None and settings_a.vapid_private_key is None
    a = await start_server(settings_a)
    b = await start_server(settings_b)
    teacher = account(demo_accounts, "teacher")
    pdf = big_pdf(CHUNK * 2 + CHUNK // 2)  # three chunks when read from the database
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        token = await login(s, a, teacher)
        auth = {"Authorization": f"Bearer {token}"}
        # A session opened on A is valid on B: both sign with one secret.
        async with s.get(f"{b}/api/me", headers=auth) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["user"]["login"] == teacher["login"]
        # A file uploaded through A downloads through B, whole.
        async with s.post(f"{a}/api/chat/attachments", params={"name": "cours.pdf"},
                          data=pdf, headers={**auth,
                                             "Content-Type": "application/octet-stream"}) as r:
            assert r.status == 201, await r.text()
            att = await r.json()
        async with s.get(f"{b}/api/chat/attachments/{att['id']}", headers=auth) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "application/pdf"
            assert r.headers["Content-Length"] == str(len(pdf))
            assert await r.read() == pdf
        # Both nodes push with the key the browsers subscribe with.
        keys = []
        for base in (a, b):
            async with s.get(f"{base}/api/push/key", headers=auth) as r:
                assert r.status == 200
                keys.append((await r.json())["public_key"])
        assert keys[0] == keys[1] and len(keys[0]) > 80
    if engines.POSTGRES:  # in the database: neither node wrote them beside itself
        for name in ("a", "b"):
            assert [f for f in LOCAL_FILES if (tmp_path / name / f).exists()] == []
    else:  # one machine: beside the shared SQLite file, private, as before
        here = demo_db_path.parent
        assert stat.S_IMODE((here / "secret.key").stat().st_mode) == 0o600
        assert stat.S_IMODE((here / "vapid_private.pem").stat().st_mode) == 0o600
        assert any(p.is_file() for p in (here / "chat-files").rglob("*"))


async def test_one_secret_when_nodes_start_together(tmp_path: Path) -> None:
    """Each node would make its own; one wins and every node reads the winner's."""
    shared = tmp_path / "shared" / "ent.sqlite3"
    dbs = [await engines.open_test_db(shared) for _ in range(4)]
    try:
        # On PostgreSQL each node its own directory; on SQLite one machine, one directory.
        dirs = [tmp_path / (f"node{i}" if engines.POSTGRES else "shared") for i in range(4)]
        made = [f"made-by-{i}" for i in range(4)]
        got = await asyncio.gather(*(
            shared_secret(db, d, SESSION_SECRET, lambda v=v: v)  # type: ignore[misc]
            for db, d, v in zip(dbs, dirs, made, strict=True)))
        assert len(set(got)) == 1 and got[0] in made
        again = await shared_secret(dbs[0], dirs[0], SESSION_SECRET, lambda: "late")
        assert again == got[0]
        if engines.POSTGRES:
            assert not any(d.exists() for d in dirs)
        else:
            assert (dirs[0] / "secret.key").read_text() == got[0]
            assert not list(dirs[0].glob(".secret.key.*"))  # no temporary file left
    finally:
        for db in dbs:
            await db.close()


async def test_the_environment_wins(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, secret="from-the-environment-" + "x" * 20)
    db = await engines.open_test_db(settings.db_path)
    try:
        assert await session_secret(settings, db) == settings.secret
        generated = await session_secret(settings.with_(secret=None), db)
        assert generated != settings.secret and len(generated) >= 48
        assert await session_secret(settings.with_(secret=None), db) == generated
    finally:
        await db.close()


@pytest.fixture(params=["disk", "database"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Both implementations on this run's engine (the table exists on both engines); the
    database one with small chunks, so that a few kilobytes take several reads."""
    db = await engines.open_test_db(tmp_path / "ent.sqlite3")
    try:
        if request.param == "disk":
            yield DiskFiles(tmp_path / "files")
        else:
            yield DatabaseFiles(db, chunk=1000)
    finally:
        await db.close()


async def test_a_store_keeps_serves_and_forgets(store: FileStore) -> None:
    data = secrets.token_bytes(3500)
    small = b"%PDF-1.4 tiny"
    key, other = await store.put(data), await store.put(small)
    assert key != other and key.isalnum() and len(key) == 32
    opened = await store.open(key)
    assert opened is not None and opened.size == len(data)
    parts = [part async for part in opened.chunks()]
    assert b"".join(parts) == data
    if isinstance(store, DatabaseFiles):
        assert [len(p) for p in parts] == [1000, 1000, 1000, 500] and opened.path is None
    else:
        assert opened.path is not None and opened.path.read_bytes() == data
    assert await read_all(store, other) == small
    await store.remove([key, "0" * 32])  # a key already gone is no error
    assert await store.open(key) is None and await read_all(store, key) is None
    assert await read_all(store, other) == small
    with pytest.raises(ValueError):
        await store.open("../secret.key")


async def test_the_engine_picks_the_store(tmp_path: Path) -> None:
    db = await engines.open_test_db(tmp_path / "ent.sqlite3")
    try:
        store = file_store(db, tmp_path / "chat-files")
        assert isinstance(store, DatabaseFiles if engines.POSTGRES else DiskFiles)
    finally:
        await db.close()


async def test_a_sqlite_nodes_files_move_into_the_database(tmp_path: Path) -> None:
    """What `db copy` carries besides the tables: the generated secrets and the attachments'
    bytes under their keys, so sessions, push subscriptions and files survive the move."""
    old = tmp_path / "old-node"
    disk = DiskFiles(old / "chat-files")
    keys = [await disk.put(secrets.token_bytes(n)) for n in (10, 2000)]
    (old / "secret.key").write_text("the-pilot-secret-" + "x" * 40)
    pem = Vapid()
    pem.generate_keys()
    (old / "vapid_private.pem").write_bytes(pem.private_pem())
    (old / "chat-files" / "stray.txt").write_text("not a stored file")
    db = await engines.open_test_db(tmp_path / "target" / "ent.sqlite3")
    try:
        assert await adopt_local_state(db, old) == {"secrets": 2, "files": 2}
        assert await adopt_local_state(db, old) == {"secrets": 0, "files": 0}  # idempotent
        moved = DatabaseFiles(db)
        for key in keys:
            assert await read_all(moved, key) == await read_all(disk, key)
        rows = {r["name"]: r["value"] for r in await db.fetchall(
            "SELECT name, value FROM shared_secrets ORDER BY name")}
        assert rows[SESSION_SECRET] == (old / "secret.key").read_text()
        assert rows[VAPID_PRIVATE_KEY] == pem.private_pem().decode().strip()
        if engines.POSTGRES:  # what the nodes will read, from any directory
            here = tmp_path / "new-node"
            assert await shared_secret(db, here, SESSION_SECRET, lambda: "new") == rows[
                SESSION_SECRET]
            assert not here.exists()
    finally:
        await db.close()
    assert os.listdir(old / "chat-files")  # the source is left as it was

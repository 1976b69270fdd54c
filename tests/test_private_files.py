"""The database, its WAL, attachments and secret files are private (issue #13 item 15), even
under a permissive umask and when an older installation left them readable by all."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from realtime.db import Database
from tests import engines
from tests.conftest import StartServer, account, login, make_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


async def test_a_fresh_database_is_private(tmp_path: Path, permissive_umask: None) -> None:
    path = tmp_path / "srv" / "data" / "ent.sqlite3"
    db = await Database.open(path)
    try:
        await db.ping()
        assert mode(path) == 0o600
        assert mode(path.with_name("ent.sqlite3-wal")) == 0o600
        assert mode(path.with_name("ent.sqlite3-shm")) == 0o600
        assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
    finally:
        await db.close()


async def test_server_files_are_private(start_server: StartServer, tmp_path: Path,
                                        demo_db_path: Path, permissive_umask: None,
                                        demo_accounts: list[dict[str, Any]]) -> None:
    if not engines.POSTGRES:
        os.chmod(demo_db_path, 0o644)  # as an older installation left it
    base = await start_server(make_settings(tmp_path, db_path=demo_db_path, secret=None))
    teacher = account(demo_accounts, "teacher")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, teacher)
        async with s.post(f"{base}/api/chat/attachments?name=notes.txt",
                          data=b"Chapitre 3 : les fractions\n",
                          headers={"Content-Type": "application/octet-stream"}) as r:
            assert r.status == 201, await r.text()
    if engines.POSTGRES:  # secrets and files are in the database, nothing beside the node
        assert [f for f in ("secret.key", "vapid_private.pem", "chat-files")
                if (tmp_path / f).exists()] == []
        return
    assert mode(demo_db_path) == 0o600
    assert mode(demo_db_path.with_name(demo_db_path.name + "-wal")) == 0o600
    assert mode(tmp_path / "secret.key") == 0o600
    vapid = tmp_path / "vapid_private.pem"
    assert not vapid.exists() or mode(vapid) == 0o600
    files = [p for p in (tmp_path / "chat-files").rglob("*") if p.is_file()]
    assert files and all(mode(p) == 0o600 for p in files)
    dirs = [tmp_path / "chat-files", *(p for p in (tmp_path / "chat-files").rglob("*")
                                       if p.is_dir())]
    assert all(mode(d) == 0o700 for d in dirs)

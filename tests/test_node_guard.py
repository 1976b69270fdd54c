"""Servers on one PostgreSQL: all with Redis, or one alone without (realtime/node_guard.py).
A second node without Redis, or a node with Redis beside one without, refuses to start and
says who holds the database; nodes that all have Redis start together. A node here is the
app as `serve` runs it: `create_app`, then `node_guard.install`."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp import web

from realtime import node_guard
from realtime.app import create_app
from realtime.node_guard import NodeGuard, StartRefused
from realtime.settings import Settings
from tests.conftest import REDIS_URL, ROOT, make_settings
from tests.engines import db_env, db_url

# PostgreSQL only (one SQLite file is one machine's): deselected in the SQLite pass.
pytestmark = pytest.mark.postgres_only


def node(settings: Settings) -> web.Application:
    """The app as `realtime/serve.py` runs it."""
    app = create_app(settings)
    node_guard.install(app)
    return app


async def test_a_second_node_without_redis_is_refused(
    aiohttp_server: Any, tmp_path: Path, redis_prefix: str, redis_cleanup: Any,
) -> None:
    db = tmp_path / "shared.sqlite3"
    await aiohttp_server(node(make_settings(tmp_path / "a", db_path=db)))  # alone, no Redis
    me = NodeGuard(db_url(db), shared=False).name  # how the first one is named
    with pytest.raises(StartRefused) as refused:
        await aiohttp_server(node(make_settings(tmp_path / "b", db_path=db)))
    assert "sans Redis" in str(refused.value) and me in str(refused.value)
    with pytest.raises(StartRefused) as refused:  # Redis here does not mend the other
        await aiohttp_server(node(make_settings(
            tmp_path / "c", db_path=db, redis_url=REDIS_URL, redis_prefix=redis_prefix)))
    assert "REDIS_URL ici aussi" not in str(refused.value) and me in str(refused.value)
    # Another database is another ENT: a node without Redis starts there.
    await aiohttp_server(node(make_settings(tmp_path / "d",
                                             db_path=tmp_path / "other.sqlite3")))


async def test_nodes_with_redis_start_together_and_one_without_is_refused(
    aiohttp_server: Any, tmp_path: Path, redis_prefix: str, redis_cleanup: Any,
) -> None:
    db = tmp_path / "shared.sqlite3"
    cfg = {"db_path": db, "redis_url": REDIS_URL, "redis_prefix": redis_prefix}
    await aiohttp_server(node(make_settings(tmp_path / "a", **cfg)))
    await aiohttp_server(node(make_settings(tmp_path / "b", **cfg)))
    with pytest.raises(StartRefused) as refused:
        await aiohttp_server(node(make_settings(tmp_path / "c", db_path=db)))
    assert "REDIS_URL ici aussi" in str(refused.value)
    assert "avec Redis" in str(refused.value) and "et 1 autre(s)" in str(refused.value)


async def test_the_lock_goes_with_the_server(aiohttp_server: Any, tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    first = await aiohttp_server(node(make_settings(tmp_path / "a", db_path=db)))
    await first.close()  # a node stopped: the next one without Redis may start
    await aiohttp_server(node(make_settings(tmp_path / "b", db_path=db)))


async def test_serve_says_why_and_exits(aiohttp_server: Any, tmp_path: Path) -> None:
    """The operator's view: `python -m realtime serve` on a database a node without Redis
    already serves stops at once with the reason, exit code 2, no traceback."""
    db = tmp_path / "shared.sqlite3"
    await aiohttp_server(node(make_settings(tmp_path / "a", db_path=db)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, **db_env(db), "REALTIME_SECRET": "s" * 40, "REDIS_URL": ""}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "realtime", "serve", "--port", str(port), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    stderr = err.decode()
    assert proc.returncode == 2, stderr
    assert stderr.startswith("Erreur : un autre serveur utilise déjà cette base "
                             "PostgreSQL sans Redis"), stderr
    assert "Traceback" not in stderr


async def backends(guard: NodeGuard) -> list[int]:
    """The backends holding the lock under the guard's name."""
    async with await psycopg.AsyncConnection.connect(guard.url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = %s",
            (guard.name,))
        return [r[0] for r in await cur.fetchall()]


async def terminate(url: str, pids: list[int]) -> None:
    """As a PostgreSQL restart does to them: the backends' connections die."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for pid in pids:
            await conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


async def test_the_lock_is_taken_again_after_its_connection_dies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """The lock goes with its connection (a PostgreSQL restart); the watch's next round
    takes it again. A node without Redis that started in the gap keeps it, and the first
    one reports the conflict."""
    url = db_url(tmp_path / "shared.sqlite3")
    first = NodeGuard(url, shared=False)
    await first.claim()
    try:
        await terminate(url, await backends(first))
        assert await backends(first) == []
        await first.check()
        assert len(await backends(first)) == 1  # held again: a second node is refused
        with pytest.raises(StartRefused):
            await NodeGuard(url, shared=False).claim()

        await terminate(url, await backends(first))  # the gap…
        second = NodeGuard(url, shared=False)
        second.name = "ent-realtime the other node"
        await second.claim()  # …in which another node starts
        try:
            with caplog.at_level(logging.ERROR, logger="realtime.node_guard"):
                await first.check()
            assert [r.getMessage() for r in caplog.records
                    if r.name == "realtime.node_guard"] == [
                "servers with and without Redis share this PostgreSQL"]
            assert await backends(first) == [] and len(await backends(second)) == 1
        finally:
            await second.close()
    finally:
        await first.close()


def test_the_holder_is_named_by_the_url_or_by_host_and_pid() -> None:
    named = NodeGuard("postgresql://ent@db.example/ent?application_name=ent-node-a",
                      shared=False)
    assert named.name == "ent-node-a"
    plain = NodeGuard("postgresql://ent@db.example/ent", shared=True)
    assert plain.name == f"ent-realtime {socket.gethostname()} pid {os.getpid()} avec Redis"

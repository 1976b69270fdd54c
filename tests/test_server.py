"""The server as an operator runs it: health, config, and a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from tests import engines
from tests.conftest import ROOT, TEST_KDF, account, login, make_settings
from tests.coursedocs.conftest import new_doc, teacher_token


async def test_healthz_sqlite(demo_server: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{demo_server}/healthz") as r:
        assert r.status == 200
        assert await r.json() == {"status": "ok",
                                  "checks": {"database": "ok", "redis": "not_configured"}}


async def test_healthz_redis(redis_demo_server: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{redis_demo_server}/healthz") as r:
        assert r.status == 200
        assert (await r.json())["checks"] == {"database": "ok", "redis": "ok"}


async def test_healthz_reports_a_broken_database(aiohttp_server: Any, tmp_path: Path) -> None:
    from realtime import keys
    from realtime.app import create_app

    server = await aiohttp_server(create_app(make_settings(tmp_path)))
    await server.app[keys.DB].close()  # the database goes away under the running server
    async with aiohttp.ClientSession() as s, s.get(server.make_url("/healthz")) as r:
        assert r.status == 503
        body = await r.json()
    assert body["status"] == "error" and body["checks"]["database"].startswith("error")


async def test_client_config_publishes_limits(demo_server: str,
                                              http: aiohttp.ClientSession) -> None:
    async with http.get(f"{demo_server}/api/config") as r:
        body = await r.json()
    assert body["max_body_bytes"] == 64 * 1024 and body["transports"] == ["websocket"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait_ready(base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                async with s.get(f"{base}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("server did not start")


async def test_sigterm_closes_clients_with_a_reason(
    demo_db_path: Path, demo_accounts: list[dict[str, Any]]
) -> None:
    port = _free_port()
    env = {**os.environ, **engines.db_env(demo_db_path), "REALTIME_SECRET": "s" * 40,
           "REALTIME_KDF_TIME_COST": str(TEST_KDF[0]),
           "REALTIME_KDF_MEMORY_KIB": str(TEST_KDF[1]), "REDIS_URL": ""}
    proc = subprocess.Popen(  # noqa: ASYNC220 - the server under test runs beside the loop
        [sys.executable, "-m", "realtime", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(base, proc)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            token = await login(s, base, account(demo_accounts, "teacher"))
        client = socketio.AsyncClient(reconnection=False)
        told: asyncio.Future = asyncio.get_running_loop().create_future()
        gone: asyncio.Future = asyncio.get_running_loop().create_future()
        client.on("server_shutdown", lambda data: told.done() or told.set_result(data))
        client.on("disconnect", lambda *a: gone.done() or gone.set_result(True))
        await client.connect(base, transports=["websocket"], auth={"token": token})

        proc.send_signal(signal.SIGTERM)
        message = await asyncio.wait_for(told, 10)
        assert "redémarre" in message["message"]
        await asyncio.wait_for(gone, 10)
        assert await asyncio.to_thread(proc.wait, 15) == 0
        out = proc.stdout.read() if proc.stdout else ""
        logs = proc.stderr.read() if proc.stderr else ""
        assert "ENT temps réel prêt" in out
        assert '"clients closed for shutdown"' in logs or "clients closed" in logs
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Nothing left half-written: the file opens and passes SQLite's own check (PostgreSQL
    # has no file of ours to check: its transactions are whole; the data reads back).
    with engines.connect(demo_db_path) as conn:
        if engines.POSTGRES:
            assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] > 0
        else:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"



@pytest.mark.parametrize("enabled", [False, True])
async def test_websocket_compression_is_refused_unless_configured(
    start_server: Any, tmp_path: Path, demo_db_path: Path, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]], enabled: bool,
) -> None:
    """Browsers offer permessage-deflate; by default the server answers without it, on the
    Socket.IO endpoint and on the Yjs one alike (a zlib compressor per socket costs ~90 KB)."""
    base = await start_server(make_settings(tmp_path, db_path=demo_db_path,
                                            ws_compression=enabled))
    ws_base = base.replace("http", "ws", 1)
    async with http.ws_connect(f"{ws_base}/socket.io/?EIO=4&transport=websocket",
                               compress=15) as ws:
        opened = await ws.receive_str(timeout=5)
        assert opened.startswith("0{")  # the Engine.IO handshake went through either way
        assert ws.compress == (15 if enabled else 0)
    token = await teacher_token(http, base, demo_accounts)
    doc = await new_doc(http, base, token)
    async with http.ws_connect(f"{ws_base}/yjs/{doc['id']}?token={token}", compress=15) as ws:
        assert ws.compress == (15 if enabled else 0)

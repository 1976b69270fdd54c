"""A session that ends ends everywhere, at once (issue #13 item 1): logout, a new personal
code, an expired session and a disabled account close every open Socket.IO namespace and
every `/yjs` websocket of that session, on every node."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import socketio
from click.testing import CliRunner

from realtime.cli import cli
from tests import engines
from tests.conftest import (
    StartServer,
    account,
    make_settings,
    token_for,
    two_nodes,
)

NAMESPACES = ["/", "/boards", "/attendance", "/chat", "/presence"]


class Everywhere:
    """One user's live connections: a Socket.IO client on every namespace and a `/yjs`
    websocket on a course document of theirs."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.gone: set[str] = set()
        self.ended: list[Any] = []
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.ws_closed = asyncio.Event()
        self.ws_code: int | None = None
        self.changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        for ns in NAMESPACES:
            self.sio.on("disconnect", self._gone(ns), namespace=ns)
        self.sio.on("session_ended", self.ended.append, namespace="/")

    def _gone(self, ns: str) -> Any:
        def handler(*_args: Any) -> None:
            self.gone.add(ns)
            self.changed.set()
        return handler

    async def open(self, session: aiohttp.ClientSession, base: str, token: str,
                   doc_id: int) -> Everywhere:
        await self.sio.connect(base, namespaces=NAMESPACES, transports=["websocket"],
                               auth={"token": token}, wait_timeout=5)
        ws_url = base.replace("http", "ws", 1) + f"/yjs/{doc_id}?token={token}"
        self.ws = await session.ws_connect(ws_url)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        async for _msg in self.ws:
            pass
        self.ws_code = self.ws.close_code
        self.ws_closed.set()
        self.changed.set()

    async def cut(self, wait_s: float = 8.0) -> None:
        """Every namespace disconnected by the server and the /yjs socket closed."""
        async def loop() -> None:
            while self.gone != set(NAMESPACES) or not self.ws_closed.is_set():
                self.changed.clear()
                await self.changed.wait()
        try:
            await asyncio.wait_for(loop(), wait_s)
        except TimeoutError:
            raise AssertionError(f"still open: {set(NAMESPACES) - self.gone}, "
                                 f"yjs closed: {self.ws_closed.is_set()}") from None

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()


async def _doc(session: aiohttp.ClientSession, base: str, token: str) -> int:
    async with session.post(f"{base}/api/docs", json={"title": "Cours"},
                            headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["id"]


async def _still_open(e: Everywhere) -> None:
    """Before the end: everything is connected and answers."""
    assert e.sio.connected and not e.gone and not e.ws_closed.is_set()
    ack = await e.sio.call("subscribe", {"scope": "school"}, namespace="/presence", timeout=5)
    assert isinstance(ack, dict)


async def _cannot_send(e: Everywhere, base: str, token: str) -> None:
    assert e.ended and "session" in e.ended[0]["message"]
    assert e.ws_code == 1008
    for ns in NAMESPACES:
        with pytest.raises(socketio.exceptions.BadNamespaceError):
            await e.sio.emit("subscribe", {"scope": "school"}, namespace=ns)
    # and the token no longer opens anything
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(base, transports=["websocket"], auth={"token": token},
                             wait_timeout=5)


async def test_logout_cuts_every_namespace_and_yjs(
        demo_server: str, demo_accounts: list[dict[str, Any]]) -> None:
    teacher = account(demo_accounts, "teacher")
    token = await token_for(demo_server, teacher)
    other = await token_for(demo_server, teacher)  # the same user on another device
    async with aiohttp.ClientSession() as http:
        doc_id = await _doc(http, demo_server, token)
        mine = await Everywhere().open(http, demo_server, token, doc_id)
        theirs = await Everywhere().open(http, demo_server, other, doc_id)
        try:
            await _still_open(mine)
            async with http.post(f"{demo_server}/api/logout",
                                 headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200
            await mine.cut()
            await _cannot_send(mine, demo_server, token)
            # only that session ended: the other device stays connected
            await _still_open(theirs)
        finally:
            await mine.close()
            await theirs.close()


@pytest.mark.parametrize("command", [["users", "reset-code"], ["users", "disable"]])
async def test_cli_reset_code_and_disable_cut_connections(
        start_server: StartServer, tmp_path: Path, demo_db_path: Path,
        demo_accounts: list[dict[str, Any]], command: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line cannot reach the server without Redis: the periodic recheck closes
    the connections within seconds."""
    for name, value in engines.db_env(demo_db_path).items():  # the command's database
        monkeypatch.setenv(name, value)
    base = await start_server(make_settings(tmp_path, db_path=demo_db_path,
                                            session_recheck_s=0.5))
    teacher = account(demo_accounts, "teacher")
    token = await token_for(base, teacher)
    async with aiohttp.ClientSession() as http:
        doc_id = await _doc(http, base, token)
        e = await Everywhere().open(http, base, token, doc_id)
        try:
            await _still_open(e)
            result = await asyncio.to_thread(
                CliRunner().invoke, cli, ["--db", str(demo_db_path), *command,
                                          teacher["login"]])
            assert result.exit_code == 0, result.output
            await e.cut()
            await _cannot_send(e, base, token)
        finally:
            await e.close()


async def test_expired_session_is_cut(start_server: StartServer, tmp_path: Path,
                                      demo_db_path: Path,
                                      demo_accounts: list[dict[str, Any]]) -> None:
    base = await start_server(make_settings(tmp_path, db_path=demo_db_path, token_ttl_s=3,
                                            session_recheck_s=0.5))
    teacher = account(demo_accounts, "teacher")
    token = await token_for(base, teacher)
    async with aiohttp.ClientSession() as http:
        doc_id = await _doc(http, base, token)
        e = await Everywhere().open(http, base, token, doc_id)
        try:
            await _still_open(e)
            await e.cut(wait_s=8)
            assert e.ended and e.ws_code == 1008
        finally:
            await e.close()


async def test_logout_on_one_node_cuts_the_other(
        start_server: StartServer, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
        redis_cleanup: aioredis.Redis, demo_accounts: list[dict[str, Any]]) -> None:
    """Two nodes with Redis and no periodic recheck: the pub/sub message alone does it."""
    a, b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix,
                           session_recheck_s=0)
    teacher = account(demo_accounts, "teacher")
    token = await token_for(a, teacher)
    async with aiohttp.ClientSession() as http:
        doc_id = await _doc(http, a, token)
        on_b = await Everywhere().open(http, b, token, doc_id)
        try:
            await _still_open(on_b)
            async with http.post(f"{a}/api/logout",
                                 headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200
            await on_b.cut(wait_s=5)
            await _cannot_send(on_b, b, token)
        finally:
            await on_b.close()


async def test_cli_disable_with_redis_reaches_every_node(
        start_server: StartServer, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
        redis_cleanup: aioredis.Redis, demo_accounts: list[dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import REDIS_URL

    a, b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix,
                           session_recheck_s=0)
    teacher = account(demo_accounts, "teacher")
    token = await token_for(a, teacher)
    async with aiohttp.ClientSession() as http:
        doc_id = await _doc(http, a, token)
        on_a = await Everywhere().open(http, a, token, doc_id)
        on_b = await Everywhere().open(http, b, token, doc_id)
        try:
            monkeypatch.setenv("REDIS_URL", REDIS_URL)
            monkeypatch.setenv("REALTIME_REDIS_PREFIX", redis_prefix)
            for name, value in engines.db_env(demo_db_path).items():
                monkeypatch.setenv(name, value)
            result = await asyncio.to_thread(
                CliRunner().invoke, cli, ["--db", str(demo_db_path), "users", "disable",
                                          teacher["login"]])
            assert result.exit_code == 0, result.output
            await on_a.cut(wait_s=5)
            await on_b.cut(wait_s=5)
            async with http.post(f"{a}/api/login", json={"login": teacher["login"],
                                                         "code": teacher["code"]}) as r:
                assert r.status == 401
        finally:
            await on_a.close()
            await on_b.close()


async def test_deleted_account_is_cut(start_server: StartServer, tmp_path: Path,
                                      demo_db_path: Path,
                                      demo_accounts: list[dict[str, Any]]) -> None:
    """An account deleted from the database by another tool (its sessions go with it, ON
    DELETE CASCADE): the periodic recheck finds the session gone."""

    base = await start_server(make_settings(tmp_path, db_path=demo_db_path,
                                            session_recheck_s=0.5))
    teacher = account(demo_accounts, "teacher")
    token = await token_for(base, teacher)
    async with aiohttp.ClientSession() as http:
        doc_id = await _doc(http, base, token)
        e = await Everywhere().open(http, base, token, doc_id)
        try:
            await _still_open(e)

            def delete() -> None:
                with engines.connect(demo_db_path, timeout=10) as conn:
                    if not engines.POSTGRES:  # PostgreSQL always enforces them
                        conn.execute("PRAGMA foreign_keys=ON")
                    conn.execute("DELETE FROM users WHERE login = ?", (teacher["login"],))

            await asyncio.to_thread(delete)
            await e.cut()
            await _cannot_send(e, base, token)
        finally:
            await e.close()

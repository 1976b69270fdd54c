"""Real servers and real Socket.IO clients for the board tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio
import socketio

from tests.conftest import login

NS = "/boards"


class BoardClient:
    """A real socketio.AsyncClient on /boards that records what the server sends."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token
        self.sio = socketio.AsyncClient(reconnection=False)
        self.ops: list[dict[str, Any]] = []
        self.frames: list[dict[str, Any]] = []  # `ops` frames as received (a batch each)
        self.events: dict[str, list[Any]] = {"pointer": [], "view": [], "pen": [], "state": []}
        self._changed = asyncio.Event()
        self.sio.on("ops", self._on_ops, namespace=NS)
        for name in self.events:
            self.sio.on(name, self._recorder(name), namespace=NS)

    def _recorder(self, name: str) -> Any:
        async def record(data: Any) -> None:
            self.events[name].append(data)
            self._changed.set()
        return record

    async def _on_ops(self, data: dict[str, Any]) -> None:
        """One frame per board tick: its ops in seq order, each recorded with its board."""
        self.frames.append(data)
        self.ops.extend({"board_id": data["board_id"], **op} for op in data["ops"])
        self._changed.set()

    async def connect(self) -> BoardClient:
        await self.sio.connect(self.base, namespaces=[NS], transports=["websocket"],
                               auth={"token": self.token}, wait_timeout=5)
        return self

    async def call(self, event: str, data: Any) -> dict[str, Any]:
        return await self.sio.call(event, data, namespace=NS, timeout=10)

    async def wait_for(self, predicate: Any, wait_s: float = 5) -> None:
        async def loop() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(loop(), wait_s)

    async def wait_seq(self, seq: int) -> None:
        await self.wait_for(lambda: any(o["seq"] >= seq for o in self.ops))

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


@pytest_asyncio.fixture
async def board_client(demo_server: str) -> AsyncIterator[Any]:
    """Factory: `await board_client(account)` → a connected BoardClient."""
    clients: list[BoardClient] = []

    async def make(acct: dict[str, Any], base: str | None = None) -> BoardClient:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            token = await login(s, base or demo_server, acct)
        client = await BoardClient(base or demo_server, token).connect()
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.close()


def stroke(item_id: str, page: str = "p1", n: int = 3, x: float = 0) -> dict[str, Any]:
    return {"type": "add", "item": {"id": item_id, "kind": "stroke", "page_id": page,
                                     "points": [[x + i, x + i] for i in range(n)],
                                     "style": {"color": "#d62828", "width": 6}}}

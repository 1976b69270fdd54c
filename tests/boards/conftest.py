"""Real servers and real Socket.IO clients for the board tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import LiveClient, live_clients

NS = "/boards"


class BoardClient(LiveClient):
    """A real socketio.AsyncClient on /boards that records what the server sends."""

    NS = NS
    EVENTS = ("pointer", "view", "pen", "state", "import", "instrument")

    def __init__(self, base: str, token: str) -> None:
        super().__init__(base, token)
        self.ops: list[dict[str, Any]] = []
        self.frames: list[dict[str, Any]] = []  # `ops` frames as received (a batch each)
        self.sio.on("ops", self._on_ops, namespace=NS)

    @property
    def events(self) -> dict[str, list[Any]]:
        return self.received

    async def _on_ops(self, data: dict[str, Any]) -> None:
        """One frame per board tick: its ops in seq order, each recorded with its board."""
        self.frames.append(data)
        self.ops.extend({"board_id": data["board_id"], **op} for op in data["ops"])
        self.changed()

    async def wait_seq(self, seq: int) -> None:
        await self.wait_for(lambda: any(o["seq"] >= seq for o in self.ops))


@pytest_asyncio.fixture
async def board_client(demo_server: str) -> AsyncIterator[Any]:
    """Factory: `await board_client(account)` → a connected BoardClient."""
    async with live_clients(BoardClient, demo_server) as make:
        yield make


@pytest_asyncio.fixture
async def node_board_client() -> AsyncIterator[Any]:
    """Factory: `await node_board_client(account, base=node)` → a connected BoardClient, for
    tests that start their own nodes (`two_nodes`): no demo server beside them. (On
    PostgreSQL a server without Redis beside nodes with Redis on one database is refused at
    start-up: realtime/node_guard.py.)"""
    async with live_clients(BoardClient, "") as make:
        async def connect(acct: dict[str, Any], base: str, token: str | None = None) -> Any:
            return await make(acct, base=base, token=token)
        yield connect


def stroke(item_id: str, page: str = "p1", n: int = 3, x: float = 0) -> dict[str, Any]:
    return {"type": "add", "item": {"id": item_id, "kind": "stroke", "page_id": page,
                                     "points": [[x + i, x + i] for i in range(n)],
                                     "style": {"color": "#d62828", "width": 6}}}


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Any:
    """The class of the demo's first Charlemagne teacher (test_socket.Cast)."""
    from tests.boards.test_socket import Cast

    return Cast(demo_accounts)

"""A real Socket.IO client for `/presence` that keeps a roster the way the web client does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest_asyncio
import socketio

from realtime.presence.model import Change, Entry, apply
from tests.boards.conftest import board_client  # noqa: F401 (re-exported fixture)
from tests.conftest import LiveClient, token_for

NS = "/presence"


class PresenceClient(LiveClient):
    """Subscribes to scopes, applies changes in version order, refetches on a gap."""

    NS = NS

    def __init__(self, base: str, token: str) -> None:
        super().__init__(base, token)
        self.changes: list[dict[str, Any]] = []
        self.rosters: dict[str, dict[int, Entry]] = {}
        self.positions: dict[str, tuple[str, int]] = {}
        self.refetches = 0
        self.sio.on("presence", self._on_change, namespace=NS)

    async def _on_change(self, data: dict[str, Any]) -> None:
        self.changes.append(data)
        change = msgspec.convert(data, Change)
        epoch, version = self.positions.get(change.scope, ("", -1))
        if change.epoch == epoch and change.version <= version:
            return  # already in the roster we hold
        if change.epoch == epoch and change.version == version + 1:
            apply(self.rosters[change.scope], change)
            self.positions[change.scope] = (epoch, change.version)
        else:  # a gap or a new epoch: the roster we hold is stale
            self.refetches += 1
            await self.subscribe(change.scope)
        self.changed()

    async def subscribe(self, scope: str) -> dict[str, Any]:
        ack = await self.call("subscribe", {"scope": scope})
        if ack["ok"]:
            self.rosters[scope] = {u["id"]: msgspec.convert(u, Entry) for u in ack["users"]}
            self.positions[scope] = (ack["epoch"], ack["version"])
            self.changed()
        return ack

    def ids(self, scope: str) -> set[int]:
        return set(self.rosters.get(scope, {}))


class Tab:
    """An open app tab: a connection on the default namespace (what makes someone online)."""

    def __init__(self, base: str, token: str) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.base, self.token = base, token

    async def open(self) -> Tab:
        await self.sio.connect(self.base, transports=["websocket"], auth={"token": self.token},
                               wait_timeout=5)
        return self

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


@pytest_asyncio.fixture
async def clients() -> AsyncIterator[Any]:
    """`await clients.watcher(base, acct)`, `await clients.tab(base, acct)`; all closed after."""
    opened: list[Any] = []

    class Factory:
        async def watcher(self, base: str, acct: dict[str, Any]) -> PresenceClient:
            c = await PresenceClient(base, await token_for(base, acct)).connect()
            opened.append(c)
            return c

        async def tab(self, base: str, acct: dict[str, Any]) -> Tab:
            t = await Tab(base, await token_for(base, acct)).open()
            opened.append(t)
            return t

    yield Factory()
    for c in opened:
        await c.close()

"""Real Yjs clients for the course-document tests: pycrdt over an aiohttp websocket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pycrdt
import pytest_asyncio
from pycrdt import Doc, XmlFragment

from realtime.coursedocs import protocol as wire
from tests.conftest import account, login

WaitFor = Callable[..., Any]


async def until(predicate: Callable[[], bool], wait_s: float = 10.0) -> None:
    """Poll a condition that other tasks make true (real sockets, real time)."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


class YClient:
    """A pycrdt `Doc` synced with `/yjs/{id}` using pycrdt's own sync helpers (not the
    server's encoder), recording awareness and auth messages."""

    def __init__(self, session: aiohttp.ClientSession, base: str, doc_id: int, token: str
                 ) -> None:
        self.session = session
        self.url = base.replace("http", "ws", 1) + f"/yjs/{doc_id}?token={token}"
        self.doc = Doc()
        self.frag = self.doc.get("prosemirror", type=XmlFragment)
        self.awareness: list[wire.AwarenessEntry] = []
        self.denied: list[str] = []
        self.access: list[str] = []  # "edit" / "read" announced by the server
        self.synced = False
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.close_code: int | None = None
        self._remote = False
        self._reader: asyncio.Task[None] | None = None
        self.doc.observe(self._local)

    def _local(self, event: Any) -> None:
        if self._remote or self.ws is None or event.update == wire.EMPTY_UPDATE:
            return
        asyncio.get_running_loop().create_task(
            self.ws.send_bytes(pycrdt.create_update_message(event.update)))

    async def connect(self) -> YClient:
        self.ws = await self.session.ws_connect(self.url)
        await self.ws.send_bytes(pycrdt.create_sync_message(self.doc))
        self._reader = asyncio.create_task(self._read())
        await until(lambda: self.synced)
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.BINARY:
                break
            m = wire.decode(msg.data)
            if m.kind is wire.MessageType.SYNC:
                self._remote = True
                try:
                    reply = pycrdt.handle_sync_message(msg.data[1:], self.doc)
                finally:
                    self._remote = False
                if reply is not None:
                    await self.ws.send_bytes(reply)
                if m.sync is wire.SyncType.STEP2:
                    self.synced = True
            elif m.kind is wire.MessageType.AWARENESS:
                self.awareness.extend(wire.decode_awareness(m.payload))
            elif m.kind is wire.MessageType.AUTH:
                if m.payload == bytes([wire.ACCESS]):
                    self.access.append(m.reason)
                else:
                    self.denied.append(m.reason)
        self.close_code = self.ws.close_code

    async def send(self, frame: bytes) -> None:
        assert self.ws is not None
        await self.ws.send_bytes(frame)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader

    def text(self) -> str:
        return str(self.frag)


MakeClient = Callable[..., Any]


@pytest_asyncio.fixture
async def yclient(http: aiohttp.ClientSession) -> AsyncIterator[MakeClient]:
    made: list[YClient] = []

    async def make(base: str, doc_id: int, token: str) -> YClient:
        c = await YClient(http, base, doc_id, token).connect()
        made.append(c)
        return c

    yield make
    for c in made:
        if c.ws is not None and not c.ws.closed:
            await c.close()


async def new_doc(http: aiohttp.ClientSession, base: str, token: str,
                  title: str = "Cours d'histoire") -> dict[str, Any]:
    async with http.post(f"{base}/api/docs", json={"title": title},
                         headers={"Authorization": f"Bearer {token}"}) as r:
        body = await r.json()
        assert r.status == 201, body
        return body


def teacher(demo_accounts: list[dict[str, Any]], n: int = 0) -> dict[str, Any]:
    teachers = [a for a in demo_accounts
                if a["role"] == "teacher" and a["school"] == "Collège Charlemagne"]
    return teachers[n]


async def teacher_token(http: aiohttp.ClientSession, base: str,
                        demo_accounts: list[dict[str, Any]], n: int = 0) -> str:
    return await login(http, base, teacher(demo_accounts, n))


__all__ = ["account", "login"]

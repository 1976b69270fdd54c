"""A Socket.IO 5 client over Engine.IO 4, spoken by hand on one aiohttp websocket.

To the server it is the same client as python-socketio's (the same frames: namespace connect
with auth, one acked event to subscribe, ping/pong), at a fraction of the CPU per received
event, so more of a small machine is left to the server under test. The bench's followers
(`bench/boards.py`) and guardians (`bench/attendance_guardians.py`) are both this client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import aiohttp

OnEvent = Callable[[str, Any], None]


class RawSocketIO:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, ns: str, on_event: OnEvent,
                 timeout_s: float) -> None:
        self.ws, self.ns, self.on_event, self.timeout_s = ws, ns, on_event, timeout_s
        self.event_prefix = f"42{ns},"
        self.task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, http: aiohttp.ClientSession, url: str, ns: str, token: str,
                      subscribe: str, data: dict[str, Any], on_event: OnEvent,
                      timeout_s: float = 30) -> RawSocketIO:
        """Connect to `ns` with the token, then send `subscribe` with `data` and wait for
        its `{"ok": true}` ack; events that arrive meanwhile already go to `on_event`."""
        ws_url = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        ws = await http.ws_connect(ws_url, timeout=aiohttp.ClientWSTimeout(ws_close=5))
        self = cls(ws, ns, on_event, timeout_s)
        opened = await ws.receive_str(timeout=timeout_s)
        if not opened.startswith("0"):
            raise RuntimeError(f"unexpected Engine.IO open: {opened[:80]}")
        await ws.send_str(f"40{ns},{json.dumps({'token': token})}")
        await self._expect(f"40{ns},")
        await ws.send_str(f"42{ns},1{json.dumps([subscribe, data])}")
        answer = json.loads((await self._expect(f"43{ns},1"))[len(f"43{ns},1"):])[0]
        if not answer.get("ok"):
            raise RuntimeError(f"{subscribe} refused: {answer}")
        self.task = asyncio.create_task(self._read())
        return self

    async def _expect(self, prefix: str) -> str:
        """The next packet with that prefix (answering pings and handing on early events)."""
        while True:
            data = await self.ws.receive_str(timeout=self.timeout_s)
            if data.startswith(prefix):
                return data
            if data.startswith(f"44{self.ns},"):
                raise RuntimeError(f"connection refused: {data}")
            await self._packet(data)

    async def _packet(self, data: str) -> None:
        if data.startswith(self.event_prefix):
            name, payload = json.loads(data[len(self.event_prefix):])
            self.on_event(name, payload)
        elif data == "2":  # Engine.IO ping
            await self.ws.send_str("3")

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await self._packet(msg.data)

    async def disconnect(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.send_str(f"41{self.ns},")
            await self.ws.close()
        if self.task is not None:
            self.task.cancel()

"""A board follower that survives its server: reconnect anywhere, join with `since`, and keep
a ledger that proves the resume was exact (every seq once, in order, per epoch)."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from tests.conftest import wait_until

NS = "/boards"


class Follower:
    def __init__(self, token: str, board_id: int, placed: bool = False) -> None:
        self.token = token
        self.board_id = board_id
        # placed: the board in the connection's URL, as the web client sends it, so that
        # `serve --workers N` gathers the board's connections on its home worker.
        self.placed = placed
        self.sio: socketio.AsyncClient | None = None
        self.epoch: str | None = None
        self.seq = 0
        self.applied: list[tuple[str, int]] = []  # (epoch, seq) of every op taken in order
        self.items: set[str] = set()  # ids of the strokes added, from ops and snapshots
        self.duplicates = 0
        self.gaps = 0
        self.resets = 0
        self.joins: list[dict[str, Any]] = []
        self.volatile: list[tuple[str, dict[str, Any]]] = []  # pointer and view, as received
        self.disconnected = asyncio.Event()
        self.fresh_join = False  # a snapshot join is on its way: what comes before it is in it
        self._changed = asyncio.Event()

    async def connect(self, base: str) -> Follower:
        """Connect to `base` and join, with our position when we have one."""
        self.disconnected.clear()
        sio = socketio.AsyncClient(reconnection=False)
        sio.on("ops", self._on_ops, namespace=NS)
        sio.on("reset", self._on_reset, namespace=NS)
        sio.on("disconnect", self.disconnected.set, namespace=NS)
        for name in ("pointer", "view"):
            sio.on(name, self._recorder(name), namespace=NS)
        url = f"{base}/?board={self.board_id}" if self.placed else base
        await sio.connect(url, namespaces=[NS], transports=["websocket"],
                          auth={"token": self.token}, wait_timeout=10)
        self.sio = sio
        await self.join()
        return self

    async def join(self) -> dict[str, Any]:
        assert self.sio is not None
        payload: dict[str, Any] = {"board_id": self.board_id}
        if self.epoch is not None:
            payload["since"] = {"epoch": self.epoch, "seq": self.seq}
        answer = await self.sio.call("join", payload, namespace=NS, timeout=15)
        assert answer["ok"], answer
        self.joins.append({"since": payload.get("since"), "ops": len(answer.get("ops", [])),
                           "snapshot": "snapshot" in answer})
        if "snapshot" in answer:
            self.epoch, self.seq = answer["epoch"], answer["seq"]
            self.items = {i["id"] for i in answer["snapshot"]["items"]}
            self.fresh_join = False
        else:
            for message in answer["ops"]:
                self._take(message)
        self._changed.set()
        return answer

    def _recorder(self, name: str) -> Any:
        async def record(data: dict[str, Any]) -> None:
            self.volatile.append((name, data))
            self._changed.set()
        return record

    async def _on_reset(self, data: dict[str, Any]) -> None:
        """The server lost the history: a fresh join gives the whole board."""
        self.resets += 1
        self.epoch = None
        self.fresh_join = True
        await self.join()

    async def _on_ops(self, frame: dict[str, Any]) -> None:
        """One frame per board tick: the ops in seq order."""
        for message in frame["ops"]:
            self._take(message)
        self._changed.set()

    def _take(self, message: dict[str, Any]) -> None:
        if self.fresh_join:
            return  # of the new history, and in the snapshot the join brings
        seq = message["seq"]
        if seq <= self.seq:
            self.duplicates += 1
            return
        if seq != self.seq + 1:
            self.gaps += 1
        self.seq = seq
        self.applied.append((self.epoch or "", seq))
        op = message["op"]
        if op.get("type") == "add":
            self.items.add(op["item"]["id"])

    async def call(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        assert self.sio is not None
        return await self.sio.call(event, {"board_id": self.board_id, **data}, namespace=NS,
                                   timeout=15)

    async def wait_for(self, predicate: Any, wait_s: float = 10) -> None:
        await wait_until(self._changed, predicate, wait_s)

    async def close(self) -> None:
        if self.sio is not None and self.sio.connected:
            await self.sio.disconnect()


def stroke(item_id: str) -> dict[str, Any]:
    return {"type": "add", "item": {"id": item_id, "kind": "stroke", "page_id": "p1",
                                    "points": [[1, 1], [2, 2], [3, 3]],
                                    "style": {"color": "#d62828", "width": 6}}}

"""One open document in memory: its pycrdt `Doc`, its connections, awareness, the write queue.

Order of a change: a connection's update is queued; the writer appends the queued batch to
SQLite in one transaction, then applies it to the `Doc` and relays it. Nothing is relayed, and
nothing reaches the in-memory `Doc` (from which newcomers are synced), before it is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import pycrdt
from aiohttp import web
from pycrdt import Doc

from realtime.coursedocs import protocol as wire
from realtime.coursedocs.protocol import AwarenessEntry
from realtime.identity.model import Principal

log = logging.getLogger(__name__)

RELAY_UPDATE, RELAY_AWARENESS = b"u", b"a"  # see relay.py
SEND_QUEUE_MAX = 2000  # frames waiting for a slow client before it is dropped


class Connection:
    """One websocket on a document, with its own ordered send queue."""

    def __init__(self, ws: web.WebSocketResponse, principal: Principal, can_edit: bool) -> None:
        self.ws = ws
        self.principal = principal
        self.can_edit = can_edit
        self.client_ids: set[int] = set()  # awareness clients this connection announced
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(SEND_QUEUE_MAX)
        self._closing: asyncio.Task[bool] | None = None
        self._sender = asyncio.create_task(self._send_loop(), name="yjs-send")

    def send(self, frame: bytes) -> None:
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("yjs client too slow, closing", extra={"user": self.principal.id})
            self.close_soon(1013, "Connexion trop lente.")

    def close_soon(self, code: int, reason: str) -> None:
        if self._closing is None:  # keep a reference: the loop holds tasks only weakly
            self._closing = asyncio.get_running_loop().create_task(
                self.ws.close(code=code, message=reason.encode("utf-8")[:120]))

    async def _send_loop(self) -> None:
        while True:
            frame = await self._queue.get()
            if frame is None or self.ws.closed:
                return
            try:
                await self.ws.send_bytes(frame)
            except (ConnectionError, RuntimeError):
                return

    async def stop(self) -> None:
        self._sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sender


Persist = Callable[[int, list[bytes]], Awaitable[int]]  # → the last stored update's id
Publish = Callable[[bytes, bytes], Awaitable[None]]  # (kind, payload) to other processes


class Room:
    def __init__(self, doc_id: int, doc: Doc, persist: Persist,
                 publish: Publish | None = None, known_id: int = 0) -> None:
        self.doc_id = doc_id
        self.doc = doc
        # The newest stored update id this room has applied, from its load, its own appends
        # and SQLite catch-ups (relayed updates carry none): what a recheck reads after.
        self.known_id = known_id
        self.conns: set[Connection] = set()
        self.awareness: dict[int, AwarenessEntry] = {}
        self._persist = persist
        self._publish = publish
        self._publishing: set[asyncio.Task[None]] = set()
        self._pending: list[tuple[Connection | None, bytes]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.failed = False
        self._writer = asyncio.create_task(self._write_loop(), name=f"yjs-writer-{doc_id}")

    # --- content ---------------------------------------------------------------------------

    def submit(self, update: bytes, origin: Connection | None) -> None:
        """Queue an update for durable append, then apply + relay (in arrival order)."""
        self._pending.append((origin, update))
        self._idle.clear()
        self._wake.set()

    async def drained(self) -> None:
        """Wait until every queued update is durable and relayed."""
        await self._idle.wait()

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                self._idle.set()
                continue
            try:
                stored_id = await self._persist(self.doc_id, [u for _, u in batch])
            except asyncio.CancelledError:
                raise
            except Exception:
                # Not durable, so not relayed: drop every client; they resync from SQLite.
                log.exception("yjs append failed", extra={"doc_id": self.doc_id})
                self.failed = True
                for c in list(self.conns):
                    c.close_soon(1011, "Enregistrement impossible, reconnectez-vous.")
                self._idle.set()
                continue
            self.known_id = max(self.known_id, stored_id)
            for origin, update in batch:
                self.doc.apply_update(update)
                frame = wire.sync_update(update)
                for c in self.conns:
                    if c is not origin:
                        c.send(frame)
            if self._publish is not None:
                updates = [u for _, u in batch]
                merged = updates[0] if len(updates) == 1 else pycrdt.merge_updates(*updates)
                await self._publish(RELAY_UPDATE, merged)
            if not self._pending:
                self._idle.set()

    async def close(self) -> None:
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    # --- awareness --------------------------------------------------------------------------

    def awareness_update(self, conn: Connection, entries: list[AwarenessEntry]) -> None:
        """Keep the latest state per client and relay to everyone, the sender included (the
        stock y-websocket client expects its own awareness echoed)."""
        for e in entries:
            old = self.awareness.get(e.client_id)
            if old is not None and old.clock > e.clock:
                continue
            if e.removed:
                self.awareness.pop(e.client_id, None)
                conn.client_ids.discard(e.client_id)
            else:
                self.awareness[e.client_id] = e
                conn.client_ids.add(e.client_id)
        encoded = wire.encode_awareness(entries)
        frame = wire.awareness_message(encoded)
        for c in self.conns:
            c.send(frame)
        self._share(RELAY_AWARENESS, encoded)

    def _share(self, kind: bytes, payload: bytes) -> None:
        if self._publish is None:
            return
        task = asyncio.get_running_loop().create_task(self._publish(kind, payload))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    def remote(self, kind: bytes, payload: bytes) -> None:
        """Traffic of another process: already durable there; apply and pass on locally."""
        try:
            if kind == RELAY_UPDATE:
                self.doc.apply_update(payload)
                frame = wire.sync_update(payload)
            elif kind == RELAY_AWARENESS:
                for e in wire.decode_awareness(payload):
                    if e.removed:
                        self.awareness.pop(e.client_id, None)
                    else:
                        self.awareness[e.client_id] = e
                frame = wire.awareness_message(payload)
            else:
                return
        except ValueError:
            log.warning("unreadable yjs relay message", extra={"doc_id": self.doc_id})
            return
        for c in self.conns:
            c.send(frame)

    def catch_up(self, updates: list[bytes], upto_id: int = 0) -> bool:
        """Apply what SQLite holds (after a lost relay) and send clients what they missed;
        True if that was anything. `upto_id`: the newest update id among them."""
        before = self.doc.get_state()
        for u in updates:
            self.doc.apply_update(u)
        self.known_id = max(self.known_id, upto_id)
        diff = self.doc.get_update(before)
        if diff == wire.EMPTY_UPDATE:
            return False
        frame = wire.sync_update(diff)
        for c in self.conns:
            c.send(frame)
        return True

    def awareness_snapshot(self) -> bytes | None:
        if not self.awareness:
            return None
        return wire.awareness_message(wire.encode_awareness(list(self.awareness.values())))

    def forget(self, conn: Connection) -> None:
        """The connection left: its awareness states are removed for everyone else."""
        self.conns.discard(conn)
        gone = [AwarenessEntry(cid, self.awareness[cid].clock + 1, "null")
                for cid in conn.client_ids if cid in self.awareness]
        for e in gone:
            self.awareness.pop(e.client_id, None)
        if gone:
            encoded = wire.encode_awareness(gone)
            frame = wire.awareness_message(encoded)
            for c in self.conns:
                c.send(frame)
            self._share(RELAY_AWARENESS, encoded)

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

import msgspec
import pycrdt
from aiohttp import web
from pycrdt import Doc

from realtime.coursedocs import content
from realtime.coursedocs import protocol as wire
from realtime.coursedocs.protocol import AwarenessEntry
from realtime.identity.model import Principal
from realtime.ratelimit import TokenBucket

log = logging.getLogger(__name__)

RELAY_UPDATE, RELAY_AWARENESS = b"u", b"a"  # see relay.py
SEND_QUEUE_MAX = 2000  # frames waiting for a slow client before it is dropped
SYNC_BURST, SYNC_PER_S = 4, 0.5  # whole-document answers (sync step 2) per connection
CLOSE_WAIT_S = 2.0  # for the client's answer to a close, before the connection is cut
SYNC_DEFERRED_MAX = 20  # step 1 requests waiting for the budget before the client is closed


class Limits(msgspec.Struct, frozen=True):
    """Per-connection bounds (settings `docs_*`)."""

    queue_bytes: int = 16 * 1024 * 1024
    awareness_clients: int = 8
    awareness_bytes: int = 4096


class Connection:
    """One websocket on a document, with its own ordered send queue, bounded in frames and
    in bytes: a client that does not read is closed (1013) and what was queued is freed."""

    def __init__(self, ws: web.WebSocketResponse, principal: Principal, can_edit: bool,
                 limits: Limits | None = None,
                 transport: asyncio.BaseTransport | None = None) -> None:
        self.ws = ws
        self.transport = transport
        self.principal = principal
        self.can_edit = can_edit
        self.limits = limits or Limits()
        self.client_ids: set[int] = set()  # awareness clients this connection announced
        self.queued_bytes = 0
        self.sync_budget = TokenBucket(SYNC_PER_S, SYNC_BURST)
        self.sync_deferred: bytes | None = None  # the latest step 1 waiting for the budget
        self.sync_waiting = 0
        self.sync_timer: asyncio.TimerHandle | None = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(SEND_QUEUE_MAX)
        self._closing: asyncio.Task[bool] | None = None
        self._sender: asyncio.Task[None] | None = asyncio.create_task(
            self._send_loop(), name="yjs-send")

    @property
    def closing(self) -> bool:
        return self._closing is not None or self.ws.closed

    def send(self, frame: bytes) -> None:
        if self._closing is not None:
            return
        if self.queued_bytes + len(frame) > self.limits.queue_bytes or self._queue.full():
            log.warning("yjs client too slow, closing", extra={"user": self.principal.id,
                                                                "queued": self.queued_bytes})
            self.close_soon(1013, "Connexion trop lente.")
            return
        self._queue.put_nowait(frame)
        self.queued_bytes += len(frame)

    def close_soon(self, code: int, reason: str) -> None:
        if self._closing is None:  # keep a reference: the loop holds tasks only weakly
            self._drop_queue()
            self._closing = asyncio.get_running_loop().create_task(self.shut(code, reason))

    async def shut(self, code: int, reason: str) -> bool:
        """Close with `code`; a client that does not read cannot even take the close frame
        (the write waits for it forever): after CLOSE_WAIT_S the TCP connection is cut."""
        self._drop_queue()
        try:
            await asyncio.wait_for(
                self.ws.close(code=code, message=reason.encode("utf-8")[:120]), CLOSE_WAIT_S)
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        if not self.ws.closed or self.ws.close_code is None:
            if self.transport is not None:
                self.transport.abort()
        return True

    def _drop_queue(self) -> None:
        """Free what was waiting for this client, at once."""
        while not self._queue.empty():
            self._queue.get_nowait()
        self.queued_bytes = 0
        self.sync_deferred = None
        if self.sync_timer is not None:
            self.sync_timer.cancel()
            self.sync_timer = None

    async def _send_loop(self) -> None:
        while True:
            frame = await self._queue.get()
            if frame is None or self.ws.closed:
                return
            self.queued_bytes -= len(frame)
            try:
                await self.ws.send_bytes(frame)
            except (ConnectionError, RuntimeError) as exc:
                # aiohttp keeps this exception (its protocol's drain future, reachable from
                # `self.ws`); its traceback holds this frame, so `self`: a reference cycle
                # that kept a dead connection and its queue in memory until a full GC.
                exc.__traceback__ = None
                return

    async def stop(self) -> None:
        """The socket is gone: end the sender, drop the queue and every reference that would
        keep this object alive (see `_send_loop`: a cycle only a full GC would free, with
        whatever was queued in it)."""
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        self._drop_queue()
        self._closing = None


Persist = Callable[[int, list[bytes]], Awaitable[int]]  # → the last stored update's id
Publish = Callable[[bytes, bytes], Awaitable[None]]  # (kind, payload) to other processes


class Room:
    def __init__(self, doc_id: int, doc: Doc, persist: Persist,
                 publish: Publish | None = None, known_id: int = 0,
                 limits: content.Limits | None = None) -> None:
        self.doc_id = doc_id
        self.doc = doc
        # Where clients' updates are tried (nesting depth) before they are queued.
        self.gate = content.Gate([doc.get_update()], limits or content.Limits())
        self._inflight: list[bytes] = []
        # The newest stored update id this room has applied, from its load, its own appends
        # and SQLite catch-ups (relayed updates carry none): what a recheck reads after.
        self.known_id = known_id
        self.conns: set[Connection] = set()
        self.awareness: dict[int, AwarenessEntry] = {}
        # Who may change each awareness client: the connection that announced it, or None
        # for one announced on another process (relayed).
        self.owners: dict[int, Connection | None] = {}
        self.awareness_refused = 0
        self._persist = persist
        self._publish = publish
        self._publishing: set[asyncio.Task[None]] = set()
        self._pending: list[tuple[Connection | None, bytes]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.failed = False
        self._writer: asyncio.Task[None] | None = asyncio.create_task(
            self._write_loop(), name=f"yjs-writer-{doc_id}")

    # --- content ---------------------------------------------------------------------------

    def admit(self, update: bytes, origin: Connection) -> None:
        """A client's update: checked (content.Gate: well-formed, nodes, depth), then queued.
        Raises BadUpdate / TooDeep and queues nothing when it is refused."""
        try:
            self.gate.admit(update)
        except Exception:
            # The gate may hold the refused update now: rebuild it from what is real.
            self.gate.reset([self.doc.get_update(), *self._inflight,
                             *(u for _, u in self._pending)])
            raise
        self.submit(update, origin, checked=True)

    def submit(self, update: bytes, origin: Connection | None, checked: bool = False) -> None:
        """Queue an update for durable append, then apply + relay (in arrival order)."""
        if not checked:
            self.gate.follow(update)
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
        """Append what is queued, then apply and send it. No connection stays referenced
        from here while the loop waits for the next batch (the connections are touched in
        `_fan_out` and `_drop_everyone` only): one that left must be freed at once."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                self._idle.set()
                continue
            self._inflight = [u for _, u in batch]
            try:
                stored_id = await self._persist(self.doc_id, self._inflight)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Not durable, so not relayed: drop every client; they resync from SQLite.
                log.exception("yjs append failed", extra={"doc_id": self.doc_id})
                self.failed = True
                batch = []
                self._drop_everyone()
                self._idle.set()
                continue
            self.known_id = max(self.known_id, stored_id)
            updates, self._inflight = self._inflight, []
            self._fan_out(batch)
            batch = []
            if self._publish is not None:
                merged = updates[0] if len(updates) == 1 else pycrdt.merge_updates(*updates)
                await self._publish(RELAY_UPDATE, merged)
            if not self._pending:
                self._idle.set()

    def _fan_out(self, batch: list[tuple[Connection | None, bytes]]) -> None:
        for origin, update in batch:
            self.doc.apply_update(update)
            frame = wire.sync_update(update)
            for c in self.conns:
                if c is not origin:
                    c.send(frame)

    def _drop_everyone(self) -> None:
        for c in list(self.conns):
            c.close_soon(1011, "Enregistrement impossible, reconnectez-vous.")

    async def close(self) -> None:
        """Stop the writer and let go of it: its coroutine holds `self`, a cycle that would
        keep the whole document in memory until a full garbage collection."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    # --- awareness --------------------------------------------------------------------------

    def awareness_update(self, conn: Connection, entries: list[AwarenessEntry]) -> None:
        """Keep the latest state per client and relay to everyone, the sender included (the
        stock y-websocket client expects its own awareness echoed).

        A connection changes only the clients it announced (a stock client also re-sends the
        states it heard, and drops others' after 30 s: those are ignored, never relayed), at
        most `awareness_clients` of them, each state at most `awareness_bytes`. Another
        connection of the same person may take a client over (a reconnection)."""
        limits = conn.limits
        accepted = []
        for e in entries:
            owner = self.owners.get(e.client_id, conn)
            if owner is not conn and (owner is None
                                      or owner.principal.id != conn.principal.id):
                self.awareness_refused += 1  # someone else's: the teacher's stays theirs
                continue
            old = self.awareness.get(e.client_id)
            if old is not None and old.clock > e.clock:
                continue
            if e.removed:
                if old is None:
                    continue
                self.awareness.pop(e.client_id, None)
                self.owners.pop(e.client_id, None)
                conn.client_ids.discard(e.client_id)
                accepted.append(e)
                continue
            if (len(e.state) > limits.awareness_bytes
                    or len(e.state.encode("utf-8")) > limits.awareness_bytes):
                self.awareness_refused += 1
                continue
            if (e.client_id not in conn.client_ids
                    and len(conn.client_ids) >= limits.awareness_clients):
                self.awareness_refused += 1
                continue
            if owner is not conn:
                owner.client_ids.discard(e.client_id)
            self.awareness[e.client_id] = e
            self.owners[e.client_id] = conn
            conn.client_ids.add(e.client_id)
            accepted.append(e)
        if not accepted:
            return
        encoded = wire.encode_awareness(accepted)
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
                self.gate.follow(payload)
                frame = wire.sync_update(payload)
            elif kind == RELAY_AWARENESS:
                kept = []
                for e in wire.decode_awareness(payload):
                    if self.owners.get(e.client_id) is not None:
                        continue  # one of ours: only its own connection changes it
                    if e.removed:
                        self.awareness.pop(e.client_id, None)
                        self.owners.pop(e.client_id, None)
                    else:
                        self.awareness[e.client_id] = e
                        self.owners[e.client_id] = None
                    kept.append(e)
                if not kept:
                    return
                frame = wire.awareness_message(wire.encode_awareness(kept))
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
            self.gate.follow(u)
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
        for cid in conn.client_ids:
            if self.owners.get(cid) is conn:
                del self.owners[cid]
        conn.client_ids.clear()
        if gone:
            encoded = wire.encode_awareness(gone)
            frame = wire.awareness_message(encoded)
            for c in self.conns:
                c.send(frame)
            self._share(RELAY_AWARENESS, encoded)

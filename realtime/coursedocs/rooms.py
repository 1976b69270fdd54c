"""The course documents open in this process: `DocRooms` loads a document into a `Room` when
its first reader comes, relays its updates between processes (Redis), persists them,
compacts the log, and unloads the room once the last reader has gone and the write is
durable. It speaks the Yjs sync protocol with each connection.

Nothing here decides who may read or write: `DocService` decides before a connection joins
(and sets its `can_edit`), and hears from the rooms when an update was stored
(`persisted`) and when a room is about to leave memory (`unloading`), for its webhooks and
automatic versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import redis.asyncio as aioredis
from pycrdt import Doc

from realtime.coursedocs import content, store
from realtime.coursedocs import protocol as wire
from realtime.coursedocs.relay import Relay
from realtime.coursedocs.room import SYNC_DEFERRED_MAX, SYNC_PER_S, Connection, Room
from realtime.coursedocs.room import Limits as ConnLimits
from realtime.db import Database
from realtime.lease import Leases
from realtime.settings import Settings

log = logging.getLogger(__name__)

READ_ONLY = "Document en lecture seule : vos modifications ne sont pas enregistrées."


class Throttled(ValueError):
    """A client past a per-connection budget (the message is for people)."""


async def _nothing(*_: object) -> None:
    return None


class DocRooms:
    def __init__(self, db: Database, settings: Settings,
                 clock: Callable[[], float] = time.time, redis: aioredis.Redis | None = None,
                 persisted: Callable[[int, float], Awaitable[None]] = _nothing,
                 unloading: Callable[[int], Awaitable[None]] = _nothing) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.relay = Relay(redis, settings.redis_prefix) if redis is not None else None
        self.leases = Leases(redis, settings.redis_prefix)
        self.persisted = persisted
        self.unloading = unloading
        self._rooms: dict[int, Room] = {}
        self._inbox: dict[int, list[tuple[bytes, bytes]]] = {}
        self._opening: dict[int, asyncio.Lock] = {}
        self._holders: dict[int, int] = {}
        self._appended: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._compacting: set[int] = set()
        self._rechecker: asyncio.Task[None] | None = None
        self.gaps_caught_up = 0  # rechecks that found stored updates the relay never brought
        self._awareness_refused = 0  # of rooms that left memory
        self.content_limits = content.Limits(max_depth=settings.docs_max_depth,
                                             max_nodes=settings.docs_max_nodes)
        self.conn_limits = ConnLimits(queue_bytes=settings.docs_send_queue_bytes,
                                      awareness_clients=settings.docs_awareness_clients,
                                      awareness_bytes=settings.docs_awareness_bytes)

    # --- what is open ---------------------------------------------------------------------

    def get(self, doc_id: int) -> Room | None:
        return self._rooms.get(doc_id)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._rooms

    def __getitem__(self, doc_id: int) -> Room:
        return self._rooms[doc_id]

    def values(self) -> list[Room]:
        return list(self._rooms.values())

    def connected(self) -> int:
        """Open /yjs connections in this process (metrics)."""
        return sum(len(r.conns) for r in self._rooms.values())

    def awareness_refused(self) -> int:
        """Awareness entries the rooms ignored, those of rooms that left memory included."""
        return self._awareness_refused + sum(r.awareness_refused for r in self._rooms.values())

    # --- loading and unloading ---------------------------------------------------------------

    async def open(self, doc_id: int) -> Room:
        room = self._rooms.get(doc_id)
        if room is not None and not room.failed:
            return room
        lock = self._opening.setdefault(doc_id, asyncio.Lock())
        async with lock:
            room = self._rooms.get(doc_id)
            if room is None or room.failed:
                publish = None
                if self.relay is not None:
                    # Subscribe before loading: whatever commits after the load is heard.
                    self._inbox[doc_id] = []
                    await self.relay.subscribe(doc_id, self._relayed(doc_id),
                                               self._resync(doc_id))
                    publish = self._publisher(doc_id)
                stored = await store.load(self.db, doc_id)
                room = Room(doc_id, content.build(stored.all_updates()), self._persist, publish,
                            known_id=stored.last_id, limits=self.content_limits)
                self._rooms[doc_id] = room
                if self.relay is not None and self._rechecker is None:
                    self._rechecker = asyncio.create_task(self._rechecks(),
                                                          name="yjs-rechecks")
                for kind, payload in self._inbox.pop(doc_id, []):
                    room.remote(kind, payload)
            return room

    def _relayed(self, doc_id: int) -> Callable[[bytes, bytes], None]:
        def deliver(kind: bytes, payload: bytes) -> None:
            inbox = self._inbox.get(doc_id)
            room = self._rooms.get(doc_id)
            if inbox is not None:
                inbox.append((kind, payload))  # still loading
            elif room is not None:
                room.remote(kind, payload)
        return deliver

    def _resync(self, doc_id: int) -> Callable[[], None]:
        def resync() -> None:
            async def catch_up() -> None:
                room = self._rooms.get(doc_id)
                if room is not None:  # what was stored after what it knows, as a recheck reads
                    await self.catch_up_stored(room)
            self.spawn(catch_up())
        return resync

    async def _rechecks(self) -> None:
        """With Redis, every `docs_recheck_s`: each open document reads the updates stored
        after the newest it knows of. Pub/sub is at-most-once, and a process killed between
        its commit and its publish never relays that update: without this, the other
        processes' clients would lack it until the document was reopened (and a later edit
        depending on it would stay pending in their Yjs documents). Updates the relay did
        bring come back too (their ids travel with none) and change nothing."""
        while True:
            await asyncio.sleep(self.settings.docs_recheck_s)
            for room in list(self._rooms.values()):
                if self._rooms.get(room.doc_id) is not room or room.failed:
                    continue
                try:
                    await self.catch_up_stored(room)
                except Exception:  # the next round tries again
                    log.exception("yjs recheck failed", extra={"doc_id": room.doc_id})

    async def catch_up_stored(self, room: Room) -> bool:
        """`room` reads from SQLite what was stored after the newest update it knows of (the
        whole document if a compaction went past it); True if that brought something new."""
        known = room.known_id
        later = await store.updates_after(self.db, room.doc_id, known)
        if later.upto > known:  # compacted past what we know: read the whole document
            later = await store.load(self.db, room.doc_id)
        if not later.updates and later.upto <= known:
            return False
        found = room.catch_up(later.all_updates(), later.last_id)
        if found:
            self.gaps_caught_up += 1
            log.warning("yjs update missed by the relay, caught up from SQLite",
                        extra={"doc_id": room.doc_id, "after": known, "upto": later.last_id})
        return found

    def _publisher(self, doc_id: int) -> Callable[[bytes, bytes], Awaitable[None]]:
        relay = self.relay
        assert relay is not None

        async def publish(kind: bytes, payload: bytes) -> None:
            await relay.publish(doc_id, kind, payload)
        return publish

    @contextlib.asynccontextmanager
    async def using(self, doc_id: int) -> AsyncIterator[Room]:
        self._holders[doc_id] = self._holders.get(doc_id, 0) + 1
        try:
            yield await self.open(doc_id)
        finally:
            self._holders[doc_id] -= 1
            if not self._holders[doc_id]:
                del self._holders[doc_id]
            self._maybe_unload(doc_id)

    async def join(self, doc_id: int, conn: Connection) -> Room:
        """`conn` (whose access the service decided) joins the document's room."""
        self._holders[doc_id] = self._holders.get(doc_id, 0) + 1
        try:
            room = await self.open(doc_id)
        finally:
            self._holders[doc_id] -= 1
            if not self._holders[doc_id]:
                del self._holders[doc_id]
        room.conns.add(conn)
        # Like y-websocket's server: ask for what the client has, tell who is here.
        conn.send(wire.sync_step1(room.doc.get_state()))
        snapshot = room.awareness_snapshot()
        if snapshot is not None:
            conn.send(snapshot)
        return room

    def leave(self, room: Room, conn: Connection) -> None:
        room.forget(conn)
        self._maybe_unload(room.doc_id)

    def _maybe_unload(self, doc_id: int) -> None:
        room = self._rooms.get(doc_id)
        if room is not None and not room.conns and not self._holders.get(doc_id):
            self.spawn(self._unload(room))

    async def _unload(self, room: Room) -> None:
        """Leave memory once the last client has gone AND the pending write is durable."""
        await room.drained()
        if room.conns or self._holders.get(room.doc_id) or self._rooms.get(room.doc_id) is not room:
            return
        del self._rooms[room.doc_id]
        self._awareness_refused += room.awareness_refused
        self._opening.pop(room.doc_id, None)
        await room.close()
        if self.relay is not None:
            await self.relay.unsubscribe(room.doc_id)
        await self.unloading(room.doc_id)
        if self._appended.pop(room.doc_id, 0):
            await self.compact(room.doc_id)

    def spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _persist(self, doc_id: int, updates: list[bytes]) -> int:
        now = self.clock()
        stored_id = await store.append(self.db, doc_id, updates, now)
        n = self._appended.get(doc_id, 0) + len(updates)
        self._appended[doc_id] = n
        if n >= self.settings.docs_compact_every:
            self._appended[doc_id] = 0
            self.spawn(self.compact(doc_id))
        await self.persisted(doc_id, now)
        return stored_id

    def handle(self, room: Room, conn: Connection, frame: bytes) -> None:
        """One y-protocols frame from a client. Raises ProtocolError / BadUpdate on garbage,
        TooDeep past a structure limit, Throttled for a client asking the whole document
        again and again."""
        msg = wire.decode(frame)
        if msg.kind is wire.MessageType.SYNC:
            if msg.sync is wire.SyncType.STEP1:
                self._step1(room, conn, msg.payload)
                return
            if msg.payload == wire.EMPTY_UPDATE:
                return
            if not conn.can_edit:
                conn.send(wire.permission_denied(READ_ONLY))
                return
            room.admit(msg.payload, conn)
        elif msg.kind is wire.MessageType.AWARENESS:
            room.awareness_update(conn, wire.decode_awareness(msg.payload))
        elif msg.kind is wire.MessageType.QUERY_AWARENESS:
            snapshot = room.awareness_snapshot()
            if snapshot is not None:
                conn.send(snapshot)

    def _step1(self, room: Room, conn: Connection, state_vector: bytes) -> None:
        """Answer a sync step 1 with what the client lacks: up to the whole document, so a
        connection gets SYNC_BURST answers, then one every 1/SYNC_PER_S s. Requests beyond
        that wait (only the latest is kept, answered when the budget allows); past
        SYNC_DEFERRED_MAX waiting ones the client is closed."""
        content.client_ids(state_vector)  # ProtocolError if it is not a state vector
        if conn.sync_deferred is None and conn.sync_budget.take():
            self._answer(room, conn, state_vector)
            return
        conn.sync_deferred = state_vector
        conn.sync_waiting += 1
        if conn.sync_waiting > SYNC_DEFERRED_MAX:
            raise Throttled("Trop de demandes de synchronisation.")
        if conn.sync_timer is None:
            delay = 1 / SYNC_PER_S
            conn.sync_timer = asyncio.get_running_loop().call_later(
                delay, self._deferred_answer, room, conn)

    def _deferred_answer(self, room: Room, conn: Connection) -> None:
        conn.sync_timer = None
        state_vector, conn.sync_deferred = conn.sync_deferred, None
        if state_vector is None or conn.closing or conn not in room.conns:
            return
        conn.sync_budget.take()
        conn.sync_waiting = 0
        try:
            self._answer(room, conn, state_vector)
        except wire.ProtocolError:
            conn.close_soon(1007, "Message Yjs invalide.")

    @staticmethod
    def _answer(room: Room, conn: Connection, state_vector: bytes) -> None:
        try:
            diff = room.doc.get_update(state_vector)
        except Exception as exc:
            raise wire.ProtocolError("bad state vector") from exc
        conn.send(wire.sync_step2(diff))

    # --- compaction and durable content -----------------------------------------------------

    async def compact(self, doc_id: int) -> bool:
        """Fold the update log into the snapshot. Safe while edits keep arriving.

        Every process with the document open counts its appends and would compact: the lease
        `doc:<id>` lets one of them do it while the others skip (False). The commit is a
        compare-and-set on the snapshot position anyway, so an overlap past the lease's TTL
        costs a wasted merge, never content."""
        if doc_id in self._compacting:
            return False
        self._compacting.add(doc_id)
        try:
            async with self.leases.hold(f"doc:{doc_id}") as mine:
                if not mine:
                    return False
                read = await store.load(self.db, doc_id)
                if not read.updates:
                    return False
                merged = await asyncio.to_thread(content.merge, read.all_updates())
                return await store.commit_compaction(self.db, doc_id, read, merged)
        except Exception:
            log.exception("compaction failed", extra={"doc_id": doc_id})
            return False
        finally:
            self._compacting.discard(doc_id)

    async def state(self, doc_id: int) -> bytes:
        """The durable content as one Yjs update (what SQLite holds, not what is in flight)."""
        room = self._rooms.get(doc_id)
        if room is not None:
            await room.drained()
        read = await store.load(self.db, doc_id)
        updates = read.all_updates()
        if not updates:
            return Doc().get_update()
        return await asyncio.to_thread(content.merge, updates)

    async def disconnect_everyone(self) -> None:
        """SIGTERM: tell clients to come back later (y-websocket reconnects by itself)."""
        for room in list(self._rooms.values()):
            for c in list(room.conns):
                await c.ws.close(code=1001, message="Redémarrage du serveur.".encode())

    async def close(self) -> None:
        """Shutdown: close clients, let pending writes and background work finish."""
        if self._rechecker is not None:
            self._rechecker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rechecker
            self._rechecker = None
        await self.disconnect_everyone()
        for room in list(self._rooms.values()):
            await room.drained()
            await room.close()
        self._rooms.clear()
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        if self.relay is not None:
            await self.relay.close()

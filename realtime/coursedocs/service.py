"""Course documents: the only place that decides (policy), persists, and keeps rooms alive."""

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
from realtime.coursedocs.model import LABEL_MAX, TITLE_MAX, ClassMode, DocMeta, Version
from realtime.coursedocs.relay import Relay
from realtime.coursedocs.room import Connection, Room
from realtime.coursedocs.webhook import Change, Notifier
from realtime.db import Database
from realtime.directory import reads as directory
from realtime.errors import AppError, not_found
from realtime.identity.model import Principal, Role
from realtime.lease import Leases
from realtime.policy import Action, SchoolRef, may
from realtime.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from realtime.settings import Settings

log = logging.getLogger(__name__)

READ_ONLY = "Document en lecture seule : vos modifications ne sont pas enregistrées."
ACTIONS_PER_MINUTE = 30  # creations, versions, restores per user: each one stores a state
MAX_EDITORS = 50
MAX_CLASSES = 50


def _clean(text: str, limit: int, what: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise AppError("invalid", f"{what} ne peut pas être vide.")
    if len(text) > limit:
        raise AppError("invalid", f"{what} est trop long ({limit} caractères au plus).")
    return text


class DocService:
    def __init__(self, db: Database, settings: Settings,
                 clock: Callable[[], float] = time.time, redis: aioredis.Redis | None = None
                 ) -> None:
        self.db = db
        self.relay = Relay(redis, settings.redis_prefix) if redis is not None else None
        self.leases = Leases(redis, settings.redis_prefix)
        self.limiter: RateLimiter = (
            RedisRateLimiter(redis, f"{settings.redis_prefix}:docs", ACTIONS_PER_MINUTE, 60)
            if redis is not None else MemoryRateLimiter(ACTIONS_PER_MINUTE, 60))
        self._inbox: dict[int, list[tuple[bytes, bytes]]] = {}
        self.settings = settings
        self.clock = clock
        self.rooms: dict[int, Room] = {}
        self.notifier = Notifier(settings.docs_webhook_url, settings.docs_webhook_secret,
                                 settings.docs_webhook_debounce_s)
        self._opening: dict[int, asyncio.Lock] = {}
        self._holders: dict[int, int] = {}
        self._appended: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._compacting: set[int] = set()
        self._rechecker: asyncio.Task[None] | None = None
        self.gaps_caught_up = 0  # rechecks that found stored updates the relay never brought

    # --- metadata ------------------------------------------------------------------------

    async def _budget(self, p: Principal) -> None:
        """Each creation, version or restore stores a whole state: bound them per user."""
        key = f"user:{p.id}"
        if await self.limiter.hit(key) > self.limiter.limit:
            raise AppError("rate_limited", "Trop d'opérations sur les cours. Réessayez dans "
                           "une minute.", retry_after=await self.limiter.retry_after(key))

    async def create(self, p: Principal, title: str) -> DocMeta:
        if p.school_id is None or not may(p, Action.CREATE_DOC, SchoolRef(p.school_id)):
            raise AppError("forbidden", "Seuls les enseignants créent des documents de cours.")
        await self._budget(p)
        return await store.create(self.db, school_id=p.school_id, owner_id=p.id,
                                  title=_clean(title, TITLE_MAX, "Le titre"), now=self.clock())

    async def visible(self, p: Principal, doc_id: int) -> DocMeta:
        meta = await store.get(self.db, doc_id)
        if meta is None or not may(p, Action.VIEW_DOC, meta.ref()):
            raise not_found("Document introuvable.")
        return meta

    async def allowed(self, p: Principal, doc_id: int, action: Action) -> DocMeta:
        meta = await self.visible(p, doc_id)
        if not may(p, action, meta.ref()):
            raise AppError("forbidden")
        return meta

    async def listing(self, p: Principal) -> list[DocMeta]:
        found = await store.candidates(self.db, p.id, p.class_ids)
        return [m for m in found if may(p, Action.VIEW_DOC, m.ref())]

    async def rename(self, p: Principal, doc_id: int, title: str) -> DocMeta:
        meta = await self.allowed(p, doc_id, Action.MANAGE_DOC)
        await store.rename(self.db, meta.id, _clean(title, TITLE_MAX, "Le titre"), self.clock())
        return await self._changed(meta.id)

    async def share(self, p: Principal, doc_id: int, editors: list[int],
                    classes: dict[int, ClassMode]) -> DocMeta:
        meta = await self.allowed(p, doc_id, Action.MANAGE_DOC)
        if len(editors) > MAX_EDITORS or len(classes) > MAX_CLASSES:
            raise AppError("too_large", "Trop de personnes ou de classes.")
        wanted = set(editors) - {meta.owner_id}
        if wanted:
            found = await directory.users(self.db, wanted)
            if len(wanted) != sum(1 for u in found.values() if u.role is Role.TEACHER
                                  and u.school_id == meta.school_id and not u.disabled):
                raise AppError("invalid", "Co-éditeurs : enseignants de l'établissement seulement.")
        if classes:
            known = await directory.classes(self.db, classes)
            if len(classes) != sum(1 for c in known.values() if c.school_id == meta.school_id):
                raise AppError("invalid", "Classes : celles de l'établissement seulement.")
        await store.share(self.db, meta.id, wanted, classes, self.clock())
        updated = await self._changed(meta.id)
        self._recheck(updated)
        return updated

    async def delete(self, p: Principal, doc_id: int) -> None:
        meta = await self.allowed(p, doc_id, Action.MANAGE_DOC)
        room = self.rooms.get(meta.id)
        if room is not None:
            await room.drained()
        await store.delete(self.db, meta.id)
        if room is not None:
            for c in list(room.conns):
                c.close_soon(4404, "Document supprimé.")
        self.notifier.changed(Change("course.deleted", meta.id, meta.school_id, meta.title,
                                     self.clock()))

    async def _changed(self, doc_id: int) -> DocMeta:
        meta = await store.get(self.db, doc_id)
        if meta is None:
            raise not_found("Document introuvable.")
        self.notifier.changed(Change("course.changed", meta.id, meta.school_id, meta.title,
                                     meta.updated_at))
        return meta

    def _recheck(self, meta: DocMeta) -> None:
        """Access changed: drop connections that lost it, adjust who may write."""
        room = self.rooms.get(meta.id)
        if room is None:
            return
        ref = meta.ref()
        for c in list(room.conns):
            if not may(c.principal, Action.VIEW_DOC, ref):
                c.close_soon(4403, "Ce document ne vous est plus partagé.")
            c.can_edit = may(c.principal, Action.EDIT_DOC, ref)

    # --- rooms ----------------------------------------------------------------------------

    async def _open(self, doc_id: int) -> Room:
        room = self.rooms.get(doc_id)
        if room is not None and not room.failed:
            return room
        lock = self._opening.setdefault(doc_id, asyncio.Lock())
        async with lock:
            room = self.rooms.get(doc_id)
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
                            known_id=stored.last_id)
                self.rooms[doc_id] = room
                if self.relay is not None and self._rechecker is None:
                    self._rechecker = asyncio.create_task(self._rechecks(),
                                                          name="yjs-rechecks")
                for kind, payload in self._inbox.pop(doc_id, []):
                    room.remote(kind, payload)
            return room

    def _relayed(self, doc_id: int) -> Callable[[bytes, bytes], None]:
        def deliver(kind: bytes, payload: bytes) -> None:
            inbox = self._inbox.get(doc_id)
            room = self.rooms.get(doc_id)
            if inbox is not None:
                inbox.append((kind, payload))  # still loading
            elif room is not None:
                room.remote(kind, payload)
        return deliver

    def _resync(self, doc_id: int) -> Callable[[], None]:
        def resync() -> None:
            async def catch_up() -> None:
                room = self.rooms.get(doc_id)
                if room is not None:  # what was stored after what it knows, as a recheck reads
                    await self.catch_up_stored(room)
            self._spawn(catch_up())
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
            for room in list(self.rooms.values()):
                if self.rooms.get(room.doc_id) is not room or room.failed:
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
    async def _using(self, doc_id: int) -> AsyncIterator[Room]:
        self._holders[doc_id] = self._holders.get(doc_id, 0) + 1
        try:
            yield await self._open(doc_id)
        finally:
            self._holders[doc_id] -= 1
            if not self._holders[doc_id]:
                del self._holders[doc_id]
            self._maybe_unload(doc_id)

    async def join(self, meta: DocMeta, conn: Connection) -> Room:
        self._holders[meta.id] = self._holders.get(meta.id, 0) + 1
        try:
            room = await self._open(meta.id)
        finally:
            self._holders[meta.id] -= 1
            if not self._holders[meta.id]:
                del self._holders[meta.id]
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
        room = self.rooms.get(doc_id)
        if room is not None and not room.conns and not self._holders.get(doc_id):
            self._spawn(self._unload(room))

    async def _unload(self, room: Room) -> None:
        """Leave memory once the last client has gone AND the pending write is durable."""
        await room.drained()
        if room.conns or self._holders.get(room.doc_id) or self.rooms.get(room.doc_id) is not room:
            return
        del self.rooms[room.doc_id]
        self._opening.pop(room.doc_id, None)
        await room.close()
        if self.relay is not None:
            await self.relay.unsubscribe(room.doc_id)
        if self._appended.pop(room.doc_id, 0):
            await self.compact(room.doc_id)

    def _spawn(self, coro: object) -> None:
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
            self._spawn(self.compact(doc_id))
        meta = await store.get(self.db, doc_id) if self.notifier.enabled else None
        if meta is not None:
            self.notifier.changed(Change("course.changed", meta.id, meta.school_id, meta.title,
                                         now))
        return stored_id

    def handle(self, room: Room, conn: Connection, frame: bytes) -> None:
        """One y-protocols frame from a client. Raises ProtocolError / BadUpdate on garbage."""
        msg = wire.decode(frame)
        if msg.kind is wire.MessageType.SYNC:
            if msg.sync is wire.SyncType.STEP1:
                try:
                    diff = room.doc.get_update(msg.payload)
                except Exception as exc:
                    raise wire.ProtocolError("bad state vector") from exc
                conn.send(wire.sync_step2(diff))
                return
            if msg.payload == wire.EMPTY_UPDATE:
                return
            if not conn.can_edit:
                conn.send(wire.permission_denied(READ_ONLY))
                return
            content.check_update(msg.payload)
            room.submit(msg.payload, conn)
        elif msg.kind is wire.MessageType.AWARENESS:
            room.awareness_update(conn, wire.decode_awareness(msg.payload))
        elif msg.kind is wire.MessageType.QUERY_AWARENESS:
            snapshot = room.awareness_snapshot()
            if snapshot is not None:
                conn.send(snapshot)

    # --- content, compaction, versions -------------------------------------------------------

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
        room = self.rooms.get(doc_id)
        if room is not None:
            await room.drained()
        read = await store.load(self.db, doc_id)
        updates = read.all_updates()
        return content.merge(updates) if updates else Doc().get_update()

    async def document(self, doc_id: int) -> Doc:
        return content.build([await self.state(doc_id)])

    async def versions(self, p: Principal, doc_id: int) -> list[Version]:
        meta = await self.visible(p, doc_id)
        return await store.versions(self.db, meta.id)

    async def create_version(self, p: Principal, doc_id: int, label: str) -> Version:
        meta = await self.allowed(p, doc_id, Action.VERSION_DOC)
        label = _clean(label, LABEL_MAX, "Le nom de la version")
        await self._budget(p)
        return await store.add_version(self.db, meta.id, label, await self.state(meta.id), p.id,
                                       self.clock())

    async def restore(self, p: Principal, doc_id: int, version_id: int) -> None:
        """A new edit that brings every client back to the version's content."""
        meta = await self.allowed(p, doc_id, Action.VERSION_DOC)
        old = await store.version_state(self.db, meta.id, version_id)
        if old is None:
            raise not_found("Version introuvable.")
        await self._budget(p)
        async with self._using(meta.id) as room:
            await room.drained()
            update = content.restore_update(room.doc.get_update(), old)
            room.submit(update, None)
            await room.drained()
            if room.failed:
                raise AppError("unavailable", "La restauration n'a pas pu être enregistrée.")

    async def disconnect_everyone(self) -> None:
        """SIGTERM: tell clients to come back later (y-websocket reconnects by itself)."""
        for room in list(self.rooms.values()):
            for c in list(room.conns):
                await c.ws.close(code=1001, message="Redémarrage du serveur.".encode())

    async def close(self) -> None:
        """Shutdown: close clients, let pending writes finish, send pending webhooks."""
        if self._rechecker is not None:
            self._rechecker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rechecker
            self._rechecker = None
        await self.disconnect_everyone()
        for room in list(self.rooms.values()):
            await room.drained()
            await room.close()
        self.rooms.clear()
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        await self.notifier.close()
        if self.relay is not None:
            await self.relay.close()

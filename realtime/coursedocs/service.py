"""Course documents: the only place that decides (policy), persists, and keeps rooms alive."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from pycrdt import Doc

from realtime.coursedocs import content, render, store
from realtime.coursedocs import protocol as wire
from realtime.coursedocs.model import (
    LABEL_MAX,
    TITLE_MAX,
    ClassMode,
    DocMeta,
    Version,
    VersionKind,
)
from realtime.coursedocs.relay import Relay
from realtime.coursedocs.room import SYNC_DEFERRED_MAX, SYNC_PER_S, Connection, Room
from realtime.coursedocs.room import Limits as ConnLimits
from realtime.coursedocs.webhook import Change, Notifier
from realtime.db import Database
from realtime.directory import reads as directory
from realtime.errors import AppError, not_found
from realtime.identity.model import Principal, Role
from realtime.lease import Leases
from realtime.policy import Action, SchoolRef, may
from realtime.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from realtime.settings import Settings
from realtime.text import clean_text

log = logging.getLogger(__name__)

READ_ONLY = "Document en lecture seule : vos modifications ne sont pas enregistrées."
ACTIONS_PER_MINUTE = 30  # creations, versions, restores per user: each one stores a state
MAX_EDITORS = 50
MAX_CLASSES = 50
AUTO_VERSIONS_KEPT = 50  # the timeline of automatic versions, per document
RENDERINGS_KEPT = 32  # recent JSON/HTML/Markdown renderings, per process


def _clean(text: str, limit: int, what: str) -> str:
    text = clean_text(text)  # control and bidi characters too (realtime/text.py)
    if not text:
        raise AppError("invalid", f"{what} ne peut pas être vide.")
    if len(text) > limit:
        raise AppError("invalid", f"{what} est trop long ({limit} caractères au plus).")
    return text


class Throttled(ValueError):
    """A client past a per-connection budget (the message is for people)."""


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
        self.content_limits = content.Limits(max_depth=settings.docs_max_depth,
                                             max_nodes=settings.docs_max_nodes)
        self.conn_limits = ConnLimits(queue_bytes=settings.docs_send_queue_bytes,
                                      awareness_clients=settings.docs_awareness_clients,
                                      awareness_bytes=settings.docs_awareness_bytes)
        # Frames refused, by reason (ProtocolError, limits…): /metrics' realtime_yjs_refused.
        self.refused: dict[str, int] = {}
        self._awareness_refused = 0  # of rooms that left memory
        self._dirty: dict[int, float] = {}  # doc → first edit not in a version yet
        self._renderings: OrderedDict[tuple[int, float, str, str], Any] = OrderedDict()

    def counters(self) -> dict[str, int]:
        """For the metrics page (`realtime.metrics.Counted`)."""
        return {"relay_reconnects": self.relay.reconnects if self.relay is not None else 0,
                "gaps_caught_up": self.gaps_caught_up}

    def connections(self) -> int:
        """Open /yjs websockets of this process (the metrics page's gauge)."""
        return sum(len(r.conns) for r in self.rooms.values())

    def count_refused(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def refused_counts(self) -> dict[str, int]:
        """Refusals by reason, awareness entries ignored by the rooms included."""
        counts = dict(self.refused)
        counts["awareness"] = self._awareness_refused + sum(
            r.awareness_refused for r in self.rooms.values())
        return counts

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
        title = _clean(title, TITLE_MAX, "Le titre")
        async with self.db.transaction() as conn:
            await store.rename(conn, meta.id, title, self.clock())
            conn.on_commit(lambda: self._changed(meta.id))
        return await self._stored(meta.id)

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
        # Only the classes one teaches (kept: those already shared, even if no longer taught).
        if set(classes) - p.class_ids - set(meta.classes):
            raise AppError("invalid", "Classes : seulement celles où vous enseignez.")
        if classes:
            known = await directory.classes(self.db, classes)
            if len(classes) != sum(1 for c in known.values() if c.school_id == meta.school_id):
                raise AppError("invalid", "Classes : celles de l'établissement seulement.")
        async with self.db.transaction() as conn:
            await store.share(conn, meta.id, wanted, classes, self.clock())
            conn.on_commit(lambda: self._access_changed(meta.id))
        return await self._stored(meta.id)

    async def delete(self, p: Principal, doc_id: int) -> None:
        meta = await self.allowed(p, doc_id, Action.MANAGE_DOC)
        room = self.rooms.get(meta.id)
        if room is not None:
            await room.drained()
        async with self.db.transaction() as conn:
            await store.delete(conn, meta.id)
            conn.on_commit(lambda: self._deleted(meta, room))

    def _deleted(self, meta: DocMeta, room: Room | None) -> None:
        """After the commit: whoever has it open is told, and the ENT's webhook."""
        self._dirty.pop(meta.id, None)
        if room is not None:
            for c in list(room.conns):
                c.close_soon(4404, "Document supprimé.")
        self.notifier.changed(Change("course.deleted", meta.id, meta.school_id, meta.title,
                                     self.clock()))

    async def _stored(self, doc_id: int) -> DocMeta:
        meta = await store.get(self.db, doc_id)
        if meta is None:
            raise not_found("Document introuvable.")
        return meta

    async def _changed(self, doc_id: int) -> DocMeta:
        """After the commit: the ENT's webhook hears of the change."""
        meta = await self._stored(doc_id)
        self.notifier.changed(Change("course.changed", meta.id, meta.school_id, meta.title,
                                     meta.updated_at))
        return meta

    async def _access_changed(self, doc_id: int) -> None:
        """After the commit: the webhook, and the open connections' rights follow the new
        access list."""
        self._recheck(await self._changed(doc_id))

    def _recheck(self, meta: DocMeta) -> None:
        """Access changed: drop connections that lost it, adjust who may write."""
        room = self.rooms.get(meta.id)
        if room is None:
            return
        ref = meta.ref()
        for c in list(room.conns):
            if not may(c.principal, Action.VIEW_DOC, ref):
                # 4400–4499: y-websocket stops reconnecting and emits `closed`.
                c.close_soon(4403, "Ce document ne vous est plus partagé.")
                continue
            can_edit = may(c.principal, Action.EDIT_DOC, ref)
            if can_edit != c.can_edit:
                c.can_edit = can_edit
                c.send(wire.access_changed("edit" if can_edit else "read"))

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
                            known_id=stored.last_id, limits=self.content_limits)
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
        self._awareness_refused += room.awareness_refused
        self._opening.pop(room.doc_id, None)
        await room.close()
        if self.relay is not None:
            await self.relay.unsubscribe(room.doc_id)
        if self._dirty.pop(room.doc_id, None) is not None and \
                self.settings.docs_auto_version_s > 0:
            await self.auto_version(room.doc_id, "Fin de séance")
        if self._appended.pop(room.doc_id, 0):
            await self.compact(room.doc_id)

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _persist(self, doc_id: int, updates: list[bytes]) -> int:
        now = self.clock()
        stored_id = await store.append(self.db, doc_id, updates, now)
        self._edited(doc_id, now)
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
        if not updates:
            return Doc().get_update()
        return await asyncio.to_thread(content.merge, updates)

    async def rendered(self, meta: DocMeta, wanted: str) -> Any:
        """JSON, HTML or Markdown of the stored content, rendered in a worker thread, and
        kept for the next reader of the same state (`updated_at` moves with every stored
        change, rename or share): a class opening the course at once renders it once."""
        key = (meta.id, meta.updated_at, meta.title, wanted)
        found = self._renderings.get(key)
        if found is not None:
            self._renderings.move_to_end(key)
            return found
        out = await asyncio.to_thread(render.rendering, await self.state(meta.id), wanted,
                                      meta.title)
        self._renderings[key] = out
        while len(self._renderings) > RENDERINGS_KEPT:
            self._renderings.popitem(last=False)
        return out

    async def versions(self, p: Principal, doc_id: int) -> list[Version]:
        meta = await self.visible(p, doc_id)
        return await store.versions(self.db, meta.id)

    async def create_version(self, p: Principal, doc_id: int, label: str) -> Version:
        meta = await self.allowed(p, doc_id, Action.VERSION_DOC)
        label = _clean(label, LABEL_MAX, "Le nom de la version")
        await self._budget(p)
        return await store.add_version(self.db, meta.id, label, await self.state(meta.id), p.id,
                                       self.clock())

    async def add_image(self, p: Principal, meta: DocMeta, mime: str, data: bytes) -> str:
        """Store an image in the course (content-addressed: the same image twice is one)."""
        await self._budget(p)
        cap = self.settings.docs_images_total_bytes
        if await store.images_bytes(self.db, meta.id) + len(data) > cap:
            raise AppError("too_large", "Ce cours contient déjà trop d'images "
                           f"({cap // (1024 * 1024)} Mio au plus) : retirez-en ou créez un "
                           "autre cours.")
        digest = hashlib.sha256(data).hexdigest()
        await store.put_image(self.db, meta.id, digest, mime, data, p.id, self.clock())
        return f"/api/docs/{meta.id}/images/{digest}"

    async def version_preview(self, p: Principal, doc_id: int, version_id: int, wanted: str
                              ) -> Any:
        """A version as JSON, HTML or Markdown, to look at before restoring it."""
        meta = await self.visible(p, doc_id)
        old = await store.version_state(self.db, meta.id, version_id)
        if old is None:
            raise not_found("Version introuvable.")
        return await asyncio.to_thread(render.rendering, old, wanted, meta.title)

    async def restore(self, p: Principal, doc_id: int, version_id: int) -> Version:
        """A new edit that brings every client back to the version's content, after keeping
        the current content as a version (kind `restore`): a restore never loses work.
        Returns that version."""
        meta = await self.allowed(p, doc_id, Action.VERSION_DOC)
        old = await store.version_state(self.db, meta.id, version_id)
        if old is None:
            raise not_found("Version introuvable.")
        target = next((v for v in await store.versions(self.db, meta.id)
                       if v.id == version_id), None)
        await self._budget(p)
        label = f"Avant le retour à « {target.label if target else version_id} »"
        kept = await store.add_version(self.db, meta.id, label[:LABEL_MAX],
                                       await self.state(meta.id), p.id, self.clock(),
                                       VersionKind.RESTORE)
        async with self._using(meta.id) as room:
            await room.drained()
            update = await asyncio.to_thread(content.restore_update, room.doc.get_update(),
                                             old)
            room.submit(update, None)
            await room.drained()
            if room.failed:
                raise AppError("unavailable", "La restauration n'a pas pu être enregistrée.")
        self._dirty.pop(meta.id, None)
        return kept

    async def auto_version(self, doc_id: int, label: str) -> Version | None:
        """A version on the timeline (kind `auto`), unless nothing changed since the last
        one; the oldest automatic ones beyond AUTO_VERSIONS_KEPT are dropped."""
        state = await self.state(doc_id)
        latest = await store.versions(self.db, doc_id, limit=1)
        if latest:
            previous = await store.version_state(self.db, doc_id, latest[0].id)
            if previous == state:
                return None
        try:
            v = await store.add_version(self.db, doc_id, label, state, None, self.clock(),
                                        VersionKind.AUTO)
        except Exception:  # the document was deleted meanwhile
            log.info("automatic version skipped", extra={"doc_id": doc_id})
            return None
        await store.prune_auto_versions(self.db, doc_id, AUTO_VERSIONS_KEPT)
        return v

    def _edited(self, doc_id: int, now: float) -> None:
        """Every `docs_auto_version_s` of editing, a version on the timeline."""
        every = self.settings.docs_auto_version_s
        if every <= 0:
            return
        since = self._dirty.setdefault(doc_id, now)
        if now - since >= every:
            self._dirty[doc_id] = now
            self._spawn(self.auto_version(doc_id, "Version automatique"))

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

"""Course documents: the only place that decides (policy: who reads, writes, shares,
versions), on the live rooms kept by `DocRooms` (rooms.py)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

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
from realtime.coursedocs.room import Connection, Room
from realtime.coursedocs.rooms import DocRooms
from realtime.coursedocs.webhook import Change, Notifier
from realtime.db import Database
from realtime.directory import reads as directory
from realtime.errors import AppError, not_found
from realtime.identity.model import Principal, Role
from realtime.policy import Action, SchoolRef, may
from realtime.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from realtime.settings import Settings
from realtime.text import clean_text

log = logging.getLogger(__name__)

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


class DocService:
    """Decisions on course documents; `rooms` keeps the open ones live in this process."""

    def __init__(self, db: Database, settings: Settings,
                 clock: Callable[[], float] = time.time, redis: aioredis.Redis | None = None
                 ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.rooms = DocRooms(db, settings, self.now, redis, persisted=self._persisted,
                              unloading=self._unloading)
        self.limiter: RateLimiter = (
            RedisRateLimiter(redis, f"{settings.redis_prefix}:docs", ACTIONS_PER_MINUTE, 60)
            if redis is not None else MemoryRateLimiter(ACTIONS_PER_MINUTE, 60))
        self.notifier = Notifier(settings.docs_webhook_url, settings.docs_webhook_secret,
                                 settings.docs_webhook_debounce_s)
        # Frames refused, by reason (ProtocolError, limits…): /metrics' realtime_yjs_refused.
        self.refused: dict[str, int] = {}
        self._dirty: dict[int, float] = {}  # doc → first edit not in a version yet
        self._renderings: OrderedDict[tuple[int, float, str, str], Any] = OrderedDict()

    def now(self) -> float:
        return self.clock()  # read through the service, so a test's clock reaches the rooms

    def counters(self) -> dict[str, int]:
        """For the metrics page (`realtime.metrics.Counted`)."""
        relay = self.rooms.relay
        return {"relay_reconnects": relay.reconnects if relay is not None else 0,
                "gaps_caught_up": self.rooms.gaps_caught_up}

    def connections(self) -> int:
        """Open /yjs websockets of this process (the metrics page's gauge)."""
        return self.rooms.connected()

    def count_refused(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def refused_counts(self) -> dict[str, int]:
        """Refusals by reason, awareness entries ignored by the rooms included."""
        counts = dict(self.refused)
        counts["awareness"] = self.rooms.awareness_refused()
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

    async def viewable(self, p: Principal, doc_id: int) -> bool:
        """May `p` see this document (and so who has it open): presence asks."""
        try:
            await self.visible(p, doc_id)
        except AppError:
            return False
        return True

    async def describe(self, p: Principal, metas: list[DocMeta]) -> list[dict[str, Any]]:
        """Documents as the ENT and the editor show them: people by name, what `p` may do."""
        people = {m.owner_id for m in metas} | {e for m in metas for e in m.editors}
        names = await directory.names(self.db, people)
        out = []
        for m in metas:
            ref = m.ref()
            out.append({
                "id": m.id, "title": m.title, "school_id": m.school_id,
                "owner": {"id": m.owner_id, "name": names.get(m.owner_id, "")},
                "editors": [{"id": e, "name": names.get(e, "")} for e in sorted(m.editors)],
                "classes": [{"id": c, "mode": mode.value}
                            for c, mode in sorted(m.classes.items())],
                "created_at": m.created_at, "updated_at": m.updated_at,
                "can_edit": may(p, Action.EDIT_DOC, ref),
                "can_version": may(p, Action.VERSION_DOC, ref),
                "can_manage": may(p, Action.MANAGE_DOC, ref),
                "ws": f"/yjs/{m.id}",
            })
        return out

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

    # --- the live document: joining, and what the rooms report -----------------------------

    def connection(self, p: Principal, meta: DocMeta, ws: web.WebSocketResponse,
                   transport: Any) -> Connection:
        """The live connection of a reader `visible` let in, allowed to write if they may
        edit (decided again by `_recheck` when the access changes); it then joins the
        document's room (`rooms.join`)."""
        return Connection(ws, p, may(p, Action.EDIT_DOC, meta.ref()), self.rooms.conn_limits,
                          transport)

    async def _persisted(self, doc_id: int, now: float) -> None:
        """An update is stored: the timeline's clock runs, the ENT hears of the change."""
        self._edited(doc_id, now)
        meta = await store.get(self.db, doc_id) if self.notifier.enabled else None
        if meta is not None:
            self.notifier.changed(Change("course.changed", meta.id, meta.school_id, meta.title,
                                         now))

    async def _unloading(self, doc_id: int) -> None:
        """The last reader left: what was edited since the last version becomes one."""
        if self._dirty.pop(doc_id, None) is not None and self.settings.docs_auto_version_s > 0:
            await self.auto_version(doc_id, "Fin de séance")

    # --- content, versions ------------------------------------------------------------------

    async def state(self, doc_id: int) -> bytes:
        return await self.rooms.state(doc_id)


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
        digest = hashlib.sha256(data).hexdigest()
        if not await store.put_image(self.db, meta.id, digest, mime, data, p.id, self.clock(),
                                     cap=cap):
            raise AppError("too_large", "Ce cours contient déjà trop d'images "
                           f"({cap // (1024 * 1024)} Mio au plus) : retirez-en ou créez un "
                           "autre cours.")
        return f"/api/docs/{meta.id}/images/{digest}"

    async def image(self, p: Principal, doc_id: int, digest: str) -> tuple[str, bytes]:
        """An image of a course (its type, its bytes), for whoever may read the course."""
        meta = await self.visible(p, doc_id)
        found = await store.image(self.db, meta.id, digest)
        if found is None:
            raise not_found("Image introuvable.")
        return found

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
        async with self.rooms.using(meta.id) as room:
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
        try:
            v = await store.add_version_if_changed(self.db, doc_id, label, state,
                                                   self.clock())
        except Exception:  # the document was deleted meanwhile
            log.info("automatic version skipped", extra={"doc_id": doc_id})
            return None
        if v is not None:
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
            self.rooms.spawn(self.auto_version(doc_id, "Version automatique"))

    async def close(self) -> None:
        """Shutdown: close clients, let pending writes finish, send pending webhooks."""
        await self.rooms.close()
        await self.notifier.close()

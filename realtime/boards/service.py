"""Boards: the only place that decides. Load → policy → domain → persist (stream) → publish.

The boards open in this process (loading, following, fan-out, snapshots, unloading) are kept
by `LiveBoards` (rooms.py); the service decides who may see, join, draw and control, and
calls in.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import socketio

from realtime.boards import export, store
from realtime.boards.exporter import Exporter
from realtime.boards.live import Event
from realtime.boards.model import Actor, BoardState, Limits
from realtime.boards.ops import ClientOp, Item, Page
from realtime.boards.rooms import BATCH_MS, SNAPSHOT_EVERY, LiveBoards, Peek
from realtime.boards.store import BoardMeta
from realtime.db import Database, Unavailable
from realtime.directory import reads as directory
from realtime.errors import AppError, not_found
from realtime.identity.model import Principal
from realtime.lease import Leases
from realtime.policy import Action, BoardRef, ClassRef, may
from realtime.streams import StreamStore
from realtime.text import clean_text

if TYPE_CHECKING:
    from realtime.presence.service import PresenceService

log = logging.getLogger(__name__)

TITLE_MAX = 120
SETTLE_TRIES = 5  # re-reads of a board's stored controls after appending them (see control)
BUSY_MESSAGE = ("Le serveur est très sollicité : l'opération n'a pas été enregistrée, "
                "réessayez dans un instant.")


def board_ref(meta: BoardMeta) -> BoardRef:
    return BoardRef(id=meta.id, school_id=meta.school_id, class_id=meta.class_id,
                    owner_id=meta.owner_id, state=meta.state, pen_all=meta.pen_all,
                    pen=meta.pen)


async def visible_board(db: Database, p: Principal, board_id: int,
                        action: Action = Action.VIEW_BOARD) -> BoardMeta | None:
    """Boards' read API for other features (a board session's chat): the board's stored
    metadata if it exists and `p` may do `action` on it, else None."""
    meta = await store.get(db, board_id)
    return meta if meta is not None and may(p, action, board_ref(meta)) else None


async def board_ref_of(db: Database, board_id: int) -> BoardRef | None:
    """Boards' read API for other features: what policy needs to know of a board (a board
    session's chat asks who may see it)."""
    meta = await store.get(db, board_id)
    return board_ref(meta) if meta is not None else None


def pen_of(meta: BoardMeta) -> str | list[int]:
    if meta.pen_all:
        return "everyone"
    return sorted(meta.pen) if meta.pen else "none"



class BoardService:
    """Decisions on boards: metadata, joining, ops, controls, volatile traffic."""

    def __init__(
        self,
        db: Database,
        streams: StreamStore,
        sio: socketio.AsyncServer,
        limits: Limits,
        clock: Callable[[], float] = time.time,
        batch_ms: float = BATCH_MS,
        snapshot_every: int = SNAPSHOT_EVERY,
        presence: PresenceService | None = None,
        leases: Leases | None = None,
    ) -> None:
        self.db = db
        self.limits = limits
        self.clock = clock
        self.rooms = LiveBoards(db, streams, sio, limits, clock, batch_ms, snapshot_every,
                                presence, leases)
        self.refused_busy = 0  # ops refused by admission control

    def counters(self) -> dict[str, int]:
        """For the metrics page (`realtime.metrics.Counted`)."""
        return {"frames_sent": self.rooms.frames_sent, "deliveries": self.rooms.deliveries,
                "volatile_dropped": self.rooms.fanout.volatile_dropped}

    def start(self) -> None:
        self.rooms.start()

    # --- metadata -------------------------------------------------------------------------

    async def create(self, p: Principal, title: str, class_id: int, slot_id: int | None
                     ) -> BoardMeta:
        title = clean_text(title)
        if not title or len(title) > TITLE_MAX:
            raise AppError("invalid", f"Le titre doit compter de 1 à {TITLE_MAX} caractères.")
        c = await directory.school_class(self.db, class_id)
        if c is None or not may(p, Action.VIEW_CLASS, ClassRef(id=c.id, school_id=c.school_id)):
            raise not_found("Classe introuvable.")
        if not may(p, Action.CREATE_BOARD, ClassRef(id=c.id, school_id=c.school_id)):
            raise AppError("forbidden", "Seul·e un·e enseignant·e de la classe crée un tableau.")
        if slot_id is not None:
            slot = await directory.slot(self.db, slot_id)
            if slot is None or slot.class_id != class_id:
                raise AppError("invalid", "Ce créneau n'est pas un cours de cette classe.")
        return await store.create(self.db, school_id=c.school_id, class_id=c.id,
                                  slot_id=slot_id, owner_id=p.id, title=title, now=self.clock())

    async def visible(self, p: Principal, board_id: int) -> BoardMeta:
        live = self.rooms.live.get(board_id)
        meta = live.meta if live else await store.get(self.db, board_id)
        if meta is None or not may(p, Action.VIEW_BOARD, board_ref(meta)):
            raise not_found("Tableau introuvable.")
        return meta

    async def presence_visible(self, p: Principal, board_id: int) -> bool:
        """For `PresenceService.register`: may `p` see who is looking at this board?"""
        live = self.rooms.live.get(board_id)
        meta = live.meta if live else await store.get(self.db, board_id)
        return meta is not None and may(p, Action.VIEW_BOARD_PRESENCE, board_ref(meta))

    async def of_class(self, p: Principal, class_id: int) -> list[BoardMeta]:
        c = await directory.school_class(self.db, class_id)
        if c is None or not may(p, Action.VIEW_CLASS, ClassRef(id=c.id, school_id=c.school_id)):
            raise not_found("Classe introuvable.")
        return [m for m in await store.of_class(self.db, class_id)
                if may(p, Action.VIEW_BOARD, board_ref(m))]

    async def describe(self, meta: BoardMeta) -> dict[str, Any]:
        names = await directory.names(self.db, {meta.owner_id})
        live = self.rooms.live.get(meta.id)
        return {
            "id": meta.id, "title": meta.title, "school_id": meta.school_id,
            "class_id": meta.class_id, "slot_id": meta.slot_id, "owner_id": meta.owner_id,
            "owner_name": names.get(meta.owner_id, ""), "state": meta.state,
            "created_at": meta.created_at, "updated_at": meta.updated_at,
            "page_count": len(live.state.pages) if live is not None else meta.page_count,
        }

    async def current_state(self, p: Principal, board_id: int) -> tuple[BoardMeta, BoardState]:
        """For export: the live state if the board is open here, else snapshot + stream."""
        await self.visible(p, board_id)
        live = await self.rooms.open(board_id)
        self.rooms.schedule_unload(live)
        return live.meta, live.state

    async def export_view(self, p: Principal, board_id: int
                          ) -> tuple[BoardMeta, list[Page], list[Item]]:
        """Pages and items as they are now, copied: a render in a thread must not see the
        live state change under it (points are appended in place)."""
        meta, state = await self.current_state(p, board_id)
        items = [msgspec.structs.replace(i, points=list(i.points)) if i.points else i
                 for i in state.items.values()]
        return meta, list(state.pages), items

    async def image_target(self, p: Principal, board_id: int) -> BoardMeta:
        """The board an image is uploaded to, if `p` may draw on it (checked before the
        upload is read)."""
        meta = await self.visible(p, board_id)
        if not may(p, Action.DRAW_ON_BOARD, board_ref(meta)):
            raise AppError("forbidden", "Vous n'avez pas le stylet sur ce tableau.")
        return meta

    async def peek(self, board_id: int) -> Peek:
        """The board as it is now, without opening it here (a glance for a thumbnail)."""
        return await self.rooms.peek(board_id)

    async def add_image(self, meta: BoardMeta, mime: str, data: bytes) -> str:
        """Store an image of the board (content-addressed); the path its items refer to."""
        digest = hashlib.sha256(data).hexdigest()
        await store.put_image(self.db, meta.id, digest, mime, data, self.clock())
        return f"/api/boards/{meta.id}/images/{digest}"

    async def image(self, p: Principal, board_id: int, digest: str) -> tuple[str, bytes]:
        meta = await self.visible(p, board_id)
        found = await store.image(self.db, meta.id, digest)
        if found is None:
            raise not_found("Image introuvable.")
        return found

    async def export(self, p: Principal, board_id: int, fmt: str, exporter: Exporter
                     ) -> tuple[str, bytes]:
        """Who may view the board may export it (same not_found otherwise), within their
        budget of exports per minute; rendered in a worker process from the board's current
        state and only the images that state uses and that belong to this board, or served
        from the cache while the board has not changed (docs/security.md « Limits »)."""
        meta, _state = await self.current_state(p, board_id)
        await exporter.admit(p.id)
        live = self.rooms.live.get(meta.id)
        key = (meta.id, live.epoch if live else "", live.seq if live else -1, meta.title, fmt)
        cached = exporter.cached(key) if live else None
        if cached is not None:
            return meta.title, cached
        meta, pages, items = await self.export_view(p, board_id)
        images = await self.images_of(meta.id, pages, items)
        return meta.title, await exporter.render(key, meta.title, pages, items, images, p.id)

    async def images_of(self, board_id: int, pages: list[Any], items: list[Any]
                        ) -> export.Images:
        """The images `pages` and `items` use that belong to this board (an export or a
        thumbnail draws no other board's image, whatever a src says)."""
        prefix = f"/api/boards/{board_id}/images/"
        images: export.Images = {}
        for src in export.image_sources(pages, items):
            digest = src[len(prefix):] if src.startswith(prefix) else ""
            if re.fullmatch(r"[0-9a-f]{64}", digest):
                found = await store.image(self.db, board_id, digest)
                if found is not None:
                    images[src] = found
        return images

    # --- members ----------------------------------------------------------------------------

    async def join(
        self, p: Principal, sid: str, board_id: int, since: tuple[str, int] | None
    ) -> dict[str, Any]:
        await self.visible(p, board_id)
        live = await self.rooms.enter(p, sid, board_id)
        meta = live.meta
        ref = board_ref(meta)
        answer: dict[str, Any] = {
            "board": await self.describe(meta),
            "me": {"id": p.id, "name": p.user.name, "role": p.role.value,
                   "is_teacher": may(p, Action.CONTROL_BOARD, ref) or (
                       p.id == meta.owner_id),
                   "can_draw": may(p, Action.DRAW_ON_BOARD, ref)},
            "limits": msgspec.to_builtins(self.limits), "batch_ms": self.rooms.batch_ms,
            "pen": pen_of(meta), "state": meta.state, "view": live.view,
            "instruments": list(live.instruments.values()),
        }
        # Computed without awaiting: no op can slip between the position and the content.
        ops = live.ops_after(*since) if since else None
        answer.update(epoch=live.epoch, seq=live.seq)
        if ops is not None:
            answer["ops"] = ops
        else:
            answer["snapshot"] = live.state.snapshot()
        return answer

    async def leave(self, sid: str, board_id: int | None = None) -> None:
        """`sid` stops following one board, or every board (None: it disconnected)."""
        await self.rooms.leave(sid, board_id)

    async def close(self) -> None:
        await self.rooms.close()

    # --- ops ------------------------------------------------------------------------------

    def _admit(self) -> None:
        """Admission control: while the event loop runs late on average, a new op would only
        queue behind the others (and its followers' latency with it): refuse it instead,
        before anything is applied. Controls (lock, end, pen) are rare and always admitted."""
        if self.rooms.saturated:
            self.refused_busy += 1
            raise AppError("rate_limited", BUSY_MESSAGE)

    async def submit(self, sid: str, board_id: int, op: ClientOp) -> int:
        live, p = self.rooms.member(sid, board_id)
        self._admit()
        ref = board_ref(live.meta)
        if not may(p, Action.DRAW_ON_BOARD, ref):
            raise AppError("forbidden", _why_not_draw(live.meta))
        actor = Actor(id=p.id, is_teacher=may(p, Action.CONTROL_BOARD, ref))
        live.state.check(op, actor, self.limits)
        return await self.rooms.append(live, Event(author=p.id, teacher=actor.is_teacher,
                                              op=msgspec.to_builtins(op)))

    async def undo(self, sid: str, board_id: int, redo: bool) -> int:
        live, p = self.rooms.member(sid, board_id)
        self._admit()
        ref = board_ref(live.meta)
        if not may(p, Action.DRAW_ON_BOARD, ref):
            raise AppError("forbidden", _why_not_draw(live.meta))
        actor = Actor(id=p.id, is_teacher=may(p, Action.CONTROL_BOARD, ref))
        op = live.state.undo_candidate(actor, self.limits, redo=redo)
        return await self.rooms.append(live, Event(author=p.id, teacher=actor.is_teacher,
                                              origin="redo" if redo else "undo",
                                              op=msgspec.to_builtins(op)))

    async def control(
        self, sid: str, board_id: int, *, state: str | None = None,
        pen: str | list[int] | None = None, title: str | None = None,
    ) -> int:
        live, p = self.rooms.member(sid, board_id)
        meta = live.meta
        if not may(p, Action.CONTROL_BOARD, board_ref(meta)):
            raise AppError("forbidden", "Seul·e l'enseignant·e de la classe pilote le tableau.")
        if title is not None:
            title = " ".join(title.split())
            if not title or len(title) > TITLE_MAX:
                raise AppError("invalid", f"Le titre doit compter de 1 à {TITLE_MAX} caractères.")
        pen_all, pen_ids = meta.pen_all, meta.pen
        if pen is not None:
            if pen == "everyone":
                pen_all, pen_ids = True, frozenset()
            elif pen == "none":
                pen_all, pen_ids = False, frozenset()
            elif isinstance(pen, list):
                students = {s.id for s in await directory.students_of_class(self.db,
                                                                            meta.class_id)}
                unknown = set(pen) - students
                if unknown:
                    raise AppError("invalid", "Le stylet ne se donne qu'à des élèves de la classe.")
                pen_all, pen_ids = False, frozenset(pen)
        new_state = state or meta.state
        control: dict[str, Any] = {"state": new_state, "pen_all": pen_all,
                                   "pen": sorted(pen_ids)}
        if title is not None:  # renamed: every node's meta and every member's header follow
            control["title"] = title
        published: list[int] = []

        async def publish() -> None:  # once the new controls are stored, never before
            published.append(await self.rooms.append(live, Event(
                author=p.id, teacher=True, origin="control", control=control)))
            await settle(control)
            updated = live.meta
            await self.rooms.announce(meta.id, "pen", {"board_id": meta.id,
                                                       "pen": pen_of(updated)})
            await self.rooms.announce(meta.id, "state", {"board_id": meta.id,
                                                         "state": updated.state})

        async def settle(appended: dict[str, Any]) -> None:
            """Another node may store its controls after our commit and append them before
            our append: the stream would end on ours, the row on theirs. So, once ours is
            appended, read what is stored and append it if it differs, until a read finds
            what this node appended last. Every node's last step is then a read that
            matched its last append; a commit after that read would be followed by its
            node's append, later still: so the stream's last control is the row's."""
            for _ in range(SETTLE_TRIES):
                try:
                    now = await store.get(self.db, meta.id)
                except Unavailable:
                    log.warning("board controls not re-read after their append",
                                extra={"board_id": meta.id})
                    return
                if now is None:
                    return
                latest: dict[str, Any] = {"state": now.state, "pen_all": now.pen_all,
                                          "pen": sorted(now.pen)}
                if "title" in appended:
                    latest["title"] = now.title
                if latest == appended:
                    return
                await self.rooms.append(live, Event(author=p.id, teacher=True,
                                                    origin="control", control=latest))
                appended = latest

        async with self.db.transaction() as conn:
            await store.set_controls(conn, meta.id, state=new_state, pen_all=pen_all,
                                     pen=pen_ids, now=self.clock())
            if title is not None:
                await store.set_title(conn, meta.id, title, self.clock())
            conn.on_commit(publish)
        if not published:  # stored but not announced (the stream was unreachable; logged)
            raise AppError("unavailable")
        return published[0]

    async def submit_as(self, p: Principal, board_id: int, op: ClientOp) -> int:
        """An op from a REST request (a page import) rather than a member's socket: the same
        admission, policy and rules as `submit`."""
        live = await self.rooms.open(board_id)
        self.rooms.schedule_unload(live)
        self._admit()
        ref = board_ref(live.meta)
        if not may(p, Action.DRAW_ON_BOARD, ref):
            raise AppError("forbidden", _why_not_draw(live.meta))
        actor = Actor(id=p.id, is_teacher=may(p, Action.CONTROL_BOARD, ref))
        live.state.check(op, actor, self.limits)
        return await self.rooms.append(live, Event(author=p.id, teacher=actor.is_teacher,
                                              op=msgspec.to_builtins(op)))

    # --- volatile -------------------------------------------------------------------------

    async def pointer(self, sid: str, board_id: int, data: dict[str, Any]) -> None:
        """Volatile: to local members only, dropped for a lagging socket or a busy server."""
        live, p = self.rooms.member(sid, board_id)
        await self.rooms.volatile(live, "pointer", {"board_id": board_id, "user_id": p.id,
                                               "name": p.user.name, **data}, sid)

    async def view(self, sid: str, board_id: int, data: dict[str, Any]) -> None:
        live, p = self.rooms.member(sid, board_id)
        if not may(p, Action.CONTROL_BOARD, board_ref(live.meta)):
            raise AppError("forbidden", "Seul·e l'enseignant·e guide la vue de la classe.")
        live.view = {"board_id": board_id, **data}  # a late joiner gets the last one anyway
        # One per page change or zoom from one teacher: shedding it on a busy loop saves
        # nothing and leaves the class on the wrong page (a lagging socket still skips it).
        await self.rooms.volatile(live, "view", live.view, sid, shed_on_lag=False)

    async def instrument(self, sid: str, board_id: int, data: dict[str, Any]) -> None:
        """The teacher's ruler or protractor, where the class sees it; the last position of
        each kind is kept (a late joiner gets them in `join`'s `instruments`)."""
        live, p = self.rooms.member(sid, board_id)
        if not may(p, Action.CONTROL_BOARD, board_ref(live.meta)):
            raise AppError("forbidden", "Seul·e l'enseignant·e montre les instruments.")
        message = {"board_id": board_id, **data}
        if data.get("shown", True):
            live.instruments[data["kind"]] = message
        else:
            live.instruments.pop(data["kind"], None)
        await self.rooms.volatile(live, "instrument", message, sid, shed_on_lag=False)


def _why_not_draw(meta: BoardMeta) -> str:
    if meta.state == "ended":
        return "La séance est terminée : le tableau est en lecture seule."
    if meta.state == "locked":
        return "Le tableau est verrouillé par l'enseignant·e."
    return "Vous n'avez pas le stylet : attendez que l'enseignant·e vous le donne."

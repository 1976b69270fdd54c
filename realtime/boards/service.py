"""Boards: the only place that decides. Load → policy → domain → persist (stream) → publish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import socketio
from socketio.async_pubsub_manager import AsyncPubSubManager

from realtime.boards import store
from realtime.boards.fanout import Fanout
from realtime.boards.live import (
    NAMESPACE,
    Event,
    LiveBoard,
    Member,
    follow,
    room_name,
    stream_name,
)
from realtime.boards.model import Actor, BoardState, Limits
from realtime.boards.ops import ClientOp, Item, Page
from realtime.boards.store import BoardMeta
from realtime.db import Database
from realtime.directory import reads as directory
from realtime.errors import AppError, not_found
from realtime.identity.model import Principal
from realtime.lease import Leases
from realtime.policy import Action, BoardRef, ClassRef, may
from realtime.presence import model as presence_scope
from realtime.streams import Replay, Reset, StreamStore
from realtime.text import clean_text

if TYPE_CHECKING:
    from realtime.presence.service import PresenceService

log = logging.getLogger(__name__)

SNAPSHOT_EVERY = 1_000  # applied events between two snapshots (a load replays at most these)
BATCH_MS = 15.0  # a board's ops leave in one frame per tick of this length
UNLOAD_AFTER_S = 30.0  # a board with no local member leaves memory after this
# After a lost stream history (Redis restarted empty), look again this long after rebuilding
# for a fuller snapshot of the old history written by another process.
RECHECK_AFTER_LOSS_S = (5.0, 15.0)
TITLE_MAX = 120
# A snapshot that saves what only this process has (on a reset, on unload) waits this long for
# another process's compaction of the board to finish; a periodic one just skips.
SNAPSHOT_WAIT_S = 5.0
BUSY_MESSAGE = ("Le serveur est très sollicité : l'opération n'a pas été enregistrée, "
                "réessayez dans un instant.")


@dataclass(frozen=True)
class Peek:
    """A board's pages and items at one position of its stream."""

    pages: list[Page]
    items: list[Item]
    position: tuple[str, int]


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
    """Boards of this process: metadata, the live ones, ops, controls, volatile traffic."""

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
        self.leases = leases or Leases(None, "")  # one process compacts a board at a time
        self.presence = presence  # who follows: reported, never read from rooms
        self.db = db
        self.streams = streams
        self.sio = sio
        self.limits = limits
        self.clock = clock
        self.batch_ms = batch_ms
        self.snapshot_every = snapshot_every
        self.fanout = Fanout(sio, NAMESPACE)
        self.frames_sent = self.deliveries = 0  # per tick, per member reached (counters())
        self.live: dict[int, LiveBoard] = {}
        self.refused_busy = 0  # ops refused by admission control
        self._opening: dict[int, asyncio.Task[LiveBoard]] = {}
        # The snapshot each live board was loaded from: what its first snapshot of a new
        # epoch may replace (store.save_snapshot).
        self._built_on: dict[int, tuple[LiveBoard, store.Snapshot]] = {}

    def counters(self) -> dict[str, int]:
        """For the metrics page (`realtime.metrics.Counted`)."""
        return {"frames_sent": self.frames_sent, "deliveries": self.deliveries,
                "volatile_dropped": self.fanout.volatile_dropped}

    def start(self) -> None:
        self.fanout.gauge.start()

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
        live = self.live.get(board_id)
        meta = live.meta if live else await store.get(self.db, board_id)
        if meta is None or not may(p, Action.VIEW_BOARD, board_ref(meta)):
            raise not_found("Tableau introuvable.")
        return meta

    async def presence_visible(self, p: Principal, board_id: int) -> bool:
        """For `PresenceService.register`: may `p` see who is looking at this board?"""
        live = self.live.get(board_id)
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
        live = self.live.get(meta.id)
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
        live = await self.open(board_id)
        self._schedule_unload(live)
        return live.meta, live.state

    async def export_view(self, p: Principal, board_id: int
                          ) -> tuple[BoardMeta, list[Page], list[Item]]:
        """Pages and items as they are now, copied: a render in a thread must not see the
        live state change under it (points are appended in place)."""
        meta, state = await self.current_state(p, board_id)
        items = [msgspec.structs.replace(i, points=list(i.points)) if i.points else i
                 for i in state.items.values()]
        return meta, list(state.pages), items

    async def peek(self, board_id: int) -> Peek:
        """The board as it is now, without opening it here when it is not open (no follower
        for a glance): its snapshot plus the stream's events after it. Copied, for a thread."""
        live = self.live.get(board_id)
        if live is None:
            meta = await store.get(self.db, board_id)
            if meta is None:
                raise not_found("Tableau introuvable.")
            snap = await store.snapshot(self.db, board_id)
            state = BoardState.load(snap.data) if snap.data else BoardState.new()
            head = await self.streams.head(stream_name(board_id))
            same = snap.epoch is None or snap.epoch == head.epoch
            live = LiveBoard(meta=meta, state=state, epoch=head.epoch,
                             seq=snap.seq if same else 0, limits=self.limits)
            if head.seq > live.seq:
                result = await self.streams.resume(stream_name(board_id), head.epoch, live.seq)
                if isinstance(result, Replay):
                    for ev in result.events:
                        live.apply(ev.seq, msgspec.convert(ev.payload, Event))
        items = [msgspec.structs.replace(i, points=list(i.points)) if i.points else i
                 for i in live.state.items.values()]
        items.sort(key=lambda i: i.z)
        return Peek(pages=list(live.state.pages), items=items, position=(live.epoch, live.seq))

    # --- live -----------------------------------------------------------------------------

    async def open(self, board_id: int) -> LiveBoard:
        live = self.live.get(board_id)
        if live is not None:
            return live
        task = self._opening.get(board_id)
        if task is None:
            task = asyncio.ensure_future(self._load(board_id))
            self._opening[board_id] = task
            task.add_done_callback(lambda _t: self._opening.pop(board_id, None))
        return await asyncio.shield(task)

    async def _load(self, board_id: int) -> LiveBoard:
        meta = await store.get(self.db, board_id)
        if meta is None:
            raise not_found("Tableau introuvable.")
        snap = await store.snapshot(self.db, board_id)
        state = BoardState.load(snap.data) if snap.data else BoardState.new()
        head = await self.streams.head(stream_name(board_id))
        if snap.epoch is None or snap.epoch == head.epoch:
            result = await self.streams.resume(stream_name(board_id), head.epoch, snap.seq)
        else:  # the stream was recreated since the snapshot: replay all of its new history
            result = await self.streams.resume(stream_name(board_id), head.epoch, 0)
        live = LiveBoard(meta=meta, state=state, epoch=head.epoch, seq=snap.seq
                         if snap.epoch == head.epoch else 0, limits=self.limits)
        if isinstance(result, Replay):
            for ev in result.events:
                live.apply(ev.seq, msgspec.convert(ev.payload, Event))
        else:
            log.error("board history lost beyond its snapshot",
                      extra={"board": board_id, "reason": result.reason})
            live.seq = result.head
        live.applied_since_snapshot = 0
        live.pending.clear()  # history: members get it through join, not as live frames
        self.live[board_id] = live
        self._built_on[board_id] = (live, snap)
        live.task = asyncio.create_task(
            follow(live, self.streams, self._after_apply, self._on_reset),
            name=f"board-{board_id}",
        )
        if snap.epoch is not None and snap.epoch != head.epoch:
            self._recheck_later(live, snap)
        return live

    def _after_apply(self, live: LiveBoard) -> None:
        """Called for every applied event, never awaits: the fan-out waits for nothing."""
        if live.flush_timer is None:
            # At most one frame per tick, and no wait for an op that comes after a quiet tick:
            # it leaves at the end of this loop pass (with whatever else was applied in it);
            # ops that follow a frame closely wait for the tick's end, then leave together.
            loop = asyncio.get_running_loop()
            wait = live.last_flush + self.batch_ms / 1000 - loop.time()
            live.flush_timer = (loop.call_later(wait, self._flush, live) if wait > 0
                                else loop.call_soon(self._flush, live))
        if live.applied_since_snapshot >= self.snapshot_every and live.compacting is None:
            live.compacting = asyncio.create_task(self.compact(live))
            live.compacting.add_done_callback(lambda _t: setattr(live, "compacting", None))

    def _flush(self, live: LiveBoard) -> None:
        """The board's tick: every op applied since the last one, in one frame per room."""
        live.flush_timer = None
        live.last_flush = asyncio.get_running_loop().time()
        ops = live.take_pending()
        if ops and live.members:  # ["ops", {"board_id", "ops": [...]}] from encoded ops
            body = b'["ops",{"board_id":%d,"ops":[%b]}]' % (live.id, b",".join(ops))
            self.deliveries += self.fanout.send_encoded(live.members, "ops", body)
            self.frames_sent += 1  # per tick, not per delivery (metrics.py samples these)

    def _recheck_later(self, live: LiveBoard, was: store.Snapshot) -> None:
        """Rebuilt after a lost history from the best snapshot there was: another process
        that had applied more of the old history may write a fuller one a moment later."""
        loop = asyncio.get_running_loop()
        for delay in RECHECK_AFTER_LOSS_S:
            loop.call_later(delay, lambda: asyncio.ensure_future(self._recheck(live, was)))

    async def _recheck(self, live: LiveBoard, was: store.Snapshot) -> None:
        if self.live.get(live.id) is not live:
            return
        now = await store.snapshot(self.db, live.id)
        if now.epoch == was.epoch and now.seq > was.seq:
            log.warning("fuller snapshot of a lost history: rebuilding",
                        extra={"board": live.id, "seq": now.seq, "was": was.seq})
            await self.sio.emit("reset", {"board_id": live.id}, room=room_name(live.id),
                                namespace=NAMESPACE, ignore_queue=True)
            await self._unload(live, compact=False)

    async def _on_reset(self, live: LiveBoard, reset: Reset) -> None:
        """The stream's history was lost (Redis restarted empty) or this node fell too far
        behind. What this node applied is kept as a snapshot first — every op it acked is in
        it, and a snapshot only ever moves forward — then members are told to join again and
        the board is rebuilt from that snapshot plus the stream's new history."""
        if self.live.get(live.id) is not live:
            return  # already rebuilt: the follower and an append may both notice
        log.warning("board stream reset", extra={"board": live.id, "reason": reset.reason})
        await self.compact(live, wait_s=SNAPSHOT_WAIT_S)
        await self.sio.emit("reset", {"board_id": live.id}, room=room_name(live.id),
                            namespace=NAMESPACE, ignore_queue=True)
        await self._unload(live, compact=False)

    async def compact(self, live: LiveBoard, wait_s: float = 0.0) -> None:
        """Snapshot the state at its seq, checked to change nothing before it is written.

        Every process with the board open applies the same ops and would snapshot it: the
        lease `board:<id>` lets one do it at a time (the others skip, or wait `wait_s` when
        their snapshot saves what only they hold). The write itself only moves forward (in
        SQL), so an overlap past the lease costs work, never a newer snapshot.

        Only the two encodings happen on the event loop (they must see one seq); the check
        and the write run beside the fan-out, which never waits for them."""
        async with self.leases.hold(f"board:{live.id}", wait_s) as mine:
            if not mine and not wait_s:  # another process is snapshotting the board right
                live.applied_since_snapshot = 0  # now, at about this seq: count anew
                return
            if not mine:  # held past the wait: write anyway, the SQL keeps it forward-only
                log.warning("board snapshot lease still held, writing anyway",
                            extra={"board": live.id})
            data = live.state.dump()
            view = msgspec.json.encode(live.state.snapshot())
            page_count = len(live.state.pages)
            epoch, seq, counted = live.epoch, live.seq, live.applied_since_snapshot
            live.applied_since_snapshot = 0
            if not await asyncio.to_thread(_snapshot_is_faithful, data, view):
                log.error("snapshot check failed; not written", extra={"board": live.id})
                live.applied_since_snapshot += counted
                return
            built = self._built_on.get(live.id)
            built_on = built[1] if built is not None and built[0] is live else None
            try:
                written = await store.save_snapshot(self.db, live.id, data, epoch, seq,
                                                    self.clock(), built_on=built_on,
                                                    page_count=page_count)
            except Exception:
                live.applied_since_snapshot += counted
                raise
        if not written and built_on is not None and built_on.epoch != epoch:
            # Built on an old history's snapshot that another process has since replaced
            # with a fuller one: rebuild from it (never awaited here: unload awaits us).
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self._recheck(live, built_on)))

    async def join(
        self, p: Principal, sid: str, board_id: int, since: tuple[str, int] | None
    ) -> dict[str, Any]:
        meta = await self.visible(p, board_id)
        live = await self.open(board_id)
        if live.unload_timer is not None:
            live.unload_timer.cancel()
            live.unload_timer = None
        await self.sio.enter_room(sid, room_name(board_id), namespace=NAMESPACE)
        if live.flush_timer is not None:  # what is pending goes to the members before this one
            live.flush_timer.cancel()
            self._flush(live)
        live.members[sid] = Member(principal=p, sid=sid)
        if self.presence is not None:
            await self.presence.enter(presence_scope.board(board_id), p, sid)
        meta = live.meta
        ref = board_ref(meta)
        answer: dict[str, Any] = {
            "board": await self.describe(meta),
            "me": {"id": p.id, "name": p.user.name, "role": p.role.value,
                   "is_teacher": may(p, Action.CONTROL_BOARD, ref) or (
                       p.id == meta.owner_id),
                   "can_draw": may(p, Action.DRAW_ON_BOARD, ref)},
            "limits": msgspec.to_builtins(self.limits), "batch_ms": self.batch_ms,
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
        boards = [self.live[board_id]] if board_id in self.live else (
            list(self.live.values()) if board_id is None else [])
        if board_id is None:
            self.fanout.forget(sid)
        for live in boards:
            if live.members.pop(sid, None) is not None:
                await self.sio.leave_room(sid, room_name(live.id), namespace=NAMESPACE)
                self._schedule_unload(live)
                if self.presence is not None:
                    await self.presence.leave(presence_scope.board(live.id), sid)
        if board_id is None and self.presence is not None:  # disconnected: every board
            await self.presence.leave_all(sid)

    def _schedule_unload(self, live: LiveBoard) -> None:
        if live.members or live.unload_timer is not None:
            return
        loop = asyncio.get_running_loop()
        live.unload_timer = loop.call_later(
            UNLOAD_AFTER_S, lambda: asyncio.ensure_future(self._unload_if_idle(live))
        )

    async def _unload_if_idle(self, live: LiveBoard) -> None:
        live.unload_timer = None
        if not live.members:
            await self._unload(live)

    async def _unload(self, live: LiveBoard, compact: bool = True) -> None:
        if self.live.get(live.id) is live:
            del self.live[live.id]
        if live.flush_timer is not None:
            live.flush_timer.cancel()
            self._flush(live)
        if live.compacting is not None:
            with contextlib.suppress(Exception):
                await live.compacting
        if compact and live.applied_since_snapshot:
            await self.compact(live, wait_s=SNAPSHOT_WAIT_S)
        if self._built_on.get(live.id, (None,))[0] is live:
            del self._built_on[live.id]
        if live.task is not None:
            live.task.cancel()
            if live.task is not asyncio.current_task():  # the follower may unload itself
                with contextlib.suppress(asyncio.CancelledError):
                    await live.task

    async def close(self) -> None:
        """Shutdown: every open board is snapshotted before the database closes."""
        for live in list(self.live.values()):
            if live.unload_timer is not None:
                live.unload_timer.cancel()
            await self._unload(live)
        await self.fanout.close()

    def member(self, sid: str, board_id: int) -> tuple[LiveBoard, Principal]:
        live = self.live.get(board_id)
        member = live.members.get(sid) if live else None
        if live is None or member is None:
            raise AppError("invalid", "Rejoignez d'abord le tableau (join).")
        return live, member.principal

    # --- ops ------------------------------------------------------------------------------

    def _admit(self) -> None:
        """Admission control: while the event loop runs late on average, a new op would only
        queue behind the others (and its followers' latency with it): refuse it instead,
        before anything is applied. Controls (lock, end, pen) are rare and always admitted."""
        if self.fanout.gauge.saturated:
            self.refused_busy += 1
            raise AppError("rate_limited", BUSY_MESSAGE)

    async def submit(self, sid: str, board_id: int, op: ClientOp) -> int:
        live, p = self.member(sid, board_id)
        self._admit()
        ref = board_ref(live.meta)
        if not may(p, Action.DRAW_ON_BOARD, ref):
            raise AppError("forbidden", _why_not_draw(live.meta))
        actor = Actor(id=p.id, is_teacher=may(p, Action.CONTROL_BOARD, ref))
        live.state.check(op, actor, self.limits)
        return await self._append(live, Event(author=p.id, teacher=actor.is_teacher,
                                              op=msgspec.to_builtins(op)))

    async def undo(self, sid: str, board_id: int, redo: bool) -> int:
        live, p = self.member(sid, board_id)
        self._admit()
        ref = board_ref(live.meta)
        if not may(p, Action.DRAW_ON_BOARD, ref):
            raise AppError("forbidden", _why_not_draw(live.meta))
        actor = Actor(id=p.id, is_teacher=may(p, Action.CONTROL_BOARD, ref))
        op = live.state.undo_candidate(actor, self.limits, redo=redo)
        return await self._append(live, Event(author=p.id, teacher=actor.is_teacher,
                                              origin="redo" if redo else "undo",
                                              op=msgspec.to_builtins(op)))

    async def control(
        self, sid: str, board_id: int, *, state: str | None = None,
        pen: str | list[int] | None = None, title: str | None = None,
    ) -> int:
        live, p = self.member(sid, board_id)
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
            published.append(await self._append(live, Event(
                author=p.id, teacher=True, origin="control", control=control)))
            updated = live.meta
            await self.sio.emit("pen", {"board_id": meta.id, "pen": pen_of(updated)},
                                room=room_name(meta.id), namespace=NAMESPACE, ignore_queue=True)
            await self.sio.emit("state", {"board_id": meta.id, "state": updated.state},
                                room=room_name(meta.id), namespace=NAMESPACE, ignore_queue=True)

        async with self.db.transaction() as conn:
            await store.set_controls(conn, meta.id, state=new_state, pen_all=pen_all,
                                     pen=pen_ids, now=self.clock())
            if title is not None:
                await store.set_title(conn, meta.id, title, self.clock())
            conn.on_commit(publish)
        if not published:  # stored but not announced (the stream was unreachable; logged)
            raise AppError("unavailable")
        return published[0]

    async def _append(self, live: LiveBoard, event: Event) -> int:
        appended = await self.streams.append(stream_name(live.id), msgspec.to_builtins(event))
        if appended.epoch != live.epoch:
            # The stream began a new history (Redis lost its keys) and ours is one of its first
            # events: rebuild the board now, so that the ack still means "applied here".
            await self._on_reset(live, Reset(epoch=appended.epoch, head=appended.seq,
                                             reason="epoch_changed"))
            live = await self.open(live.id)
        # The ack waits until this process has applied it, so the author's next op is checked
        # against a state that includes this one.
        async with asyncio.timeout(10):
            await live.wait_applied(appended.seq)
        return appended.seq

    async def submit_as(self, p: Principal, board_id: int, op: ClientOp) -> int:
        """An op from a REST request (a page import) rather than a member's socket: the same
        admission, policy and rules as `submit`."""
        live = await self.open(board_id)
        self._schedule_unload(live)
        self._admit()
        ref = board_ref(live.meta)
        if not may(p, Action.DRAW_ON_BOARD, ref):
            raise AppError("forbidden", _why_not_draw(live.meta))
        actor = Actor(id=p.id, is_teacher=may(p, Action.CONTROL_BOARD, ref))
        live.state.check(op, actor, self.limits)
        return await self._append(live, Event(author=p.id, teacher=actor.is_teacher,
                                              op=msgspec.to_builtins(op)))

    # --- volatile -------------------------------------------------------------------------

    async def pointer(self, sid: str, board_id: int, data: dict[str, Any]) -> None:
        """Volatile: to local members only, dropped for a lagging socket or a busy server."""
        live, p = self.member(sid, board_id)
        await self._volatile(live, "pointer", {"board_id": board_id, "user_id": p.id,
                                               "name": p.user.name, **data}, sid)

    async def view(self, sid: str, board_id: int, data: dict[str, Any]) -> None:
        live, p = self.member(sid, board_id)
        if not may(p, Action.CONTROL_BOARD, board_ref(live.meta)):
            raise AppError("forbidden", "Seul·e l'enseignant·e guide la vue de la classe.")
        live.view = {"board_id": board_id, **data}  # a late joiner gets the last one anyway
        # One per page change or zoom from one teacher: shedding it on a busy loop saves
        # nothing and leaves the class on the wrong page (a lagging socket still skips it).
        await self._volatile(live, "view", live.view, sid, shed_on_lag=False)

    async def instrument(self, sid: str, board_id: int, data: dict[str, Any]) -> None:
        """The teacher's ruler or protractor, where the class sees it; the last position of
        each kind is kept (a late joiner gets them in `join`'s `instruments`)."""
        live, p = self.member(sid, board_id)
        if not may(p, Action.CONTROL_BOARD, board_ref(live.meta)):
            raise AppError("forbidden", "Seul·e l'enseignant·e montre les instruments.")
        message = {"board_id": board_id, **data}
        if data.get("shown", True):
            live.instruments[data["kind"]] = message
        else:
            live.instruments.pop(data["kind"], None)
        await self._volatile(live, "instrument", message, sid, shed_on_lag=False)

    async def _volatile(self, live: LiveBoard, event: str, data: dict[str, Any],
                        sid: str, shed_on_lag: bool = True) -> None:
        """Local members get it straight on their sockets; members held by other processes
        through the Socket.IO manager's Redis channel (every local sid skipped there)."""
        self.fanout.send(live.members, event, data, volatile=True, skip_sid=sid,
                         shed_on_lag=shed_on_lag)
        if isinstance(self.sio.manager, AsyncPubSubManager):
            await self.sio.emit(event, data, room=room_name(live.id), namespace=NAMESPACE,
                                skip_sid=[sid, *live.members])


def _snapshot_is_faithful(data: bytes, view: bytes) -> bool:
    """Reloading the snapshot gives back the same bytes and the same board members see."""
    reloaded = BoardState.load(data)
    return reloaded.dump() == data and msgspec.json.encode(reloaded.snapshot()) == view


def _why_not_draw(meta: BoardMeta) -> str:
    if meta.state == "ended":
        return "La séance est terminée : le tableau est en lecture seule."
    if meta.state == "locked":
        return "Le tableau est verrouillé par l'enseignant·e."
    return "Vous n'avez pas le stylet : attendez que l'enseignant·e vous le donne."

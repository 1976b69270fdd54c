"""The boards open in this process: `LiveBoards` loads a board (snapshot + stream) when a
member or an export needs it, follows its stream, sends each tick's ops to its local members
(fanout.py), snapshots it (compaction, under a lease), rebuilds it after a lost history
(reset), and unloads it once nobody here has followed it for a while.

It decides nothing: `BoardService` checks who may see, draw or control before calling in.
Only where the code lives changed in this split; what each op costs did not (the follower's
`_after_apply` and `_flush` are the same calls as before).
"""

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
from realtime.boards.model import BoardState, Limits
from realtime.boards.ops import Item, Page
from realtime.db import Database, Unavailable
from realtime.errors import AppError, not_found
from realtime.identity.model import Principal
from realtime.lease import Leases
from realtime.presence import model as presence_scope
from realtime.streams import Replay, Reset, StreamStore

if TYPE_CHECKING:
    from realtime.presence.service import PresenceService

log = logging.getLogger(__name__)

SNAPSHOT_EVERY = 1_000  # applied events between two snapshots (a load replays at most these)
BATCH_MS = 15.0  # a board's ops leave in one frame per tick of this length
UNLOAD_AFTER_S = 30.0  # a board with no local member leaves memory after this
# After a lost stream history (Redis restarted empty), look again this long after rebuilding
# for a fuller snapshot of the old history written by another process.
RECHECK_AFTER_LOSS_S = (5.0, 15.0)
# A snapshot that saves what only this process has (on a reset, on unload) waits this long for
# another process's compaction of the board to finish; a periodic one just skips.
SNAPSHOT_WAIT_S = 5.0


@dataclass(frozen=True)
class Peek:
    """A board's pages and items at one position of its stream."""

    pages: list[Page]
    items: list[Item]
    position: tuple[str, int]


class LiveBoards:
    """The live boards of this process, their members here, and their fan-out."""

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
        self.frames_sent = self.deliveries = 0
        self.live: dict[int, LiveBoard] = {}
        self._opening: dict[int, asyncio.Task[LiveBoard]] = {}
        # The snapshot each live board was loaded from: what its first snapshot of a new
        # epoch may replace (store.save_snapshot).
        self._built_on: dict[int, tuple[LiveBoard, store.Snapshot]] = {}

    def start(self) -> None:
        self.fanout.gauge.start()

    @property
    def saturated(self) -> bool:
        """The event loop runs late on average (the fan-out's gauge): admission control."""
        return self.fanout.gauge.saturated

    # --- loading, following, snapshots ----------------------------------------------------

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

    # --- members ------------------------------------------------------------------------

    async def enter(self, p: Principal, sid: str, board_id: int) -> LiveBoard:
        """`sid` follows the board (the service let it in): it gets every frame from now on,
        after what was pending, and presence reports it."""
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
        return live

    async def leave(self, sid: str, board_id: int | None = None) -> None:
        boards = [self.live[board_id]] if board_id in self.live else (
            list(self.live.values()) if board_id is None else [])
        if board_id is None:
            self.fanout.forget(sid)
        for live in boards:
            if live.members.pop(sid, None) is not None:
                await self.sio.leave_room(sid, room_name(live.id), namespace=NAMESPACE)
                self.schedule_unload(live)
                if self.presence is not None:
                    await self.presence.leave(presence_scope.board(live.id), sid)
        if board_id is None and self.presence is not None:  # disconnected: every board
            await self.presence.leave_all(sid)

    def schedule_unload(self, live: LiveBoard) -> None:
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
            try:
                await self.compact(live, wait_s=SNAPSHOT_WAIT_S)
            except Unavailable:  # its ops are in its stream; a later snapshot covers them
                log.warning("board not snapshotted at unload: database unreachable",
                            extra={"board": live.id})
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

    # --- appending and sending ------------------------------------------------------------

    async def append(self, live: LiveBoard, event: Event) -> int:
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

    async def announce(self, board_id: int, event: str, data: dict[str, Any]) -> None:
        """To every member of the board, on every process (a control's new pen or state)."""
        await self.sio.emit(event, data, room=room_name(board_id), namespace=NAMESPACE,
                            ignore_queue=True)

    async def volatile(self, live: LiveBoard, event: str, data: dict[str, Any],
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

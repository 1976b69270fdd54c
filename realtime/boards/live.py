"""A board open in this process: its state, rebuilt from the snapshot and the stream, kept up
to date by applying the stream's events in seq order, and fanned out to local members.

Every process follows the stream itself and delivers to its own members only, so an op
crosses Redis once per node, not once per recipient. Applied ops wait in `pending` and leave
as one `ops` frame, in seq order, encoded once for all members (fanout.py): at the end of the
loop pass if the board sent nothing during the last tick (`batch_ms`), else at the tick's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from realtime.boards.model import Actor, BoardState, Limits
from realtime.boards.ops import Noop, decode_op
from realtime.boards.store import BoardMeta
from realtime.identity.model import Principal
from realtime.streams import Position, Reset, StreamEvent, StreamStore, Subscription

log = logging.getLogger(__name__)

RECENT_OPS = 5_000  # ops kept in memory to answer a resume without a snapshot
NAMESPACE = "/boards"
SUBSCRIBE_RETRY_S = 0.5


def stream_name(board_id: int) -> str:
    return f"board:{board_id}"


def room_name(board_id: int) -> str:
    return f"board:{board_id}"


class Event(msgspec.Struct, frozen=True):
    """What a board's stream carries: an op (with who and why), or a control change."""

    author: int
    teacher: bool
    origin: str = "op"  # op | undo | redo | control
    op: Any = None
    control: dict[str, Any] | None = None


@dataclass
class Member:
    principal: Principal
    sid: str


@dataclass
class LiveBoard:
    meta: BoardMeta
    state: BoardState
    epoch: str
    seq: int
    limits: Limits
    members: dict[str, Member] = field(default_factory=dict)
    # (seq, the op's JSON): kept encoded, so thousands of recent ops per board are a few
    # flat objects the garbage collector does not walk (as dicts they made its full passes
    # take tens of ms), and each op is encoded once for both the frame and a resume.
    recent: deque[tuple[int, bytes]] = field(default_factory=lambda: deque(maxlen=RECENT_OPS))
    view: dict[str, Any] | None = None
    instruments: dict[str, dict[str, Any]] = field(default_factory=dict)  # shown, by kind
    applied_since_snapshot: int = 0
    subscription: Subscription | None = None
    task: asyncio.Task[None] | None = None
    unload_timer: asyncio.TimerHandle | None = None
    pending: list[bytes] = field(default_factory=list)  # applied, not yet sent (JSON)
    flush_timer: asyncio.Handle | None = None
    last_flush: float = 0.0  # loop time of the last frame sent
    compacting: asyncio.Task[None] | None = None
    _waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)

    @property
    def id(self) -> int:
        return self.meta.id

    def apply(self, seq: int, event: Event) -> dict[str, Any]:
        """Apply one stream event; return the entry `{seq, author, op}` members receive."""
        if event.control is not None:
            self.meta = msgspec.structs.replace(
                self.meta,
                state=event.control["state"],
                pen_all=event.control["pen_all"],
                pen=frozenset(event.control["pen"]),
                title=event.control.get("title", self.meta.title),
            )
            op: dict[str, Any] = {"type": "control", **event.control}
        else:
            decoded = decode_op(event.op)
            actor = Actor(id=event.author, is_teacher=event.teacher)
            applied = self.state.apply_event(decoded, actor, self.limits, event.origin)
            op = msgspec.to_builtins(applied)
        self.seq = seq
        self.applied_since_snapshot += 1
        message = {"seq": seq, "author": event.author, "op": op}
        encoded = msgspec.json.encode(message)
        self.recent.append((seq, encoded))
        self.pending.append(encoded)
        if self._waiters:
            self._wake()
        return message

    def take_pending(self) -> list[bytes]:
        ops, self.pending = self.pending, []
        return ops

    def _wake(self) -> None:
        still = []
        for seq, fut in self._waiters:
            if seq <= self.seq:
                if not fut.done():
                    fut.set_result(None)
            else:
                still.append((seq, fut))
        self._waiters = still

    def ops_after(self, epoch: str, seq: int) -> list[dict[str, Any]] | None:
        """Exactly the ops after (epoch, seq), or None when memory does not reach back."""
        if epoch != self.epoch or seq > self.seq:
            return None
        if seq == self.seq:
            return []
        if not self.recent or self.recent[0][0] > seq + 1:
            return None
        return [msgspec.json.decode(m) for s, m in self.recent if s > seq]

    async def wait_applied(self, seq: int) -> None:
        if self.seq >= seq:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, fut))
        await fut


async def follow(
    live: LiveBoard,
    streams: StreamStore,
    on_applied: Callable[[LiveBoard], None],
    on_reset: Callable[[LiveBoard, Reset], Awaitable[None]],
) -> None:
    """The consumer: stream events → state → `pending`, strictly in seq order. `on_applied`
    (never awaiting) schedules the tick that sends `pending` to the members."""
    while live.subscription is None:  # Redis may be restarting: the board must not die of it
        try:
            live.subscription = await streams.subscribe(
                stream_name(live.id), Position(epoch=live.epoch, seq=live.seq)
            )
        except Exception as exc:
            log.warning("board follower cannot subscribe yet, retrying",
                        extra={"board": live.id, "error": repr(exc)})
            await asyncio.sleep(SUBSCRIBE_RETRY_S)
    try:
        async for item in live.subscription:
            if isinstance(item, Reset):
                await on_reset(live, item)
                continue
            assert isinstance(item, StreamEvent)
            try:
                event = msgspec.convert(item.payload, Event)
                live.apply(item.seq, event)
            except (msgspec.ValidationError, KeyError, TypeError):
                log.exception("unreadable board event", extra={"board": live.id, "seq": item.seq})
                live.apply(item.seq, Event(author=0, teacher=False,
                                           op=msgspec.to_builtins(Noop(reason="bad"))))
            on_applied(live)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("board follower stopped", extra={"board": live.id})
    finally:
        if live.subscription is not None:
            with contextlib.suppress(Exception):
                await live.subscription.close()

"""Namespace `/boards`: decode, find the caller, call the service, ack. Nothing decided here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from realtime.boards.ops import ClientOp, Coord, Id
from realtime.boards.service import BoardService
from realtime.errors import AppError, ack_body
from realtime.identity.model import Principal
from realtime.keys import BOARDS
from realtime.ratelimit import TokenBucket
from realtime.sio import AuthedNamespace, acked
from realtime.validation import Payload, convert

BoardId = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
POINTERS_PER_SECOND = 30


class Since(Payload):
    epoch: Annotated[str, msgspec.Meta(max_length=64)]
    seq: Annotated[int, msgspec.Meta(ge=0)]


class Join(Payload):
    board_id: BoardId
    since: Since | None = None


class BoardOnly(Payload):
    board_id: BoardId


class OpMessage(Payload):
    board_id: BoardId
    op: ClientOp


class Pointer(Payload):
    board_id: BoardId
    x: Coord
    y: Coord
    page_id: Id | None = None
    laser: bool = False


class View(Payload):
    board_id: BoardId
    page_id: Id
    x: Coord = 0.0
    y: Coord = 0.0
    zoom: Annotated[float, msgspec.Meta(ge=0.1, le=10)] = 1.0


class Grant(Payload):
    board_id: BoardId
    pen: Literal["none", "everyone"] | Annotated[list[int], msgspec.Meta(max_length=200)]


class Lock(Payload):
    board_id: BoardId
    locked: bool


class Rename(Payload):
    board_id: BoardId
    title: Annotated[str, msgspec.Meta(max_length=500)]


class Instrument(Payload):
    """A geometry instrument on the teacher's sheet (ruler, set square, protractor, compass),
    shown to the class: where it lies and how it is turned; `shown: false` puts it away."""

    board_id: BoardId
    kind: Literal["ruler", "square", "protractor", "compass"]
    page_id: Id
    x: Coord
    y: Coord
    angle: Annotated[float, msgspec.Meta(ge=-720, le=720)] = 0.0
    size: Annotated[float, msgspec.Meta(ge=0, le=4000)] = 0.0
    shown: bool = True


class BoardsNamespace(AuthedNamespace):
    def __init__(self, app: web.Application) -> None:
        super().__init__("/boards", app)
        self._buckets: dict[str, tuple[TokenBucket, TokenBucket]] = {}

    @property
    def service(self) -> BoardService:
        return self.app[BOARDS]

    async def joined(self, sid: str, principal: Principal) -> None:
        limits = self.service.limits
        self._buckets[sid] = (self.bucket(limits.ops_per_second, limits.ops_burst),
                              self.bucket(POINTERS_PER_SECOND, POINTERS_PER_SECOND))

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._buckets.pop(sid, None)
        await self.service.leave(sid)

    def _decode(self, sid: str, data: Any, type_: type, reliable: bool = True) -> Any:
        size = len(msgspec.json.encode(data))
        if size > self.service.limits.payload_bytes:
            raise AppError("too_large", f"Message trop volumineux ({size // 1024} Kio).")
        if reliable and not self._buckets[sid][0].take():
            raise AppError("rate_limited", "Trop d'opérations à la fois : ralentissez un peu.")
        return convert(data, type_)

    @acked
    async def on_join(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: Join = self._decode(sid, data, Join, reliable=False)
        since = (msg.since.epoch, msg.since.seq) if msg.since else None
        return await self.service.join(await self.principal(sid), sid, msg.board_id, since)

    @acked
    async def on_leave(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: BoardOnly = self._decode(sid, data, BoardOnly, reliable=False)
        await self.service.leave(sid, msg.board_id)
        return {}

    @acked
    async def on_op(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: OpMessage = self._decode(sid, data, OpMessage)
        return {"seq": await self.service.submit(sid, msg.board_id, msg.op)}

    @acked
    async def on_undo(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: BoardOnly = self._decode(sid, data, BoardOnly)
        return {"seq": await self.service.undo(sid, msg.board_id, redo=False)}

    @acked
    async def on_redo(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: BoardOnly = self._decode(sid, data, BoardOnly)
        return {"seq": await self.service.undo(sid, msg.board_id, redo=True)}

    @acked
    async def on_grant(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: Grant = self._decode(sid, data, Grant)
        return {"seq": await self.service.control(sid, msg.board_id, pen=msg.pen)}

    @acked
    async def on_lock(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: Lock = self._decode(sid, data, Lock)
        state = "locked" if msg.locked else "live"
        return {"seq": await self.service.control(sid, msg.board_id, state=state)}

    @acked
    async def on_end(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: BoardOnly = self._decode(sid, data, BoardOnly)
        return {"seq": await self.service.control(sid, msg.board_id, state="ended",
                                                  pen="none")}

    @acked
    async def on_rename(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: Rename = self._decode(sid, data, Rename)
        return {"seq": await self.service.control(sid, msg.board_id, title=msg.title)}

    @acked
    async def on_instrument(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: Instrument = self._decode(sid, data, Instrument, reliable=False)
        if not self._buckets[sid][1].take():
            return {}  # volatile: a moving instrument sends often, the last one wins
        payload = msgspec.to_builtins(msg)
        del payload["board_id"]
        await self.service.instrument(sid, msg.board_id, payload)
        return {}

    async def on_pointer(self, sid: str, data: Any = None) -> dict[str, Any] | None:
        """Volatile: over budget or malformed, it is dropped (an ack only if one was asked)."""
        try:
            msg: Pointer = self._decode(sid, data, Pointer, reliable=False)
            if not self._buckets[sid][1].take():
                return None
            payload = msgspec.to_builtins(msg)
            del payload["board_id"]
            await self.service.pointer(sid, msg.board_id, payload)
        except AppError as err:
            return ack_body(err)
        return None

    @acked
    async def on_view(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: View = self._decode(sid, data, View, reliable=False)
        if not self._buckets[sid][1].take():
            raise AppError("rate_limited", "Trop de changements de vue à la fois.")
        payload = msgspec.to_builtins(msg)
        del payload["board_id"]
        await self.service.view(sid, msg.board_id, payload)
        return {}

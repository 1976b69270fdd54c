"""Namespace `/chat`: decode, find the caller, call the service, ack. Nothing decided here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from realtime.chat.outreach import ClassList
from realtime.chat.service import ChatService
from realtime.errors import AppError, ack_body
from realtime.identity.model import Principal
from realtime.keys import CHAT
from realtime.ratelimit import TokenBucket
from realtime.sio import AuthedNamespace, acked
from realtime.validation import Payload, convert

Id = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
Ids = Annotated[list[Id], msgspec.Meta(max_length=1000)]
Text = Annotated[str, msgspec.Meta(max_length=100_000)]
AttIds = Annotated[list[Id], msgspec.Meta(max_length=50)]
PAYLOAD_MAX = 48 * 1024
TYPING_PER_SECOND = 1.0
WRITE, TYPING, READ = 0, 1, 2  # the per-connection budgets
READS_PER_SECOND = 20.0  # list, open, history, sync, read, mute, live_join: cheaper, still bounded


class ListRef(Payload):
    """A class distribution list: its pupils' parents, or its pupils."""
    class_id: Id
    audience: Literal["parents", "students"]


class Create(Payload):
    kind: Literal["direct", "group", "information"]
    members: Ids = msgspec.field(default_factory=list)
    lists: Annotated[list[ListRef], msgspec.Meta(max_length=20)] = msgspec.field(
        default_factory=list)
    body: Text = ""
    title: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    attachments: AttIds = msgspec.field(default_factory=list)


class Send(Payload):
    conversation_id: Id
    body: Text = ""
    attachments: AttIds = msgspec.field(default_factory=list)


class Conv(Payload):
    conversation_id: Id


class Edit(Payload):
    message_id: Id
    body: Text


class MessageOnly(Payload):
    message_id: Id


class ReportIds(Payload):
    report_ids: Annotated[list[Id], msgspec.Meta(max_length=100)]


class Report(Payload):
    message_id: Id
    reason: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class Read(Payload):
    conversation_id: Id
    seq: Seq


class Mute(Payload):
    conversation_id: Id
    muted: bool


class Invite(Payload):
    conversation_id: Id
    members: Ids


class OpenClose(Payload):
    conversation_id: Id
    open: bool


class History(Payload):
    conversation_id: Id
    before: Seq | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] | None = None


class Sync(Payload):
    conversation_id: Id
    since: Seq


class Search(Payload):
    q: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Live(Payload):
    board_id: Id


class ChatNamespace(AuthedNamespace):
    def __init__(self, app: web.Application) -> None:
        super().__init__("/chat", app)
        self._buckets: dict[str, tuple[TokenBucket, TokenBucket, TokenBucket]] = {}

    @property
    def service(self) -> ChatService:
        return self.app[CHAT]

    async def joined(self, sid: str, principal: Principal) -> None:
        limits = self.service.limits
        self._buckets[sid] = (self.bucket(limits.messages_per_second, limits.messages_burst),
                              self.bucket(TYPING_PER_SECOND, 3),
                              self.bucket(READS_PER_SECOND, 2 * READS_PER_SECOND))
        await self.emit("welcome", await self.service.connected(sid, principal), to=sid)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._buckets.pop(sid, None)
        await self.service.disconnected(sid)

    def _decode(self, sid: str, data: Any, type_: type, bucket: int | None) -> Any:
        """Size first, then the budget (`WRITE`, `READ`, or None for typing's own), then
        the shape."""
        size = len(msgspec.json.encode(data))
        if size > PAYLOAD_MAX:
            raise AppError("too_large", f"Message trop volumineux ({size // 1024} Kio).")
        if bucket is not None and not self._buckets[sid][bucket].take():
            raise AppError("rate_limited", "Vous envoyez trop de messages : patientez un peu."
                           if bucket == WRITE else
                           "Trop de demandes à la fois : patientez un peu.")
        return convert(data, type_)

    async def _call(self, sid: str, data: Any, type_: type, bucket: int | None = READ
                    ) -> tuple[Principal, Any]:
        msg = self._decode(sid, data, type_, bucket)
        return await self.principal(sid), msg

    @acked
    async def on_list(self, sid: str, data: Any = None) -> dict[str, Any]:
        if not self._buckets[sid][READ].take():
            raise AppError("rate_limited", "Trop de demandes à la fois : patientez un peu.")
        return await self.service.welcome(await self.principal(sid))

    @acked
    async def on_create(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, Create, bucket=WRITE)
        return await self.service.create(
            p, m.kind, m.members, m.title, m.body, m.attachments,
            [ClassList(class_id=x.class_id, audience=x.audience) for x in m.lists])

    @acked
    async def on_open(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, Conv)
        return await self.service.open(p, sid, m.conversation_id)

    @acked
    async def on_close(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The conversation left the screen: no longer shown as viewing it."""
        _p, m = await self._call(sid, data, Conv)
        await self.service.close(sid, m.conversation_id)
        return {}

    @acked
    async def on_send(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, Send, bucket=WRITE)
        return await self.service.send(p, m.conversation_id, m.body, m.attachments)

    @acked
    async def on_edit(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, Edit, bucket=WRITE)
        return {"seq": await self.service.edit(p, m.message_id, m.body)}

    @acked
    async def on_delete(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, MessageOnly, bucket=WRITE)
        return {"seq": await self.service.delete(p, m.message_id)}

    @acked
    async def on_recall(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, MessageOnly, bucket=WRITE)
        return {"seq": await self.service.recall(p, m.message_id)}

    @acked
    async def on_ack(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, MessageOnly, bucket=WRITE)
        return {"at": await self.service.ack(p, m.message_id)}

    @acked
    async def on_report(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, Report, bucket=WRITE)
        await self.service.report(p, m.message_id, m.reason)
        return {}

    @acked
    async def on_receipts(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Who read (and acknowledged) one of my messages, by name and time."""
        p, m = await self._call(sid, data, MessageOnly)
        return await self.service.outreach.receipts(p, m.message_id)

    @acked
    async def on_outcomes_seen(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The reporter saw these outcomes: they no longer wait in the welcome."""
        p, m = await self._call(sid, data, ReportIds)
        return {"seen": await self.service.outreach.outcomes_seen(p, m.report_ids)}

    @acked
    async def on_read(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, Read)
        return {"read_seq": await self.service.read(p, m.conversation_id, m.seq)}

    @acked
    async def on_mute(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, Mute)
        await self.service.mute(p, m.conversation_id, m.muted)
        return {}

    @acked
    async def on_invite(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, Invite, bucket=WRITE)
        return {"seq": await self.service.invite(p, m.conversation_id, m.members)}

    @acked
    async def on_set_open(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, OpenClose, bucket=WRITE)
        return {"seq": await self.service.set_open(p, m.conversation_id, m.open)}

    @acked
    async def on_history(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, History)
        return await self.service.history(p, m.conversation_id, m.before, m.limit)

    @acked
    async def on_sync(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, Sync)
        return await self.service.sync(p, m.conversation_id, m.since)

    @acked
    async def on_search(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, Search, bucket=WRITE)
        return {"messages": await self.service.search(p, m.q)}

    @acked
    async def on_live_join(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Open a board session's chat: the latest page, then live events in the room."""
        p, m = await self._call(sid, data, Live)
        return await self.service.live_join(p, sid, m.board_id)

    @acked
    async def on_live_leave(self, sid: str, data: Any = None) -> dict[str, Any]:
        p, m = await self._call(sid, data, Live)
        await self.service.live_leave(p, sid, m.board_id)
        return {}

    async def on_typing(self, sid: str, data: Any = None) -> dict[str, Any] | None:
        """Volatile: over budget or malformed, it is dropped (an error only if acked)."""
        try:
            p, m = await self._call(sid, data, Conv, bucket=None)
            if self._buckets[sid][TYPING].take():
                await self.service.typing(p, sid, m.conversation_id)
        except AppError as err:
            return ack_body(err)
        return None

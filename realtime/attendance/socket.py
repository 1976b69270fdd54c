"""Namespace `/attendance`: decode, find the caller, call the service, ack. Nothing decided
here. Events and payloads are documented in docs/attendance.md."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from realtime.attendance.context import (
    dashboard_room,
    guardian_room,
    parse_day,
    roll_room,
    school_room,
    teacher_room,
)
from realtime.attendance.hub import Attendance
from realtime.attendance.model import (
    COMMENT_MAX,
    MARKS_PER_CALL,
    REASON_MAX,
    MarkInput,
    MarkState,
)
from realtime.errors import AppError
from realtime.identity.model import Principal, Role
from realtime.keys import ATTENDANCE
from realtime.policy import Action, SchoolRef, may
from realtime.ratelimit import TokenBucket
from realtime.sio import AuthedNamespace, acked
from realtime.validation import Payload, convert

Id = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
Date = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]
Text = Annotated[str, msgspec.Meta(max_length=COMMENT_MAX + 50)]
PAYLOAD_MAX = 16 * 1024
EVENTS_PER_SECOND = 20
EVENTS_BURST = 40


class OpenRoll(Payload):
    slot_id: Id | None = None
    study_hall_id: Id | None = None
    date: Date | None = None


class RollOnly(Payload):
    roll_id: Id


Reason = Annotated[str, msgspec.Meta(max_length=REASON_MAX + 50)]


class RollStep(Payload):
    """`all_present` / `validate`: the reason is asked for a past day's roll."""

    roll_id: Id
    reason: Reason | None = None


class MarkItem(Payload):
    student_id: Id
    state: MarkState
    minutes: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None
    must_attend: bool = False
    comment: Text = ""


class Marks(Payload):
    roll_id: Id
    marks: Annotated[list[MarkItem], msgspec.Meta(min_length=1, max_length=MARKS_PER_CALL)]
    reason: Reason | None = None  # required to correct a validated (or past) roll


class Replace(Payload):
    slot_id: Id
    teacher_id: Id | None
    date: Date | None = None


Time = Annotated[str, msgspec.Meta(pattern=r"^\d{2}:\d{2}$")]


class StudyHallBody(Payload):
    """A permanence for a slot and a day, and the pupils already there (optional)."""

    room: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    start: Time
    end: Time
    date: Date | None = None
    school_id: Id | None = None
    supervisor_id: Id | None = None
    students: Annotated[list[Id], msgspec.Meta(max_length=MARKS_PER_CALL)] = msgspec.field(
        default_factory=list)


class Watch(Payload):
    school_id: Id | None = None
    date: Date | None = None


class Since(Payload):
    epoch: Annotated[str, msgspec.Meta(max_length=64)]
    seq: Annotated[int, msgspec.Meta(ge=0, le=2**53)]


class Follow(Payload):
    since: Since | None = None


class Read(Payload):
    ids: Annotated[list[Id], msgspec.Meta(max_length=500)] | None = None


class GiveReason(Payload):
    event_id: Id
    reason_code: Annotated[str, msgspec.Meta(max_length=40)]
    comment: Text = ""


class Decide(Payload):
    event_id: Id
    decision: Literal["accept", "refuse"]
    reason_code: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    comment: Text | None = None


class AttendanceNamespace(AuthedNamespace):
    def __init__(self, app: web.Application) -> None:
        super().__init__("/attendance", app)
        self._buckets: dict[str, TokenBucket] = {}
        self._watching: dict[str, str] = {}

    @property
    def hub(self) -> Attendance:
        return self.app[ATTENDANCE]

    async def joined(self, sid: str, principal: Principal) -> None:
        self._buckets[sid] = self.bucket(EVENTS_PER_SECOND, EVENTS_BURST)
        if principal.role is Role.TEACHER:
            await self.enter_room(sid, teacher_room(principal.id))
        elif principal.role is Role.PARENT:
            await self.enter_room(sid, guardian_room(principal.id))
        elif principal.role in (Role.CPE, Role.STAFF) and principal.school_id is not None:
            await self.enter_room(sid, school_room(principal.school_id))
            # A permanence's supervisor is reminded of its roll like a teacher.
            await self.enter_room(sid, teacher_room(principal.id))

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._buckets.pop(sid, None)
        self._watching.pop(sid, None)
        await self.hub.unfollow(sid)

    def _decode(self, sid: str, data: Any, type_: type) -> Any:
        size = len(msgspec.json.encode(data))
        if size > PAYLOAD_MAX:
            raise AppError("too_large", f"Message trop volumineux ({size // 1024} Kio).")
        bucket = self._buckets.get(sid)
        if bucket is None or not bucket.take():
            raise AppError("rate_limited", "Trop de messages à la fois : patientez un instant.")
        return convert(data if data is not None else {}, type_)

    # --- the teacher's roll -------------------------------------------------------------

    @acked
    async def on_open_roll(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: OpenRoll = self._decode(sid, data, OpenRoll)
        if (msg.slot_id is None) == (msg.study_hall_id is None):
            raise AppError("invalid", "Précisez un cours ou une permanence.")
        out = await self.hub.rolls.open(await self.principal(sid), slot_id=msg.slot_id,
                                        hall_id=msg.study_hall_id, date=msg.date)
        await self.enter_room(sid, roll_room(out["roll"]["id"]))
        return out

    @acked
    async def on_view_roll(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: RollOnly = self._decode(sid, data, RollOnly)
        out = await self.hub.rolls.view(await self.principal(sid), msg.roll_id)
        await self.enter_room(sid, roll_room(msg.roll_id))
        return out

    @acked
    async def on_mark(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: Marks = self._decode(sid, data, Marks)
        inputs = [MarkInput(m.student_id, m.state, m.minutes, m.must_attend, m.comment)
                  for m in msg.marks]
        return await self.hub.rolls.mark(await self.principal(sid), msg.roll_id, inputs,
                                         msg.reason)

    @acked
    async def on_all_present(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: RollStep = self._decode(sid, data, RollStep)
        return await self.hub.rolls.all_present(await self.principal(sid), msg.roll_id,
                                                msg.reason)

    @acked
    async def on_validate(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: RollStep = self._decode(sid, data, RollStep)
        return await self.hub.rolls.validate(await self.principal(sid), msg.roll_id,
                                             msg.reason)

    @acked
    async def on_roll_history(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: RollOnly = self._decode(sid, data, RollOnly)
        return await self.hub.rolls.history(await self.principal(sid), msg.roll_id)

    # --- the vie scolaire ---------------------------------------------------------------

    @acked
    async def on_replace(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: Replace = self._decode(sid, data, Replace)
        return await self.hub.rolls.replace(await self.principal(sid), slot_id=msg.slot_id,
                                            date=msg.date, teacher_id=msg.teacher_id)

    @acked
    async def on_create_study_hall(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: StudyHallBody = self._decode(sid, data, StudyHallBody)
        out = await self.hub.rolls.create_study_hall(
            await self.principal(sid), school_id=msg.school_id, room=msg.room,
            start=msg.start, end=msg.end, date=msg.date, supervisor_id=msg.supervisor_id,
            students=msg.students)
        await self.enter_room(sid, roll_room(out["roll"]["id"]))
        return out

    @acked
    async def on_watch_dashboard(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: Watch = self._decode(sid, data, Watch)
        p = await self.principal(sid)
        grid = await self.hub.dashboard.grid(p, msg.school_id, msg.date)
        room = dashboard_room(grid["school_id"], grid["date"])
        previous = self._watching.get(sid)
        if previous and previous != room:
            await self.leave_room(sid, previous)
        await self.enter_room(sid, room)
        self._watching[sid] = room
        if may(p, Action.VIEW_ATTENDANCE_DASHBOARD, SchoolRef(id=grid["school_id"])):
            await self.enter_room(sid, school_room(grid["school_id"]))
        pending = await self.hub.records.school_absences(
            p, grid["school_id"], True, None, parse_day(grid["date"], self.hub.ctx.today())
            .isoformat())
        return {**grid, "pending": pending["absences"]}

    @acked
    async def on_decide(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: Decide = self._decode(sid, data, Decide)
        event = await self.hub.justify.decide(await self.principal(sid), msg.event_id,
                                              msg.decision == "accept", msg.reason_code,
                                              msg.comment)
        return {"absence": event}

    # --- guardians ----------------------------------------------------------------------

    @acked
    async def on_follow_feed(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: Follow = self._decode(sid, data, Follow)
        p = await self.principal(sid)
        if p.role is not Role.PARENT:
            raise AppError("not_found", "Aucun fil de notifications pour ce compte.")
        since = (msg.since.epoch, msg.since.seq) if msg.since else None
        return await self.hub.follow(sid, p.id, since)

    @acked
    async def on_read_notices(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: Read = self._decode(sid, data, Read)
        p = await self.principal(sid)
        from realtime.attendance import feed

        changed = await feed.mark_read(self.hub.ctx.db, p.id, msg.ids, self.hub.ctx.clock())
        if changed:
            await self.hub.ctx.emit("notices_read", {"ids": changed}, guardian_room(p.id))
        return {"read": changed, "unread": await feed.unread_count(self.hub.ctx.db, p.id)}

    @acked
    async def on_give_reason(self, sid: str, data: Any = None) -> dict[str, Any]:
        msg: GiveReason = self._decode(sid, data, GiveReason)
        event = await self.hub.justify.give(await self.principal(sid), msg.event_id,
                                            msg.reason_code, msg.comment)
        return {"absence": event}

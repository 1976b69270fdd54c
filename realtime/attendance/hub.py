"""The attendance feature of one process: its services, its push sender, its background
work (reminders, the notices outbox, the retention purge), and guardians' live feeds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import socketio

from realtime.attendance import feed, retention
from realtime.attendance.context import NAMESPACE, Context
from realtime.attendance.dashboard import DashboardService
from realtime.attendance.justify import JustificationService
from realtime.attendance.records import RecordService
from realtime.attendance.service import RollService
from realtime.attendance.webpush import PushSender
from realtime.streams import Position, Reset, StreamEvent

log = logging.getLogger(__name__)

REMINDER_EVERY_S = 60.0


class Attendance:
    def __init__(self, ctx: Context, push: PushSender | None) -> None:
        self.ctx = ctx
        self.push = push
        self.rolls = RollService(ctx, push)
        self.justify = JustificationService(ctx, self.rolls.push_notice)
        self.records = RecordService(ctx)
        self.dashboard = DashboardService(ctx, push)
        self._follows: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.Task[None] | None = None

    # --- guardians' live feeds ----------------------------------------------------------

    async def follow(self, sid: str, guardian_id: int, since: tuple[str, int] | None
                     ) -> dict[str, Any]:
        """Catch the device up (exactly what it missed, or a snapshot), then forward every
        new notice to it, gap-free, until it disconnects or follows again."""
        await self.unfollow(sid)
        answer, position = await feed.catch_up(self.ctx.db, self.ctx.streams, guardian_id,
                                               since)
        sub = await self.ctx.streams.subscribe(feed.stream_name(guardian_id), position)
        self._follows[sid] = asyncio.create_task(self._forward(sid, guardian_id, sub))
        return answer

    async def _forward(self, sid: str, guardian_id: int, sub: Any) -> None:
        sio: socketio.AsyncServer = self.ctx.sio
        try:
            async with sub:
                async for item in sub:
                    if isinstance(item, Reset):
                        answer, _ = await feed.catch_up(self.ctx.db, self.ctx.streams,
                                                        guardian_id, None)
                        await sio.emit("feed_reset", answer, to=sid, namespace=NAMESPACE)
                        continue
                    assert isinstance(item, StreamEvent)
                    await sio.emit("notice", feed.live_item(item), to=sid, namespace=NAMESPACE)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("feed follower stopped", extra={"guardian": guardian_id})

    async def unfollow(self, sid: str) -> None:
        task = self._follows.pop(sid, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- background ---------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.create_task(self._background(), name="attendance")

    async def tick(self) -> None:
        await self.dashboard.send_reminders()
        await feed.sweep_outbox(self.ctx.db, self.ctx.streams, self.ctx.clock(),
                                self.rolls.push_notice)

    async def purge(self) -> dict[str, int]:
        return await retention.purge(self.ctx.db, self.ctx.today(),
                                     self.ctx.settings.attendance_retention_years)

    async def _background(self) -> None:
        # The daily purge is the retention job's (realtime/retention.py), with every other
        # category; `purge()` stays for callers that want attendance's alone.
        while True:
            await asyncio.sleep(REMINDER_EVERY_S)
            try:
                await self.tick()
            except Exception:
                log.exception("attendance background work failed")

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        for sid in list(self._follows):
            await self.unfollow(sid)
        if self.push is not None:
            await self.push.close()


__all__ = ["Attendance", "Position"]

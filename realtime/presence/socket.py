"""Namespace `/presence`: subscribe to a scope you may see, get its roster, then its changes."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from realtime.errors import AppError
from realtime.identity.model import Principal
from realtime.keys import PRESENCE
from realtime.presence.model import UNKNOWN_SCOPE, Scope, audience_rooms, sorted_users
from realtime.presence.service import PresenceService
from realtime.ratelimit import TokenBucket
from realtime.sio import AuthedNamespace, acked
from realtime.validation import Payload, convert

MAX_SCOPES = 50  # scopes one connection may watch at once
CALLS_PER_SECOND = 5
CALLS_BURST = 20


class ScopeMessage(Payload):
    scope: Annotated[str, msgspec.Meta(max_length=40)]


class PresenceNamespace(AuthedNamespace):
    def __init__(self, app: web.Application) -> None:
        super().__init__("/presence", app)
        self._watching: dict[str, set[Scope]] = {}
        self._buckets: dict[str, TokenBucket] = {}

    @property
    def service(self) -> PresenceService:
        return self.app[PRESENCE]

    async def joined(self, sid: str, principal: Principal) -> None:
        self._watching[sid] = set()
        self._buckets[sid] = self.bucket(CALLS_PER_SECOND, CALLS_BURST)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        for scope in self._watching.pop(sid, set()):
            self.service.unwatch(scope)
        self._buckets.pop(sid, None)

    def _scope(self, sid: str, data: Any) -> Scope:
        if not self._buckets[sid].take():
            raise AppError("rate_limited", "Trop de demandes à la fois : patientez un instant.")
        msg: ScopeMessage = convert(data, ScopeMessage)
        scope = Scope.parse(msg.scope)
        if scope is None:
            raise AppError("invalid", UNKNOWN_SCOPE)
        return scope

    @acked
    async def on_subscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Enter the delivery room first, then read: no change falls in between."""
        scope = self._scope(sid, data)
        watching = self._watching[sid]
        if scope not in watching and len(watching) >= MAX_SCOPES:
            raise AppError("invalid", f"Pas plus de {MAX_SCOPES} suivis à la fois.")
        p = await self.principal(sid)
        await self.service.require_visible(p, scope)
        if scope not in watching:
            watching.add(scope)
            self.service.watch(scope)
            # only the changes about people this viewer may see (presence/model.py)
            for room in audience_rooms(str(scope), await self.service.audience(p, scope)):
                await self.enter_room(sid, room)
        roster = await self.service.roster_for(p, scope)
        return {"scope": roster.scope, "epoch": roster.epoch, "version": roster.version,
                "users": msgspec.to_builtins(sorted_users(roster.users))}

    @acked
    async def on_unsubscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        scope = self._scope(sid, data)
        if scope in self._watching[sid]:
            self._watching[sid].discard(scope)
            self.service.unwatch(scope)
            for room in audience_rooms(str(scope), await self.service.audience(
                    await self.principal(sid), scope)):
                await self.leave_room(sid, room)
        return {}

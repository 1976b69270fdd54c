"""The presence service other features call: enter, leave, roster, counts, and the heartbeat.

Rosters never come from Socket.IO rooms (rooms are per process); they live in the store.
Rooms only *deliver* changes to watchers: `presence:<scope>` on the `/presence` namespace,
emitted through the client manager, so a change made on one node reaches watchers on all.

This process remembers the devices it holds and renews them every `heartbeat_s`; a process
that dies stops renewing, and its devices expire after `timeout_s` (someone's sweep, or the
next roster read, announces the leaves). If Redis is briefly unreachable, calls fail and are
logged, and the next heartbeat puts back whatever Redis lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import socketio
from redis.exceptions import RedisError

from realtime.db import Database
from realtime.directory import reads as directory
from realtime.errors import not_found
from realtime.identity.model import Principal, Role
from realtime.policy import Action, ClassRef, SchoolRef, may
from realtime.presence.model import (
    EVERYONE,
    RESTRICTED_KINDS,
    Audience,
    Change,
    Kind,
    Roster,
    Scope,
    Who,
    change_rooms,
    school_class,
    sees,
    who,
)
from realtime.presence.store import PresenceStore

log = logging.getLogger(__name__)

NAMESPACE = "/presence"
STORE_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


# A feature's answer to "may p see this scope's roster": True only if the thing exists and p
# may see it (the feature's own policy check: CHAT_VIEW on a ConversationRef, VIEW_DOC on a
# DocRef). Registered by the feature that owns the scope kind.
Visible = Callable[[Principal, int], Awaitable[bool]]


def room_of(scope: Scope | str) -> str:
    return f"presence:{scope}"


class PresenceService:
    def __init__(self, store: PresenceStore, db: Database, sio: socketio.AsyncServer,
                 heartbeat_s: float) -> None:
        self.store = store
        self.db = db
        self.sio = sio
        self.heartbeat_s = heartbeat_s
        self._devices: dict[str, dict[str, Who]] = {}  # device → scope → who (this process)
        self._watched: Counter[str] = Counter()  # scope → local watchers
        self._task: asyncio.Task[None] | None = None
        self._visible: dict[Kind, Visible] = {}
        self.store_errors = 0  # failed store calls and heartbeats (realtime/metrics.py)

    def counters(self) -> dict[str, int]:
        """For the metrics page (`realtime.metrics.Counted`)."""
        return {"store_errors": self.store_errors}

    def register(self, kind: Kind, visible: Visible) -> None:
        """A feature owns a scope kind (boards, conversations, course documents): it says who may
        see that kind's rosters, with its own policy check, so presence needs none of its
        storage."""
        self._visible[kind] = visible

    # --- what features call ---------------------------------------------------------------

    async def enter(self, scope: Scope, p: Principal, device: str) -> None:
        """`device`: the connection's sid (unique per process; the user id is added)."""
        w = who(p)
        self._devices.setdefault(device, {})[str(scope)] = w
        await self._publish(await self._try(self.store.enter(str(scope), device, w)))

    async def leave(self, scope: Scope, device: str) -> None:
        scopes = self._devices.get(device)
        w = scopes.pop(str(scope), None) if scopes else None
        if scopes is not None and not scopes:
            del self._devices[device]
        if w is not None:
            await self._publish(await self._try(self.store.leave(str(scope), device, w.id)))

    async def leave_all(self, device: str) -> None:
        """The connection is gone: it leaves every scope it was in."""
        for scope, w in (self._devices.pop(device, None) or {}).items():
            await self._publish(await self._try(self.store.leave(scope, device, w.id)))

    async def roster(self, scope: Scope) -> Roster:
        roster, swept = await self.store.roster(str(scope))
        for change in swept:
            await self._publish(change)
        return roster

    async def audience(self, p: Principal, scope: Scope) -> Audience:
        """Whom `p` may see in `scope`'s roster (policy: VIEW_STUDENT's rule, read for a
        roster: a pupil's classmates, a teacher's classes, the school team's school)."""
        if p.role is Role.ADMIN or scope.kind not in RESTRICTED_KINDS:
            return EVERYONE
        classes = set(p.class_ids) if p.role in (Role.STUDENT, Role.TEACHER) else set()
        if p.role in (Role.CPE, Role.STAFF) and p.school_id is not None:
            classes |= {c.id for c in await directory.classes_of_schools(self.db,
                                                                          [p.school_id])}
        return Audience(classes=frozenset(classes), users=frozenset({p.id, *p.child_ids}),
                        parents=p.role in (Role.TEACHER, Role.CPE, Role.STAFF))

    async def roster_for(self, p: Principal, scope: Scope) -> Roster:
        """`scope`'s roster as `p` may see it (call `require_visible` first)."""
        roster = await self.roster(scope)
        a = await self.audience(p, scope)
        if a.everyone:
            return roster
        return msgspec.structs.replace(roster, users=[u for u in roster.users if sees(a, u)])

    async def counts(self, scopes: list[Scope]) -> dict[str, int]:
        counts, swept = await self.store.counts([str(s) for s in scopes])
        for change in swept:
            await self._publish(change)
        return counts

    # --- who may see what -----------------------------------------------------------------

    async def require_visible(self, p: Principal, scope: Scope) -> None:
        """The same not_found for a scope that does not exist and one that is not yours."""
        if scope.kind is Kind.SCHOOL:
            found = await directory.school(self.db, scope.id)
            ok = found is not None and may(p, Action.VIEW_SCHOOL_PRESENCE,
                                           SchoolRef(id=found.id))
        elif scope.kind is Kind.CLASS:
            c = await directory.school_class(self.db, scope.id)
            ok = c is not None and may(p, Action.VIEW_CLASS_PRESENCE,
                                       ClassRef(id=c.id, school_id=c.school_id))
        else:
            visible = self._visible.get(scope.kind)
            ok = visible is not None and await visible(p, scope.id)
        if not ok:
            raise not_found("Rien à afficher ici.")

    async def class_counts(self, p: Principal, school_id: int) -> list[dict[str, Any]]:
        """Users online per class of a school: the CPE's view of the day."""
        await self.require_visible(p, Scope(Kind.SCHOOL, school_id))
        classes = await directory.classes_of_schools(self.db, [school_id])
        counts = await self.counts([school_class(c.id) for c in classes])
        return [{"class_id": c.id, "name": c.name,
                 "online": counts.get(str(school_class(c.id)), 0)} for c in classes]

    def held(self) -> int:
        """Devices × scopes this process holds and renews (a gauge for the operators)."""
        return sum(len(scopes) for scopes in self._devices.values())

    # --- watchers -------------------------------------------------------------------------

    def watch(self, scope: Scope) -> None:
        self._watched[str(scope)] += 1

    def unwatch(self, scope: Scope) -> None:
        key = str(scope)
        self._watched[key] -= 1
        if self._watched[key] <= 0:
            del self._watched[key]

    # --- the heartbeat --------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="presence-heartbeat")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # A clean stop takes its devices out now rather than after the timeout.
        for device in list(self._devices):
            with contextlib.suppress(Exception):
                await self.leave_all(device)

    async def beat(self) -> None:
        """Renew this process's devices; sweep the scopes watched or held here."""
        items = [(scope, device, w) for device, scopes in self._devices.items()
                 for scope, w in scopes.items()]
        for change in await self.store.enter_many(items):
            await self._publish(change)
        scopes = sorted(set(self._watched) | {s for s, _d, _w in items})
        for change in await self.store.sweep_many(scopes):
            await self._publish(change)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self.beat()
            except STORE_ERRORS as exc:
                self.store_errors += 1
                log.warning("presence heartbeat failed", extra={"error": repr(exc)})
            except Exception:
                log.exception("presence heartbeat failed")

    # --- publishing -----------------------------------------------------------------------

    async def _try(self, call: Any) -> Change | None:
        """A store call that may fail while Redis is away: the heartbeat repairs it later."""
        try:
            return await call
        except STORE_ERRORS as exc:
            self.store_errors += 1
            log.warning("presence store unreachable", extra={"error": repr(exc)})
            return None

    async def _publish(self, change: Change | None) -> None:
        if change is None:
            return
        rooms = [room_of(change.scope)]
        if change.scope.split(":", 1)[0] in RESTRICTED_KINDS:
            rooms += change_rooms(change.scope, change.user)
        with contextlib.suppress(*STORE_ERRORS):
            await self.sio.emit("presence", msgspec.to_builtins(change),
                                room=rooms if len(rooms) > 1 else rooms[0],
                                namespace=NAMESPACE)

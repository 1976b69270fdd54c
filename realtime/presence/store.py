"""Where rosters live: the store interface, and its in-memory version for one process.

A roster entry is a *device* (`<user_id>|<device id>`) with an expiry; a user is present while
one of their devices is. Every change that makes a user appear or disappear bumps the scope's
version and comes back as a `Change`, which the service publishes: whoever made the change (or
swept the expired device) is the only one to report it, so a join or leave is announced once.
"""

from __future__ import annotations

import abc
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from realtime.presence.model import Change, Entry, Roster, Who


def member(user_id: int, device: str) -> str:
    return f"{user_id}|{device}"


def user_of(member_: str) -> int:
    return int(member_.split("|", 1)[0])


def entry_dict(who: Who, since: float, devices: int = 1) -> dict[str, object]:
    return msgspec.to_builtins(Entry(id=who.id, name=who.name, role=who.role, since=since,
                                     devices=devices, class_id=who.class_id))


class PresenceStore(abc.ABC):
    """Rosters with a TTL per device. `timeout_s`: how long a device lives without renewal."""

    timeout_s: float

    @abc.abstractmethod
    async def enter(self, scope: str, device: str, who: Who) -> Change | None:
        """Add or renew one device; the `join` if its user was not present."""

    async def enter_many(self, items: list[tuple[str, str, Who]]) -> list[Change]:
        """Renew many devices at once (the heartbeat); joins for users that had expired."""
        out = []
        for scope, device, who in items:
            change = await self.enter(scope, device, who)
            if change is not None:
                out.append(change)
        return out

    @abc.abstractmethod
    async def leave(self, scope: str, device: str, user_id: int) -> Change | None:
        """Remove one device; the `leave` if it was its user's last one here."""

    @abc.abstractmethod
    async def sweep(self, scope: str) -> list[Change]:
        """Drop expired devices; the `leave`s of users left with none."""

    async def sweep_many(self, scopes: list[str]) -> list[Change]:
        """Sweep many scopes at once (each heartbeat, the scopes held or watched here)."""
        out = []
        for scope in scopes:
            out += await self.sweep(scope)
        return out

    @abc.abstractmethod
    async def roster(self, scope: str) -> tuple[Roster, list[Change]]:
        """The scope's users now (expired devices swept first), and what the sweep removed."""

    @abc.abstractmethod
    async def counts(self, scopes: list[str]) -> tuple[dict[str, int], list[Change]]:
        """How many users each scope has (after a sweep), and what the sweeps removed."""


@dataclass
class _Room:
    epoch: str = field(default_factory=lambda: secrets.token_hex(8))
    version: int = 0
    devices: dict[str, float] = field(default_factory=dict)  # member → expires at
    users: dict[int, tuple[Who, float]] = field(default_factory=dict)  # user → (who, since)
    count: dict[int, int] = field(default_factory=dict)  # user → devices here
    empty_since: float | None = None  # when a sweep first found it without devices


class MemoryPresenceStore(PresenceStore):
    """One process, no Redis: the same rules on dicts."""

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.time) -> None:
        self.timeout_s = timeout_s
        self.clock = clock
        self._rooms: dict[str, _Room] = {}
        # An empty room (a roster read with nobody in it, or everyone gone) keeps its epoch
        # as long as Redis keeps a scope's keys (RedisPresenceStore.key_ttl): a watcher that
        # subscribed to it then hears the first join in that epoch, not a new one.
        self.keep_empty_s = max(10.0, timeout_s * 4)

    def _room(self, scope: str) -> _Room:
        room = self._rooms.get(scope)
        if room is None:
            room = self._rooms[scope] = _Room()
        return room

    def _change(self, scope: str, room: _Room, kind: str, user_id: int) -> Change:
        who, since = room.users[user_id]
        room.version += 1
        return Change(scope=scope, epoch=room.epoch, version=room.version, type=kind,
                      user=entry_dict(who, since, room.count.get(user_id, 0)))

    async def enter(self, scope: str, device: str, who: Who) -> Change | None:
        room, key = self._room(scope), member(who.id, device)
        new = key not in room.devices
        room.devices[key] = self.clock() + self.timeout_s
        room.empty_since = None
        if not new:
            return None
        room.count[who.id] = room.count.get(who.id, 0) + 1
        if room.count[who.id] > 1:
            return None
        room.users[who.id] = (who, self.clock())
        return self._change(scope, room, "join", who.id)

    def _drop(self, scope: str, room: _Room, key: str) -> Change | None:
        if room.devices.pop(key, None) is None:
            return None
        uid = user_of(key)
        room.count[uid] -= 1
        if room.count[uid] > 0:
            return None
        del room.count[uid]
        change = self._change(scope, room, "leave", uid)
        del room.users[uid]
        return change

    async def leave(self, scope: str, device: str, user_id: int) -> Change | None:
        room = self._rooms.get(scope)
        return self._drop(scope, room, member(user_id, device)) if room else None

    async def sweep(self, scope: str) -> list[Change]:
        room = self._rooms.get(scope)
        if room is None:
            return []
        now = self.clock()
        changes = [self._drop(scope, room, key)
                   for key, expires in list(room.devices.items()) if expires <= now]
        if not room.devices:
            # Forget a room empty for a while, as the Redis keys expire; its next epoch is
            # a new one.
            if room.empty_since is None:
                room.empty_since = now
            elif now - room.empty_since >= self.keep_empty_s:
                self._rooms.pop(scope, None)
        return [c for c in changes if c is not None]

    async def roster(self, scope: str) -> tuple[Roster, list[Change]]:
        changes = await self.sweep(scope)
        room = self._room(scope)
        users = [msgspec.convert(entry_dict(who, since, room.count[uid]), Entry)
                 for uid, (who, since) in room.users.items()]
        return Roster(scope=scope, epoch=room.epoch, version=room.version, users=users), changes

    async def counts(self, scopes: list[str]) -> tuple[dict[str, int], list[Change]]:
        out, changes = {}, []
        for scope in scopes:
            changes += await self.sweep(scope)
            room = self._rooms.get(scope)
            out[scope] = len(room.users) if room else 0
        return out, changes

"""Rosters in Redis, shared by every process and node, each device with its own expiry.

Per scope, under `<prefix>:presence:<scope>`: `:dev` a sorted set of devices scored by expiry,
`:users` user → "<since>\\n<who json>", `:n` user → devices, `:meta` the epoch and version.
Scripts run atomically and read the time from Redis itself (TIME), so nodes whose clocks
disagree still agree on who has expired. Every key gets a TTL on each renewal: a scope nobody
renews disappears by itself, and comes back with a new epoch.
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec
import redis.asyncio as aioredis

from realtime.presence.model import Change, Entry, Roster, Who
from realtime.presence.store import PresenceStore, entry_dict, member

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# Leaves of every expired device: appends {ver, entry} pairs to `out`.
_SWEEP = """
local function sweep(out, epoch)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
    redis.call('ZREM', KEYS[1], m)
    local uid = string.match(m, '^(%d+)|')
    if redis.call('HINCRBY', KEYS[3], uid, -1) <= 0 then
      redis.call('HDEL', KEYS[3], uid)
      local entry = redis.call('HGET', KEYS[2], uid)
      redis.call('HDEL', KEYS[2], uid)
      table.insert(out, redis.call('HINCRBY', KEYS[4], 'ver', 1))
      table.insert(out, entry or '')
    end
  end
end
"""

_META = """
local function meta(fresh, ttl)
  local epoch = redis.call('HGET', KEYS[4], 'epoch')
  if not epoch then
    epoch = fresh
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
    redis.call('HSET', KEYS[4], 'epoch', epoch, 'ver', 0)
    redis.call('EXPIRE', KEYS[4], ttl)
  end
  return epoch
end
"""

# ARGV: member, user id, who json, timeout, key ttl, fresh epoch → {epoch, ver, entry} | {}
_ENTER = _NOW + _META + """
local epoch = meta(ARGV[6], ARGV[5])
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
local out = {}
if added == 1 and redis.call('HINCRBY', KEYS[3], ARGV[2], 1) == 1 then
  local entry = string.format('%.3f', now) .. '\\n' .. ARGV[3]
  redis.call('HSET', KEYS[2], ARGV[2], entry)
  out = {epoch, redis.call('HINCRBY', KEYS[4], 'ver', 1), entry}
end
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return out
"""

# ARGV: member, user id → {epoch, ver, entry} | {}
_LEAVE = """
local epoch = redis.call('HGET', KEYS[4], 'epoch')
if not epoch or redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return {} end
if redis.call('HINCRBY', KEYS[3], ARGV[2], -1) > 0 then return {} end
redis.call('HDEL', KEYS[3], ARGV[2])
local entry = redis.call('HGET', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
return {epoch, redis.call('HINCRBY', KEYS[4], 'ver', 1), entry or ''}
"""

# ARGV: fresh epoch, key ttl, what ('roster' | 'count')
#   → {epoch, {ver, entry, …swept}, ver, {users hgetall} | count, {n hgetall}}
_READ = _NOW + _SWEEP + _META + """
local epoch = meta(ARGV[1], ARGV[2])
local swept = {}
sweep(swept, epoch)
local ver = tonumber(redis.call('HGET', KEYS[4], 'ver'))
if ARGV[3] == 'count' then
  return {epoch, swept, ver, redis.call('HLEN', KEYS[2]), {}}
end
return {epoch, swept, ver, redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
"""


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry(raw: bytes | str, devices: int) -> dict[str, Any] | None:
    text = _s(raw)
    if not text:
        return None
    since, _, who = text.partition("\n")
    return entry_dict(msgspec.json.decode(who, type=Who), float(since), devices)


class RedisPresenceStore(PresenceStore):
    def __init__(self, redis: aioredis.Redis, prefix: str, timeout_s: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.timeout_s = timeout_s
        self._enter = redis.register_script(_ENTER)
        self._leave = redis.register_script(_LEAVE)
        self._read = redis.register_script(_READ)

    @property
    def key_ttl(self) -> int:
        return max(10, int(self.timeout_s * 4))

    def _keys(self, scope: str) -> list[str]:
        base = f"{self.prefix}:presence:{scope}"
        return [f"{base}:dev", f"{base}:users", f"{base}:n", f"{base}:meta"]

    def _enter_args(self, device: str, who: Who) -> list[Any]:
        return [member(who.id, device), who.id, msgspec.json.encode(who), self.timeout_s,
                self.key_ttl, secrets.token_hex(8)]

    @staticmethod
    def _one(scope: str, kind: str, out: list[Any]) -> Change | None:
        if not out:
            return None
        user = _entry(out[2], 1 if kind == "join" else 0)
        if user is None:
            return None
        return Change(scope=scope, epoch=_s(out[0]), version=int(out[1]), type=kind, user=user)

    async def enter(self, scope: str, device: str, who: Who) -> Change | None:
        out = await self._enter(keys=self._keys(scope), args=self._enter_args(device, who))
        return self._one(scope, "join", out)

    async def enter_many(self, items: list[tuple[str, str, Who]]) -> list[Change]:
        if not items:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope, device, who in items:
                await self._enter(keys=self._keys(scope), args=self._enter_args(device, who),
                                  client=pipe)
            results = await pipe.execute()
        changes = [self._one(scope, "join", out)
                   for (scope, _d, _w), out in zip(items, results, strict=True)]
        return [c for c in changes if c is not None]

    async def leave(self, scope: str, device: str, user_id: int) -> Change | None:
        out = await self._leave(keys=self._keys(scope), args=[member(user_id, device), user_id])
        return self._one(scope, "leave", out)

    def _read_args(self, what: str) -> list[Any]:
        return [secrets.token_hex(8), self.key_ttl, what]

    async def _read_scope(self, scope: str, what: str) -> tuple[list[Any], list[Change]]:
        out = await self._read(keys=self._keys(scope), args=self._read_args(what))
        return out, self._swept(scope, out)

    @staticmethod
    def _swept(scope: str, out: list[Any]) -> list[Change]:
        epoch, swept = _s(out[0]), out[1]
        changes = []
        for i in range(0, len(swept), 2):
            user = _entry(swept[i + 1], 0)
            if user is not None:
                changes.append(Change(scope=scope, epoch=epoch, version=int(swept[i]),
                                      type="leave", user=user))
        return changes

    async def sweep(self, scope: str) -> list[Change]:
        _out, changes = await self._read_scope(scope, "count")
        return changes

    async def sweep_many(self, scopes: list[str]) -> list[Change]:
        if not scopes:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope in scopes:
                await self._read(keys=self._keys(scope), args=self._read_args("count"),
                                 client=pipe)
            results = await pipe.execute()
        return [c for scope, out in zip(scopes, results, strict=True)
                for c in self._swept(scope, out)]

    async def roster(self, scope: str) -> tuple[Roster, list[Change]]:
        out, changes = await self._read_scope(scope, "roster")
        flat_users, flat_n = out[3], out[4]
        counts = {int(flat_n[i]): int(flat_n[i + 1]) for i in range(0, len(flat_n), 2)}
        users = []
        for i in range(0, len(flat_users), 2):
            uid = int(flat_users[i])
            entry = _entry(flat_users[i + 1], counts.get(uid, 1))
            if entry is not None:
                users.append(msgspec.convert(entry, Entry))
        return Roster(scope=scope, epoch=_s(out[0]), version=int(out[2]), users=users), changes

    async def counts(self, scopes: list[str]) -> tuple[dict[str, int], list[Change]]:
        result, changes = {}, []
        for scope in scopes:
            out, swept = await self._read_scope(scope, "count")
            result[scope] = int(out[3])
            changes += swept
        return result, changes

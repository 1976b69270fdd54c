"""Counting failures or events per key within a window, shared across workers with Redis.

Fixed windows are enough here: the point is to stop code guessing and floods, and a fixed
window is one INCR with an expiry in Redis, atomic across every process and machine.
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Callable

import redis.asyncio as aioredis

Clock = Callable[[], float]
"""Seconds from any origin (`time.monotonic` by default). Injected so that a test advances a
clock of its own instead of sleeping, and a burst is judged against a frozen instant instead
of against the speed of the machine running it."""


class RateLimiter(abc.ABC):
    def __init__(self, limit: int, window_s: int) -> None:
        self.limit = limit
        self.window_s = window_s

    @abc.abstractmethod
    async def hit(self, key: str) -> int:
        """Count one event for `key`; return the count within the current window."""

    @abc.abstractmethod
    async def count(self, key: str) -> int: ...

    @abc.abstractmethod
    async def retry_after(self, key: str) -> int:
        """Seconds until `key`'s window ends."""

    @abc.abstractmethod
    async def reset(self, key: str) -> None: ...

    async def blocked(self, key: str) -> bool:
        return await self.count(key) >= self.limit


class MemoryRateLimiter(RateLimiter):
    """One process's windows. `clock` is public: whoever owns the limiter (or a test) may
    swap it."""

    def __init__(self, limit: int, window_s: int, clock: Clock = time.monotonic) -> None:
        super().__init__(limit, window_s)
        self.clock = clock
        self._windows: dict[str, tuple[float, int]] = {}

    def _current(self, key: str) -> tuple[float, int]:
        now = self.clock()
        started, n = self._windows.get(key, (now, 0))
        if now - started >= self.window_s:
            started, n = now, 0
        if len(self._windows) > 100_000:  # keep memory bounded under a spray of keys
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < self.window_s}
        return started, n

    async def hit(self, key: str) -> int:
        started, n = self._current(key)
        self._windows[key] = (started, n + 1)
        return n + 1

    async def count(self, key: str) -> int:
        return self._current(key)[1]

    async def retry_after(self, key: str) -> int:
        started, _ = self._current(key)
        return max(1, math.ceil(self.window_s - (self.clock() - started)))

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)


class RedisRateLimiter(RateLimiter):
    """Windows shared by every process; Redis's own clock ends them (the key's TTL)."""

    def __init__(self, redis: aioredis.Redis, prefix: str, limit: int, window_s: int) -> None:
        super().__init__(limit, window_s)
        self._redis = redis
        self._prefix = prefix

    def _key(self, key: str) -> str:
        return f"{self._prefix}:rl:{key}"

    async def hit(self, key: str) -> int:
        k = self._key(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(k)
            pipe.expire(k, self.window_s, nx=True)
            n, _ = await pipe.execute()
        return int(n)

    async def count(self, key: str) -> int:
        raw = await self._redis.get(self._key(key))
        return int(raw) if raw else 0

    async def retry_after(self, key: str) -> int:
        ttl = await self._redis.ttl(self._key(key))
        return max(1, int(ttl)) if ttl and ttl > 0 else 1

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._key(key))


class TokenBucket:
    """Per-connection event budget: `rate` per second on average, bursts up to `burst`.

    Lives with the connection (no I/O), for events that arrive in quick bursts by nature
    (pen strokes), where a fixed window would cut a teacher off mid-drawing.
    """

    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def take(self, n: float = 1.0) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False


class Throttle(abc.ABC):
    """One attempt per `delay` seconds per key: `take(key, delay)` reserves the next slot
    atomically (so parallel attempts cannot all slip through before any failure is counted)
    and answers 0, or the seconds until the key's next slot."""

    @abc.abstractmethod
    async def take(self, key: str, delay_s: float) -> float: ...


class MemoryThrottle(Throttle):
    """One process's slots; `clock` is public, as `MemoryRateLimiter`'s."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._next: dict[str, float] = {}

    async def take(self, key: str, delay_s: float) -> float:
        now = self.clock()
        if len(self._next) > 100_000:  # bounded under a spray of keys
            self._next = {k: v for k, v in self._next.items() if v > now}
        at = self._next.get(key, 0.0)
        if now >= at:
            self._next[key] = now + delay_s
            return 0.0
        return at - now


# KEYS[1]: the key; ARGV: now (s), delay (s). The next slot's time lives in the key itself.
_TAKE = """
local now = tonumber(ARGV[1])
local delay = tonumber(ARGV[2])
local at = tonumber(redis.call('GET', KEYS[1]) or '0')
if now >= at then
  redis.call('SET', KEYS[1], tostring(now + delay), 'PX', math.ceil(delay * 1000) + 1000)
  return '0'
end
return tostring(at - now)
"""


class RedisThrottle(Throttle):
    """The same slots shared by every worker and node (times from each node's clock)."""

    def __init__(self, redis: aioredis.Redis, prefix: str, clock: Clock = time.time) -> None:
        self._redis = redis
        self._prefix = prefix
        self.clock = clock  # wall time: the nodes' clocks agree on it, not on monotonic time
        self._script = redis.register_script(_TAKE)

    async def take(self, key: str, delay_s: float) -> float:
        raw = await self._script(keys=[f"{self._prefix}:slot:{key}"],
                                 args=[repr(self.clock()), repr(delay_s)])
        return float(raw)

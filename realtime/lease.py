"""Short leases on a name, so that one process at a time does a piece of redundant work
(compacting a course document, snapshotting a board) instead of every process doing it.

With Redis: redis-py's `Lock` — `SET <prefix>:lease:<name> <token> NX PX <ttl>`, released by a
compare-and-delete on the token, so a holder whose lease ran out never releases the next
holder's. Without Redis there is one process: an `asyncio.Lock` per name.

A lease is an economy, not the guard of correctness: a holder paused past its TTL can overlap
the next one, and a Redis that does not answer must not stop a compaction that saves acked
work. So what a holder writes is itself safe to race (compare-and-set in SQL), and when Redis
fails the caller is told to go ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.exceptions import LockError, RedisError

log = logging.getLogger(__name__)

LEASE_TTL_S = 30.0  # far above a compaction's few milliseconds to a few seconds
POLL_S = 0.05  # how often a waiting process tries again
ANSWER_S = 2.0  # beyond the wait: a Redis that does not answer (frozen) counts as unavailable


class Leases:
    def __init__(self, redis: aioredis.Redis | None, prefix: str,
                 ttl_s: float = LEASE_TTL_S) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = ttl_s
        self._local: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    def key(self, name: str) -> str:
        return f"{self.prefix}:lease:{name}"

    @contextlib.asynccontextmanager
    async def hold(self, name: str, wait_s: float = 0.0) -> AsyncIterator[bool]:
        """Yields True when this process holds the lease (or Redis could not say), False
        when another one held it for all of `wait_s`: the work is being done elsewhere."""
        if self.redis is None:
            async with self._hold_local(name, wait_s) as got:
                yield got
            return
        lock = self.redis.lock(self.key(name), timeout=self.ttl_s, sleep=POLL_S,
                               blocking=wait_s > 0, blocking_timeout=wait_s or None,
                               thread_local=False)
        try:
            got = bool(await asyncio.wait_for(lock.acquire(), wait_s + ANSWER_S))
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("lease unavailable, going ahead", extra={"lease": name,
                                                                 "error": repr(exc)})
            got = None
        if not got:
            yield got is None
            return
        try:
            yield True
        finally:
            try:
                await lock.release()
            except LockError:  # expired and maybe taken since: not ours to delete
                log.warning("lease expired before release", extra={"lease": name})
            except (RedisError, OSError) as exc:  # it expires by itself
                log.warning("lease release failed", extra={"lease": name,
                                                           "error": repr(exc)})

    @contextlib.asynccontextmanager
    async def _hold_local(self, name: str, wait_s: float) -> AsyncIterator[bool]:
        lock = self._local.setdefault(name, asyncio.Lock())
        self._users[name] = self._users.get(name, 0) + 1
        try:
            try:
                if lock.locked() and wait_s <= 0:
                    got = False
                else:
                    await asyncio.wait_for(lock.acquire(), wait_s if wait_s > 0 else None)
                    got = True
            except TimeoutError:
                got = False
            try:
                yield got
            finally:
                if got:
                    lock.release()
        finally:
            self._users[name] -= 1
            if not self._users[name]:  # nobody holds or waits: forget the name
                del self._users[name]
                del self._local[name]

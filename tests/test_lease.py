"""Leases on the real Redis and in memory: one holder at a time, waiting works, and a holder
whose lease ran out cannot release the next holder's."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from realtime.lease import Leases
from tests.conftest import REDIS_URL


@pytest.mark.redis
async def test_one_holder_at_a_time_on_redis(redis_prefix: str,
                                              redis_cleanup: aioredis.Redis) -> None:
    clients = [aioredis.Redis.from_url(REDIS_URL) for _ in range(2)]
    a, b = (Leases(c, redis_prefix) for c in clients)
    try:
        async with a.hold("doc:1") as first:
            assert first
            async with b.hold("doc:1") as second:
                assert not second  # held elsewhere: skip
            async with b.hold("doc:2") as other:
                assert other  # another name is free
            token = await redis_cleanup.get(a.key("doc:1"))
            assert token  # the holder's random token, not a bare flag
        async with a.hold("doc:1") as again:
            assert again
            waiter = asyncio.create_task(_wait_hold(b, "doc:1", 5.0))
            await asyncio.sleep(0.2)
            assert not waiter.done()
        assert await waiter  # got it once the holder let go
        assert await redis_cleanup.exists(a.key("doc:1")) == 0
    finally:
        for c in clients:
            await c.aclose()


async def _wait_hold(leases: Leases, name: str, wait_s: float) -> bool:
    async with leases.hold(name, wait_s) as got:
        return got


@pytest.mark.redis
async def test_an_expired_holder_does_not_release_the_next(redis_prefix: str,
                                                           redis_cleanup: aioredis.Redis
                                                           ) -> None:
    clients = [aioredis.Redis.from_url(REDIS_URL) for _ in range(2)]
    a, b = Leases(clients[0], redis_prefix, ttl_s=0.2), Leases(clients[1], redis_prefix)
    a_in, a_may_leave = asyncio.Event(), asyncio.Event()

    async def slow_holder() -> bool:
        async with a.hold("board:7") as got:
            a_in.set()
            await a_may_leave.wait()  # paused past its TTL
        return got

    try:
        task = asyncio.create_task(slow_holder())
        await a_in.wait()
        async with b.hold("board:7", wait_s=5.0) as mine:  # gets it once a's lease ran out
            assert mine
            token = await redis_cleanup.get(b.key("board:7"))
            a_may_leave.set()
            assert await task  # a held it, and now leaves late
            assert await redis_cleanup.get(b.key("board:7")) == token  # b's lease stands
        assert await redis_cleanup.exists(b.key("board:7")) == 0
    finally:
        for c in clients:
            await c.aclose()


async def test_in_memory_one_holder_and_waiting() -> None:
    leases = Leases(None, "rt")
    async with leases.hold("doc:1") as first:
        assert first
        async with leases.hold("doc:1") as second:
            assert not second
        waiter = asyncio.create_task(_wait_hold(leases, "doc:1", 5.0))
        await asyncio.sleep(0)
        assert not waiter.done()
    assert await waiter
    assert leases._local == {}  # nobody holds or waits: nothing kept

"""Both stores, same rules: several devices per user, one join and one leave per user,
versions that count changes, expiry without renewal, renewal by the heartbeat."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
import redis.asyncio as aioredis

from realtime.presence.model import Who
from realtime.presence.redis_store import RedisPresenceStore
from realtime.presence.store import MemoryPresenceStore, PresenceStore
from tests.conftest import REDIS_URL

ALICE = Who(id=1, name="Alice", role="student", class_id=10)
BOB = Who(id=2, name="Bob", role="student", class_id=10)
TIMEOUT_S = 1.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture(params=["memory", "redis"])
async def store(request: Any, redis_prefix: str, redis_cleanup: aioredis.Redis
                ) -> AsyncIterator[PresenceStore]:
    if request.param == "memory":
        yield MemoryPresenceStore(TIMEOUT_S)
        return
    client = aioredis.Redis.from_url(REDIS_URL)
    yield RedisPresenceStore(client, redis_prefix, TIMEOUT_S)
    await client.aclose()


async def test_devices_and_users(store: PresenceStore) -> None:
    first = await store.enter("class:10", "tab1", ALICE)
    assert first is not None and first.type == "join" and first.version == 1
    assert first.user["id"] == 1 and first.user["class_id"] == 10
    assert await store.enter("class:10", "tab2", ALICE) is None  # a second device: no join
    assert await store.enter("class:10", "tab1", ALICE) is None  # a renewal: no join
    joined = await store.enter("class:10", "tab", BOB)
    assert joined is not None and joined.version == 2
    roster, swept = await store.roster("class:10")
    assert swept == [] and roster.version == 2 and roster.epoch == first.epoch
    assert {(u.id, u.devices) for u in roster.users} == {(1, 2), (2, 1)}
    assert await store.leave("class:10", "tab1", 1) is None  # Alice still has tab2
    left = await store.leave("class:10", "tab2", 1)
    assert left is not None and left.type == "leave" and left.version == 3
    assert left.user["id"] == 1
    assert await store.leave("class:10", "tab2", 1) is None  # twice: once only
    counts, _ = await store.counts(["class:10", "class:11"])
    assert counts == {"class:10": 1, "class:11": 0}


async def test_a_device_nobody_renews_expires_once(store: PresenceStore) -> None:
    await store.enter("board:5", "a", ALICE)
    await store.enter("board:5", "b", BOB)
    for _ in range(6):  # Bob's node renews (with room to spare); Alice's is gone
        await asyncio.sleep(TIMEOUT_S / 4)
        assert await store.enter_many([("board:5", "b", BOB)]) == []
    swept = await store.sweep_many(["board:5", "board:6"])
    assert [(c.type, c.user["id"]) for c in swept] == [("leave", 1)]
    assert await store.sweep("board:5") == []  # announced by one sweep only
    roster, _ = await store.roster("board:5")
    assert [u.id for u in roster.users] == [2]


async def test_an_empty_scope_keeps_its_epoch_for_its_first_join(store: PresenceStore
                                                                    ) -> None:
    """A watcher subscribes to a scope nobody is in; a sweep (a heartbeat) passes before the
    first join: the join comes in the epoch the watcher holds, version 1 (no refetch)."""
    roster, _ = await store.roster("conversation:9")
    assert roster.users == [] and roster.version == 0
    assert await store.sweep("conversation:9") == []
    joined = await store.enter("conversation:9", "tab", ALICE)
    assert joined is not None and (joined.epoch, joined.version) == (roster.epoch, 1)


def test_memory_store_forgets_a_room_empty_for_a_while() -> None:
    """As Redis lets a scope's keys expire: the next join starts a new epoch."""
    clock = Clock()
    store = MemoryPresenceStore(30, clock)

    async def go() -> None:
        roster, _ = await store.roster("class:1")
        await store.sweep("class:1")
        clock.now += store.keep_empty_s
        await store.sweep("class:1")
        joined = await store.enter("class:1", "a", ALICE)
        assert joined is not None and joined.epoch != roster.epoch and joined.version == 1

    asyncio.run(go())


async def test_a_heartbeat_puts_back_what_the_store_lost(store: PresenceStore) -> None:
    """After Redis lost its keys (a restart), the next heartbeat re-enters: a new epoch."""
    before = await store.enter("school:1", "a", ALICE)
    assert before is not None
    await asyncio.sleep(TIMEOUT_S * 1.5)
    await store.sweep("school:1")  # expired: as good as lost
    again = await store.enter_many([("school:1", "a", ALICE)])
    assert [(c.type, c.user["id"]) for c in again] == [("join", 1)]
    roster, _ = await store.roster("school:1")
    assert [u.id for u in roster.users] == [1]


def test_memory_store_expires_on_its_clock() -> None:
    clock = Clock()
    store = MemoryPresenceStore(30, clock)

    async def go() -> None:
        await store.enter("class:1", "a", ALICE)
        clock.now += 29
        assert await store.sweep("class:1") == []
        clock.now += 2
        assert [c.type for c in await store.sweep("class:1")] == ["leave"]

    asyncio.run(go())

"""The library internals the fast paths use (realtime/internals.py): all there at the pinned
versions, reported by /metrics, and each falls back to the public way when it is gone."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest

from realtime import internals


def test_every_fast_path_is_on_at_the_pinned_versions() -> None:
    paths = internals.self_check()
    assert set(paths) == set(internals.FAST_PATHS)
    assert all(paths.values()), {k: v for k, v in paths.items() if not v}


async def test_metrics_show_each_fast_path(demo_server: str) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{demo_server}/metrics") as r:
        text = await r.text()
    for path in internals.FAST_PATHS:
        assert f'realtime_fast_path{{path="{path}"}} 1.0' in text


def test_a_missing_internal_falls_back_and_warns_once(caplog: Any) -> None:
    class QueueWithoutGetters:
        pass

    internals._warned.discard("asyncio_queue_getters")
    with caplog.at_level(logging.WARNING, logger="realtime.internals"):
        assert internals.queue_has_waiting_getter(QueueWithoutGetters()) is False  # type: ignore[arg-type]
        assert internals.queue_has_waiting_getter(QueueWithoutGetters()) is False  # type: ignore[arg-type]
    warnings = [r for r in caplog.records
                if getattr(r, "fast_path", None) == "asyncio_queue_getters"]
    assert len(warnings) == 1
    internals._warned.discard("asyncio_queue_getters")


async def test_queue_getter_is_seen_while_a_task_waits() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    assert not internals.queue_has_waiting_getter(queue)
    waiter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert internals.queue_has_waiting_getter(queue)
    queue.put_nowait(1)
    assert await waiter == 1
    assert not internals.queue_has_waiting_getter(queue)


def test_redis_client_for_leaves_the_manager_as_it_was() -> None:
    import socketio

    manager = socketio.AsyncRedisManager("redis://127.0.0.1:6379/15", write_only=True)
    before = (manager.redis, manager.pubsub, manager.connected)
    client = internals.redis_client_for(manager)
    assert client is not None and client is not manager.redis
    assert (manager.redis, manager.pubsub, manager.connected) == before


@pytest.mark.parametrize("url", ["redis+sentinel://127.0.0.1:26379/0/mymaster"])
def test_sentinel_urls_go_through_python_socketio(url: str) -> None:
    import socketio
    from redis.asyncio.sentinel import SentinelConnectionPool

    manager = socketio.AsyncRedisManager(url, write_only=True)
    client = internals.redis_client_for(manager)  # no connection is made until a command
    assert isinstance(client.connection_pool, SentinelConnectionPool)

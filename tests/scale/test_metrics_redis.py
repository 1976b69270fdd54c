"""`/metrics` counts what an operator must hear of when Redis goes away: after a restart of
its Redis (a private redis-server, never the shared one), a node's scrape shows the pub/sub
listeners reconnected, and the server still answers scrapes throughout."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.boards.test_socket import Cast, create_board
from tests.conftest import token_for
from tests.scale.clients import Follower, stroke
from tests.scale.conftest import Cluster, OwnRedis
from tests.test_metrics import Samples, scrape, value


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def test_redis_restart_shows_as_reconnects(cluster: Cluster, own_redis: OwnRedis,
                                                 cast: Cast) -> None:
    node = await cluster.node(own_redis.url)  # the fixture has started it
    board = await create_board(node.url, cast)
    teacher = await Follower(await token_for(node.url, cast.teacher), board).connect(node.url)
    try:  # a live board: the Socket.IO manager and the board's stream both listen on Redis
        ack = await teacher.call("op", {"op": stroke("before")})
        assert ack["ok"], ack
        before = await scrape(node.url)
        await asyncio.to_thread(own_redis.restart, 0.5)  # every key gone, connections cut

        async def reconnected() -> Samples:
            while True:
                samples = await scrape(node.url)
                if (value(samples, "realtime_redis_reconnects_total", component="socketio")
                        > value(before, "realtime_redis_reconnects_total",
                                component="socketio")
                        and value(samples, "realtime_redis_reconnects_total",
                                  component="streams")
                        > value(before, "realtime_redis_reconnects_total",
                                component="streams")):
                    return samples
                await asyncio.sleep(0.3)
        await asyncio.wait_for(reconnected(), 30)
    finally:
        await teacher.close()

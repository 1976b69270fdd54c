"""`/metrics` under `serve --workers 2`: whichever worker answers a scrape (they share the
port), it reports the sum over both (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.boards.test_socket import Cast
from tests.conftest import token_for
from tests.presence.conftest import PresenceClient
from tests.scale.conftest import Cluster
from tests.test_metrics import Samples, scrape, value

CLIENTS = 8


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def test_a_scrape_sums_every_worker(cluster: Cluster, cast: Cast) -> None:
    node = await cluster.node(workers=2)
    assert len(await node.answering_pids()) == 2  # both workers take connections
    scope = "board:999999"  # any scope: refused or not, each call is one event
    watchers = [await PresenceClient(node.url, await token_for(node.url, cast.cpe)).connect()
                for _ in range(CLIENTS)]
    try:
        for w in watchers:
            await w.call("subscribe", {"scope": scope})

        async def agreed() -> list[Samples]:
            # Every scrape (new connection, any worker) must show all the clients and all
            # the events once each worker's sampler has run: ask until three in a row do.
            streak: list[Samples] = []
            while len(streak) < 3:
                samples = await scrape(node.url)
                if (value(samples, "realtime_connected_sockets", namespace="/presence")
                        == CLIENTS and value(samples, "realtime_events_total",
                                             namespace="/presence", event="subscribe")
                        == CLIENTS):
                    streak.append(samples)
                else:
                    streak.clear()
                    await asyncio.sleep(0.2)
            return streak
        await asyncio.wait_for(agreed(), 20)
    finally:
        for w in watchers:
            await w.close()

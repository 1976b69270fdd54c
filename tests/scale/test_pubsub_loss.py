"""Redis pub/sub is at-most-once: a node that misses a stream message must notice from the
seqs (or, for a lost *last* message, from its periodic look at the stream's head) and fetch
what it missed from the stream's history — never deliver a hole or a repeat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from realtime import keys
from realtime.app import create_app
from realtime.streams.redis import RedisStreamStore
from tests.boards.test_socket import Cast, create_board
from tests.conftest import REDIS_URL, make_settings, token_for
from tests.scale.clients import Follower, stroke


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


def drop_messages(store: RedisStreamStore, seqs: set[int]) -> list[int]:
    """Make this node's pub/sub lose the messages of those seqs, as a network blip would."""
    dropped: list[int] = []
    original = store._on_message

    def lossy(msg: dict[str, Any]) -> None:
        if msg["type"] == "message":
            seq = int(msg["data"].split(b"\n", 2)[1])
            if seq in seqs:
                dropped.append(seq)
                return
        original(msg)

    store._on_message = lossy  # type: ignore[method-assign]
    return dropped


async def test_a_node_that_misses_messages_still_delivers_every_op(
    aiohttp_server: Any, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
    redis_cleanup: aioredis.Redis, cast: Cast,
) -> None:
    cfg = {"db_path": demo_db_path, "redis_url": REDIS_URL, "redis_prefix": redis_prefix}
    node_a = await aiohttp_server(create_app(make_settings(tmp_path / "a", **cfg)))
    node_b = await aiohttp_server(create_app(make_settings(tmp_path / "b", **cfg)))
    a, b = (str(n.make_url("")).rstrip("/") for n in (node_a, node_b))
    store_b = node_b.app[keys.STREAMS]
    assert isinstance(store_b, RedisStreamStore)
    store_b.check_every_s = 0.5  # the periodic head check, shortened for the test
    dropped = drop_messages(store_b, {3, 4, 9, 15})  # 15 is the last op: nothing follows it
    board = await create_board(a, cast)
    teacher = await Follower(await token_for(a, cast.teacher), board).connect(a)
    alice = await Follower(await token_for(b, cast.alice), board).connect(b)
    try:
        for i in range(15):
            assert (await teacher.call("op", {"op": stroke(f"s{i}")}))["ok"]
        await alice.wait_for(lambda: alice.seq == 15, 10)
        assert dropped == [3, 4, 9, 15]
        assert [s for _e, s in alice.applied] == list(range(1, 16))
        assert alice.duplicates == 0 and alice.gaps == 0
        assert alice.items == {f"s{i}" for i in range(15)}
    finally:
        await teacher.close()
        await alice.close()

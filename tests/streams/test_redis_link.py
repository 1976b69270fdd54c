"""The streams' own Redis connections (realtime/streams/redis_link.py), against real Redis:
replies matched to their calls in order however many are in flight, the db and client name
of the URL honoured, error replies raised as redis-py's, a script Redis forgot (restarted)
sent again in full, a cut connection failing what was in flight and the next call reopening;
pub/sub messages handed over in order and a cut connection reported to the listener."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from realtime.redis_client import connect
from realtime.streams.redis_link import LeanPubSub, RedisLink, lean_supported
from tests.conftest import REDIS_URL
from tests.scale.conftest import OwnRedis
from tests.silence import eventually


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    r = OwnRedis(tmp_path)
    r.start()
    try:
        yield r
    finally:
        r.stop()


async def test_calls_in_flight_get_their_own_replies_in_order(
        redis_prefix: str, redis_cleanup: aioredis.Redis) -> None:
    client = connect(REDIS_URL)
    link = RedisLink(client)
    key = f"{redis_prefix}:n"
    try:
        replies = await asyncio.gather(*(link.call("INCR", key) for _ in range(300)))
        assert replies == list(range(1, 301))
        assert await redis_cleanup.get(key) == b"300"  # db 15, as the URL says
        await link.call("SET", f"{redis_prefix}:bytes", b"\x00\xff\n")
        assert await link.call("GET", f"{redis_prefix}:bytes") == b"\x00\xff\n"
        with pytest.raises(ResponseError):
            await link.call("INCR", f"{redis_prefix}:bytes")  # not an integer
        assert await link.call("INCR", key) == 301  # the connection goes on after an error
    finally:
        await link.aclose()
        await client.aclose()


async def test_the_client_name_and_tls_choice() -> None:
    named = aioredis.Redis.from_url(REDIS_URL, client_name="lien-maigre")
    link = RedisLink(named)
    try:
        assert await link.call("CLIENT", "GETNAME") == b"lien-maigre"
    finally:
        await link.aclose()
        await named.aclose()
    assert lean_supported(connect(REDIS_URL))
    assert not lean_supported(aioredis.Redis.from_url("rediss://127.0.0.1:6390/0"))


async def test_a_script_redis_forgot_is_sent_again(own_redis: OwnRedis) -> None:
    client = connect(own_redis.url)
    link = RedisLink(client)
    body = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
    sha = client.register_script(body).sha
    try:
        assert await link.script(sha, body, ["k"], [2]) == 2  # unknown: EVAL, then cached
        assert await link.script(sha, body, ["k"], [3]) == 5
        await link.call("SCRIPT", "FLUSH")
        assert await link.script(sha, body, ["k"], [4]) == 9
    finally:
        await link.aclose()
        await client.aclose()


async def test_a_cut_connection_fails_what_was_in_flight_then_reopens(
        own_redis: OwnRedis) -> None:
    client = connect(own_redis.url)
    link = RedisLink(client)
    try:
        assert await link.call("SET", "k", "v")
        own_redis.freeze()  # nothing answers: the calls wait on the connection
        waiting = [asyncio.ensure_future(link.call("GET", "k")) for _ in range(5)]
        await asyncio.sleep(0.2)
        assert not any(f.done() for f in waiting)
        await asyncio.to_thread(own_redis.restart, 0.2)  # killed frozen: the connection cut
        for f in waiting:
            with pytest.raises(RedisConnectionError):
                await f
        assert await link.call("GET", "k") is None  # a new connection, to the empty Redis
        assert await link.call("SET", "k", "w") and await link.call("GET", "k") == b"w"
    finally:
        await link.aclose()
        await client.aclose()


async def test_pubsub_messages_in_order_and_a_cut_reported(own_redis: OwnRedis) -> None:
    client = connect(own_redis.url)
    got: list[dict[str, Any]] = []
    pubsub = LeanPubSub(client, got.append)
    try:
        await pubsub.subscribe("a", "b")
        assert await pubsub.get_message(timeout=0.2) is None  # messages go to the callback
        for i in range(200):
            await client.publish("a" if i % 2 else "b", str(i))
        await eventually(lambda: len([m for m in got if m["type"] == "message"]) == 200, 5,
                         "not every message arrived")
        assert [(m["type"], m["channel"]) for m in got[:2]] == [
            ("subscribe", b"a"), ("subscribe", b"b")]
        messages = [m for m in got if m["type"] == "message"]
        assert [int(m["data"]) for m in messages] == list(range(200))
        assert [m["channel"] for m in messages[:2]] == [b"b", b"a"]
        await pubsub.unsubscribe("b")
        await client.publish("b", "lost")
        await client.publish("a", "last")
        await eventually(lambda: got[-1].get("data") == b"last", 5, "no last message")
        assert b"lost" not in [m["data"] for m in got]
        await asyncio.to_thread(own_redis.restart, 0.2)
        with pytest.raises(RedisConnectionError):
            await pubsub.get_message(timeout=5)  # the listener is told, and reopens
    finally:
        await pubsub.aclose()
        await client.aclose()

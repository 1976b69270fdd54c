"""One Redis channel per room (realtime/fanout.py): an emit reaches the node that has the
room's member, and only that node; a node entering a room hears it at once; a Redis restart
is survived."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import socketio

from realtime.fanout import RoomChannelRedisManager
from tests.conftest import REDIS_URL
from tests.scale.conftest import OwnRedis
from tests.silence import nothing_arrived


class FakeNode:
    """A Socket.IO server's manager with members that have no socket: we count what reaches
    the node (decoded emits) and what it would deliver to its members."""

    def __init__(self, manager: socketio.AsyncRedisManager) -> None:
        self.manager = manager
        self.sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager,
                                        logger=False, engineio_logger=False)
        self.received: list[Any] = []  # every emit this node decoded from Redis
        self.delivered: list[tuple[str, Any]] = []  # (sid, data) for its own members
        handle = manager._handle_emit

        async def counting(message: dict[str, Any]) -> None:
            self.received.append(message["data"])
            await handle(message)

        manager._handle_emit = counting  # type: ignore[method-assign]

        async def send(eio_sid: str, pkt: Any) -> None:  # a Socket.IO EVENT: 2["name",data]
            self.delivered.append((eio_sid, json.loads(pkt.data[1:])[1]))

        self.sio._send_eio_packet = send  # type: ignore[method-assign]
        self.sio.manager_initialized = True
        manager.initialize()

    async def member(self, sid: str, room: str) -> None:
        self.manager.basic_enter_room(sid, "/", None, eio_sid=f"eio-{sid}")
        await self.manager.enter_room(sid, "/", room)


async def wait_until(predicate: Any, wait_s: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + wait_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest_asyncio.fixture
async def channel(redis_cleanup: Any) -> AsyncIterator[str]:
    yield f"test-fanout-{secrets.token_hex(4)}"


@pytest.mark.parametrize(("kind", "b_receives"), [("single", 3), ("rooms", 1)])
async def test_only_the_node_with_the_member_hears_the_emit(channel: str, kind: str,
                                                            b_receives: int) -> None:
    make = (socketio.AsyncRedisManager if kind == "single" else RoomChannelRedisManager)
    a, b = FakeNode(make(REDIS_URL, channel=channel)), FakeNode(make(REDIS_URL, channel=channel))
    await b.member("bob", "user:2")
    await a.member("ann", "user:1")
    await asyncio.sleep(0.3)  # the stock manager confirms nothing: let it subscribe
    for room, n in (("user:1", 1), ("user:3", 2), ("user:2", 3)):
        await a.sio.emit("note", {"n": n}, room=room)
    await wait_until(lambda: [d for _s, d in b.delivered] == [{"n": 3}])
    # With room channels, B never decodes the emits for rooms it has no member in: a later
    # emit to its member, on the same pub/sub connection, is the control.
    decodes = {1, 2, 3, 4} if kind == "single" else {3, 4}
    await nothing_arrived(lambda: [d for d in b.received if d[0]["n"] not in decodes],
                          control=lambda: a.sio.emit("note", {"n": 4}, room="user:2"),
                          arrived=lambda: {"n": 4} in [d for _s, d in b.delivered])
    assert len(b.received) == b_receives + 1  # the stock channel makes B decode all of them
    assert [d for _s, d in a.delivered] == [{"n": 1}]


async def test_an_emit_to_several_rooms_arrives_once(channel: str) -> None:
    a = FakeNode(RoomChannelRedisManager(REDIS_URL, channel=channel))
    b = FakeNode(RoomChannelRedisManager(REDIS_URL, channel=channel))
    await b.member("bob", "user:2")
    await b.manager.enter_room("bob", "/", "class:7")
    await a.member("ann", "user:1")
    await asyncio.sleep(0.3)  # the stock channel (lists of rooms use it) is subscribed
    await a.sio.emit("note", {"n": 1}, to=["user:2", "class:7"])
    await wait_until(lambda: len(b.delivered) == 1)
    # Once, though bob is in both rooms: a later emit to bob is the control.
    await nothing_arrived(lambda: [d for _s, d in b.delivered[1:] if d["n"] == 1],
                          control=lambda: a.sio.emit("note", {"n": 2}, room="user:2"),
                          arrived=lambda: len(b.delivered) >= 2)
    assert b.delivered == [("eio-bob", {"n": 1}), ("eio-bob", {"n": 2})]


async def test_a_member_entering_a_room_hears_the_next_emit(channel: str) -> None:
    a = FakeNode(RoomChannelRedisManager(REDIS_URL, channel=channel))
    b = FakeNode(RoomChannelRedisManager(REDIS_URL, channel=channel))
    await a.member("ann", "user:1")
    for i in range(20):  # enter, then at once an emit from the other node
        await b.member(f"s{i}", f"presence:board:{i}")
        await a.sio.emit("presence", {"i": i}, room=f"presence:board:{i}")
    await wait_until(lambda: len(b.delivered) == 20)
    assert sorted(d["i"] for _s, d in b.delivered) == list(range(20))


async def test_room_channels_survive_a_redis_restart(own_redis: OwnRedis) -> None:
    channel = f"test-fanout-{secrets.token_hex(4)}"
    a = FakeNode(RoomChannelRedisManager(own_redis.url, channel=channel))
    b = FakeNode(RoomChannelRedisManager(own_redis.url, channel=channel))
    await b.member("bob", "user:2")
    await a.sio.emit("note", {"n": 1}, room="user:2")
    await wait_until(lambda: len(b.delivered) == 1)
    await asyncio.to_thread(own_redis.restart, 0.5)
    await b.member("carl", "user:3")  # entered while it reconnects

    async def keep_emitting() -> None:  # pub/sub is at-most-once: until both arrive again
        while not ({2, 3} <= {d["n"] for _s, d in b.delivered}):
            await a.sio.emit("note", {"n": 2}, room="user:2")
            await a.sio.emit("note", {"n": 3}, room="user:3")
            await asyncio.sleep(0.2)

    await asyncio.wait_for(keep_emitting(), 20)

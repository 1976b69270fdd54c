"""Redis lost a board's history while two processes had it open, one of them behind the
other: the one behind rebuilds first from its own (shorter) snapshot, then, once the other
writes the fuller one, rebuilds again — every acked op ends up everywhere, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from realtime import keys
from realtime.app import create_app
from realtime.boards import rooms as board_rooms
from tests.boards.test_socket import Cast, create_board
from tests.conftest import REDIS_URL, make_settings, token_for
from tests.scale.clients import Follower, stroke


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def test_the_process_behind_catches_up_after_a_lost_history(
    aiohttp_server: Any, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
    redis_cleanup: aioredis.Redis, cast: Cast, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(board_rooms, "RECHECK_AFTER_LOSS_S", (0.5, 1.5))
    cfg = {"db_path": demo_db_path, "redis_url": REDIS_URL, "redis_prefix": redis_prefix}
    node_a = await aiohttp_server(create_app(make_settings(tmp_path / "a", **cfg)))
    node_b = await aiohttp_server(create_app(make_settings(tmp_path / "b", **cfg)))
    a, b = (str(n.make_url("")).rstrip("/") for n in (node_a, node_b))
    store_b = node_b.app[keys.STREAMS]
    store_b.check_every_s = 1000  # B must stay behind until we say so
    board = await create_board(a, cast)
    teacher = await Follower(await token_for(a, cast.teacher), board).connect(a)
    alice = await Follower(await token_for(b, cast.alice), board).connect(b)
    first_epoch = teacher.epoch.encode()  # type: ignore[union-attr]
    original = store_b._on_message

    def lossy(msg: dict[str, Any]) -> None:  # B misses the last two ops of that history
        if msg["type"] == "message":
            epoch, seq, _rest = msg["data"].split(b"\n", 2)
            if epoch == first_epoch and int(seq) in (29, 30):
                return
        original(msg)

    store_b._on_message = lossy  # type: ignore[method-assign]
    try:
        for i in range(30):
            assert (await teacher.call("op", {"op": stroke(f"s{i}")}))["ok"]
        await alice.wait_for(lambda: alice.seq == 28)
        # Redis loses the stream (as a restart without persistence would).
        await redis_cleanup.delete(f"{redis_prefix}:stream:board:{board}:meta",
                                   f"{redis_prefix}:stream:board:{board}:log")
        every = {f"s{i}" for i in range(30)}
        # B notices first, and rebuilds from what it had: 28 ops.
        node_b.app[keys.BOARDS].rooms.live[board].subscription.check()
        await alice.wait_for(lambda: alice.resets == 1 and len(alice.items) == 28)
        # A notices, and writes the fuller snapshot; B looks again and rebuilds.
        node_a.app[keys.BOARDS].rooms.live[board].subscription.check()
        await teacher.wait_for(lambda: teacher.resets == 1 and teacher.items == every)
        await alice.wait_for(lambda: alice.items == every, 5)
        assert alice.resets == 2
        # And the class carries on in the new history, on both processes.
        ack = await teacher.call("op", {"op": stroke("after")})
        if not ack["ok"]:  # the teacher's rejoin may still be under way: once more
            await teacher.join()
            ack = await teacher.call("op", {"op": stroke("after")})
        assert ack["ok"], ack
        for f in (teacher, alice):
            await f.wait_for(lambda f=f: f.items == every | {"after"})
            assert f.duplicates == 0
    finally:
        await teacher.close()
        await alice.close()

"""Board snapshots only move forward, decided in SQL, and with two processes on one board only
one of them snapshots it at a time (the lease `board:<id>`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from realtime import keys
from realtime.boards import rooms as board_rooms
from realtime.boards import store
from realtime.db import Unavailable
from tests.boards.conftest import stroke
from tests.boards.test_socket import Cast, create_board
from tests.conftest import ConcurrencyWatch, two_nodes
from tests.engines import open_test_db


async def test_snapshot_writes_only_move_forward(demo_db_path: Path) -> None:
    db = await open_test_db(demo_db_path)
    try:
        row = await db.fetchone("SELECT c.id AS class_id, c.school_id, u.id AS owner"
                                " FROM classes c JOIN users u ON u.role = 'teacher'"
                                " AND u.school_id = c.school_id LIMIT 1")
        assert row is not None
        meta = await store.create(db, school_id=row["school_id"], class_id=row["class_id"],
                                  slot_id=None, owner_id=row["owner"], title="T", now=1.0)
        new = await store.snapshot(db, meta.id)  # no snapshot yet
        assert await store.save_snapshot(db, meta.id, b"e1@10", "e1", 10, 2.0, built_on=new)
        assert await store.save_snapshot(db, meta.id, b"e1@20", "e1", 20, 2.0, built_on=new)
        # A slower compaction of the same history, at a lower seq: refused.
        assert not await store.save_snapshot(db, meta.id, b"e1@15", "e1", 15, 2.0,
                                             built_on=new)
        assert (await store.snapshot(db, meta.id)).data == b"e1@20"
        # The history was lost (Redis restarted empty): a process rebuilt on e1@20 and
        # snapshots the new history e2 over the snapshot it was built on.
        on_e1 = await store.snapshot(db, meta.id)
        assert await store.save_snapshot(db, meta.id, b"e2@5", "e2", 5, 3.0, built_on=on_e1)
        # A late snapshot of the old history, from a process that never saw e2: refused,
        # however far it went (its seq does not compare with e2's).
        assert not await store.save_snapshot(db, meta.id, b"e1@900", "e1", 900, 3.0,
                                             built_on=on_e1)
        assert not await store.save_snapshot(db, meta.id, b"e1@900", "e1", 900, 3.0)
        assert (await store.snapshot(db, meta.id)).data == b"e2@5"
        assert await store.save_snapshot(db, meta.id, b"e2@8", "e2", 8, 3.0, built_on=on_e1)
        # A fuller snapshot of the old history written meanwhile by another process is not
        # overwritten by a new history built on a shorter one: that process rebuilds.
        assert await store.save_snapshot(db, meta.id, b"e3@1", "e3", 1, 4.0,
                                         built_on=await store.snapshot(db, meta.id))
        built_on_e3_1 = await store.snapshot(db, meta.id)
        assert await store.save_snapshot(db, meta.id, b"e3@4", "e3", 4, 4.0,
                                         built_on=built_on_e3_1)
        assert not await store.save_snapshot(db, meta.id, b"e4@2", "e4", 2, 5.0,
                                             built_on=built_on_e3_1)
        assert (await store.snapshot(db, meta.id)).data == b"e3@4"
    finally:
        await db.close()


@pytest.mark.redis
async def test_two_processes_snapshot_a_board_one_at_a_time(
    start_server: Any, node_board_client: Any, tmp_path: Path, demo_db_path: Path,
    redis_prefix: str, redis_cleanup: aioredis.Redis, demo_accounts: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    watch = ConcurrencyWatch(board_rooms._snapshot_is_faithful, 0.03)
    monkeypatch.setattr(board_rooms, "_snapshot_is_faithful", watch)
    every, ops = 20, 100
    a, b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix,
                           board_snapshot_every=every)
    cast = Cast(demo_accounts)
    board = await create_board(a, cast)
    teacher = await node_board_client(cast.teacher, base=a)
    alice = await node_board_client(cast.alice, base=b)
    for c in (teacher, alice):
        assert (await c.call("join", {"board_id": board}))["ok"]
    for i in range(ops):
        ack = await teacher.call("op", {"board_id": board, "op": stroke(f"s{i}")})
        assert ack["ok"], ack
    await alice.wait_seq(ops)
    assert watch.most == 1  # never two snapshots of the board at once
    # Both processes applied every op and reached each threshold: one of them snapshotted.
    assert 1 <= watch.calls <= ops // every + 1
    snap = await store_snapshot(demo_db_path, board)
    assert snap.epoch is not None and 0 < snap.seq <= ops
    late = await node_board_client(cast.cpe, base=b)
    joined = await late.call("join", {"board_id": board})
    assert len(joined["snapshot"]["items"]) == ops


async def store_snapshot(db_path: Path, board: int) -> store.Snapshot:
    db = await open_test_db(db_path)
    try:
        return await store.snapshot(db, board)
    finally:
        await db.close()


async def test_a_board_unloaded_while_the_database_is_unreachable_closes_cleanly(
    demo_app: tuple[str, Any], node_board_client: Any, demo_accounts: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """Shutdown during a database outage (PostgreSQL restarting): the boards' last snapshot
    cannot be written. The close goes on (every other board, then the rest of the app)
    instead of stopping at the first board with a traceback; the ops stay in the stream."""
    base, app = demo_app
    cast = Cast(demo_accounts)
    boards = [await create_board(base, cast) for _ in range(2)]
    teacher = await node_board_client(cast.teacher, base=base)
    for board in boards:
        assert (await teacher.call("join", {"board_id": board}))["ok"]
        assert (await teacher.call("op", {"board_id": board, "op": stroke("s")}))["ok"]
    tried: list[int] = []

    async def unreachable(_db: Any, board_id: int, *args: Any, **kwargs: Any) -> bool:
        tried.append(board_id)
        raise Unavailable("PostgreSQL unreachable")

    monkeypatch.setattr(store, "save_snapshot", unreachable)
    rooms = app[keys.BOARDS].rooms
    await rooms.close()
    assert sorted(tried) == sorted(boards) and not rooms.live
    assert caplog.text.count("board not snapshotted at unload") == 2

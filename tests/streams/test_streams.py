"""Both stream stores, behind one interface: the database's (a real SQLite file, or with
`REALTIME_TEST_DB=postgres` the real PostgreSQL) and Redis's (the real server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from realtime.db import Database
from realtime.redis_client import connect
from realtime.settings import Settings
from realtime.streams import (
    Position,
    Replay,
    Reset,
    StreamEvent,
    StreamStore,
    open_stream_store,
)
from realtime.streams.redis import RedisStreamStore
from realtime.streams.sql import SqlStreamStore
from tests.conftest import REDIS_URL
from tests.engines import open_test_db
from tests.silence import nothing_arrived

MakeStore = Callable[..., Awaitable[StreamStore]]


@pytest_asyncio.fixture(params=["db", "redis"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str
                     ) -> AsyncIterator[MakeStore]:
    """A factory: several stores on the same backing (as several workers would have)."""
    opened: list[Any] = []
    clients: list[aioredis.Redis] = []
    dbs: dict[Path, Database] = {}

    async def make(max_len: int = 1000, max_age_s: int = 3600, publish: bool = True,
                   clock: Callable[[], float] = time.time) -> StreamStore:
        if request.param == "db":
            path = tmp_path / "streams.sqlite3"
            if path not in dbs:
                dbs[path] = await open_test_db(path)
            store: StreamStore = SqlStreamStore(dbs[path], max_len, max_age_s, clock)
        else:
            client = connect(REDIS_URL)
            clients.append(client)
            store = RedisStreamStore(client, redis_prefix, max_len, max_age_s, clock,
                                     publish=publish)
        opened.append(store)
        return store

    make.kind = request.param  # type: ignore[attr-defined]
    yield make
    for store in opened:
        await store.close()
    for db in dbs.values():
        await db.close()
    if clients:
        keys = [k async for k in clients[0].scan_iter(match=f"{redis_prefix}:*")]
        if keys:
            await clients[0].delete(*keys)
    for client in clients:
        await client.aclose()


async def next_items(sub: Any, n: int, wait_s: float = 5) -> list[StreamEvent | Reset]:
    out: list[StreamEvent | Reset] = []
    it = aiter(sub)
    while len(out) < n:
        out.append(await asyncio.wait_for(anext(it), wait_s))
    return out


async def test_seq_is_gap_free_from_one(make_store: MakeStore) -> None:
    store = await make_store()
    events = [await store.append("board:1", {"n": i, "texte": "élève"}) for i in range(5)]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert len({e.epoch for e in events}) == 1
    assert events[0].payload == {"n": 0, "texte": "élève"}
    other = await store.append("board:2", {})
    assert other.seq == 1 and other.epoch != events[0].epoch
    assert await store.head("board:1") == Position(epoch=events[0].epoch, seq=5)


async def test_concurrent_appends(make_store: MakeStore) -> None:
    store = await make_store()
    events = await asyncio.gather(*(store.append("s", {"i": i}) for i in range(200)))
    assert sorted(e.seq for e in events) == list(range(1, 201))
    replay = await store.resume("s", events[0].epoch, 0)
    assert isinstance(replay, Replay)
    assert sorted(e.payload["i"] for e in replay.events) == list(range(200))
    by_seq = {e.seq: e.payload for e in events}
    assert all(by_seq[e.seq] == e.payload for e in replay.events)


async def test_concurrent_appends_from_two_stores(make_store: MakeStore) -> None:
    """Two workers (two Redis clients, or two stores on one SQLite file) share one counter."""
    a, b = await make_store(), await make_store()
    events = await asyncio.gather(
        *(s.append("shared", {"i": i}) for i in range(100) for s in (a, b))
    )
    assert sorted(e.seq for e in events) == list(range(1, 201))


async def test_resume_replays_exactly_what_was_missed(make_store: MakeStore) -> None:
    store = await make_store()
    first = [await store.append("s", {"i": i}) for i in range(10)]
    epoch = first[0].epoch
    replay = await store.resume("s", epoch, 6)
    assert isinstance(replay, Replay) and replay.head == 10
    assert [e.seq for e in replay.events] == [7, 8, 9, 10]
    assert [e.payload["i"] for e in replay.events] == [6, 7, 8, 9]
    assert (await store.resume("s", epoch, 10)) == Replay(epoch=epoch, head=10, events=[])
    full = await store.resume("s", None, 0)
    assert isinstance(full, Replay) and len(full.events) == 10


async def test_resume_refusals_are_resets_never_partial(make_store: MakeStore) -> None:
    store = await make_store(max_len=5)
    events = [await store.append("s", {"i": i}) for i in range(12)]
    epoch = events[0].epoch
    wrong = await store.resume("s", "not-the-epoch", 3)
    assert wrong == Reset(epoch=epoch, head=12, reason="epoch_changed")
    ahead = await store.resume("s", epoch, 20)
    assert isinstance(ahead, Reset) and ahead.reason == "ahead_of_stream"
    trimmed = await store.resume("s", epoch, 3)  # 4..7 are gone: no partial replay
    assert trimmed == Reset(epoch=epoch, head=12, reason="history_trimmed")
    ok = await store.resume("s", epoch, 7)  # 8..12 are the five kept
    assert isinstance(ok, Replay) and [e.seq for e in ok.events] == [8, 9, 10, 11, 12]
    too_many = await store.resume("s", epoch, 7, limit=3)
    assert isinstance(too_many, Reset) and too_many.reason == "too_many"
    no_epoch = await store.resume("s", None, 0)
    assert isinstance(no_epoch, Reset) and no_epoch.reason == "history_trimmed"


async def test_age_bound(make_store: MakeStore) -> None:
    now = [1000.0]
    store = await make_store(max_age_s=60, clock=lambda: now[0])
    events = []
    for i in range(4):
        now[0] += 10
        events.append(await store.append("s", {"i": i}))
    removed = await store.trim(now=events[1].ts + 65)  # events 1 and 2 are too old
    assert removed == 2
    assert (await store.resume("s", events[0].epoch, 1)).reason == "history_trimmed"
    replay = await store.resume("s", events[0].epoch, 2)
    assert [e.seq for e in replay.events] == [3, 4]
    assert await store.trim(now=events[1].ts + 65) == 0  # nothing more to do


async def test_subscribe_delivers_in_order(make_store: MakeStore) -> None:
    store = await make_store()
    await store.append("s", {"before": True})
    async with await store.subscribe("s") as sub:
        appended = [await store.append("s", {"i": i}) for i in range(5)]
        got = await next_items(sub, 5)
    assert got == appended


async def test_subscribe_from_a_position_catches_up_then_goes_live(make_store: MakeStore
                                                                   ) -> None:
    store = await make_store()
    old = [await store.append("s", {"i": i}) for i in range(3)]
    async with await store.subscribe("s", Position(epoch=old[0].epoch, seq=1)) as sub:
        live = await store.append("s", {"i": 3})
        got = await next_items(sub, 3)
    assert [e.seq for e in got] == [2, 3, 4] and got[-1] == live


async def test_subscriber_fills_a_gap(make_store: MakeStore) -> None:
    """A message the subscriber never hears of (lost pub/sub, another worker) is recovered."""
    store = await make_store()
    silent = await make_store(publish=False)  # its appends are never announced
    if make_store.kind == "db":  # type: ignore[attr-defined]
        silent = SqlStreamStore(store.db, 1000, 3600)  # type: ignore[attr-defined]
    async with await store.subscribe("s") as sub:
        a = await store.append("s", {"i": 1})
        lost = await silent.append("s", {"i": 2})
        c = await store.append("s", {"i": 3})
        got = await next_items(sub, 3)
    assert got == [a, lost, c]
    assert store.gaps == 1  # counted for GET /metrics (realtime_stream_gaps_total)


async def test_redis_subscriber_notices_a_lost_last_message(redis_prefix: str,
                                                            redis_cleanup: Any) -> None:
    """Nothing follows the lost message: the periodic head check still brings it."""
    client = connect(REDIS_URL)
    store = RedisStreamStore(client, redis_prefix, 1000, 3600)
    silent = RedisStreamStore(client, redis_prefix, 1000, 3600, publish=False)
    try:
        async with await store.subscribe("s") as sub:
            lost = await silent.append("s", {"i": 1})
            got = await next_items(sub, 1, wait_s=8)
        assert got == [lost]
    finally:
        await store.close()
        await client.aclose()


async def test_drop_gives_a_new_epoch(make_store: MakeStore) -> None:
    store = await make_store()
    old = await store.append("s", {"i": 1})
    await store.drop("s")
    new = await store.append("s", {"i": 2})
    assert new.seq == 1 and new.epoch != old.epoch
    reset = await store.resume("s", old.epoch, 1)
    assert isinstance(reset, Reset) and reset.reason == "epoch_changed" and reset.head == 1


async def test_subscriber_gets_a_reset_when_history_is_lost(make_store: MakeStore) -> None:
    store = await make_store()
    first = await store.append("s", {"i": 1})
    async with await store.subscribe("s") as sub:
        await store.drop("s")
        after = await store.append("s", {"i": 2})
        got = await next_items(sub, 1)
    assert isinstance(got[0], Reset) and got[0].epoch == after.epoch != first.epoch


async def test_db_history_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "durable.sqlite3"
    db = await open_test_db(path)
    store = SqlStreamStore(db, 1000, 3600)
    events = [await store.append("feed:7", {"absence": i}) for i in range(3)]
    await db.close()

    db = await open_test_db(path)
    try:
        store = SqlStreamStore(db, 1000, 3600)
        replay = await store.resume("feed:7", events[0].epoch, 1)
        assert [e.payload for e in replay.events] == [{"absence": 1}, {"absence": 2}]
        nxt = await store.append("feed:7", {"absence": 3})
        assert (nxt.epoch, nxt.seq) == (events[0].epoch, 4)
    finally:
        await db.close()


async def test_redis_keys_lost_means_new_epoch(redis_prefix: str, redis_cleanup: Any) -> None:
    client = connect(REDIS_URL)
    store = RedisStreamStore(client, redis_prefix, 1000, 3600)
    try:
        old = [await store.append("s", {"i": i}) for i in range(3)]
        # As after a Redis restart without persistence: every key of ours is gone.
        keys = [k async for k in client.scan_iter(match=f"{redis_prefix}:*")]
        await client.delete(*keys)
        new = await store.append("s", {"i": 99})
        assert new.seq == 1 and new.epoch != old[0].epoch
        reset = await store.resume("s", old[0].epoch, 3)
        assert isinstance(reset, Reset) and reset.reason == "epoch_changed"
    finally:
        await store.close()
        await client.aclose()


async def test_open_stream_store_picks_redis_only_when_given_one(tmp_path: Path,
                                                                 redis_prefix: str) -> None:
    settings = Settings(stream_max_len=7, stream_max_age_s=30, redis_prefix=redis_prefix)
    db = await open_test_db(tmp_path / "s.sqlite3")
    client = connect(REDIS_URL)
    try:
        local = open_stream_store(settings, db, None)
        shared = open_stream_store(settings, db, client)
        assert isinstance(local, SqlStreamStore) and local.max_len == 7
        assert isinstance(shared, RedisStreamStore) and shared.prefix == redis_prefix
        assert shared.max_age_s == 30
    finally:
        await db.close()
        await client.aclose()


@pytest_asyncio.fixture
async def redis_stores(redis_prefix: str, redis_cleanup: Any
                       ) -> AsyncIterator[Callable[..., RedisStreamStore]]:
    """Redis stores as separate processes would have them: each on its own client."""
    clients: list[aioredis.Redis] = []
    stores: list[RedisStreamStore] = []

    def make(client: aioredis.Redis | None = None, **options: Any) -> RedisStreamStore:
        if client is None:
            client = connect(REDIS_URL)
            clients.append(client)
        options.setdefault("max_len", 1000)
        options.setdefault("max_age_s", 3600)
        store = RedisStreamStore(client, redis_prefix, **options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()
    for client in clients:
        await client.aclose()


def collect(sub: Any, out: list[Any]) -> asyncio.Task[None]:
    """Read a subscription in the background, so a test can also watch it stay quiet."""

    async def run() -> None:
        async for item in sub:
            out.append(item)

    return asyncio.create_task(run())


async def wait_for_len(out: list[Any], n: int, wait_s: float = 5) -> None:
    deadline = time.monotonic() + wait_s
    while len(out) < n:
        assert time.monotonic() < deadline, f"got {len(out)} of {n}: {out}"
        await asyncio.sleep(0.01)


async def test_redis_subscription_is_live_when_subscribe_returns(redis_stores: Any) -> None:
    """The SUBSCRIBE is confirmed before subscribe() returns: no head check needed."""
    reader = redis_stores(check_every_s=3600)
    writer = redis_stores()
    for i in range(10):
        async with await reader.subscribe(f"s{i}") as sub:
            event = await writer.append(f"s{i}", {"i": i})
            assert await next_items(sub, 1, wait_s=1) == [event]


async def test_redis_subscriber_checks_heads_after_its_connection_drops(
    redis_stores: Any, redis_prefix: str, redis_cleanup: aioredis.Redis
) -> None:
    """A message lost while the pub/sub connection was down arrives once it is back."""
    name = f"{redis_prefix}-sub"
    reader = redis_stores(aioredis.Redis.from_url(REDIS_URL, client_name=name),
                          check_every_s=3600)  # no periodic check can explain the delivery
    silent = redis_stores(publish=False)
    publisher = redis_stores()
    got: list[Any] = []
    marks: list[Any] = []
    async with await reader.subscribe("s") as sub, await reader.subscribe("m") as marker:
        task = collect(sub, got)
        marker_task = collect(marker, marks)
        lost = await silent.append("s", {"i": 1})
        # Pub/sub never told it: a publication on another stream, on the same pub/sub
        # connection and after this one, does arrive.
        await nothing_arrived(lambda: got, control=lambda: publisher.append("m", {"i": 0}),
                              arrived=lambda: marks)
        marker_task.cancel()
        ours = [c for c in await redis_cleanup.client_list()
                if c["name"] == name and int(c["sub"]) > 0]
        assert len(ours) == 1  # one pub/sub connection for the whole store
        await redis_cleanup.client_kill_filter(_id=ours[0]["id"])
        await wait_for_len(got, 1)
        assert got == [lost]
        live = await silent.append("s", {"i": 2})
        pub = await redis_stores().append("s", {"i": 3})
        await wait_for_len(got, 3)
        assert got == [lost, live, pub]
        task.cancel()
    await reader.close()
    await reader.redis.aclose()


async def test_redis_one_pubsub_connection_for_many_subscribers(
    redis_stores: Any, redis_prefix: str, redis_cleanup: aioredis.Redis
) -> None:
    name = f"{redis_prefix}-many"
    reader = redis_stores(aioredis.Redis.from_url(REDIS_URL, client_name=name))
    writer = redis_stores()
    subs = [await reader.subscribe(f"s{i % 3}") for i in range(9)]
    ours = [c for c in await redis_cleanup.client_list()
            if c["name"] == name and int(c["sub"]) > 0]
    assert len(ours) == 1 and int(ours[0]["sub"]) == 3
    events = [await writer.append(f"s{i}", {"i": i}) for i in range(3)]
    for i, sub in enumerate(subs):
        assert await next_items(sub, 1) == [events[i % 3]]
        await sub.close()
    await reader.close()
    await reader.redis.aclose()


async def test_redis_listener_survives_a_malformed_message(redis_stores: Any,
                                                            redis_prefix: str) -> None:
    reader = redis_stores()
    writer = redis_stores()
    async with await reader.subscribe("s") as sub:
        await writer.redis.publish(f"{redis_prefix}:stream:s", b"not an event")
        first = await writer.append("s", {"i": 1})
        second = await writer.append("s", {"i": 2})
        assert await next_items(sub, 2) == [first, second]


async def test_redis_subscriber_resets_when_the_keys_vanish(
    redis_stores: Any, redis_prefix: str, redis_cleanup: aioredis.Redis
) -> None:
    """Redis restarted without persistence: the subscriber is told to reload, not misled."""
    store = redis_stores()
    old = await store.append("s", {"i": 0})
    async with await store.subscribe("s") as sub:
        live = await store.append("s", {"i": 1})
        assert await next_items(sub, 1) == [live]
        keys = [k async for k in redis_cleanup.scan_iter(match=f"{redis_prefix}:*")]
        await redis_cleanup.delete(*keys)
        new = await redis_stores().append("s", {"i": 2})
        got = await next_items(sub, 1)
    assert new.seq == 1 and new.epoch != old.epoch
    assert got == [Reset(epoch=new.epoch, head=1, reason="epoch_changed")]


async def test_redis_append_bounds_age_without_a_sweep(redis_stores: Any) -> None:
    now = [1000.0]
    store = redis_stores(max_age_s=60, clock=lambda: now[0])
    old = [await store.append("s", {"i": i}) for i in range(3)]
    now[0] += 100  # the three are now too old: the next append drops them itself
    fresh = await store.append("s", {"i": 3})
    assert (await store.resume("s", fresh.epoch, 0)).reason == "history_trimmed"
    replay = await store.resume("s", old[0].epoch, 3)
    assert isinstance(replay, Replay) and replay.events == [fresh]
    assert await store.trim(now=now[0]) == 0  # nothing left for the sweep


async def test_resume_after_a_sweep_and_size_trim(make_store: MakeStore) -> None:
    """Age and size bounds together: only what is really kept is replayed."""
    now = [1000.0]
    store = await make_store(max_len=10, max_age_s=60, clock=lambda: now[0])
    for i in range(7):
        await store.append("s", {"i": i})
    now[0] += 100
    assert await store.trim() == 7
    fresh = [await store.append("s", {"i": i}) for i in range(7, 11)]  # seq 8..11
    assert (await store.resume("s", fresh[0].epoch, 5)).reason == "history_trimmed"
    replay = await store.resume("s", fresh[0].epoch, 7)
    assert isinstance(replay, Replay) and replay.events == fresh


def count_batches(db: Database) -> list[int]:
    """The size of every grouped append the database commits from now on (its observer,
    which feeds the metrics: one call per transaction)."""
    sizes: list[int] = []

    def observe(kind: str, _seconds: float, size: int) -> None:
        if kind == "batch":
            sizes.append(size)

    db.observer = observe
    return sizes


async def test_db_group_commit(tmp_path: Path) -> None:
    """Appends made together share transactions, yet each gets its own gap-free seq, is
    durable when its caller returns, and reaches subscribers in order."""
    path = tmp_path / "group.sqlite3"
    db = await open_test_db(path)
    store = SqlStreamStore(db, 50, 3600)
    sub = await store.subscribe("board:1")
    batches = count_batches(db)
    got: list[Any] = []
    reader = collect(sub, got)
    events = await asyncio.gather(*(store.append(f"board:{i % 3}", {"n": i})
                                    for i in range(300)))
    for k in range(3):
        mine = [e for e in events if e.stream == f"board:{k}"]
        assert [e.seq for e in mine] == list(range(1, 101))
        assert [e.payload["n"] for e in mine] == list(range(k, 300, 3))
    assert sum(batches) == 300
    assert 1 <= len(batches) <= 10, batches  # 300 appends, a handful of commits
    await wait_for_len(got, 100)
    assert [e.seq for e in got] == list(range(1, 101))
    reader.cancel()
    await sub.close()
    await db.close()
    db = await open_test_db(path)  # what was acked is on disk, trimmed to the size bound
    try:
        replay = await SqlStreamStore(db, 50, 3600).resume("board:2", events[2].epoch, 50)
        assert [e.payload["n"] for e in replay.events] == list(range(152, 300, 3))
    finally:
        await db.close()


async def test_db_appends_from_two_nodes_at_once(tmp_path: Path) -> None:
    """Two nodes (two `Database`s on one database: on PostgreSQL two pools, as two machines
    would have) with two stores each (two workers) append to the same streams at once, in
    bursts that make groups race: each stream's seqs are 1..N, none missing, none twice;
    each writer's appends keep the order it made them; every acked append is read back by a
    fifth connection exactly as it was acked."""
    path = tmp_path / "nodes.sqlite3"
    nodes = [await open_test_db(path) for _ in range(2)]
    stores = [SqlStreamStore(db, 10_000, 3600) for db in nodes for _ in range(2)]
    reader_db = await open_test_db(path)
    try:
        async def write(w: int, store: SqlStreamStore) -> list[StreamEvent]:
            acked: list[StreamEvent] = []
            for burst in range(10):
                acked += await asyncio.gather(*(
                    store.append("shared" if i % 3 else f"own:{i % 2}",
                                 {"w": w, "n": burst * 30 + i}) for i in range(30)))
            return acked

        per_writer = await asyncio.gather(*(write(w, s) for w, s in enumerate(stores)))
        acked = [e for events in per_writer for e in events]
        assert len(acked) == 4 * 300
        reader = SqlStreamStore(reader_db, 10_000, 3600)
        for stream in ("shared", "own:0", "own:1"):
            mine = sorted((e for e in acked if e.stream == stream), key=lambda e: e.seq)
            assert [e.seq for e in mine] == list(range(1, len(mine) + 1))
            assert len({e.epoch for e in mine}) == 1
            for w in range(4):
                ns = [e.payload["n"] for e in mine if e.payload["w"] == w]
                assert ns == sorted(ns) and ns
            replay = await reader.resume(stream, mine[0].epoch, 0)
            assert isinstance(replay, Replay) and replay.head == len(mine)
            assert [(e.seq, e.payload) for e in replay.events] == [
                (e.seq, e.payload) for e in mine]
        assert len([e for e in acked if e.stream == "shared"]) == 4 * 200
    finally:
        for store in stores:
            await store.close()
        for db in (*nodes, reader_db):
            await db.close()


async def test_db_group_commit_window(tmp_path: Path) -> None:
    """Transactions begin at most every `group_s`: an append after a quiet spell is written
    at once, appends arriving one by one just after it wait and share the next one."""
    db = await open_test_db(tmp_path / "window.sqlite3")
    store = SqlStreamStore(db, 1000, 3600, group_s=0.2)
    try:
        batches = count_batches(db)
        first = await store.append("board:1", {"n": 0})
        assert batches == [1]  # leading edge: no wait for a lone append

        async def later(n: int) -> StreamEvent:
            await asyncio.sleep(n * 0.002)  # one by one, each after the previous commit
            return await store.append(f"board:{n % 2}", {"n": n})

        events = await asyncio.gather(*(later(n) for n in range(1, 21)))
        assert batches == [1, 20]  # the 20 in one transaction
        assert [e.seq for e in events if e.stream == "board:1"] == list(range(2, 12))
        assert [e.seq for e in events if e.stream == "board:0"] == list(range(1, 11))
        assert first.seq == 1
    finally:
        await store.close()
        await db.close()


async def test_db_trims_in_steps_of_one_percent(tmp_path: Path) -> None:
    """Past its bound a stream is trimmed by 1 % of it at once, not one row per append; a
    resume from before the cut is a reset, never a partial history."""
    db = await open_test_db(tmp_path / "trim.sqlite3")
    store = SqlStreamStore(db, 200, 3600, group_s=0)
    try:
        events = [await store.append("board:1", {"n": n}) for n in range(1, 204)]
        # 203 appended, bound 200, step 2: the trim happens at 203, down to the last 200.
        row = await db.fetchone("SELECT trimmed_to FROM streams WHERE name = 'board:1'")
        assert row is not None and row[0] == 3
        batches = count_batches(db)
        await store.append("board:1", {"n": 204})  # 204 - 200 = 4, not past 3 + 2: no trim
        row = await db.fetchone("SELECT trimmed_to, (SELECT COUNT(*) FROM stream_events)"
                                " FROM streams WHERE name = 'board:1'")
        assert row is not None and tuple(row) == (3, 201) and batches == [1]
        replay = await store.resume("board:1", events[0].epoch, 3)
        assert isinstance(replay, Replay)
        assert [e.payload["n"] for e in replay.events] == list(range(4, 205))
        assert isinstance(await store.resume("board:1", events[0].epoch, 2), Reset)
    finally:
        await store.close()
        await db.close()


async def test_redis_group_commit(redis_stores: Any) -> None:
    """Appends made together share script calls, yet each gets its own gap-free seq in the
    order its caller made it, is in the log when its caller returns, and reaches
    subscribers in order — with two stores (two workers) appending to the same streams."""
    one, two = redis_stores(), redis_stores()
    reader = redis_stores()
    calls = []
    for store in (one, two):
        script = store._append

        async def counted(*args: Any, _script: Any = script, **kwargs: Any) -> Any:
            calls.append(len(kwargs["keys"]) // 2)
            return await _script(*args, **kwargs)

        store._append = counted  # type: ignore[method-assign]
    sub = await reader.subscribe("board:1")
    got: list[Any] = []
    task = collect(sub, got)
    events = await asyncio.gather(*(
        store.append(f"board:{i % 3}", {"n": i, "by": name})
        for i in range(150) for name, store in (("one", one), ("two", two))))
    assert sum(calls) == 300 and len(calls) <= 20, calls  # a handful of round trips
    for k in range(3):
        mine = sorted((e for e in events if e.stream == f"board:{k}"), key=lambda e: e.seq)
        assert [e.seq for e in mine] == list(range(1, 101))
        for name in ("one", "two"):  # each worker's appends keep the order they were made
            ns = [e.payload["n"] for e in mine if e.payload["by"] == name]
            assert ns == sorted(ns) == list(range(k, 150, 3))
        replay = await reader.resume(f"board:{k}", mine[0].epoch, 0)
        assert isinstance(replay, Replay) and replay.events == mine
    await wait_for_len(got, 100)
    assert [e.seq for e in got] == list(range(1, 101))
    task.cancel()
    await sub.close()


async def test_redis_failed_group_fails_each_caller_then_recovers(redis_stores: Any) -> None:
    """A script call that fails (Redis unreachable) fails every append it carried — none is
    acked — and the next group is written as usual."""
    store = redis_stores()
    script = store._append
    calls: list[int] = []
    # Two calls fail: the first append's own, then the group of the four that queued behind.
    failures = [ConnectionError("Redis est injoignable")] * 2

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(kwargs["keys"]) // 2)
        await asyncio.sleep(0)
        if failures:
            raise failures.pop()
        return await script(*args, **kwargs)

    store._append = flaky  # type: ignore[method-assign]
    results = await asyncio.gather(*(store.append("s", {"n": i}) for i in range(5)),
                                   return_exceptions=True)
    assert calls == [1, 4]  # the first alone (nothing in flight), the rest together
    assert all(isinstance(r, ConnectionError) for r in results)
    event = await store.append("s", {"n": 5})
    assert event.seq == 1 and event.payload == {"n": 5}


async def test_redis_own_append_reaches_local_subscribers_at_once(redis_stores: Any) -> None:
    """A worker's own append is queued for its subscribers when `append` returns (the board
    ack waits for it: no pub/sub round trip); the copy pub/sub brings back is not a second
    delivery; an append that does not follow what is queued waits for pub/sub, in order."""
    store = redis_stores(check_every_s=3600)
    silent = redis_stores(publish=False)
    sub = await store.subscribe("s")
    first = await store.append("s", {"i": 1})
    assert sub._queue.qsize() == 1  # type: ignore[attr-defined]  (handed over already)
    assert await next_items(sub, 1, wait_s=0.01) == [first]
    with pytest.raises(TimeoutError):  # pub/sub's copy came and was dropped
        await next_items(sub, 1, wait_s=0.3)
    lost = await silent.append("s", {"i": 2})  # seq 2: nobody is told
    mine = await store.append("s", {"i": 3})  # seq 3 does not follow seq 1: not handed over
    assert await next_items(sub, 2) == [lost, mine]
    assert store.gaps == 1  # pub/sub's copy of seq 3 showed the gap, filled from the log
    await sub.close()

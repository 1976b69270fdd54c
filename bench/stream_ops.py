"""What a board op costs the stream layer, per process: SQLite against Redis, CPU per op.

    .venv/bin/python -m bench.stream_ops [--ops 3000] [--rate 1500]

The end-to-end benches (bench/boards.py, bench/scale.py) measure a whole server on a machine
the load generator shares; this one isolates the part that differs between the single SQLite
process and Redis workers, in processes of its own, timed by CPU (`time.process_time`), so
that a busy machine slows it without changing its answer much:

- **append**: the author's worker writes an op (a board `Event` as bench/boards.py's teachers
  make them) and waits for it to be durable — SQLite's group commit, Redis's script call.
  `concurrency` appends are in flight at once (1: one op at a time; 8: eight boards drawing
  together, which is what lets group commits group);
- **receive**: another process follows the streams (every board written to), as every
  worker holding followers of those boards does: pub/sub message → subscription (gap
  check) → the board follower's decode and apply (`LiveBoard.apply`: the op checked
  against the state, the entry encoded once). With SQLite there is no other process: the
  appender's own subscription gets the event in memory: the row gives that in-process cost
  (queue, gap check, apply) for comparison.

Appends are paced at `--rate` per second (one op per loop pass, as ops arrive from many
teachers), so the receiver pays one wake-up per message as a server does.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import secrets
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def events(n: int) -> list[dict[str, Any]]:
    """Strokes as the bench's teachers draw them: an add, then appends of 3 points."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        stroke, k = divmod(i, 30)
        item = f"s{stroke}"
        if k == 0:
            op: dict[str, Any] = {"type": "add", "item": {
                "id": item, "kind": "stroke", "page_id": "p1",
                "points": [[12.5, 100.0], [16.5, 102.0]], "style": {"color": "#d62828",
                                                                   "width": 4}}}
        else:
            op = {"type": "append", "item_id": item,
                  "points": [[12.5 + k, 100.0], [20.0 + k, 103.0], [24.0 + k, 105.0]]}
        out.append({"author": 5, "teacher": True, "origin": "op", "op": op, "control": None})
    return out


def live_board() -> Any:
    from realtime.boards.live import LiveBoard
    from realtime.boards.model import BoardState, Limits
    from realtime.boards.store import BoardMeta

    meta = BoardMeta(id=1, school_id=1, class_id=1, slot_id=None, owner_id=5, title="t",
                     state="live", pen_all=False, pen=frozenset(), created_at=0.0,
                     updated_at=0.0)
    return LiveBoard(meta=meta, state=BoardState.new(), epoch="", seq=0, limits=Limits())


async def follow_into(live: Any, sub: Any, n: int, done: asyncio.Event) -> None:
    import msgspec

    from realtime.boards.live import Event

    got = 0
    async for item in sub:
        live.apply(item.seq, msgspec.convert(item.payload, Event))
        live.take_pending()
        got += 1
        if got >= n:
            done.set()
            return


def receiver_main(conn: Connection, spec: dict[str, Any]) -> None:
    import uvloop

    uvloop.run(_receiver(conn, spec))


async def _receiver(conn: Connection, spec: dict[str, Any]) -> None:
    from realtime.redis_client import connect
    from realtime.streams.redis import RedisStreamStore

    client = connect(REDIS_URL)
    store = RedisStreamStore(client, spec["prefix"], 100_000, 3600)
    subs, tasks, dones = [], [], []
    for stream in spec["streams"]:  # every board, as a worker with followers on each
        sub = await store.subscribe(stream)
        done = asyncio.Event()
        tasks.append(asyncio.create_task(follow_into(live_board(), sub, spec["n"], done)))
        subs.append(sub)
        dones.append(done)
    conn.send("ready")
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "go"
    t0 = time.process_time()
    for done in dones:
        await asyncio.wait_for(done.wait(), 120)
    t1 = time.process_time()
    conn.send({"cpu_s": t1 - t0, "gaps": store.gaps})
    for task, sub in zip(tasks, subs, strict=True):
        task.cancel()
        await sub.close()
    await store.close()
    await client.aclose()


async def append_all(store: Any, stream_of: Any, payloads: list[dict[str, Any]],
                     concurrency: int, rate: float) -> float:
    """CPU seconds to append every payload, `concurrency` in flight, paced at `rate`/s."""
    period = concurrency / rate
    t0 = time.process_time()
    start = time.monotonic()
    for i in range(0, len(payloads), concurrency):
        chunk = payloads[i:i + concurrency]
        await asyncio.gather(*(store.append(stream_of(i + j), p) for j, p in enumerate(chunk)))
        delay = start + (i // concurrency + 1) * period - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    return time.process_time() - t0


async def run_sqlite(tmp: Path, payloads: list[dict[str, Any]], concurrency: int,
                     rate: float) -> dict[str, float]:
    from realtime.db import Database
    from realtime.streams.sql import SqlStreamStore

    db = await Database.open(tmp / f"ops-{concurrency}.sqlite3")
    store = SqlStreamStore(db, 100_000, 3600)
    try:
        append_s = await append_all(store, lambda i: f"board:{i % concurrency}", payloads,
                                    concurrency, rate)
        # In-process delivery: what the store hands its local subscription after a commit,
        # through the queue and the gap check to the board's apply.
        from realtime.streams.base import StreamEvent

        sub = await store.subscribe("board:y")
        live, done = live_board(), asyncio.Event()
        head = await store.head("board:y")
        task = asyncio.create_task(follow_into(live, sub, len(payloads), done))
        await asyncio.sleep(0)
        t0 = time.process_time()
        for i, p in enumerate(payloads):
            sub.push(StreamEvent(stream="board:y", epoch=head.epoch, seq=i + 1, ts=0.0,
                                 payload=p))
            if i % concurrency == concurrency - 1:
                await asyncio.sleep(0)  # one loop pass per group, as commits come
        await asyncio.wait_for(done.wait(), 120)
        receive_s = time.process_time() - t0
        task.cancel()
        await sub.close()
    finally:
        await store.close()
        await db.close()
    n = len(payloads)
    return {"append": append_s / n * 1e6, "receive": receive_s / n * 1e6}


async def run_redis(payloads: list[dict[str, Any]], concurrency: int, rate: float
                    ) -> dict[str, float]:
    from realtime.redis_client import connect
    from realtime.streams.redis import RedisStreamStore

    prefix = f"bench-ops-{secrets.token_hex(4)}"
    client = connect(REDIS_URL)
    store = RedisStreamStore(client, prefix, 100_000, 3600)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=receiver_main, args=(child, {
        "prefix": prefix, "streams": [f"board:{i}" for i in range(concurrency)],
        "n": len(payloads) // concurrency}), daemon=True)
    proc.start()
    try:
        assert await asyncio.get_running_loop().run_in_executor(None, parent.recv) == "ready"
        parent.send("go")
        append_s = await append_all(store, lambda i: f"board:{i % concurrency}", payloads,
                                    concurrency, rate)
        got = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
    finally:
        proc.join(10)
        await store.close()
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    n = len(payloads)
    return {"append": append_s / n * 1e6, "receive": got["cpu_s"] / n * 1e6,
            "gaps": got["gaps"]}


async def main_async(args: argparse.Namespace) -> list[tuple[str, int, dict[str, float]]]:
    payloads = events(args.ops)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ops-") as name:
        for concurrency in (1, 8):
            print(f"concurrency {concurrency}…", file=sys.stderr, flush=True)
            rows.append(("SQLite", concurrency,
                         await run_sqlite(Path(name), payloads, concurrency, args.rate)))
            rows.append(("Redis", concurrency,
                         await run_redis(payloads, concurrency, args.rate)))
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.stream_ops", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ops", type=int, default=3000)
    p.add_argument("--rate", type=float, default=1500, help="appends per second (1500)")
    args = p.parse_args(argv)
    import uvloop

    rows = uvloop.run(main_async(args))
    try:
        import hiredis  # noqa: F401

        parser = "hiredis"
    except ImportError:
        parser = "redis-py's Python parser"
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"\n{args.ops} ops at {args.rate:g}/s, Redis replies parsed by {parser}, "
          f"{os.cpu_count()} CPUs, load average {load}")
    print("| store | appends in flight | µs CPU per append (author's process) "
          "| µs CPU per op received and applied (another process) |")
    print("|---|---|---|---|")
    for store, concurrency, r in rows:
        receive = r["receive"]
        cell = f"{receive:.1f}"
        if store == "SQLite":
            cell += " (in the appender's process: there is no other)"
        print(f"| {store} | {concurrency} | {r['append']:.1f} | {cell} |")


if __name__ == "__main__":
    main()

"""What a board op costs the stream layer, per process: SQLite, PostgreSQL and Redis.

    .venv/bin/python -m bench.stream_ops [--ops 3000] [--rate 1500] [--flight 64]
                                         [--database-url postgresql://…]

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
teachers), so the receiver pays one wake-up per message as a server does; each append's
latency (call to durable return) is timed too, so the stores are compared at equal load.

With `--database-url` (or `DATABASE_URL`) naming a PostgreSQL database, the same database
store runs on it as well (in a schema of its own, dropped afterwards): its rows add the CPU
that PostgreSQL's backends spent (read from /proc, so only for a server on this machine).
Then a **throughput** run: `--flight` appends kept in flight (unpaced, over 8 boards) for
`--ops` appends per store, appends per second and latency; and the PostgreSQL / SQLite
ratios of throughput, p99 at equal load and CPU per append.
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
BOARDS = 8  # boards written to in the throughput run


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


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
                     concurrency: int, rate: float, latencies: list[float] | None = None
                     ) -> float:
    """CPU seconds to append every payload, `concurrency` in flight, paced at `rate`/s;
    each append's wall time (ms) added to `latencies`."""
    period = concurrency / rate
    lat = latencies if latencies is not None else []

    async def timed(stream: str, payload: dict[str, Any]) -> None:
        t = time.perf_counter()
        await store.append(stream, payload)
        lat.append((time.perf_counter() - t) * 1000)

    t0 = time.process_time()
    start = time.monotonic()
    for i in range(0, len(payloads), concurrency):
        chunk = payloads[i:i + concurrency]
        await asyncio.gather(*(timed(stream_of(i + j), p) for j, p in enumerate(chunk)))
        delay = start + (i // concurrency + 1) * period - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    return time.process_time() - t0


async def flood(store: Any, payloads: list[dict[str, Any]], flight: int, tag: str
                ) -> dict[str, float]:
    """Unpaced: `flight` appenders, each appending its share back to back over `BOARDS`
    boards: appends per second and latency."""
    lat: list[float] = []

    async def appender(k: int) -> None:
        for i in range(k, len(payloads), flight):
            t = time.perf_counter()
            await store.append(f"{tag}:board:{i % BOARDS}", payloads[i])
            lat.append((time.perf_counter() - t) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(appender(k) for k in range(flight)))
    elapsed = time.perf_counter() - start
    return {"per_s": len(payloads) / elapsed, "p50": percentile(lat, .5),
            "p99": percentile(lat, .99)}


class Backends:
    """CPU (user + system) of PostgreSQL's backends serving this bench's pool, from /proc
    (a server on this machine; elsewhere, `None`)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    @classmethod
    async def of(cls, db: Any, app: str) -> Backends:
        rows = await db.fetchall(
            "SELECT pid FROM pg_stat_activity WHERE application_name = ?", (app,))
        return cls([r[0] for r in rows])

    def cpu_s(self) -> float | None:
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return None
            total += (int(fields[11]) + int(fields[12])) / tick
        return total if self.pids else None


class Target:
    """Where the database store runs: a SQLite file in `tmp`, or a fresh schema of the
    PostgreSQL database at `url` (dropped by `drop`)."""

    def __init__(self, tmp: Path, url: str | None) -> None:
        self.tmp = tmp
        self.url = url
        self.schema = f"bench_ops_{secrets.token_hex(4)}"
        self.app = f"bench-ops-{secrets.token_hex(4)}"
        self.opened = 0

    @property
    def name(self) -> str:
        return "PostgreSQL" if self.url else "SQLite"

    def _pg_url(self) -> str:
        from urllib.parse import quote

        assert self.url is not None
        sep = "&" if "?" in self.url else "?"
        options = quote(f"-c search_path={self.schema},public", safe="")
        return f"{self.url}{sep}options={options}&application_name={self.app}"

    async def open(self) -> Any:
        from realtime.db import Database

        self.opened += 1
        if self.url is None:
            return await Database.open(self.tmp / f"ops-{self.opened}.sqlite3")
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")  # type: ignore[arg-type]
        # A fixed pool: the same backends from start to end, whose CPU is read.
        return await Database.open(self._pg_url(), pool_min=2, pool_max=2)

    async def drop(self) -> None:
        if self.url is None:
            return
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            await conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")  # type: ignore[arg-type]


async def run_db(target: Target, payloads: list[dict[str, Any]], concurrency: int,
                 rate: float) -> dict[str, float]:
    from realtime.streams.sql import SqlStreamStore

    db = await target.open()
    store = SqlStreamStore(db, 100_000, 3600)
    backends = await Backends.of(db, target.app) if target.url else Backends([])
    lat: list[float] = []
    tag = f"c{concurrency}"
    try:
        backend_t0 = backends.cpu_s()
        append_s = await append_all(store, lambda i: f"{tag}:board:{i % concurrency}",
                                    payloads, concurrency, rate, lat)
        backend_t1 = backends.cpu_s()
        # In-process delivery: what the store hands its local subscription after a commit,
        # through the queue and the gap check to the board's apply.
        from realtime.streams.base import StreamEvent

        sub = await store.subscribe(f"{tag}:board:y")
        live, done = live_board(), asyncio.Event()
        head = await store.head(f"{tag}:board:y")
        task = asyncio.create_task(follow_into(live, sub, len(payloads), done))
        await asyncio.sleep(0)
        t0 = time.process_time()
        for i, p in enumerate(payloads):
            sub.push(StreamEvent(stream=f"{tag}:board:y", epoch=head.epoch, seq=i + 1, ts=0.0,
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
    out = {"append": append_s / n * 1e6, "receive": receive_s / n * 1e6,
           "p50": percentile(lat, .5), "p99": percentile(lat, .99)}
    if backend_t0 is not None and backend_t1 is not None:
        out["backend"] = (backend_t1 - backend_t0) / n * 1e6
    return out


async def flood_db(target: Target, payloads: list[dict[str, Any]], flight: int
                   ) -> dict[str, float]:
    from realtime.streams.sql import SqlStreamStore

    db = await target.open()
    store = SqlStreamStore(db, 100_000, 3600)
    try:
        return await flood(store, payloads, flight, "flood")
    finally:
        await store.close()
        await db.close()


async def run_redis(payloads: list[dict[str, Any]], concurrency: int, rate: float
                    ) -> dict[str, float]:
    from realtime.redis_client import connect
    from realtime.streams.redis import RedisStreamStore

    prefix = f"bench-ops-{secrets.token_hex(4)}"
    client = connect(REDIS_URL)
    store = RedisStreamStore(client, prefix, 100_000, 3600)
    lat: list[float] = []
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
                                    concurrency, rate, lat)
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
            "gaps": got["gaps"], "p50": percentile(lat, .5), "p99": percentile(lat, .99)}


async def flood_redis(payloads: list[dict[str, Any]], flight: int) -> dict[str, float]:
    from realtime.redis_client import connect
    from realtime.streams.redis import RedisStreamStore

    prefix = f"bench-ops-{secrets.token_hex(4)}"
    client = connect(REDIS_URL)
    store = RedisStreamStore(client, prefix, 100_000, 3600)
    try:
        return await flood(store, payloads, flight, "flood")
    finally:
        await store.close()
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


Row = tuple[str, int, dict[str, float]]


async def main_async(args: argparse.Namespace) -> tuple[list[Row], list[Row]]:
    payloads = events(args.ops)
    rows: list[Row] = []
    floods: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-ops-") as name:
        targets = [Target(Path(name), None)]
        if args.database_url:
            targets.append(Target(Path(name), args.database_url))
        try:
            for concurrency in (1, 8):
                print(f"concurrency {concurrency}…", file=sys.stderr, flush=True)
                for target in targets:
                    rows.append((target.name, concurrency,
                                 await run_db(target, payloads, concurrency, args.rate)))
                rows.append(("Redis", concurrency,
                             await run_redis(payloads, concurrency, args.rate)))
            print(f"throughput, {args.flight} in flight…", file=sys.stderr, flush=True)
            for target in targets:
                floods.append((target.name, args.flight,
                               await flood_db(target, payloads, args.flight)))
            floods.append(("Redis", args.flight, await flood_redis(payloads, args.flight)))
        finally:
            for target in targets:
                await target.drop()
    return rows, floods


def ratios(rows: list[Row], floods: list[Row]) -> list[str]:
    """PostgreSQL / SQLite, measured in this run: throughput, then p99 and CPU per append
    at equal load (the same paced rate, 8 in flight)."""
    paced = {store: r for store, c, r in rows if c == 8}
    flooded = {store: r for store, _c, r in floods}
    if "PostgreSQL" not in paced:
        return []
    pg, lite = paced["PostgreSQL"], paced["SQLite"]
    out = [
        f"PostgreSQL / SQLite, append throughput ({floods[0][1]} in flight): "
        f"{flooded['PostgreSQL']['per_s'] / flooded['SQLite']['per_s']:.2f}×",
        f"PostgreSQL / SQLite, append p99 at equal load (8 in flight, paced): "
        f"{pg['p99'] / lite['p99']:.2f}×",
        f"PostgreSQL / SQLite, CPU per append at equal load, the appender's process: "
        f"{pg['append'] / lite['append']:.2f}×",
    ]
    if "backend" in pg:
        out.append("PostgreSQL / SQLite, CPU per append at equal load, the appender's "
                   "process and PostgreSQL's backends: "
                   f"{(pg['append'] + pg['backend']) / lite['append']:.2f}×")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.stream_ops", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ops", type=int, default=3000)
    p.add_argument("--rate", type=float, default=1500, help="appends per second (1500)")
    p.add_argument("--flight", type=int, default=64,
                   help="appends in flight in the throughput run (64)")
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or None,
                   help="a PostgreSQL database to run the database store on as well "
                        "(default: $DATABASE_URL; a schema of its own, dropped after)")
    args = p.parse_args(argv)
    from realtime.db import is_postgres_url

    if args.database_url and not is_postgres_url(args.database_url):
        p.error("--database-url: postgresql://USER@HOST:PORT/DBNAME")
    import uvloop

    rows, floods = uvloop.run(main_async(args))
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
          "| µs CPU per op received and applied (another process) "
          "| append p50 ms | append p99 ms |")
    print("|---|---|---|---|---|---|")
    for store, concurrency, r in rows:
        cell = f"{r['receive']:.1f}"
        if store != "Redis":
            cell += " (in the appender's process: there is no other)"
        append = f"{r['append']:.1f}"
        if "backend" in r:
            append += f" (+ {r['backend']:.1f} in PostgreSQL's backends)"
        print(f"| {store} | {concurrency} | {append} | {cell} | {r['p50']:.2f} "
              f"| {r['p99']:.2f} |")
    print(f"\nThroughput: {args.ops} appends, {args.flight} in flight over {BOARDS} boards, "
          "unpaced")
    print("| store | appends per second | append p50 ms | append p99 ms |")
    print("|---|---|---|---|")
    for store, _flight, r in floods:
        print(f"| {store} | {r['per_s']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} |")
    lines = ratios(rows, floods)
    if lines:
        print()
        for line in lines:
            print(line)


if __name__ == "__main__":
    main()

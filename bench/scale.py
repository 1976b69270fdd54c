"""Live boards on 1 and 2 worker processes (`serve --workers N`, Redis between them).

    .venv/bin/python -m bench.scale [--boards 8] [--followers 30] [--seconds 15] [--client raw]

The clients, boards and measurements are bench/boards.py's (imported, not copied): N boards
of real teachers and their classes, followers spread over client processes, latency =
follower's receipt − teacher's send. Both runs use Redis (the shared local one, under a
prefix of their own, deleted afterwards) so the only difference is the number of workers:

- `1 worker`: `python -m realtime serve --workers 1` with REDIS_URL (the baseline);
- `2 workers`: `--workers 2`, one port, SO_REUSEPORT; a board's followers land on both.

Server CPU and RSS are those of the whole process tree. The ratio row divides the 2-worker
figures by the baseline's. On a 2-core machine the load generator competes with the workers:
read the "machine" note below the table before the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.boards import (
    CHEAP_KDF,
    Result,
    measure,
    notes,
    plan_ent,
    ratio,
    seed_demo,
    start_server,
    stop_server,
)

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


async def run_workers(tmp: Path, db: Path, accounts: list[dict[str, Any]], workers: int,
                      args: argparse.Namespace) -> Result:
    prefix = f"bench-scale-{secrets.token_hex(4)}"
    env = {**CHEAP_KDF, "REALTIME_DB": str(db), "REALTIME_SECRET": secrets.token_urlsafe(32),
           "REALTIME_LOG_LEVEL": "WARNING", "REDIS_URL": REDIS_URL,
           "REALTIME_REDIS_PREFIX": prefix}
    name = f"{workers} worker" + ("s" if workers > 1 else "")
    server = await start_server(name, ["-m", "realtime", "serve", "--workers", str(workers)],
                                env, tmp / f"scale-{workers}.log")
    try:
        await asyncio.sleep(2.0)  # every worker listening before the clients connect
        plans = await plan_ent(server.url, accounts, args.boards, args.followers)
        result = await measure(server, plans, args)
    finally:
        stop_server(server)
        client = aioredis.Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    result.server_problems = server.log_problems()
    return result


def table(results: list[Result]) -> str:
    head = ("| workers | boards × followers | ops/s in | deliveries/s out | p50 ms | p99 ms "
            "| server CPU % (all processes) | server RSS MiB |")
    rows = [head, "|---|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r.system} | {r.boards} × {r.followers} | {r.ops_in:,.0f} | "
                    f"{r.deliveries_out:,.0f} | {r.p50:.1f} | {r.p99:.1f} | "
                    f"{r.server_cpu:.0f} | {r.server_rss:.0f} |")
    one, two = results
    rows.append(f"| ratio 2 / 1 | | | {ratio(two.deliveries_out, one.deliveries_out)} | "
                f"| {ratio(two.p99, one.p99)} | {ratio(two.server_cpu, one.server_cpu)} | |")
    return "\n".join(rows)


async def main_async(args: argparse.Namespace) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as name:
        tmp = Path(name)
        print("Seeding the demo data…", file=sys.stderr, flush=True)
        db, accounts = seed_demo(tmp)
        results = []
        for workers in (1, 2):
            print(f"{workers} worker(s): {args.boards} boards × {args.followers} followers…",
                  file=sys.stderr, flush=True)
            results.append(await run_workers(tmp, db, accounts, workers, args))
        return results


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--boards", type=int, default=8)
    p.add_argument("--followers", type=int, default=30)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--warmup", type=float, default=5)
    p.add_argument("--rate", type=float, default=30, help="ops per second per teacher (30)")
    p.add_argument("--stroke-ops", type=int, default=30)
    p.add_argument("--procs", type=int, default=2, help="client processes (2)")
    p.add_argument("--client", choices=("sio", "raw"), default="raw")
    args = p.parse_args(argv)
    import uvloop

    results = uvloop.run(main_async(args))
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"\n{args.rate:g} ops/s per teacher, {args.seconds:g} s measured after "
          f"{args.warmup:g} s warm-up, {args.procs} client processes ({args.client}), "
          f"{os.cpu_count()} CPUs, load average after the run {' '.join(load)}")
    print(table(results))
    print(notes(results))


if __name__ == "__main__":
    main()

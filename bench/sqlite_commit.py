"""The stream append's commit on a busy event loop: in aiosqlite's thread vs on the loop.

    .venv/bin/python -m bench.sqlite_commit [--rounds 20] [--commits 50] [--busy 0.6]
                                            [--slice-ms 2]

One process, one uvloop, a real SQLite file (WAL, `synchronous=NORMAL`, the project's
`Database`). The loop is kept `--busy` of the time on CPU work in `--slice-ms` slices (as a
server reading ops and writing frames is: a long loop pass is a long slice); meanwhile group
commits of 10 stream rows each are timed as the loop sees them, alternately the old way (the
whole transaction handed to aiosqlite's thread, as `write_batch` did) and the new one
(`write_batch` on the loop's thread), round after round, so both meet the same machine.
Prints p50/p90/p99/max per way and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from realtime.db import Database, _in_transaction
from realtime.streams.sql import _write_batch

ROWS = 10


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def busy_loop(share: float, slice_s: float, stop: asyncio.Event) -> None:
    """CPU work in slices, `share` of the time: a loop as busy as a loaded server's."""
    while not stop.is_set():
        end = time.perf_counter() + slice_s
        while time.perf_counter() < end:
            pass
        await asyncio.sleep(slice_s * (1 - share) / share)


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-commit-") as tmp:
        db = await Database.open(Path(tmp) / "commit.sqlite3")
        payload = b'{"author":1,"teacher":true,"origin":"op","op":{"type":"append"}}'
        seq = 0

        def plan() -> list[tuple[str, list[bytes]]]:
            nonlocal seq
            seq += 1
            return [(f"board:{seq % 24}", [payload] * ROWS)]

        async def threaded() -> None:  # what write_batch did before: one trip to the thread
            async with db._lock:
                await db._conn._execute(_in_transaction, db._conn._conn, _write_batch,
                                        (plan(), time.time(), 10_000))

        async def inline() -> None:
            await db.write_batch(_write_batch, plan(), time.time(), 10_000)

        stop = asyncio.Event()
        loaders = [asyncio.create_task(busy_loop(args.busy, args.slice_ms / 1000, stop))]
        times: dict[str, list[float]] = {"aiosqlite thread": [], "on the loop": []}
        try:
            for _ in range(args.rounds):
                for name, way in (("aiosqlite thread", threaded), ("on the loop", inline)):
                    for _ in range(args.commits):
                        t = time.perf_counter()
                        await way()
                        times[name].append((time.perf_counter() - t) * 1000)
                        await asyncio.sleep(0.002)
        finally:
            stop.set()
            await asyncio.gather(*loaders)
            await db.close()
    print(f"\n{args.rounds} rounds × {args.commits} commits of {ROWS} rows per way, loop busy "
          f"{args.busy:.0%} in {args.slice_ms:g} ms slices")
    print("| way              | p50 ms | p90 ms | p99 ms | max ms |")
    print("|------------------|--------|--------|--------|--------|")
    for name, values in times.items():
        print(f"| {name:<16} | {percentile(values, .5):6.2f} | {percentile(values, .9):6.2f} "
              f"| {percentile(values, .99):6.2f} | {max(values):6.2f} |")
    old, new = times["aiosqlite thread"], times["on the loop"]
    print("| ratio thread/loop| " + " | ".join(
        f"{percentile(old, q) / percentile(new, q):5.1f}×" for q in (.5, .9, .99)) +
        f" | {max(old) / max(new):5.1f}× |")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sqlite_commit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--commits", type=int, default=50)
    p.add_argument("--busy", type=float, default=0.6, help="share of the loop kept busy (0.6)")
    p.add_argument("--slice-ms", type=float, default=2, help="length of one busy slice (2)")
    args = p.parse_args()
    if not 0 < args.busy < 1:
        p.error("--busy must be between 0 and 1")
    import uvloop

    uvloop.run(main_async(args))


if __name__ == "__main__":
    main()

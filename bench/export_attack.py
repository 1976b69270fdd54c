"""A pupil's export attack (issue #13 item 5): `/healthz` latency while exports run in
parallel, before (rendering on the event loop) and after (worker processes, cache).

    .venv/bin/python -m bench.export_attack [--boards 4] [--strokes 300] [--rounds 4]

One run starts the ENT server (`python -m realtime serve`, demo data) three times, each in
its own process, and drives it with the same clients:

- `on the loop (before)`: `REALTIME_EXPORT_WORKERS=0`, the code path before the fix (SVG
  rendered on the event loop, PDF in a thread that holds the GIL, no limit per user);
- `worker processes (after)`: the default, two processes render; one user waits for at
  most two renders at a time, the pupil's other exports are refused (`refused`);
- `after, board unchanged`: the same, but the boards do not change between rounds, so
  every export after the first comes from the cache keyed by the board's seq.

A teacher draws `--boards` boards of `--strokes` strokes (80 points each). Then, for
`--rounds` rounds, a pupil asks every board's SVG and PDF at once (2 × boards parallel
exports); between rounds the teacher adds one stroke to each board (except in the last
mode), so that every export is rendered again. Meanwhile a probe asks `/healthz` every
20 ms (open loop: without waiting for the previous answer) and records how long each took;
`slow` counts the probes that took over 100 ms. The per-user export budget is
raised for the run (the bench is one pupil). Printed: the probe's latency (p50, p99, max),
the exports' own time, and the ratio of the probe's p99 to the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from bench.boards import CHEAP_KDF, login, percentile, seed_demo, start_server, stop_server

CHARLEMAGNE = "Collège Charlemagne"


@dataclass
class Result:
    name: str
    probes: list[float] = field(default_factory=list)
    exports: list[float] = field(default_factory=list)
    failures: int = 0


async def draw_boards(url: str, accounts: list[dict[str, Any]], boards: int,
                      strokes: int) -> tuple[str, str, list[int]]:
    teacher = next(a for a in accounts if a["role"] == "teacher" and a["classes"]
                   and a["school"] == CHARLEMAGNE)
    pupil = next(a for a in accounts if a["role"] == "student"
                 and a["classes"] == [teacher["classes"][0]])
    async with aiohttp.ClientSession() as http:
        t_token = await login(http, url, teacher)
        p_token = await login(http, url, pupil)
        auth = {"Authorization": f"Bearer {t_token}"}
        async with http.get(f"{url}/api/classes", headers=auth) as r:
            classes = {c["name"]: c["id"] for c in (await r.json())["classes"]}
        ids = []
        for i in range(boards):
            async with http.post(f"{url}/api/boards", headers=auth, json={
                    "title": f"Tableau {i + 1}",
                    "class_id": classes[teacher["classes"][0]]}) as r:
                ids.append((await r.json())["id"])
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(url, namespaces=["/boards"], transports=["websocket"],
                      auth={"token": t_token}, wait_timeout=10)
    try:
        for board in ids:
            await sio.call("join", {"board_id": board}, namespace="/boards")
            for i in range(strokes):
                await add_stroke(sio, board, f"s{i}", i)
    finally:
        await sio.disconnect()
    return t_token, p_token, ids


async def add_stroke(sio: socketio.AsyncClient, board: int, item_id: str, i: int) -> None:
    pts = [[(i * 7 + j * 13) % 1900, (i * 11 + j * 7) % 1000] for j in range(80)]
    op = {"type": "add", "item": {"id": item_id, "kind": "stroke", "page_id": "p1",
                                  "points": pts, "style": {"color": "#1d4ed8", "width": 4}}}
    while True:
        ack = await sio.call("op", {"board_id": board, "op": op}, namespace="/boards")
        if ack.get("ok"):
            return
        if ack["error"]["code"] != "rate_limited":
            raise RuntimeError(ack)
        await asyncio.sleep(0.2)


async def attack(url: str, t_token: str, p_token: str, boards: list[int], rounds: int,
                 change: bool, result: Result) -> None:
    stop = asyncio.Event()

    async def one(http: aiohttp.ClientSession) -> None:
        start = time.perf_counter()
        async with http.get(f"{url}/healthz") as r:
            await r.read()
        result.probes.append(time.perf_counter() - start)

    async def probe() -> None:
        """Open loop: one probe every 20 ms whether the last one answered or not, so a
        stalled loop shows as many slow probes, not as one."""
        sent: list[asyncio.Task[None]] = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            while not stop.is_set():
                sent.append(asyncio.create_task(one(http)))
                await asyncio.sleep(0.02)
            await asyncio.gather(*sent)

    async def export(http: aiohttp.ClientSession, board: int, fmt: str) -> None:
        start = time.perf_counter()
        async with http.get(f"{url}/api/boards/{board}/export.{fmt}",
                            headers={"Authorization": f"Bearer {p_token}"}) as r:
            await r.read()
            if r.status != 200:
                result.failures += 1
        result.exports.append(time.perf_counter() - start)

    teacher = socketio.AsyncClient(reconnection=False)
    await teacher.connect(url, namespaces=["/boards"], transports=["websocket"],
                          auth={"token": t_token}, wait_timeout=10)
    for board in boards:
        await teacher.call("join", {"board_id": board}, namespace="/boards")
    prober = asyncio.create_task(probe())
    try:
        async with aiohttp.ClientSession() as http:
            for n in range(rounds):
                await asyncio.gather(*(export(http, b, fmt) for b in boards
                                       for fmt in ("svg", "pdf")))
                if change:
                    for board in boards:
                        await add_stroke(teacher, board, f"extra{n}", n)
    finally:
        stop.set()
        await prober
        await teacher.disconnect()


async def run(name: str, tmp: Path, db: Path, accounts: list[dict[str, Any]],
              args: argparse.Namespace, workers: int, change: bool) -> Result:
    env = {**CHEAP_KDF, "REALTIME_DB": str(db), "REALTIME_SECRET": secrets.token_urlsafe(32),
           "REALTIME_LOG_LEVEL": "WARNING", "REALTIME_EXPORT_WORKERS": str(workers),
           "REALTIME_EXPORTS_PER_MIN": "10000"}
    slug = name.split()[0]
    server = await start_server(name, ["-m", "realtime", "serve"], env, tmp / f"{slug}.log")
    result = Result(name)
    try:
        t_token, p_token, boards = await draw_boards(server.url, accounts, args.boards,
                                                     args.strokes)
        await attack(server.url, t_token, p_token, boards, args.rounds, change, result)
    finally:
        stop_server(server)
    return result


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}" if seconds >= 0.01 else f"{seconds * 1000:.1f}"


def table(results: list[Result]) -> str:
    base = percentile(sorted(results[0].probes), 0.99)
    lines = ["| server | /healthz probes | p50 ms | p99 ms | max ms | slow | p99 vs before "
             "| exports | export p50 ms | export max ms | refused |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        p, e = sorted(r.probes), sorted(r.exports)
        p99 = percentile(p, 0.99)
        lines.append(f"| {r.name} | {len(p)} | {ms(percentile(p, 0.5))} | {ms(p99)} "
                     f"| {ms(p[-1])} | {sum(x > 0.1 for x in p)} | {p99 / base:.2f}× "
                     f"| {len(e)} "
                     f"| {ms(percentile(e, 0.5))} | {ms(e[-1])} | {r.failures} |")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="bench-export-") as d:
        tmp = Path(d)
        db, accounts = seed_demo(tmp)
        results = []
        for name, workers, change in (("on the loop (before)", 0, True),
                                      ("worker processes (after)", 2, True),
                                      ("after, board unchanged (cache)", 2, False)):
            copy = tmp / f"{workers}-{change}.sqlite3"
            copy.write_bytes(db.read_bytes())
            results.append(await run(name, tmp, copy, accounts, args, workers, change))
        return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boards", type=int, default=4)
    parser.add_argument("--strokes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    results = asyncio.run(main_async(args))
    print(f"\n{args.boards} boards × {args.strokes} strokes (80 points); {args.rounds} rounds "
          f"of {2 * args.boards} parallel exports by one pupil\n")
    print(table(results))


if __name__ == "__main__":
    main()

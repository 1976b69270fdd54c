"""Live boards per core: the single SQLite process against `serve --workers W` with Redis.

    .venv/bin/python -m bench.scale [--boards 12] [--workers 1,2] [--rounds 2] [--seconds 10]
    .venv/bin/python -m bench.scale --database-url postgresql://… [--nodes 1,2] [--boards 8]

The clients, boards and measurements are bench/boards.py's (imported, not copied): N boards
of real teachers and their classes, followers spread over client processes, latency =
follower's receipt − teacher's send. In one run, at the same load, one after the other:

- `SQLite, 1 process`: `python -m realtime serve`, no REDIS_URL (the baseline);
- `Redis, W worker(s)`: `python -m realtime serve --workers W` with REDIS_URL (the shared
  local Redis, under a prefix of the run's own, deleted afterwards), one port,
  SO_REUSEPORT; each board's connections are gathered on its home worker
  (realtime/placement.py; the clients name their board in the URL, as the web client does);
- with `--spread`, also `Redis, W workers, spread` (`REALTIME_PLACE_BOARDS=false`): the
  kernel's placement alone, a board's followers on every worker, as before issue 16;
- with `--database-url postgresql://…` (or `DATABASE_URL`), for each N of `--nodes` (1,2):
  `PostgreSQL, N node(s)`, several nodes acting as one ENT (issue 14): N separate
  `python -m realtime serve --port P` processes (one process each: no `--workers`), each with
  a data folder of its own, all with the same `DATABASE_URL` (a fresh database of the
  bench's own on that server, created and seeded with the demo once per run, dropped at the
  end, also on failure: bench/boards.py's `PgBench`), the same `REDIS_URL` (a prefix of the
  run's own, deleted afterwards) and the same `REALTIME_SECRET`. A board's teacher connects
  to the first node, its followers to every node in turn, as a load balancer spreads users:
  with N ≥ 2 a board's ops cross nodes through its stream. The server CPU of such a system is
  the sum of every node's process tree and of the PostgreSQL backends connected to the
  bench's database (PostgreSQL's background processes not counted); its RSS is the nodes'
  sum. With `--database-url` the Redis worker systems run only if `--workers` is given.

What the issue asks is capacity per core. On a machine with cores to spare for the clients,
run a ladder of sizes (`--boards 20,40,60`) and read the capacity block (the most
deliveries/s at p99 ≤ `--p99-target`). On a 2-core machine the clients take a core, so the
comparison that means something is **CPU per delivery at equal load**: the server's CPU
(utime + stime of the whole process tree, `/proc/<pid>/stat`) over the deliveries it made,
and its inverse, deliveries per core-second — what one core would carry at that cost. Its
ratios answer the issue's two goals directly: Redis mode per core ÷ the single process's
(goal ≥ 0.9), and W workers per core ÷ one worker's (goal ≥ 0.9: W workers carry ≥ 0.9 × W ×
one worker). `--rounds` repeats the whole sequence, order rotated each round, and the ratios
are the medians of the per-round ratios, so that a neighbour's burst on a shared machine
weighs on one round of one system, not on the verdict. With `--database-url`, the same
per-core ratios for issue 14: PostgreSQL 1 node ÷ the single SQLite process (what
PostgreSQL and Redis cost per delivery), and N nodes ÷ 1 node (goal ≥ 0.9, as for workers).
Redis's own CPU is counted in none of the systems' server CPU (issue 16 gives Redis a core
of its own); where the redis-server runs on this machine, its CPU in the same window is
shown beside it (`+ Redis %`; the bench assumes nothing else uses that Redis meanwhile).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import secrets
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.boards import (
    CHEAP_KDF,
    PgBench,
    Result,
    Server,
    capacity,
    database_url_problem,
    measure,
    notes,
    parse_cpus,
    plan_ent,
    seed_demo,
    seed_demo_pg,
    start_server,
    stop_server,
    tree_pids,
)

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
SQLITE = "SQLite, 1 process"
POSTGRESQL = "PostgreSQL"


def system_name(workers: int, label: str = "", spread: bool = False) -> str:
    name = SQLITE if workers == 0 else f"Redis, {workers} worker" + ("s" if workers > 1 else "")
    if spread:
        name += ", spread"
    return f"{name} ({label})" if label else name


def nodes_name(nodes: int) -> str:
    """`PostgreSQL, N node(s)`: N one-process nodes of one ENT on PostgreSQL and Redis."""
    return f"{POSTGRESQL}, {nodes} node" + ("s" if nodes > 1 else "")


def is_postgresql(r: Result) -> bool:
    return r.system.startswith(f"{POSTGRESQL},")


@dataclass(frozen=True)
class System:
    """One system of the run: the single SQLite process (workers 0, nodes 0), `serve
    --workers W` with Redis (`spread`: without placement; `tree`: from another checkout), or
    N nodes on PostgreSQL (nodes N ≥ 1)."""
    workers: int = 0
    spread: bool = False
    tree: Path | None = None
    nodes: int = 0

    def name(self, label: str = "") -> str:
        if self.nodes:
            return nodes_name(self.nodes)
        return system_name(self.workers, label if self.tree else "", self.spread)


async def delete_prefix(prefix: str) -> None:
    """The run's Redis keys, deleted."""
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def local_redis_pid() -> int | None:
    """The pid of the redis-server at REDIS_URL when it runs on this machine (its CPU is
    then measured with the system's: Redis mode's appends and fan-out happen there), else
    None."""
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        pid = int((await client.info("server"))["process_id"])
    except (aioredis.RedisError, KeyError, ValueError, OSError):
        return None
    finally:
        await client.aclose()
    return pid if is_redis_process(pid) else None


def is_redis_process(pid: int) -> bool:
    """Whether `pid` is a redis-server on this machine (/proc)."""
    try:
        return "redis" in Path(f"/proc/{pid}/comm").read_text()
    except OSError:
        return False


async def run_system(tmp: Path, db: Path, accounts: list[dict[str, Any]], workers: int,
                     boards: int, args: argparse.Namespace, tree: Path | None = None,
                     spread: bool = False) -> Result:
    """workers = 0: the single SQLite process; W ≥ 1: `serve --workers W` with Redis
    (`spread`: without gathering a board's connections on its home worker).
    `tree`: run the server from that checkout (`--compare`), not this one."""
    # SQLite, whatever the caller's environment says (DATABASE_URL may be --database-url's
    # default); Redis only for the worker systems.
    env = {**CHEAP_KDF, "REALTIME_DB": str(db), "REALTIME_SECRET": secrets.token_urlsafe(32),
           "REALTIME_LOG_LEVEL": "WARNING", "DATABASE_URL": "", "REDIS_URL": ""}
    prefix = f"bench-scale-{secrets.token_hex(4)}"
    if workers:
        env.update(REDIS_URL=REDIS_URL, REALTIME_REDIS_PREFIX=prefix,
                   REALTIME_PLACE_BOARDS="false" if spread else "true")
        cmd = ["-m", "realtime", "serve", "--workers", str(workers)]
    else:
        cmd = ["-m", "realtime", "serve"]
    name = system_name(workers, args.compare_label if tree else "", spread)
    log = tmp / (f"scale-{workers}-{boards}{'-spread' if spread else ''}"
                 f"{'-compare' if tree else ''}.log")
    cpus = server_cpus(args, workers)
    server = (await start_server(name, cmd, env, log, cpus, tree)
              if tree else await start_server(name, cmd, env, log, cpus))
    try:
        if workers > 1:
            await asyncio.sleep(2.0)  # every worker listening before the clients connect
        if workers:
            server.redis_pid = await local_redis_pid()
        plans = await plan_ent(server.url, accounts, boards, args.followers)
        if args.nice and server.proc is not None:
            renice_tree(server.proc.pid, args.nice)
        result = await measure(server, plans, args)
    finally:
        stop_server(server)
        if workers:
            await delete_prefix(prefix)
    result.server_problems = server.log_problems()
    return result


async def run_nodes(tmp: Path, pg: PgBench, accounts: list[dict[str, Any]], nodes: int,
                    boards: int, args: argparse.Namespace) -> Result:
    """`nodes` one-process nodes of one ENT (`serve --port P` each, as the multi-node tests
    start them: tests/multinode/harness.py) on the bench's PostgreSQL database `pg`, with the
    same Redis (a prefix of this run's own, deleted after) and secret; each node has a data
    folder of its own, as a machine its disk. A board's teacher connects to the first node,
    its followers to every node in turn. Measured: every node's process tree (summed) and
    `pg`'s backends."""
    prefix = f"bench-scale-{secrets.token_hex(4)}"
    env = {**CHEAP_KDF, "DATABASE_URL": pg.url, "REDIS_URL": REDIS_URL,
           "REALTIME_REDIS_PREFIX": prefix, "REALTIME_SECRET": secrets.token_urlsafe(32),
           "REALTIME_LOG_LEVEL": "WARNING", "REALTIME_WORKERS": "1"}
    name = nodes_name(nodes)
    servers: list[Server] = []
    try:
        for i in range(nodes):
            data = tmp / f"node-{i + 1}"
            data.mkdir(exist_ok=True)
            servers.append(await start_server(
                name if i == 0 else f"node {i + 1}", ["-m", "realtime", "serve"],
                {**env, "REALTIME_DB": str(data / "ent.sqlite3")},
                tmp / f"scale-pg-{nodes}-{boards}-node{i + 1}.log", node_cpus(args, i)))
        server = servers[0]
        server.nodes, server.pg = servers[1:], pg
        server.redis_pid = await local_redis_pid()
        plans = await plan_ent(server.url, accounts, boards, args.followers,
                               [s.url for s in servers])
        if args.nice:
            for s in servers:
                assert s.proc is not None
                renice_tree(s.proc.pid, args.nice)
        result = await measure(server, plans, args)
    finally:
        for s in servers:
            stop_server(s)
        await delete_prefix(prefix)
    result.server_problems = servers[0].log_problems()  # every node's
    return result


def server_cpus(args: argparse.Namespace, workers: int) -> set[int] | None:
    """Where a system's server runs: `--server-cpus` for every system, or with
    `--worker-cpus` as many of those CPUs as the system has processes (the first W; the first
    one for the SQLite process and for one worker): W workers on W cores, as the issue
    measures capacity per core."""
    if args.worker_cpus:
        cpus = sorted(parse_cpus(args.worker_cpus) or ())
        return set(cpus[:max(1, workers)])
    return parse_cpus(args.server_cpus)


def node_cpus(args: argparse.Namespace, index: int) -> set[int] | None:
    """Where the node `index` (0: the first) of a PostgreSQL system runs: `--server-cpus` for
    every node, or with `--worker-cpus` the index-th of those CPUs (N nodes on N cores)."""
    if args.worker_cpus:
        cpus = sorted(parse_cpus(args.worker_cpus) or ())
        return {cpus[index % len(cpus)]}
    return parse_cpus(args.server_cpus)


def renice_tree(pid: int, nice: int) -> None:
    """Every thread of a process and its children (Linux's nice is per thread; it counts
    only within an autogroup, see `set_autogroup_nice`)."""
    for p in tree_pids(pid):
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, int(tid), nice)


def set_autogroup_nice(nice: int) -> int | None:
    """With the kernel's autogroups on, nice ranks processes only inside their session's
    group; between groups (other people's shells) the CPU is shared per group. The bench's
    servers and clients are all in this process's group: giving the group priority lets
    them have the CPU when they want it on a machine shared with other work, so that a
    starved server does not coalesce more ops per frame than on a quiet machine (which
    lowers its CPU per delivery and makes rounds incomparable). Returns the previous
    value, or None where there is no autogroup."""
    try:
        with open("/proc/self/autogroup") as f:
            before = int(f.read().split("nice")[1])
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(nice))
    except (OSError, ValueError, IndexError):
        return None
    return before


def server_cpu(r: Result) -> float:
    """The system's CPU, % of one core: its server processes' (every node's), plus on
    PostgreSQL the backends serving them where they were measured (PostgreSQL on this
    machine; otherwise the nodes' alone, and the output says so). The redis-server is not
    counted here, as issue 16 measures it (Redis on a core of its own); its CPU in the same
    window is shown beside it (`of which` would be wrong: "Redis %" is in addition)."""
    return r.server_cpu + (r.db_cpu if math.isfinite(r.db_cpu) else 0.0)


def us_per_delivery(r: Result) -> float:
    """Server CPU (µs) per delivery made: the cost a core pays for each."""
    cpu = server_cpu(r)
    if not r.deliveries_out or not math.isfinite(cpu):
        return math.nan
    return cpu / 100 * 1e6 / r.deliveries_out


def per_core(r: Result) -> float:
    """Deliveries one core-second carries at this run's cost."""
    cost = us_per_delivery(r)
    return 1e6 / cost if cost and math.isfinite(cost) else math.nan


def _f(value: float, fmt: str = ",.0f") -> str:
    return format(value, fmt) if math.isfinite(value) else "lost" if fmt == ".1f" else "n/a"


def table(results: list[Result], rounds: int) -> str:
    """One row per run. With PostgreSQL systems, a column gives the part of their server
    CPU spent in PostgreSQL's backends (already counted in server CPU %)."""
    pg = any(is_postgresql(r) for r in results)
    redis = any(math.isfinite(r.redis_cpu) for r in results)
    head = ("| round | system | boards × followers | ops/s in | deliveries/s out | p50 ms "
            "| p99 ms | server CPU % |" + (" of which PG backends % |" if pg else "")
            + (" + Redis % |" if redis else "")
            + " µs CPU / delivery | deliveries per core-s | server RSS MiB |")
    rows = [head, "|---" * (11 + pg + redis) + "|"]
    per_round = max(1, len(results) // max(1, rounds))
    for i, r in enumerate(results):
        backends = (f" {_f(r.db_cpu)} |" if is_postgresql(r) else " |") if pg else ""
        if redis:
            backends += f" {_f(r.redis_cpu)} |" if math.isfinite(r.redis_cpu) else " |"
        rows.append(f"| {i // per_round + 1} | {r.system} | {r.boards} × {r.followers} | "
                    f"{r.ops_in:,.0f} | {r.deliveries_out:,.0f} | {_f(r.p50, '.1f')} | "
                    f"{_f(r.p99, '.1f')} | {_f(server_cpu(r))} |{backends} "
                    f"{_f(us_per_delivery(r), '.1f')} | {_f(per_core(r))} | "
                    f"{_f(r.server_rss)} |")
    return "\n".join(rows)


def verdict(results: list[Result], worker_counts: list[int], labels: list[str],
            spread: bool = False, node_counts: list[int] | None = None) -> str:
    """Per size, the medians over rounds of the per-round ratios of deliveries per core:
    Redis workers against the single process and one worker; PostgreSQL nodes
    (`node_counts`) 1 against the single process, N against 1."""
    out = ["Per-core ratios (deliveries per core-second; median over rounds, range):"]
    for boards in dict.fromkeys(r.boards for r in results):
        rows = [r for r in results if r.boards == boards]
        by_system: dict[str, list[Result]] = {}
        for r in rows:
            by_system.setdefault(r.system, []).append(r)

        def line(label: str, num: list[Result], den: list[Result], goal: str,
                 boards: int = boards) -> None:
            pairs = [per_core(a) / per_core(b) for a, b in zip(num, den, strict=False)
                     if math.isfinite(per_core(a)) and math.isfinite(per_core(b))]
            if pairs:
                out.append(f"- {boards} boards, {label}: {statistics.median(pairs):.2f}× "
                           f"(rounds {', '.join(f'{p:.2f}' for p in pairs)}; goal {goal})")

        for label in labels:
            base = by_system.get(system_name(0, label), [])
            one = by_system.get(system_name(1, label), [])
            for w in worker_counts:
                mine = by_system.get(system_name(w, label), [])
                if base:
                    line(f"{system_name(w, label)} / {system_name(0, label)}", mine, base,
                         "≥ 0.90× for 1 worker")
                if w > 1 and one:
                    line(f"{system_name(w, label)} / 1 worker", mine, one,
                         f"≥ 0.90×: {w} workers carry ≥ 0.9 × {w} × one worker")
                spreads = by_system.get(system_name(w, label, True), []) if spread else []
                if w > 1 and one and spreads:
                    line(f"{system_name(w, label, True)} / 1 worker", spreads, one,
                         "the same without placement")
                if w > 1 and mine and spreads:
                    line(f"{system_name(w, label)} / {system_name(w, label, True)}", mine,
                         spreads, "> 1: placement pays")
        if len(labels) > 1:
            for w in [0, *worker_counts]:
                now, then = by_system.get(system_name(w), []), by_system.get(
                    system_name(w, labels[1]), [])
                if now and then:
                    line(f"{system_name(w)}, this code / {labels[1]}", now, then,
                         "> 1 is better")
        one_node = by_system.get(nodes_name(1), [])
        for n in node_counts or []:
            mine = by_system.get(nodes_name(n), [])
            base = by_system.get(system_name(0), [])
            if n == 1 and base:
                line(f"{nodes_name(1)} / {SQLITE}", mine, base,
                     "none set: what PostgreSQL and Redis cost per delivery")
            if n > 1 and one_node:
                line(f"{nodes_name(n)} / 1 node", mine, one_node,
                     f"≥ 0.90×: {n} nodes carry ≥ 0.9 × {n} × one node")
    out += per_process_load(results, worker_counts, labels)
    out += per_process_load(results, node_counts or [], [""], nodes_name)
    return "\n".join(out)


def per_process_load(results: list[Result], worker_counts: list[int], labels: list[str],
                     name: Callable[[int], str] | None = None) -> list[str]:
    """W workers at W × N boards against one worker at N boards (both sizes in the ladder):
    the same load per process. CPU per delivery falls as a process's load rises (more
    events per wake-up, more appends per script call), so at equal boards W workers each
    carry 1/W of the load and look dearer than they are at capacity, where each is full;
    this ratio compares them at equal load per process instead. `name`: how a count's
    system is named (`nodes_name`: the same for N PostgreSQL nodes against one)."""
    out = []
    sizes = list(dict.fromkeys(r.boards for r in results))
    for label in labels:
        def named(count: int, label: str = label) -> str:
            return name(count) if name else system_name(count, label)

        one_name = "1 node" if name else "1 worker"
        for w in worker_counts:
            for boards in sizes:
                if w < 2 or boards % w or boards // w not in sizes:
                    continue
                mine = [r for r in results if r.boards == boards and r.system == named(w)]
                one = [r for r in results if r.boards == boards // w and r.system == named(1)]
                pairs = [per_core(a) / per_core(b) for a, b in zip(mine, one, strict=False)
                         if math.isfinite(per_core(a)) and math.isfinite(per_core(b))]
                if pairs:
                    out.append(
                        f"- equal load per process, {named(w)} at {boards} "
                        f"boards / {one_name} at {boards // w}: {statistics.median(pairs):.2f}× "
                        f"(rounds {', '.join(f'{p:.2f}' for p in pairs)}; goal ≥ 0.90×)")
    return out


def systems_of(args: argparse.Namespace) -> list[System]:
    """The systems of one round, in their first round's order."""
    counts = ([0] if args.sqlite else []) + args.worker_counts
    plain = [System(w) for w in counts]
    if args.spread:
        plain += [System(w, spread=True) for w in args.worker_counts if w > 1]
    systems = list(plain)
    if args.compare:
        systems += [System(s.workers, s.spread, args.compare) for s in plain]
    return systems + [System(nodes=n) for n in args.node_counts]


async def main_async(args: argparse.Namespace) -> list[Result]:
    systems = systems_of(args)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as name:
        tmp = Path(name)
        db, accounts = tmp / "ent.sqlite3", []
        if any(not s.nodes for s in systems):
            print("Seeding the demo data…", file=sys.stderr, flush=True)
            db, accounts = seed_demo(tmp)
        pg = PgBench(args.database_url, "bench_scale") if args.node_counts else None
        try:
            pg_accounts: list[dict[str, Any]] = []
            if pg is not None:
                print(f"Seeding the demo data into PostgreSQL ({pg.name})…", file=sys.stderr,
                      flush=True)
                await pg.create()
                pg_accounts = seed_demo_pg(tmp, pg)
            results = []
            for rnd in range(args.rounds):
                order = systems[rnd % len(systems):] + systems[:rnd % len(systems)]
                for boards in args.sizes:
                    for system in order:
                        print(f"round {rnd + 1}: {system.name(args.compare_label)}, {boards} "
                              f"boards × {args.followers} followers…", file=sys.stderr,
                              flush=True)
                        if system.nodes:
                            assert pg is not None
                            results.append(await run_nodes(tmp, pg, pg_accounts, system.nodes,
                                                           boards, args))
                        else:
                            results.append(await run_system(
                                tmp, db, accounts, system.workers, boards, args, system.tree,
                                system.spread))
        finally:
            if pg is not None:
                await pg.drop()
        return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--boards", default="12", help="active boards; a comma list runs a ladder")
    p.add_argument("--followers", type=int, default=30)
    p.add_argument("--workers",
                   help="Redis-mode worker counts (1,2; with --database-url none unless given)")
    p.add_argument("--no-sqlite", dest="sqlite", action="store_false",
                   help="leave out the single SQLite process (the baseline)")
    p.add_argument("--spread", action="store_true",
                   help="also run every W > 1 without placement (REALTIME_PLACE_BOARDS=false)")
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or None,
                   help="also run N nodes on PostgreSQL for each N of --nodes: a fresh "
                        "database of the bench's own on the server this postgresql:// URL "
                        "names, seeded with the demo once, dropped at the end "
                        "(default: $DATABASE_URL)")
    p.add_argument("--nodes",
                   help="with --database-url: node counts, each node one `serve` process "
                        "(1,2)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--compare", type=Path,
                   help="also run every system from this checkout (e.g. `git archive "
                        "<commit> | tar -x -C DIR`), in the same rounds: before/after in one run")
    p.add_argument("--compare-label", default="base",
                   help="how the --compare rows are named (base)")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--warmup", type=float, default=4)
    p.add_argument("--rate", type=float, default=30, help="ops per second per teacher (30)")
    p.add_argument("--stroke-ops", type=int, default=30)
    p.add_argument("--procs", type=int, default=2, help="client processes (2)")
    p.add_argument("--client", choices=("lean", "raw", "sio"), default="lean")
    p.add_argument("--p99-target", type=float, default=50)
    p.add_argument("--server-cpus", help="pin the servers to these CPUs (taskset -c syntax)")
    p.add_argument("--worker-cpus",
                   help="pin each system to the first W of these CPUs, W its processes "
                        "(1 for the SQLite process): W workers on W cores")
    p.add_argument("--client-cpus", help="pin the client processes to these CPUs")
    p.add_argument("--client-nice", type=int, default=0,
                   help="the client processes' nice value (negative needs root)")
    p.add_argument("--nice", type=int, default=0,
                   help="run the bench's session (servers and clients) at this autogroup "
                        "nice, and every server thread at this nice (negative needs root): "
                        "on a shared machine, so that neighbours do not starve the server "
                        "into coalescing more ops per frame than it would")
    args = p.parse_args(argv)
    problem = database_url_problem(args.database_url)
    if problem:
        p.error(problem)
    if args.nodes is not None and not args.database_url:
        p.error("--nodes needs --database-url (or DATABASE_URL): the nodes share PostgreSQL")
    if args.database_url and args.compare:
        p.error("--compare runs the SQLite and Redis systems only: not with --database-url")
    try:
        args.sizes = counts(args.boards)
        args.worker_counts = counts(args.workers if args.workers is not None
                                    else "" if args.database_url else "1,2")
        args.node_counts = counts(args.nodes if args.nodes is not None else "1,2"
                                  ) if args.database_url else []
    except ValueError:
        p.error("--boards, --workers and --nodes: comma lists of whole numbers")
    if (not args.sizes or min(args.sizes) < 1 or min(args.worker_counts, default=1) < 1
            or min(args.node_counts, default=1) < 1):
        p.error("boards, workers and nodes must be positive")
    if args.database_url and not args.node_counts:
        p.error("--nodes: at least one node count")
    if not (args.sqlite or args.worker_counts or args.node_counts):
        p.error("nothing to run: --no-sqlite without workers or nodes")
    if args.server_cpus and args.worker_cpus:
        p.error("--server-cpus or --worker-cpus, not both")
    if args.worker_cpus and len(parse_cpus(args.worker_cpus) or ()) < max(
            args.worker_counts + args.node_counts, default=1):
        p.error("--worker-cpus needs a CPU for each worker (or node) of the largest count")
    return args


def counts(text: str) -> list[int]:
    """`1,2` → [1, 2] (blanks left out)."""
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import uvloop

    before = set_autogroup_nice(args.nice) if args.nice else None
    try:
        results = uvloop.run(main_async(args))
    finally:
        if before is not None:
            set_autogroup_nice(before)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"\n{args.rate:g} ops/s per teacher, {args.seconds:g} s measured after "
          f"{args.warmup:g} s warm-up, {args.procs} client processes ({args.client}), "
          f"{os.cpu_count()} CPUs, load average after the run {' '.join(load)}"
          + (f"; servers on CPUs {args.server_cpus}" if args.server_cpus else "")
          + (f"; W workers on the first W of CPUs {args.worker_cpus}" if args.worker_cpus
             else "")
          + (f", clients on CPUs {args.client_cpus}" if args.client_cpus else "")
          + (f"; PostgreSQL nodes on {args.database_url.rsplit('@', 1)[-1]}"
             if args.node_counts else "")
          + (f"; bench at nice {args.nice}" if args.nice else "")
          + (f", clients at nice {args.client_nice}" if args.client_nice else ""))
    print(table(results, args.rounds))
    if any(is_postgresql(r) and not math.isfinite(r.db_cpu) for r in results):
        print("PostgreSQL's backends could not be measured (not on this machine): the "
              "PostgreSQL rows' server CPU is their nodes' alone")
    print(notes(results))
    print(verdict(results, args.worker_counts,
                  ["", args.compare_label] if args.compare else [""], args.spread,
                  args.node_counts))
    if len(args.sizes) > 1:
        print(capacity(results, args.p99_target))


if __name__ == "__main__":
    main()

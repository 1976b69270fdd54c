"""Messaging under load: U connected users in C group conversations, messages at a steady rate.

    .venv/bin/python -m bench.chat [--users 5000] [--conversations 200] [--rate 0.5]
                                   [--seconds 15] [--procs 2]

The same run measures two servers, one after the other, each in its own process:

- the ENT server (`python -m realtime serve`) on the demo data plus U bench accounts of one
  school, with sessions minted in the file and C groups made through the chat store; messages
  go through `/chat` `send` (policy, validation, a SQLite transaction, one emit per member);
- a bare python-socketio fan-out (`bench/bare_chat.py`): same transport, same events, same
  delivery shape (one emit per member's room), nothing else.

Every conversation gets `--rate` messages per second, sent by its members in turn (so no
connection exceeds the server's per-connection budget). The send time (wall clock) rides in
the text; every other member's device computes latency = receipt − send on the machine's one
clock. Clients are raw Engine.IO/Socket.IO websockets spread over `--procs` processes, each
process holding whole conversations. Helpers (server processes, CPU and memory readings)
come from bench/boards.py.

`--database-url postgresql://…` (or `DATABASE_URL`) also runs the ENT server on PostgreSQL
after its SQLite run, on a fresh database of the bench's own seeded the same way (dropped
after), and prints the PostgreSQL / SQLite ratio at that equal load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

from bench.boards import (
    CHEAP_KDF,
    PgBench,
    backend_cpu_delta,
    machine_cpu,
    percentile,
    proc_cpu_s,
    proc_rss_mib,
    seed_demo,
    seed_demo_pg,
    start_server,
    stop_server,
)

NS = "/chat"
GROUP = 25


# --- the ENT server's data ------------------------------------------------------------------

async def prepare_ent(db_path: Path | str, secret: str, users: int, conversations: int
                      ) -> tuple[list[str], dict[int, list[int]]]:
    """Bench accounts (teachers of the first school), their sessions and tokens, the groups."""
    from realtime.chat import store as chat_store
    from realtime.db import Database
    from realtime.identity import store as identity_store
    from realtime.identity.model import Session
    from realtime.identity.tokens import TokenSigner

    db = await Database.open(db_path)
    signer = TokenSigner(secret, 24 * 3600)
    now = time.time()
    school = (await db.fetchone("SELECT id FROM schools ORDER BY id LIMIT 1"))["id"]  # type: ignore[index]
    tokens: list[str] = []
    ids: list[int] = []
    async with db.transaction() as conn:
        for i in range(users):
            cur = await conn.execute(
                "INSERT INTO users (login, role, name, school_id, code_hash) VALUES"
                " (?, 'teacher', ?, ?, 'bench') RETURNING id",
                (f"bench.{i}", f"Banc {i}", school))
            uid = int((await cur.fetchone())[0])  # type: ignore[index]
            session = Session(id=secrets.token_urlsafe(24), user_id=uid, created_at=now,
                              expires_at=now + 24 * 3600)
            await identity_store.insert_session(conn, session)
            ids.append(uid)
            tokens.append(signer.sign(session.id))
        groups: dict[int, list[int]] = {}
        for c in range(conversations):
            members = [ids[(c * GROUP + k) % users] for k in range(GROUP)]
            conv = await chat_store.create(conn, school_id=school, kind="group",
                                           title=f"Banc {c}", creator_id=members[0],
                                           members=members, now=now)
            groups[conv] = members
    await db.close()
    return tokens, groups


# --- the clients ------------------------------------------------------------------------------

class RawChat:
    """One device speaking Engine.IO 4 / Socket.IO 5 over an aiohttp websocket (the same
    frames as python-socketio's client, at a fraction of its CPU per event)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, on_event: Any) -> None:
        self.ws = ws
        self.on_event = on_event
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.next_ack = 0
        self.task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, http: aiohttp.ClientSession, url: str, token: str, on_event: Any
                      ) -> RawChat:
        ws = await http.ws_connect(url.replace("http", "ws", 1)
                                   + "/socket.io/?EIO=4&transport=websocket")
        self = cls(ws, on_event)
        if not (await ws.receive_str(timeout=60)).startswith("0"):
            raise RuntimeError("unexpected Engine.IO open")
        await ws.send_str(f"40{NS},{json.dumps({'token': token})}")
        while True:  # the namespace connect, then the welcome
            data = await ws.receive_str(timeout=60)
            if data.startswith(f"44{NS},"):
                raise RuntimeError(f"refused: {data[:200]}")
            if data.startswith(f'42{NS},["welcome"'):
                break
            if data == "2":
                await ws.send_str("3")
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        event, ack = f"42{NS},", f"43{NS},"
        with contextlib.suppress(Exception):
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = msg.data
                if data.startswith(event):
                    name, payload = json.loads(data[len(event):])
                    if name == "event":
                        self.on_event(payload)
                elif data.startswith(ack):
                    rest = data[len(ack):]
                    n = 0
                    while rest[n].isdigit():
                        n += 1
                    fut = self.acks.pop(int(rest[:n]), None)
                    if fut is not None and not fut.done():
                        fut.set_result(json.loads(rest[n:])[0])
                elif data == "2":
                    await self.ws.send_str("3")

    async def send(self, conv: int, body: str) -> Any:
        self.next_ack += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks[self.next_ack] = fut
        payload = json.dumps(["send", {"conversation_id": conv, "body": body}])
        await self.ws.send_str(f"42{NS},{self.next_ack}{payload}")
        return await asyncio.wait_for(fut, 30)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self.task is not None:
            self.task.cancel()


def worker_main(conn: Connection, spec: dict[str, Any]) -> None:
    import uvloop

    uvloop.run(_worker(conn, spec))


async def _worker(conn: Connection, spec: dict[str, Any]) -> None:
    """Whole conversations: connect every member, then send and time until told to stop."""
    latencies: list[float] = []
    counts = {"delivered": 0, "expected": 0, "errors": 0, "late_sends": 0}
    window: tuple[float, float] = (float("inf"), 0.0)
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    sem = asyncio.Semaphore(50)
    devices: dict[int, RawChat] = {}

    def on_event(uid: int) -> Any:
        def handle(ev: dict[str, Any]) -> None:
            text = ev.get("message", {}).get("body", "")
            if not text.startswith("t="):
                return
            sender, sent = text[2:].split("|")
            if int(sender) == uid:
                return
            t = float(sent)
            if window[0] <= t < window[1]:
                counts["delivered"] += 1
                latencies.append(time.time() - t)
        return handle

    async def connect(uid: int, token: str) -> None:
        async with sem:
            devices[uid] = await RawChat.connect(http, spec["url"], token, on_event(uid))

    await asyncio.gather(*[connect(int(u), t) for u, t in spec["users"].items()])
    conn.send("ready")
    t0, warmup, seconds = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    window = (t0 + warmup, t0 + warmup + seconds)
    end = window[1]
    rate = spec["rate"]

    async def conversation(conv: int, members: list[int], phase: float) -> None:
        k = 0
        while True:
            at = t0 + phase + k / rate
            if at >= end:
                return
            delay = at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.05:
                counts["late_sends"] += 1
            sender = members[k % len(members)]
            now = time.time()
            if window[0] <= now < window[1]:
                counts["expected"] += len(members) - 1
            try:
                answer = await devices[sender].send(conv, f"t={sender}|{now:.6f}")
                if not answer.get("ok"):
                    counts["errors"] += 1
            except Exception:
                counts["errors"] += 1
            k += 1

    convs = spec["conversations"]
    await asyncio.gather(*[conversation(int(c), m, i / len(convs) / rate)
                           for i, (c, m) in enumerate(convs.items())])
    await asyncio.sleep(spec["drain"])
    conn.send({"latencies": latencies, **counts})
    await asyncio.gather(*[d.close() for d in devices.values()])
    await http.close()


# --- one measurement --------------------------------------------------------------------------

@dataclass
class Result:
    system: str
    users: int
    conversations: int
    messages_in: float
    deliveries_out: float
    p50: float
    p99: float
    server_cpu: float
    server_rss: float
    missing: int
    errors: int
    late_sends: int
    machine_busy: float
    db_cpu: float = float("nan")  # % of one core: PostgreSQL's backends serving the server
    problems: list[str] = field(default_factory=list)


async def measure(name: str, pid: int, url: str, tokens: dict[int, str],
                  groups: dict[int, list[int]], args: argparse.Namespace,
                  pg: PgBench | None = None) -> Result:
    ctx = mp.get_context("spawn")
    conv_ids = sorted(groups)
    workers = []
    for w in range(args.procs):
        mine = {c: groups[c] for c in conv_ids[w::args.procs]}
        users = {u: tokens[u] for m in mine.values() for u in m}
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker_main, args=(child, {
            "url": url, "users": users, "conversations": mine, "rate": args.rate,
            "drain": args.drain}), daemon=True)
        proc.start()
        workers.append((proc, parent))
    loop = asyncio.get_running_loop()
    for _proc, pipe in workers:
        ready = await loop.run_in_executor(None, lambda p=pipe: p.recv() if p.poll(600) else None)
        if ready != "ready":
            raise RuntimeError(f"{name}: clients did not connect in time")
    t0 = time.time() + 1.0
    for _proc, pipe in workers:
        pipe.send((t0, args.warmup, args.seconds))
    await asyncio.sleep(max(0.0, t0 + args.warmup - time.time()))
    cpu0, busy0 = proc_cpu_s(pid), machine_cpu()[0]
    pg0 = await pg.backend_cpu() if pg else {}
    await asyncio.sleep(args.seconds)
    cpu1, busy1, rss = proc_cpu_s(pid), machine_cpu()[0], proc_rss_mib(pid)
    pg1 = await pg.backend_cpu() if pg else {}
    stats = []
    for proc, pipe in workers:
        stats.append(await loop.run_in_executor(
            None, lambda p=pipe: p.recv() if p.poll(args.drain + 120) else None))
        proc.join(30)
    if any(s is None for s in stats):
        raise RuntimeError(f"{name}: a client process did not report")
    lat = sorted(x for s in stats for x in s["latencies"])
    delivered = sum(s["delivered"] for s in stats)
    expected = sum(s["expected"] for s in stats)
    return Result(
        system=name, users=len(tokens), conversations=len(groups),
        messages_in=sum(s["expected"] for s in stats) / (GROUP - 1) / args.seconds,
        deliveries_out=delivered / args.seconds,
        p50=percentile(lat, 0.50) * 1000, p99=percentile(lat, 0.99) * 1000,
        server_cpu=100 * (cpu1 - cpu0) / args.seconds, server_rss=rss,
        missing=max(0, expected - delivered), errors=sum(s["errors"] for s in stats),
        late_sends=sum(s["late_sends"] for s in stats),
        machine_busy=100 * (busy1 - busy0) / args.seconds,
        db_cpu=100 * backend_cpu_delta(pg0, pg1) / args.seconds if pg else float("nan"))


PG_SYSTEM = "ENT server on PostgreSQL"


async def run_ent(tmp: Path, args: argparse.Namespace, pg: PgBench | None = None) -> Result:
    """The ENT server on a SQLite file of its own, or on the fresh PostgreSQL database `pg`."""
    secret = secrets.token_urlsafe(32)
    env = {**CHEAP_KDF, "REALTIME_SECRET": secret, "REALTIME_LOG_LEVEL": "WARNING"}
    target: Path | str
    if pg is None:
        target, _accounts = seed_demo(tmp)
        env |= {"REALTIME_DB": str(target), "DATABASE_URL": ""}
    else:
        seed_demo_pg(tmp, pg)
        target = pg.url
        env |= {"REALTIME_DB": str(tmp / "unused.sqlite3"), "DATABASE_URL": pg.url}
    tokens, groups = await prepare_ent(target, secret, args.users, args.conversations)
    name = PG_SYSTEM if pg else "ENT server"
    server = await start_server(name, ["-m", "realtime", "serve"], env,
                                tmp / f"ent{'-pg' if pg else ''}.log")
    members = {u for m in groups.values() for u in m}
    ids = sorted(members)
    by_id = dict(zip(await _ids(target, args.users), tokens, strict=True))
    try:
        result = await measure(name, server.proc.pid, server.url,
                               {u: by_id[u] for u in ids}, groups, args, pg)
    finally:
        stop_server(server)
    result.problems = server.log_problems()
    return result


async def _ids(db_path: Path | str, n: int) -> list[int]:
    from realtime.db import Database

    db = await Database.open(db_path, migrate=False)
    # Not LIKE: PostgreSQL's login column has a nondeterministic (case-blind) collation.
    rows = await db.fetchall("SELECT id FROM users WHERE substr(login, 1, 6) = ? ORDER BY id",
                             ("bench.",))
    await db.close()
    assert len(rows) == n
    return [r["id"] for r in rows]


async def run_bare(tmp: Path, args: argparse.Namespace) -> Result:
    groups = {c + 1: [(c * GROUP + k) % args.users + 1 for k in range(GROUP)]
              for c in range(args.conversations)}
    plan = tmp / "bare-plan.json"
    plan.write_text(json.dumps(groups))
    server = await start_server("bare python-socketio",
                                ["-m", "bench.bare_chat", "--plan", str(plan)], {},
                                tmp / "bare.log")
    members = {u for m in groups.values() for u in m}
    try:
        result = await measure("bare python-socketio", server.proc.pid, server.url,
                               {u: str(u) for u in members}, groups, args)
    finally:
        stop_server(server)
    result.problems = server.log_problems()
    return result


# --- output -----------------------------------------------------------------------------------

def table(results: list[Result]) -> str:
    cols = ("system", "users", "conversations", "messages/s in", "deliveries/s out",
            "p50 ms", "p99 ms", "missing", "server CPU %", "PG backends CPU %",
            "server RSS MiB")
    rows = [[r.system, f"{r.users:,}", f"{r.conversations:,}", f"{r.messages_in:,.0f}",
             f"{r.deliveries_out:,.0f}", f"{r.p50:,.1f}", f"{r.p99:,.1f}", f"{r.missing:,}",
             f"{r.server_cpu:.0f}", f"{r.db_cpu:.0f}" if r.system == PG_SYSTEM else "",
             f"{r.server_rss:.0f}"] for r in results]
    by = {r.system: r for r in results}
    ent, bare, pg = by.get("ENT server"), by.get("bare python-socketio"), by.get(PG_SYSTEM)
    if ent and bare and bare.deliveries_out:
        rows.append(["ratio ENT / bare", "", "", "",
                     f"{ent.deliveries_out / bare.deliveries_out:.2f}×",
                     f"{ent.p50 / bare.p50:.2f}×" if bare.p50 else "",
                     f"{ent.p99 / bare.p99:.2f}×" if bare.p99 else "", "", "", "", ""])
    if ent and pg:  # at equal load: the same users, conversations and rate
        def r(a: float, b: float) -> str:
            return f"{a / b:.2f}×" if b and a == a else "n/a"

        rows.append(["ratio PostgreSQL / SQLite", "", "", r(pg.messages_in, ent.messages_in),
                     r(pg.deliveries_out, ent.deliveries_out), r(pg.p50, ent.p50),
                     r(pg.p99, ent.p99), "", r(pg.server_cpu, ent.server_cpu),
                     r(pg.server_cpu + pg.db_cpu, ent.server_cpu),
                     r(pg.server_rss, ent.server_rss)])
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = "| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(v.ljust(w) if i == 0 else v.rjust(w)
                              for i, (v, w) in enumerate(zip(r, widths, strict=True))) + " |"
            for r in rows]
    return "\n".join([line, sep, *body])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=5000)
    p.add_argument("--conversations", type=int, default=200)
    p.add_argument("--rate", type=float, default=0.5, help="messages/s per conversation")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--drain", type=float, default=3.0)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or None,
                   help="also run the ENT server on PostgreSQL, right after its SQLite run: "
                        "a fresh database of the bench's own on the server this "
                        "postgresql:// URL names, seeded as the SQLite one, dropped after "
                        "(default: $DATABASE_URL)")
    args = p.parse_args(argv)
    if args.database_url and not args.database_url.startswith(("postgresql://",
                                                               "postgres://")):
        p.error("--database-url: expected postgresql://USER[:PASSWORD]@HOST:PORT/DBNAME")
    if args.users < GROUP or args.conversations < 1 or args.rate <= 0:
        p.error("at least 25 users, one conversation and a positive rate")
    return args


async def main_async(args: argparse.Namespace) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="bench-chat-") as tmp:
        results = [await run_ent(Path(tmp), args)]
        if args.database_url:
            pg = PgBench(args.database_url, "bench_chat")
            await pg.create()
            try:
                results.append(await run_ent(Path(tmp), args, pg))
            finally:
                await pg.drop()
        results.append(await run_bare(Path(tmp), args))
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import uvloop

    results = uvloop.run(main_async(args))
    print(f"\n{args.users:,} users in {args.conversations} conversations of {GROUP},"
          f" {args.rate:g} messages/s each, {args.seconds:g} s measured after {args.warmup:g} s"
          f" warm-up, {args.procs} client processes, {os.cpu_count()} CPUs")
    print(table(results))
    if any(r.system == PG_SYSTEM for r in results):
        print("ratio PostgreSQL / SQLite at equal load: its 'PG backends CPU %' cell is "
              "(server + PG backends) / SQLite server; PostgreSQL's background processes "
              "(WAL writer, checkpointer) are not counted")
    for r in results:
        print(f"{r.system}: {r.errors} send errors, {r.late_sends} late sends, machine busy"
              f" {r.machine_busy:.0f} % of one core, {len(r.problems)} server log problems")
        for line in r.problems[:5]:
            print("   ", line)


if __name__ == "__main__":
    sys.exit(main())

"""A département's morning of roll calls: every class's 08:00 roll taken within 10 minutes.

    .venv/bin/python -m bench.attendance [--schools 50] [--classes 30] [--students 25]
        [--minutes 10] [--compress 10] [--guardians affected|all|N] [--baseline 30]
        [--workers 2] [--redis URL]

The run seeds a fresh SQLite file with `schools × classes × students` pupils (one or two
guardians each), one teacher and one 08:00 course per class, and starts the real server
(`python -m realtime serve`) in its own process. Then:

1. **Baseline** (same run, same server, idle): `--baseline` rolls validated one at a time,
   each with one absent pupil whose guardians are connected; latency from sending
   `validate` to the notice arriving on the guardian's socket.
2. **The morning**: every class's roll (open, « tous présents », one absent and one late
   pupil, validate) at a random moment of a window of `minutes × 60 / compress` seconds
   (10 minutes compressed 10× by default: the load of ten such départements). Guardians are
   connected and following their feed before the window opens: by default (`--guardians
   affected`) every guardian of every absent or late pupil of the morning, i.e. everyone
   who gets a notice; `all` adds every other guardian of the département as idle sockets
   (they receive nothing, but the server holds them); a number N keeps the first N
   guardians of absent and late pupils, and when N is larger than that, adds idle ones up
   to N. The guardians' sockets live in `--workers` client processes
   (`bench/attendance_guardians.py`: raw Engine.IO/Socket.IO websockets, far cheaper than
   python-socketio clients); each socket is a file descriptor in the server, so the
   server's `ulimit -n` bounds N. The latency from `validate` to each notice is measured
   the same way (one monotonic clock for all processes); how long connecting them took and
   the processes' memory are printed too.

It prints marks/s, rolls/s, p50/p99 validation → guardian latency under load and their
ratio to the idle baseline, the server's CPU, and the machine's load (it is shared).
Everything is bounded in time and stops by itself; only loopback is used.

`--database-url postgresql://…` (or `DATABASE_URL`) runs the same morning again on
PostgreSQL after the SQLite one, on a fresh database of the bench's own (dropped after), and
prints the PostgreSQL / SQLite ratio of the latencies and of the CPU (with PostgreSQL's
backends serving the server).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from bench.attendance_guardians import GuardianPool
from bench.boards import (
    CHEAP_KDF,
    PgBench,
    backend_cpu_delta,
    machine_cpu,
    percentile,
    proc_cpu_s,
    start_server,
    stop_server,
)

NS = "/attendance"
CODE = "bench-code-123"
LEVELS = ("6e", "5e", "4e", "3e")


@dataclass
class ClassPlan:
    class_id: int
    slot_id: int
    teacher_login: str
    absent: int  # student ids
    late: int
    guardians: dict[int, list[str]] = field(default_factory=dict)  # student → logins
    others: list[str] = field(default_factory=list)  # guardians of the other pupils


def bench_day() -> dt.date:
    """The latest weekday up to today: rolls of past days may be taken, future ones not."""
    day = dt.date.today()
    while day.isoweekday() > 5:
        day -= dt.timedelta(days=1)
    return day


async def seed(path: Path | str, schools: int, classes: int, students: int, seed_: int = 7
               ) -> list[ClassPlan]:
    from realtime.db import Database
    from realtime.identity.codes import CodeHasher

    rng = random.Random(seed_)
    code_hash = CodeHasher(1, 1024, 1).hash(CODE)
    db = await Database.open(path)
    weekday = bench_day().isoweekday()
    plans: list[ClassPlan] = []
    async with db.transaction() as conn:
        uid = 0

        async def user(role: str, school: int | None) -> tuple[int, str]:
            nonlocal uid
            uid += 1
            login = f"{role}{uid}"
            await conn.execute(
                "INSERT INTO users (id, login, role, name, school_id, code_hash)"
                " VALUES (?, ?, ?, ?, ?, ?)", (uid, login, role, f"{role.title()} {uid}",
                                               school, code_hash))
            return uid, login

        for s in range(1, schools + 1):
            await conn.execute("INSERT INTO schools (id, uai, name, town) VALUES (?, ?, ?, ?)",
                               (s, f"{9000000 + s:07d}X", f"Collège {s}", "Bench"))
            for c in range(classes):
                level = LEVELS[c % 4]
                cur = await conn.execute(
                    "INSERT INTO classes (school_id, name, level) VALUES (?, ?, ?) RETURNING id",
                    (s, f"{level} {chr(65 + c // 4)}{c}", level))
                class_id = (await cur.fetchone())[0]
                tid, tlogin = await user("teacher", s)
                cur = await conn.execute(
                    "INSERT INTO course_slots (school_id, class_id, teacher_id, subject, room,"
                    ' weekday, start, "end") VALUES (?, ?, ?, \'Français\', ?, ?, \'08:00\','
                    " '09:00')"
                    " RETURNING id", (s, class_id, tid, f"Salle {c}", weekday))
                slot_id = (await cur.fetchone())[0]
                kids: list[int] = []
                guardians: dict[int, list[str]] = {}
                for _ in range(students):
                    sid, _login = await user("student", s)
                    await conn.execute("INSERT INTO enrollments VALUES (?, ?)", (sid, class_id))
                    kids.append(sid)
                    guardians[sid] = []
                    for _g in range(1 if rng.random() < 0.2 else 2):
                        gid, glogin = await user("parent", None)
                        await conn.execute("INSERT INTO guardianships (guardian_id, student_id)"
                                           " VALUES (?, ?)", (gid, sid))
                        guardians[sid].append(glogin)
                absent, late = rng.sample(kids, 2)
                plans.append(ClassPlan(class_id, slot_id, tlogin, absent, late,
                                       {absent: guardians[absent], late: guardians[late]},
                                       [g for k, gs in guardians.items()
                                        if k not in (absent, late) for g in gs]))
    await db.close()
    return plans


async def login(http: aiohttp.ClientSession, url: str, name: str) -> str:
    async with http.post(f"{url}/api/login", json={"login": name, "code": CODE}) as r:
        body = await r.json()
        if r.status != 200:
            raise RuntimeError(f"login {name}: {r.status} {body}")
        return body["token"]


class Recorder:
    """Guardians' notices: (student id) → receipt times, on this process's one clock."""

    def __init__(self) -> None:
        self.sent: dict[int, float] = {}
        self.latencies: list[float] = []
        self.expected = 0
        self.done = asyncio.Event()

    def at(self, student_id: int, t: float) -> None:
        """A notice about `student_id` reached a guardian's socket at `t` (perf_counter:
        CLOCK_MONOTONIC, the same clock in every process of the machine)."""
        sent = self.sent.get(student_id)
        if sent is not None:
            self.latencies.append(t - sent)
            if len(self.latencies) >= self.expected:
                self.done.set()


async def connect(url: str, token: str) -> socketio.AsyncClient:
    """A teacher's device (one per roll, as a teacher opens the page for it)."""
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, namespaces=[NS], transports=["websocket"],
                         auth={"token": token}, wait_timeout=10)
    return client


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def bounded(n: int, jobs: list[Any]) -> list[Any]:
    """Run coroutines at most `n` at a time (logins and connections of thousands of
    guardians: all at once would only queue in the server's accept backlog)."""
    gate = asyncio.Semaphore(n)

    async def one(job: Any) -> Any:
        async with gate:
            return await job
    return await asyncio.gather(*(one(j) for j in jobs))


def guardian_count(value: str) -> str | int:
    if value in ("affected", "all"):
        return value
    n = int(value)
    if n < 0:
        raise argparse.ArgumentTypeError("--guardians: affected, all or a number ≥ 0")
    return n


async def take_roll(url: str, token: str, plan: ClassPlan, day: str, recorder: Recorder,
                    stats: dict[str, int]) -> None:
    client = await connect(url, token)
    try:
        async def call(event: str, data: dict[str, Any]) -> dict[str, Any]:
            ack = await client.call(event, data, namespace=NS, timeout=30)
            if not ack["ok"]:
                raise RuntimeError(f"{event}: {ack}")
            return ack
        opened = await call("open_roll", {"slot_id": plan.slot_id, "date": day})
        rid = opened["roll"]["id"]
        ack = await call("all_present", {"roll_id": rid})
        stats["marks"] += ack["changed"]
        ack = await call("mark", {"roll_id": rid, "marks": [
            {"student_id": plan.absent, "state": "absent"},
            {"student_id": plan.late, "state": "late", "minutes": 5}]})
        stats["marks"] += ack["changed"]
        sent = time.perf_counter()
        recorder.sent[plan.absent] = recorder.sent[plan.late] = sent
        await call("validate", {"roll_id": rid})
        stats["rolls"] += 1
    finally:
        await client.disconnect()


async def run(args: argparse.Namespace, pg: PgBench | None = None) -> dict[str, float]:
    """One morning on a fresh SQLite file, or on the fresh PostgreSQL database `pg`; prints
    its table and returns its figures (seconds and % of a core) for the engines' ratio."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-attendance-"))
    db = tmp / "ent.sqlite3"
    t0 = time.perf_counter()
    plans = await seed(pg.url if pg else db, args.schools, args.classes, args.students)
    print(f"seeded {len(plans)} classes, {len(plans) * args.students} pupils in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    env = {**CHEAP_KDF, "REALTIME_DB": str(db), "REALTIME_SECRET": secrets.token_urlsafe(32),
           "REALTIME_LOG_LEVEL": "WARNING", "REALTIME_LOGIN_MAX_FAILURES_IP": "1000000",
           # bench_day() may be the last weekday (a Friday, run on a Sunday).
           "REALTIME_ATTENDANCE_TEACHER_PAST_DAYS": "7",
           "DATABASE_URL": pg.url if pg else ""}
    if args.redis:  # streams and Socket.IO fan-out through Redis, as with several nodes
        env |= {"REDIS_URL": args.redis, "REALTIME_REDIS_PREFIX": f"bench-{secrets.token_hex(4)}"}
    server = await start_server("ENT server", ["-m", "realtime", "serve"], env,
                                tmp / "server.log")
    day = bench_day().isoformat()
    load_before = os.getloadavg()
    try:
        async with aiohttp.ClientSession() as http:
            teacher_tokens = {}
            for p in plans:
                teacher_tokens[p.class_id] = await login(http, server.url, p.teacher_login)
            base_plans = plans[:args.baseline]
            morning = plans[args.baseline:]
            base_logins = [g for p in base_plans for gs in p.guardians.values() for g in gs]
            morning_logins = [g for p in morning for gs in p.guardians.values() for g in gs]
            idle_logins = [g for p in plans for g in p.others]
            if args.guardians == "affected":
                idle_logins = []
            elif isinstance(args.guardians, int):
                idle_logins = idle_logins[:max(0, args.guardians - len(morning_logins))]
                morning_logins = morning_logins[:args.guardians]
            t_login = time.perf_counter()
            tokens = await bounded(16, [login(http, server.url, g) for g in
                                        base_logins + morning_logins + idle_logins])
            t_login = time.perf_counter() - t_login

        recorder = Recorder()
        t_connect = time.perf_counter()
        pool = GuardianPool(server.url, tokens, args.workers, recorder.at)
        await pool.start()
        t_connect = time.perf_counter() - t_connect
        if pool.error_count:
            print(f"{pool.error_count} guardian(s) failed to connect, e.g. {pool.errors[0]}",
                  file=sys.stderr)
        server_rss = rss_mb(server.proc.pid)
        client_rss = sum(rss_mb(pid) for pid in pool.pids())
        print(f"{len(tokens)} guardians: logins {t_login:.1f} s, {pool.connected} connected "
              f"and following their feed in {t_connect:.1f} s ({args.workers} client "
              f"processes); server {server_rss:.0f} MB, guardian processes {client_rss:.0f} MB",
              file=sys.stderr)
        stats = {"marks": 0, "rolls": 0}

        # 1. The idle baseline: one roll at a time.
        for p in base_plans:
            before = len(recorder.latencies)
            recorder.expected = before + sum(len(g) for g in p.guardians.values())
            recorder.done.clear()
            await take_roll(server.url, teacher_tokens[p.class_id], p, day, recorder, stats)
            await asyncio.wait_for(recorder.done.wait(), 10)
        baseline = sorted(recorder.latencies)

        # 2. The morning, compressed.
        recorder.latencies = []
        recorder.sent = {}
        recorder.expected = len(morning_logins)  # one child each: one notice each
        recorder.done.clear()
        stats = {"marks": 0, "rolls": 0}
        window = args.minutes * 60 / args.compress
        rng = random.Random(11)
        starts = sorted(rng.uniform(0, window) for _ in morning)
        cpu0, (busy0, steal0) = proc_cpu_s(server.proc.pid), machine_cpu()
        pg0 = await pg.backend_cpu() if pg else {}
        t_start = time.perf_counter()
        errors: list[str] = []

        async def one(p: ClassPlan, at: float) -> None:
            await asyncio.sleep(max(0.0, t_start + at - time.perf_counter()))
            try:
                await take_roll(server.url, teacher_tokens[p.class_id], p, day, recorder, stats)
            except Exception as exc:  # counted and shown: a failed roll is a result too
                errors.append(repr(exc)[:200])

        await asyncio.wait_for(asyncio.gather(*(one(p, at) for p, at in
                                                zip(morning, starts, strict=True))),
                               window + 300)
        elapsed = time.perf_counter() - t_start
        cpu = proc_cpu_s(server.proc.pid) - cpu0
        busy, steal = machine_cpu()
        db_cpu = backend_cpu_delta(pg0, await pg.backend_cpu()) if pg else float("nan")
        with_timeout = asyncio.wait_for(recorder.done.wait(), 15)
        try:
            await with_timeout
        except TimeoutError:
            pass
        loaded = sorted(recorder.latencies)
        server_rss_end = rss_mb(server.proc.pid)
        await pool.stop()
    finally:
        stop_server(server)
        if args.redis:  # leave nothing behind in a shared Redis
            import redis.asyncio as aioredis

            client = aioredis.Redis.from_url(args.redis)
            keys = [k async for k in client.scan_iter(match=f"{env['REALTIME_REDIS_PREFIX']}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
    problems = server.log_problems()
    load_after = os.getloadavg()

    def ms(v: float) -> str:
        return f"{v * 1000:.1f} ms"

    b50, b99 = percentile(baseline, 0.5), percentile(baseline, 0.99)
    l50, l99 = percentile(loaded, 0.5), percentile(loaded, 0.99)
    print(f"\n{args.schools} collèges × {args.classes} classes × {args.students} élèves, "
          f"{args.minutes} min compressed {args.compress}× into {window:.0f} s, day {day}, "
          f"{'PostgreSQL' if pg else 'SQLite'}, "
          f"{'Redis' if args.redis else 'in-process fan-out'}")
    print(f"| measure | idle baseline | morning | ratio |\n|---|---|---|---|\n"
          f"| rolls | {len(base_plans)} (one at a time) | {stats['rolls']} in {elapsed:.1f} s"
          f" ({stats['rolls'] / elapsed:.1f}/s) | |\n"
          f"| marks | | {stats['marks']} ({stats['marks'] / elapsed:.0f}/s) | |\n"
          f"| guardians connected | {len(base_logins)} | {pool.connected} "
          f"({len(morning_logins)} to notify, {len(idle_logins)} idle), connected in "
          f"{t_connect:.0f} s | |\n"
          f"| guardian notices timed | {len(baseline)} | {len(loaded)} of "
          f"{recorder.expected} | |\n"
          f"| memory (RSS) server / guardian processes | | {server_rss:.0f} → "
          f"{server_rss_end:.0f} MB / {client_rss:.0f} MB | |\n"
          f"| validate → guardian p50 | {ms(b50)} | {ms(l50)} | {l50 / b50:.1f}× |\n"
          f"| validate → guardian p99 | {ms(b99)} | {ms(l99)} | {l99 / b99:.1f}× |\n"
          f"| server CPU | | {cpu / elapsed * 100:.0f} % of a core | |\n"
          + (f"| PG backends CPU | | {db_cpu / elapsed * 100:.0f} % of a core | |\n"
             if pg else "") +
          f"| machine busy (2 cores) | | {(busy - busy0) / elapsed * 50:.0f} %"
          f" (steal {(steal - steal0) / elapsed * 50:.0f} %) | |\n"
          f"| load average before/after | {load_before[0]:.2f} | {load_after[0]:.2f} | |")
    if errors:
        print(f"{len(errors)} roll(s) failed, e.g. {errors[0]}")
    if problems:
        print(f"server log: {len(problems)} warning(s), e.g. {problems[0]}")
    return {"rolls": stats["rolls"] / elapsed, "p50": l50, "p99": l99, "base_p50": b50,
            "base_p99": b99, "cpu": cpu / elapsed * 100,
            "db_cpu": db_cpu / elapsed * 100 if pg else 0.0, "errors": len(errors)}


async def both(args: argparse.Namespace) -> None:
    """SQLite, then (`--database-url`) PostgreSQL at the same load, and their ratio."""
    lite = await run(args)
    if not args.database_url:
        return
    pg = PgBench(args.database_url, "bench_attendance")
    await pg.create()
    try:
        post = await run(args, pg)
    finally:
        await pg.drop()

    def r(key: str, total: bool = False) -> str:
        a = post[key] + (post["db_cpu"] if total else 0.0)
        return f"{a / lite[key]:.2f}×" if lite[key] else "n/a"
    print("\n| PostgreSQL / SQLite, same load | ratio |\n|---|---|\n"
          f"| rolls/s | {r('rolls')} |\n"
          f"| validate → guardian p50 (morning) | {r('p50')} |\n"
          f"| validate → guardian p99 (morning) | {r('p99')} |\n"
          f"| validate → guardian p99 (idle baseline) | {r('base_p99')} |\n"
          f"| server CPU | {r('cpu')} |\n"
          f"| server + PG backends CPU / SQLite server CPU | {r('cpu', total=True)} |\n"
          "(PostgreSQL's background processes, WAL writer and checkpointer, not counted)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schools", type=int, default=50)
    parser.add_argument("--classes", type=int, default=30)
    parser.add_argument("--students", type=int, default=25)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--compress", type=float, default=10)
    parser.add_argument("--guardians", type=guardian_count, default="affected",
                        help="affected (every guardian of an absent or late pupil, default),"
                             " all (every guardian of the département), or a number (beyond"
                             " the affected ones: idle guardians)")
    parser.add_argument("--baseline", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2,
                        help="client processes holding the guardians' sockets")
    parser.add_argument("--redis", metavar="URL", default=None,
                        help="run the server with REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or None,
                        help="after the SQLite run, the same morning on PostgreSQL: a fresh "
                             "database of the bench's own on the server this postgresql:// "
                             "URL names, dropped after; prints the PostgreSQL / SQLite ratio "
                             "(default: $DATABASE_URL)")
    args = parser.parse_args()
    if args.database_url and not args.database_url.startswith(("postgresql://",
                                                               "postgres://")):
        parser.error("--database-url: expected postgresql://USER[:PASSWORD]@HOST:PORT/DBNAME")
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(both(args))


if __name__ == "__main__":
    main()

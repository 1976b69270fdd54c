"""Live boards under load: N boards × F followers, one teacher each drawing at a steady rate.

    .venv/bin/python -m bench.boards [--boards 10] [--followers 30] [--seconds 15] [--rate 30]

The same run measures two servers, one after the other, each in its own process so that its
CPU (/proc/<pid>/stat) and memory (VmRSS) are its own:

- the ENT server (`python -m realtime serve`) on demo data seeded for the run: real teacher
  and pupil accounts, boards made through `POST /api/boards`, ops through `/boards`;
- a bare python-socketio room broadcast (`bench/bare_server.py`): same transport, same
  events, same clients, one `sio.emit('op', …, room=…)` per op and nothing else.

The ENT server sends a board's ops in `ops` frames, one per board tick; the bare server one
`op` event per op. A delivery is one op received by one client either way (a frame of three
ops is three deliveries), and its latency is that op's.

Each teacher sends an acked `add` (a new stroke) then `append`s of 3 points, one op every
1/rate s, a new stroke every `--stroke-ops` ops. The send time (wall clock, relative to the
run's t0) rides in the first point's x, so a follower in another process computes
latency = receipt − send on the machine's one clock. Followers are spread over `--procs`
client processes, each with its own uvloop; their CPU is reported so a client-side
bottleneck shows. The clients (`--client`) are by default `bench/_leanws.py` for teachers
and followers alike: Socket.IO over a websocket parsed straight from an asyncio.Protocol,
about half the client CPU per delivery of `raw` (followers on aiohttp's websocket, teachers
on python-socketio), a third or less near saturation; `sio` is python-socketio everywhere.
A warm-up precedes the measured window; everything stops by itself.

`--url` (and `--bare-url`) drive servers started elsewhere instead — on another machine, so
that the clients do not compete with the server for its cores: the ENT server seeded with
`python -m realtime demo --out accounts.json` (passed as `--accounts`), the baseline with
`python -m bench.bare_server --host 0.0.0.0 --port …`. Their CPU and memory are then not
measured here. `--server-cpus` / `--client-cpus` split one machine's cores between the
server and the clients instead (sched_setaffinity, as `taskset` does).

`--database-url postgresql://…` (or `DATABASE_URL`) also runs the ENT server on PostgreSQL,
at each size right after its SQLite run, on a fresh database of the bench's own (seeded with
the demo, dropped after), and prints the PostgreSQL / SQLite ratio of p99 and CPU (the
server's, and with the CPU of PostgreSQL's backends serving it) at that equal load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import multiprocessing as mp
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

from bench._leanws import LeanSocketIO
from bench._rawsio import RawSocketIO

ROOT = Path(__file__).resolve().parent.parent
NS = "/boards"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CHEAP_KDF = {"REALTIME_KDF_TIME_COST": "1", "REALTIME_KDF_MEMORY_KIB": "1024",
             "REALTIME_KDF_PARALLELISM": "1"}
DRAIN_IDLE_S = 1.0  # after the window, a worker stops once nothing arrived for this long
DRAIN_MAX_S = 15.0  # … or after this, what is still missing then counts as lost


# --- the server's process ----------------------------------------------------------------

def tree_pids(pid: int) -> list[int]:
    """A process and its descendants (`serve --workers N` is a parent and N workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except FileNotFoundError:
            pass
    return out


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children (all threads), from
    /proc/<pid>/stat."""
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def proc_rss_mib(pid: int) -> float:
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(line.split()[1]) for line in f
                               if line.startswith("VmRSS:")), 0)
        except FileNotFoundError:
            continue
    return total / 1024


def machine_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine, all cores, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes] | None  # None: started elsewhere (`--url`)
    url: str
    log: Path | None
    pg: PgBench | None = None  # the server runs on this PostgreSQL database
    # The other nodes of the same ENT (bench/scale.py's PostgreSQL nodes): their processes
    # are measured with this one's, their logs read with its log.
    nodes: list[Server] = field(default_factory=list)
    # The local redis-server the system uses (Redis mode), measured beside it; None: no
    # Redis, or not on this machine.
    redis_pid: int | None = None

    def pids(self) -> list[int]:
        """The processes whose trees make this server's CPU and memory: its own and its
        other nodes'; none when it was started elsewhere (`--url`)."""
        return [s.proc.pid for s in (self, *self.nodes) if s.proc is not None]

    def log_problems(self) -> list[str]:
        """Lines of the server's log at WARNING or above (JSON logs or plain text), then
        its other nodes' (each line prefixed with the node's name)."""
        out = []
        if self.log is not None:
            for line in self.log.read_text(errors="replace").splitlines():
                if any(w in line for w in ("WARNING", "ERROR", "CRITICAL", "Traceback",
                                           '"warning"', '"error"')):
                    out.append(line[:300])
        for node in self.nodes:
            out += [f"{node.name}: {line}" for line in node.log_problems()]
        return out


def pids_cpu_s(pids: list[int]) -> float:
    """`proc_cpu_s` summed over several process trees (the nodes of one ENT); nan for none
    (a server started elsewhere: not measured)."""
    return sum(proc_cpu_s(p) for p in pids) if pids else math.nan


def pids_rss_mib(pids: list[int]) -> float:
    """`proc_rss_mib` summed over several process trees; nan for none."""
    return sum(proc_rss_mib(p) for p in pids) if pids else math.nan


def parse_cpus(text: str | None) -> set[int] | None:
    """`0`, `0,1` or `0-1` (as taskset -c) → a CPU set; None or empty → no pinning."""
    if not text:
        return None
    cpus: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def spawn_server(name: str, args: list[str], env: dict[str, str], log: Path,
                 cpus: set[int] | None = None, cwd: Path = ROOT) -> Server:
    """`cwd` is the checkout whose code runs (`python -m` imports from it first)."""
    port = free_port()

    def pin() -> None:  # in the child before exec: every thread of the server inherits it
        if cpus:
            os.sched_setaffinity(0, cpus)

    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, *args, "--port", str(port)], cwd=cwd,
                                env={**os.environ, **env}, stdout=fh, stderr=subprocess.STDOUT,
                                preexec_fn=pin if cpus else None)
    return Server(name, proc, f"http://127.0.0.1:{port}", log)


async def remote_server(name: str, url: str) -> Server:
    """A server started elsewhere: checked to answer /healthz, never started or stopped."""
    url = url.rstrip("/")
    async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as r:
        if r.status != 200:
            raise RuntimeError(f"{name} at {url}: /healthz answered {r.status}")
    return Server(name, None, url, None)


def log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def start_server(name: str, args: list[str], env: dict[str, str], log: Path,
                       cpus: set[int] | None = None, cwd: Path = ROOT) -> Server:
    server = spawn_server(name, args, env, log, cpus, cwd)
    proc = server.proc
    assert proc is not None
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{server.url}/healthz") as r:
                    if r.status == 200:
                        return server
            await asyncio.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"{name} did not start; its log:\n{log_tail(log)}")


def stop_server(server: Server) -> None:
    if server.proc is not None and server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(5)


# --- PostgreSQL under the server (`--database-url`) ---------------------------------------

PG_URL_FORMAT = "postgresql://USER[:PASSWORD]@HOST:PORT/DBNAME"


def database_url_problem(url: str | None) -> str | None:
    """What is wrong with a `--database-url` (None: none given, or a PostgreSQL URL)."""
    if url and not url.startswith(("postgresql://", "postgres://")):
        return f"--database-url: expected {PG_URL_FORMAT}"
    return None


class PgBench:
    """A fresh PostgreSQL database of the bench's own, on the server that `url` names
    (created by `create`, dropped by `drop`), and the CPU its backends spend: the
    server's pool connections, read from /proc/<pid>/stat (PostgreSQL on this machine;
    elsewhere, nan). PostgreSQL's shared background processes (WAL writer, checkpointer)
    are not counted."""

    def __init__(self, url: str, prefix: str = "bench") -> None:
        from urllib.parse import urlsplit, urlunsplit

        self.admin_url = url
        self.name = f"{prefix}_{secrets.token_hex(4)}"
        parts = urlsplit(url)
        self.url = urlunsplit(parts._replace(path=f"/{self.name}"))

    async def create(self) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True) as c:
            await c.execute(f"CREATE DATABASE {self.name}")  # type: ignore[arg-type]

    async def drop(self) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True) as c:
            await c.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")  # type: ignore[arg-type]

    async def backend_cpu(self) -> dict[int, float]:
        """CPU seconds (user + system) so far of each backend connected to this database."""
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True) as c:
            cur = await c.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                  (self.name,))
            pids = [r[0] for r in await cur.fetchall()]
        return pids_cpu(pids)


def pids_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) of each process, from /proc/<pid>/stat; {} when one is
    not found (PostgreSQL runs elsewhere, or in a container: not measured)."""
    out: dict[int, float] = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return {}
        out[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def backend_cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the backends spent between two `backend_cpu` readings (a backend that
    connected in between counts from zero; one that left in between is lost)."""
    if not after:
        return math.nan
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def seed_demo_pg(tmp: Path, pg: PgBench) -> list[dict[str, Any]]:
    """`python -m realtime demo` into the fresh PostgreSQL database `pg`."""
    out = tmp / "accounts-pg.json"
    subprocess.run([sys.executable, "-m", "realtime", "demo", "--out", str(out)], cwd=ROOT,
                   env={**os.environ, **CHEAP_KDF, "DATABASE_URL": pg.url}, check=True,
                   stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


# --- who draws, who follows ----------------------------------------------------------------

@dataclass
class BoardPlan:
    board_id: int
    teacher: str  # token
    followers: list[str]  # tokens
    # Where each connects (several nodes of one ENT); empty: the measured server's URL.
    teacher_url: str = ""
    follower_urls: list[str] = field(default_factory=list)  # one per follower


def spread_urls(urls: list[str], count: int) -> list[str]:
    """`count` connections spread over the nodes `urls` round-robin, as a load balancer
    spreads users: the i-th on urls[i % len(urls)]."""
    return [urls[i % len(urls)] for i in range(count)] if urls else []


def seed_demo(tmp: Path) -> tuple[Path, list[dict[str, Any]]]:
    db, out = tmp / "ent.sqlite3", tmp / "accounts.json"
    subprocess.run([sys.executable, "-m", "realtime", "--db", str(db), "demo", "--out",
                    str(out)], cwd=ROOT, env={**os.environ, **CHEAP_KDF, "DATABASE_URL": ""},
                   check=True, stdout=subprocess.DEVNULL)
    return db, json.loads(out.read_text())


async def login(http: aiohttp.ClientSession, url: str, acct: dict[str, Any]) -> str:
    async with http.post(f"{url}/api/login",
                         json={"login": acct["login"], "code": acct["code"]}) as r:
        body = await r.json()
        if r.status != 200:
            raise RuntimeError(f"login {acct['login']}: {r.status} {body}")
        return body["token"]


async def plan_ent(url: str, accounts: list[dict[str, Any]], boards: int,
                   followers: int, node_urls: list[str] | None = None) -> list[BoardPlan]:
    """Boards of real (teacher, class) pairs, followed by that class's pupils (reused to fill),
    made through `url`. `node_urls`: the nodes of one ENT (bench/scale.py); each teacher
    connects to the first, its followers are spread over all of them (`spread_urls`)."""
    teachers = [a for a in accounts if a["role"] == "teacher" and a["classes"]]
    pairs = [(t, t["classes"][r]) for r in range(max(len(t["classes"]) for t in teachers))
             for t in teachers if r < len(t["classes"])]
    chosen = [pairs[b % len(pairs)] for b in range(boards)]
    pupils: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for a in accounts:
        if a["role"] == "student":
            pupils.setdefault((a["school"], a["classes"][0]), []).append(a)

    tokens: dict[str, str] = {}
    sem = asyncio.Semaphore(16)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async def token_of(acct: dict[str, Any]) -> None:
            async with sem:
                tokens[acct["login"]] = await login(http, url, acct)

        needed = {t["login"]: t for t, _ in chosen}
        for t, cname in chosen:
            needed.update((p["login"], p) for p in pupils[(t["school"], cname)])
        await asyncio.gather(*(token_of(a) for a in needed.values()))

        plans = []
        class_ids: dict[str, dict[str, int]] = {}
        for b, (t, cname) in enumerate(chosen):
            headers = {"Authorization": f"Bearer {tokens[t['login']]}"}
            if t["login"] not in class_ids:
                async with http.get(f"{url}/api/classes", headers=headers) as r:
                    class_ids[t["login"]] = {c["name"]: c["id"]
                                             for c in (await r.json())["classes"]}
            body = {"title": f"Banc d'essai {b + 1}", "class_id": class_ids[t["login"]][cname]}
            async with http.post(f"{url}/api/boards", json=body, headers=headers) as r:
                if r.status != 201:
                    raise RuntimeError(f"POST /api/boards: {r.status} {await r.text()}")
                board_id = (await r.json())["id"]
            class_pupils = pupils[(t["school"], cname)]
            plans.append(BoardPlan(board_id, tokens[t["login"]],
                                   [tokens[class_pupils[i % len(class_pupils)]["login"]]
                                    for i in range(followers)],
                                   node_urls[0] if node_urls else "",
                                   spread_urls(node_urls or [], followers)))
    return plans


def plan_bare(boards: int, followers: int) -> list[BoardPlan]:
    return [BoardPlan(b + 1, "bare", ["bare"] * followers) for b in range(boards)]


# --- a client process ----------------------------------------------------------------------

@dataclass
class Window:
    t0: float  # timestamps in ops are seconds since t0
    start: float  # teachers start drawing
    m0: float  # measured window [m0, m1)
    m1: float


@dataclass
class WorkerStats:
    latencies: array[float] = field(default_factory=lambda: array("d"))  # ms, followers
    ack_ms: array[float] = field(default_factory=lambda: array("d"))  # teacher's ack, ms
    deliveries: int = 0  # ops received by anyone, receipt within the window
    acks: int = 0  # ok acks received within the window
    # board → ops sent in the window and not refused: each is owed to every follower
    owed: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    late_sends: int = 0  # sends later than one period behind schedule
    sends: int = 0
    last_receipt: float = 0.0


def worker_main(conn: Connection, spec: dict[str, Any]) -> None:
    """Entry point of a client process (spawned): its own uvloop, its own clients."""
    import uvloop

    uvloop.run(_worker(conn, spec))


async def _recv(conn: Connection, wait_s: float) -> Any:
    def wait() -> Any:
        if not conn.poll(wait_s):
            raise TimeoutError("no message from the other process")
        return conn.recv()

    return await asyncio.get_running_loop().run_in_executor(None, wait)


def op_events(on_op: Any) -> Any:
    """An `on_event(name, payload)` that hands each op received to `on_op`, from the bare
    server's `op` events as from the ENT server's `ops` frames (one per board tick)."""
    def on_event(name: str, payload: Any) -> None:
        if name == "ops":
            for op in payload["ops"]:
                on_op(op)
        elif name == "op":
            on_op(payload)

    return on_event


async def raw_follower(http: aiohttp.ClientSession, url: str, token: str, board_id: int,
                       on_op: Any) -> RawSocketIO:
    """A follower on the minimal Socket.IO client (`bench/_rawsio.py`): joins the board and
    hands each op it receives to `on_op`."""
    return await RawSocketIO.connect(http, url, NS, token, "join", {"board_id": board_id},
                                     op_events(on_op), timeout_s=30)


async def lean_client(url: str, token: str, board_id: int, on_op: Any) -> LeanSocketIO:
    """A follower or a teacher on the lean client (`bench/_leanws.py`): joins the board and
    hands each op it receives (a teacher's own echo included) to `on_op`."""
    client = await LeanSocketIO.connect(url, NS, token, op_events(on_op), timeout_s=30,
                                        query=f"board={board_id}")
    try:
        answer = await client.call("join", {"board_id": board_id}, timeout_s=30)
        if not answer.get("ok"):
            raise RuntimeError(f"join refused: {answer}")
    except BaseException:
        client.abort()
        raise
    return client


async def _worker(conn: Connection, spec: dict[str, Any]) -> None:
    import socketio

    stats = WorkerStats()
    win: Window | None = None
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    clients: list[Any] = []
    sem = asyncio.Semaphore(spec["connect_concurrency"])

    def on_op(board: int, follower: bool) -> Any:
        def handle(data: dict[str, Any]) -> None:
            now = time.time()
            stats.last_receipt = now
            if win is None:
                return
            if win.m0 <= now < win.m1:
                stats.deliveries += 1
            if follower:
                op = data["op"]
                points = op["item"]["points"] if op["type"] == "add" else op["points"]
                sent = win.t0 + points[0][0]
                if win.m0 <= sent < win.m1:
                    stats.latencies.append((now - sent) * 1000)
        return handle

    async def connect(token: str, board: int, board_id: int, follower: bool,
                      url: str) -> Any:
        if spec["client"] == "lean":
            async with sem:
                lean = await lean_client(url, token, board_id, on_op(board, follower))
            clients.append(lean)
            return lean
        if follower and spec["client"] == "raw":
            async with sem:
                raw = await raw_follower(http, url, token, board_id,
                                         on_op(board, follower))
            clients.append(raw)
            return raw
        client = socketio.AsyncClient(reconnection=False, http_session=http,
                                      handle_sigint=False)
        handle = on_op(board, follower)
        client.on("op", handle, namespace=NS)  # the bare server: one event per op

        def handle_batch(data: dict[str, Any], handle: Any = handle) -> None:
            for op in data["ops"]:  # the ENT server: one `ops` frame per board tick
                handle(op)

        client.on("ops", handle_batch, namespace=NS)
        async with sem:
            await client.connect(url, namespaces=[NS], transports=["websocket"],
                                 auth={"token": token}, wait_timeout=30)
            answer = await client.call("join", {"board_id": board_id}, namespace=NS,
                                       timeout=30)
        if not answer.get("ok"):
            raise RuntimeError(f"join refused: {answer}")
        clients.append(client)
        return client

    try:
        followers = [connect(tok, b, bid, True, url) for b, bid, tok, url in spec["followers"]]
        teachers = [connect(tok, b, bid, False, url) for b, bid, tok, url in spec["teachers"]]
        connected = await asyncio.gather(*teachers, *followers)
        teacher_clients = connected[:len(teachers)]
        # The clients' own garbage collector must not pause them in the measured window
        # (a gen-2 pass over 1,500 clients takes tens of ms): the run is short and bounded.
        gc.collect()
        gc.freeze()
        gc.disable()
        conn.send(("ready", len(connected)))
        _go, t0, start, m0, m1 = await _recv(conn, 600)
        win = Window(t0, start, m0, m1)

        async def draw(client: Any, board: int, board_id: int) -> None:
            rate, stroke_ops = spec["rate"], spec["stroke_ops"]
            lean = isinstance(client, LeanSocketIO)
            period = 1 / rate
            k, stroke = 0, 0
            # Classes do not start in lockstep: teachers start one after the other during the
            # first half of the warm-up, out of phase within a period, so boards do not all
            # reach a snapshot (every 200 events) in the same instant.
            due = (start + spec["stagger"] * board / spec["boards"]
                   + (board * 0.618034 % 1) * period)
            while due < m1:
                delay = due - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif -delay > period:
                    stats.late_sends += 1
                sent = time.time()
                ts = round(sent - t0, 6)
                y = 100 + (stroke % 9) * 100
                item_id = f"b{board_id}s{stroke}"
                if k == 0:
                    op: dict[str, Any] = {"type": "add", "item": {
                        "id": item_id, "kind": "stroke", "page_id": "p1",
                        "points": [[ts, y], [ts + 4, y + 2]],
                        "style": {"color": "#d62828", "width": 4}}}
                else:
                    x = 20 + k * 12
                    op = {"type": "append", "item_id": item_id,
                          "points": [[ts, y], [x + 4, y + 3], [x + 8, y + 5]]}
                k = (k + 1) % stroke_ops
                if k == 0:
                    stroke += 1
                stats.sends += 1
                in_window = m0 <= sent < m1
                stats.owed[board] += in_window

                def acked(answer: dict[str, Any], sent: float = sent,
                          in_window: bool = in_window) -> None:
                    now = time.time()
                    if not answer.get("ok"):
                        stats.errors[answer.get("error", {}).get("code", "?")] += 1
                        stats.owed[board] -= in_window  # refused: broadcast to nobody
                        return
                    if m0 <= now < m1:
                        stats.acks += 1
                    if in_window:
                        stats.ack_ms.append((now - sent) * 1000)

                try:
                    if lean:  # written to the socket now, nothing to await
                        client.emit("op", {"board_id": board_id, "op": op}, callback=acked)
                    else:
                        await client.emit("op", {"board_id": board_id, "op": op}, namespace=NS,
                                          callback=acked)
                except Exception as exc:  # a dropped client: counted, the others go on
                    stats.errors[type(exc).__name__] += 1
                    return
                due += period

        cpu = {}

        async def cpu_at(name: str, when: float) -> None:
            await asyncio.sleep(max(0.0, when - time.time()))
            cpu[name] = time.process_time()

        await asyncio.gather(
            cpu_at("m0", m0), cpu_at("m1", m1),
            *(draw(c, b, bid) for c, (b, bid, _tok, _url) in zip(
                teacher_clients, spec["teachers"], strict=True)),
        )
        while True:  # drain: what was sent in the window may still be on its way
            now = time.time()
            if now - max(stats.last_receipt, m1) >= DRAIN_IDLE_S or now - m1 >= DRAIN_MAX_S:
                break
            await asyncio.sleep(0.1)
        for c in clients:  # a lean client that broke on a bad frame (it stopped receiving)
            if isinstance(c, LeanSocketIO) and c.error is not None:
                stats.errors[f"client {type(c.error).__name__}"] += 1
        conn.send(("result", {
            "latencies": stats.latencies.tobytes(), "ack_ms": stats.ack_ms.tobytes(),
            "deliveries": stats.deliveries, "acks": stats.acks,
            "owed": dict(stats.owed),
            "errors": dict(stats.errors), "late_sends": stats.late_sends,
            "sends": stats.sends, "cpu_s": cpu["m1"] - cpu["m0"],
        }))
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        gc.enable()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True), 20)
        await http.close()
        conn.close()


# --- one measured run ----------------------------------------------------------------------

@dataclass
class Result:
    system: str
    boards: int
    followers: int
    seconds: float
    ops_in: float
    deliveries_out: float
    p50: float
    p99: float
    server_cpu: float
    server_rss: float
    missing: int
    errors: dict[str, int]
    client_cpu: list[float]
    late_sends: int
    ack_p99: float
    machine_busy: float  # % of one core, all processes of the machine
    steal: float  # % of one core taken by the hypervisor
    db_cpu: float = math.nan  # % of one core: PostgreSQL's backends serving the server
    redis_cpu: float = math.nan  # % of one core: the local redis-server (`Server.redis_pid`)
    server_problems: list[str] = field(default_factory=list)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def client_specs(url: str, plans: list[BoardPlan],
                 args: argparse.Namespace) -> list[dict[str, Any]]:
    """What each client process runs: teachers and followers spread over `args.procs`
    processes, each as (board index, board id, token, URL it connects to: its plan's, or
    the server's `url`)."""
    procs = max(1, args.procs)
    specs: list[dict[str, Any]] = [
        {"rate": args.rate, "stroke_ops": args.stroke_ops, "boards": len(plans),
         "stagger": args.warmup / 2, "client": args.client, "connect_concurrency": 32,
         "teachers": [], "followers": []} for _ in range(procs)]
    g = 0
    for b, plan in enumerate(plans):
        specs[b % procs]["teachers"].append((b, plan.board_id, plan.teacher,
                                             plan.teacher_url or url))
        urls = plan.follower_urls or [url] * len(plan.followers)
        for tok, follower_url in zip(plan.followers, urls, strict=True):
            specs[g % procs]["followers"].append((b, plan.board_id, tok, follower_url))
            g += 1
    return specs


async def measure(server: Server, plans: list[BoardPlan], args: argparse.Namespace) -> Result:
    """One measured run of these boards against `server` (and its other nodes, if any:
    their CPU and memory are summed with its own)."""
    specs = client_specs(server.url, plans, args)
    ctx = mp.get_context("spawn")
    workers = []
    client_cpus = parse_cpus(args.client_cpus)
    mine, my_nice = os.sched_getaffinity(0), os.nice(0)
    if client_cpus:  # the client processes inherit it (this process gets its own back)
        os.sched_setaffinity(0, client_cpus)
    try:
        if args.client_nice:  # inherited too; undone below (lowering it back needs root)
            os.nice(args.client_nice)
        for spec in specs:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker_main, args=(child, spec), daemon=True)
            p.start()
            child.close()
            workers.append((p, parent))
    finally:
        os.sched_setaffinity(0, mine)
        if args.client_nice:
            os.setpriority(os.PRIO_PROCESS, 0, my_nice)
    try:
        n_clients = sum(len(s["teachers"]) + len(s["followers"]) for s in specs)
        for _p, conn in workers:
            kind, detail = await _recv(conn, 60 + n_clients * 0.05)
            if kind != "ready":
                raise RuntimeError(f"client process failed while connecting: {detail}")
        t0 = time.time()
        start = t0 + 1.0
        m0 = start + args.warmup
        m1 = m0 + args.seconds
        for _p, conn in workers:
            conn.send(("go", t0, start, m0, m1))
        # A server started elsewhere is not measured here (nan: shown as n/a).
        pids = server.pids()
        await asyncio.sleep(m0 - time.time())
        cpu0 = pids_cpu_s(pids)
        pg0 = await server.pg.backend_cpu() if server.pg else {}
        redis0 = pids_cpu([server.redis_pid]) if server.redis_pid else {}
        rss = pids_rss_mib(pids)
        machine0 = machine_cpu()
        while time.time() < m1:
            await asyncio.sleep(min(1.0, max(0.0, m1 - time.time())))
            if pids:
                rss = max(rss, pids_rss_mib(pids))
        cpu1, machine1 = pids_cpu_s(pids), machine_cpu()
        pg1 = await server.pg.backend_cpu() if server.pg else {}
        redis1 = pids_cpu([server.redis_pid]) if server.redis_pid else {}
        reports = []
        for _p, conn in workers:
            kind, detail = await _recv(conn, DRAIN_MAX_S + 60)
            if kind != "result":
                raise RuntimeError(f"client process failed: {detail}")
            reports.append(detail)
    except BaseException:
        for p, _conn in workers:  # one client process failed: stop the others now
            p.terminate()
        raise
    finally:
        for p, conn in workers:
            p.join(30)
            if p.is_alive():
                p.terminate()
                p.join(5)
            conn.close()

    latencies: list[float] = []
    acks: list[float] = []
    owed: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    for r in reports:
        latencies.extend(array("d", r["latencies"]))
        acks.extend(array("d", r["ack_ms"]))
        owed.update(r["owed"])
        errors.update(r["errors"])
    # What never arrived (still queued when the drain ended) counts as infinitely late.
    expected = sum(n * len(plans[b].followers) for b, n in owed.items())
    missing = max(0, expected - len(latencies))
    latencies.sort()
    latencies.extend([float("inf")] * missing)
    acks.sort()
    acks.extend([float("inf")] * max(0, sum(owed.values()) - len(acks)))
    return Result(
        system=server.name, boards=len(plans), followers=len(plans[0].followers),
        seconds=args.seconds,
        ops_in=sum(r["acks"] for r in reports) / args.seconds,
        deliveries_out=sum(r["deliveries"] for r in reports) / args.seconds,
        p50=percentile(latencies, 0.50), p99=percentile(latencies, 0.99),
        server_cpu=100 * (cpu1 - cpu0) / args.seconds, server_rss=rss,
        missing=missing, errors=dict(errors),
        client_cpu=[100 * r["cpu_s"] / args.seconds for r in reports],
        late_sends=sum(r["late_sends"] for r in reports), ack_p99=percentile(acks, 0.99),
        machine_busy=100 * (machine1[0] - machine0[0]) / args.seconds,
        steal=100 * (machine1[1] - machine0[1]) / args.seconds,
        db_cpu=100 * backend_cpu_delta(pg0, pg1) / args.seconds if server.pg else math.nan,
        redis_cpu=(100 * backend_cpu_delta(redis0, redis1) / args.seconds
                   if server.redis_pid else math.nan),
    )


PG_SYSTEM = "ENT server on PostgreSQL"


async def run_ent(tmp: Path, accounts: list[dict[str, Any]], db: Path, boards: int,
                  args: argparse.Namespace, pg: PgBench | None = None) -> Result:
    """The ENT server on the SQLite file `db`, or on the PostgreSQL database `pg`."""
    env = {**CHEAP_KDF, "REALTIME_DB": str(db), "REALTIME_SECRET": secrets.token_urlsafe(32),
           "REALTIME_LOG_LEVEL": "WARNING"}
    if pg is not None:
        env["DATABASE_URL"] = pg.url
    elif "DATABASE_URL" in os.environ:  # the SQLite baseline: not the caller's database
        env["DATABASE_URL"] = ""
    name = PG_SYSTEM if pg is not None else "ENT server"
    server = (await remote_server(name, args.url) if args.url else
              await start_server(name, ["-m", "realtime", "serve"], env,
                                 tmp / f"ent-{boards}{'-pg' if pg else ''}.log",
                                 parse_cpus(args.server_cpus)))
    server.pg = pg
    try:
        plans = await plan_ent(server.url, accounts, boards, args.followers)
        result = await measure(server, plans, args)
    finally:
        stop_server(server)
    result.server_problems = server.log_problems()
    return result


async def run_bare(tmp: Path, boards: int, args: argparse.Namespace) -> Result:
    server = (await remote_server("bare python-socketio", args.bare_url) if args.bare_url else
              await start_server("bare python-socketio", ["-m", "bench.bare_server"], {},
                                 tmp / f"bare-{boards}.log", parse_cpus(args.server_cpus)))
    try:
        result = await measure(server, plan_bare(boards, args.followers), args)
    finally:
        stop_server(server)
    result.server_problems = server.log_problems()
    return result


# --- output --------------------------------------------------------------------------------

COLUMNS = ("system", "boards", "followers", "ops/s in", "deliveries/s out", "p50 ms",
           "p99 ms", "server CPU %", "PG backends CPU %", "server RSS MiB")


def num(value: float) -> str:
    """A server figure; one not measured (a server started elsewhere) is `n/a`."""
    return f"{value:.0f}" if math.isfinite(value) else "n/a"


def ms(value: float) -> str:
    """A latency; one that never came (still queued when the drain ended) is `lost`."""
    return f"{value:.1f}" if math.isfinite(value) else "lost"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if math.isfinite(a) and math.isfinite(b) and b > 0 else "n/a"


def table(results: list[Result]) -> str:
    rows = [[r.system, str(r.boards), str(r.followers), f"{r.ops_in:,.0f}",
             f"{r.deliveries_out:,.0f}", ms(r.p50), ms(r.p99), num(r.server_cpu),
             num(r.db_cpu) if r.system == PG_SYSTEM else "", num(r.server_rss)]
            for r in results]
    by_size: dict[tuple[int, int], dict[str, Result]] = {}
    for r in results:
        by_size.setdefault((r.boards, r.followers), {})[r.system] = r
    for (boards, followers), pair in by_size.items():
        ent, bare = pair.get("ENT server"), pair.get("bare python-socketio")
        if ent and bare:
            rows.append(["ratio ENT / bare", str(boards), str(followers), "",
                         ratio(ent.deliveries_out, bare.deliveries_out), "",
                         ratio(ent.p99, bare.p99), "", "", ""])
        pg = pair.get(PG_SYSTEM)
        if ent and pg:  # at equal load: the same boards, followers and rate
            rows.append(["ratio PostgreSQL / SQLite", str(boards), str(followers),
                         ratio(pg.ops_in, ent.ops_in), ratio(pg.deliveries_out,
                                                             ent.deliveries_out),
                         ratio(pg.p50, ent.p50), ratio(pg.p99, ent.p99),
                         ratio(pg.server_cpu, ent.server_cpu),
                         ratio(pg.server_cpu + pg.db_cpu, ent.server_cpu),
                         ratio(pg.server_rss, ent.server_rss)])
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(COLUMNS)]

    def line(cells: list[str] | tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))) + " |"

    out = [line(COLUMNS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in rows]
    return "\n".join(out)


def capacity(results: list[Result], p99_ms: float) -> str:
    """The issue's comparison: the most deliveries/s each system served with p99 ≤ target."""
    best: dict[str, Result] = {}
    for r in results:
        if r.p99 <= p99_ms and r.missing == 0 and r.deliveries_out > getattr(
                best.get(r.system), "deliveries_out", -1.0):
            best[r.system] = r
    lines = [f"Capacity at p99 ≤ {p99_ms:g} ms over the sizes run:"]
    for system in dict.fromkeys(r.system for r in results):
        b = best.get(system)
        lines.append(f"- {system}: " + (f"{b.deliveries_out:,.0f} deliveries/s "
                                         f"({b.boards} boards, p99 {b.p99:.1f} ms)" if b
                                         else "none of the sizes run"))
    ent, bare = best.get("ENT server"), best.get("bare python-socketio")
    if ent and bare:
        lines.append(f"- ratio ENT / bare: {ent.deliveries_out / bare.deliveries_out:.2f}× "
                     "(a size ladder bounds it: add sizes for a finer answer)")
    return "\n".join(lines)


def notes(results: list[Result]) -> str:
    out = []
    for r in results:
        clients = ", ".join(f"{c:.0f}%" for c in r.client_cpu)
        remote = not math.isfinite(r.server_cpu)  # started elsewhere: not measured here
        others = (r.machine_busy - (0 if remote else r.server_cpu) - sum(r.client_cpu)
                  - (r.db_cpu if math.isfinite(r.db_cpu) else 0))
        out.append(f"- {r.system}, {r.boards} boards: client processes CPU {clients}; "
                   f"machine {r.machine_busy:.0f}% of {100 * (os.cpu_count() or 1)}% "
                   f"(other processes {max(0.0, others):.0f}%, steal {r.steal:.0f}%); "
                   f"teacher ack p99 {ms(r.ack_p99)} ms; lost deliveries {r.missing}; "
                   f"late sends {r.late_sends}; errors {r.errors or 'none'}; "
                   f"server log warnings {len(r.server_problems)}")
        if remote:
            out.append("  server started elsewhere (--url): its CPU and memory are not "
                       "measured; 'other processes' includes it if it runs on this machine")
        if max(r.client_cpu, default=0) >= 85:
            out.append("  ! a client process was near 100% CPU: the client side limited this "
                       "run, its latencies include client queueing")
        if others >= 20 and not remote:
            out.append(f"  ! other processes used {others:.0f}% of a core during the window: "
                       "this row is disturbed, run it again on a quiet machine")
        if r.machine_busy >= 90 * (os.cpu_count() or 1):
            out.append("  ! the machine's CPUs were saturated: server and clients competed "
                       "for them, so the server had less than the cores it could use")
        out += [f"    {p}" for p in r.server_problems[:5]]
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.boards", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--boards", default="10",
                   help="active boards; a comma list runs several sizes (default 10)")
    p.add_argument("--followers", type=int, default=30, help="followers per board (30)")
    p.add_argument("--seconds", type=float, default=15, help="measured window (15)")
    p.add_argument("--warmup", type=float, default=5, help="drawing before the window (5)")
    p.add_argument("--rate", type=float, default=30, help="ops per second per teacher (30)")
    p.add_argument("--stroke-ops", type=int, default=30,
                   help="ops per stroke: one add, then appends (30)")
    p.add_argument("--procs", type=int, default=2, help="client processes (2)")
    p.add_argument("--client", choices=("lean", "raw", "sio"), default="lean",
                   help="lean (the default): followers and teachers on bench/_leanws.py, a "
                        "websocket spoken on a bare asyncio.Protocol, the cheapest per event; "
                        "raw: followers on bench/_rawsio.py (aiohttp's websocket), teachers "
                        "on python-socketio; sio: everyone on python-socketio AsyncClients")
    p.add_argument("--p99-target", type=float, default=50,
                   help="p99 bound of the capacity summary printed for several sizes (50)")
    p.add_argument("--system", choices=("both", "ent", "bare"), default="both")
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or None,
                   help="also run the ENT server on PostgreSQL, at each size right after "
                        "its SQLite run: a fresh database of the bench's own on the server "
                        "this postgresql:// URL names, seeded with the demo, dropped after "
                        "(default: $DATABASE_URL)")
    p.add_argument("--url", help="drive an ENT server started elsewhere (seeded with "
                                 "`python -m realtime demo --out FILE`) instead of starting one")
    p.add_argument("--accounts", type=Path,
                   help="with --url: the demo's accounts file (`demo --out FILE`)")
    p.add_argument("--bare-url", help="drive a `python -m bench.bare_server` started elsewhere")
    p.add_argument("--server-cpus", help="pin the servers started here to these CPUs "
                                         "(taskset -c syntax: 0 or 0,1 or 0-1)")
    p.add_argument("--client-cpus", help="pin the client processes to these CPUs")
    p.add_argument("--client-nice", type=int, default=0,
                   help="run the client processes this much nicer (e.g. 10 with "
                        "--server-cpus 0 --client-cpus 0,1: the clients get a core and "
                        "whatever the server leaves of its own, the server keeps priority)")
    args = p.parse_args(argv)
    args.sizes = [int(x) for x in str(args.boards).split(",") if x.strip()]
    if not args.sizes or min(args.sizes) < 1 or args.followers < 1 or args.rate <= 0:
        p.error("boards, followers and rate must be positive")
    if args.url and args.system != "bare" and args.accounts is None:
        p.error("--url needs --accounts: the accounts file the demo seeding wrote")
    if args.url and args.system == "both" and not args.bare_url:
        p.error("--url with --system both needs --bare-url: the baseline must run where "
                "the ENT server runs, or the ratio compares two machines")
    problem = database_url_problem(args.database_url)
    if problem:
        p.error(problem)
    if args.database_url and (args.url or args.system == "bare"):
        p.error("--database-url runs the ENT server here: not with --url or --system bare")
    try:
        parse_cpus(args.server_cpus), parse_cpus(args.client_cpus)
    except ValueError:
        p.error("--server-cpus / --client-cpus: CPU numbers as taskset -c takes them")
    return args


async def main_async(args: argparse.Namespace) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-boards-") as name:
        tmp = Path(name)
        accounts: list[dict[str, Any]] = []
        db = tmp / "ent.sqlite3"
        if args.system in ("both", "ent") and args.url:
            accounts = json.loads(args.accounts.read_text())
        elif args.system in ("both", "ent"):
            print("Seeding the demo data…", file=sys.stderr, flush=True)
            db, accounts = seed_demo(tmp)
        pg = PgBench(args.database_url, "bench_boards") if args.database_url else None
        try:
            if pg is not None:
                print(f"Seeding the demo data into PostgreSQL ({pg.name})…", file=sys.stderr,
                      flush=True)
                await pg.create()
                pg_accounts = seed_demo_pg(tmp, pg)
            for boards in args.sizes:
                await run_sizes(tmp, accounts, db, boards, args, results,
                                (pg, pg_accounts) if pg is not None else None)
        finally:
            if pg is not None:
                await pg.drop()
    return results


async def run_sizes(tmp: Path, accounts: list[dict[str, Any]], db: Path, boards: int,
                    args: argparse.Namespace, results: list[Result],
                    pg: tuple[PgBench, list[dict[str, Any]]] | None) -> None:
    """One size: the ENT server on SQLite, then on PostgreSQL (`--database-url`), then the
    bare baseline, as `--system` asks."""
    if args.system in ("both", "ent"):
        print(f"ENT server: {boards} boards × {args.followers} followers…",
              file=sys.stderr, flush=True)
        results.append(await run_ent(tmp, accounts, db, boards, args))
    if pg is not None:
        print(f"ENT server on PostgreSQL: {boards} boards × {args.followers} "
              "followers…", file=sys.stderr, flush=True)
        results.append(await run_ent(tmp, pg[1], db, boards, args, pg[0]))
    if args.system in ("both", "bare"):
        print(f"bare python-socketio: {boards} boards × {args.followers} followers…",
              file=sys.stderr, flush=True)
        results.append(await run_bare(tmp, boards, args))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import uvloop

    results = uvloop.run(main_async(args))
    print(f"\n{args.rate:g} ops/s per teacher, {args.seconds:g} s measured after "
          f"{args.warmup:g} s warm-up, {args.procs} client processes, {os.cpu_count()} CPUs"
          + (f"; server on CPUs {args.server_cpus}" if args.server_cpus else "")
          + (f", clients on CPUs {args.client_cpus}" if args.client_cpus else ""))
    print(table(results))
    if any(r.system == PG_SYSTEM for r in results):
        print("ratio PostgreSQL / SQLite at equal load (same boards, followers, rate): its "
              "'PG backends CPU %' cell is (server + PG backends) / SQLite server, the whole "
              "CPU cost of the database choice; PostgreSQL's background processes (WAL "
              "writer, checkpointer) are not counted")
    print(notes(results))
    if len(args.sizes) > 1:
        print(capacity(results, args.p99_target))


if __name__ == "__main__":
    main()

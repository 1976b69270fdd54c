"""Real server processes for the cross-process cases, and a Redis of our own to restart.

`cluster`: `await cluster.node(redis_url)` starts `python -m realtime serve` (one process, or
`workers=N` behind one port) on this test's copy of the demo database — the nodes of one
machine share the SQLite file, as in production — with its own Redis prefix. Nodes are
stopped and the prefix's keys deleted afterwards. Any feature can add its cross-process case
here: start two nodes, connect clients to each, check they see each other.

`own_redis`: a `redis-server` on a free port, no persistence, that a test may stop, restart or
freeze (SIGSTOP) — never the shared Redis on 6379 other tests rely on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from tests import engines
from tests.conftest import REDIS_URL, ROOT, TEST_KDF
from tests.engines import clone_db

SECRET = "scale-secret-" + "x" * 32
HEARTBEAT_S = 0.5
PRESENCE_TIMEOUT_S = 3.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    """One `python -m realtime serve` (with its workers, if any) on one port."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    workers: int

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def worker_pids(self) -> set[int]:
        if self.workers == 1:
            return {self.proc.pid}
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            children = [int(p) for p in path.read_text().split()]
        except FileNotFoundError:
            return set()
        return {pid for pid in children if _is_worker(pid)}

    def kill(self) -> None:
        """A crash: SIGKILL, no goodbye to clients, nothing flushed."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    async def wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited:\n{self.log_text()[-3000:]}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(f"{self.url}/healthz") as r:
                        if r.status == 200 and len(self.worker_pids()) >= self.workers:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError(f"server did not start:\n{self.log_text()[-3000:]}")

    async def answering_pids(self, wait_s: float = 20) -> set[int]:
        """Which workers answer: each request on a new connection, spread by the kernel
        (a worker just started may need a moment before it listens)."""
        seen: set[int] = set()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True)
            ) as http, http.get(f"{self.url}/healthz") as r:
                seen.add(int(r.headers["X-Realtime-Pid"]))
            if len(seen) >= self.workers:
                break
            await asyncio.sleep(0.05)
        return seen


def _is_worker(pid: int) -> bool:
    """A live worker, not multiprocessing's resource tracker nor a zombie not yet reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z" and b"resource_tracker" not in cmdline


class Cluster:
    def __init__(self, tmp: Path, db: Path, prefix: str) -> None:
        self.tmp = tmp
        self.db = db
        self.prefix = prefix
        self.nodes: list[Node] = []

    def env(self, redis_url: str | None, **extra: str) -> dict[str, str]:
        env = {**os.environ, **engines.db_env(self.db), "REALTIME_SECRET": SECRET,
               "REALTIME_KDF_TIME_COST": str(TEST_KDF[0]),
               "REALTIME_KDF_MEMORY_KIB": str(TEST_KDF[1]),
               "REALTIME_KDF_PARALLELISM": str(TEST_KDF[2]),
               "REALTIME_REDIS_PREFIX": self.prefix, "REDIS_URL": redis_url or "",
               "REALTIME_PRESENCE_HEARTBEAT": str(HEARTBEAT_S),
               "REALTIME_PRESENCE_TIMEOUT": str(PRESENCE_TIMEOUT_S),
               "REALTIME_SHUTDOWN_TIMEOUT": "3", "REALTIME_LOG_JSON": "false",
               # As in make_settings: rolls of recent school days found on the real calendar.
               "REALTIME_ATTENDANCE_TEACHER_PAST_DAYS": "150",
               "REALTIME_ATTENDANCE_CORRECTION_DAYS": "150",
               # What crosses processes is tested here, not admission control
               # (tests/boards/test_admission.py): on a loaded machine a node just started
               # lags, and would refuse ops (rate_limited) and fail these tests for that.
               "REALTIME_BOARD_ADMIT_LAG_MS": "0"}
        env.update(extra)
        return env

    def spawn(self, redis_url: str | None, workers: int = 1, port: int | None = None,
              **env: str) -> Node:
        port = port or free_port()
        log = self.tmp / f"node-{len(self.nodes)}-{port}.log"
        args = [sys.executable, "-m", "realtime", "serve", "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(workers)]
        with log.open("wb") as fh:
            proc = subprocess.Popen(args, cwd=ROOT, env=self.env(redis_url, **env),
                                    stdout=fh, stderr=subprocess.STDOUT)
        node = Node(f"http://127.0.0.1:{port}", proc, log, workers)
        self.nodes.append(node)
        return node

    async def node(self, redis_url: str | None = REDIS_URL, workers: int = 1,
                   **env: str) -> Node:
        node = self.spawn(redis_url, workers, **env)
        await node.wait_ready()
        return node

    def stop_all(self) -> None:
        for node in self.nodes:
            if node.proc.poll() is None:
                node.proc.terminate()
        for node in self.nodes:
            try:
                node.proc.wait(20)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(5)


@pytest_asyncio.fixture
async def cluster(tmp_path: Path, demo_db_template: Path, redis_prefix: str,
                  redis_cleanup: aioredis.Redis) -> AsyncIterator[Cluster]:
    db = tmp_path / "ent.sqlite3"
    clone_db(demo_db_template, db)
    c = Cluster(tmp_path, db, redis_prefix)
    try:
        yield c
    finally:
        await asyncio.to_thread(c.stop_all)


class OwnRedis:
    """A redis-server of this test only: stop, start, restart (all data lost), freeze."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.dir = tmp / f"redis-{self.port}"
        self.dir.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:  # CI must fail, not skip
            pytest.fail("redis-server is not installed")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.port), timeout=0.2
            ) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise AssertionError("own redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, down_s: float = 0.5) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    r = OwnRedis(tmp_path)
    r.start()
    try:
        yield r
    finally:
        if r.proc is not None and r.proc.poll() is None:
            r.thaw()
        r.stop()


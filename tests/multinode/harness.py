"""Several real nodes of one ENT: `python -m realtime serve --port P [--workers N]` processes
sharing one PostgreSQL database (`DATABASE_URL`), one Redis (`REDIS_URL`, database 15 and a
key prefix of their own) and one `REALTIME_SECRET`, as the machines of a deployment do
(docs/deployment.md). Each node has a data folder of its own (`REALTIME_DB`'s folder), as a
machine has its own disk.

- `Node`: one node; `start()`, `ready()` (its `/healthz` answers 200), `kill()` (SIGKILL to
  its whole process group: supervisor, workers, render processes, as a machine that dies),
  `restart()` (same port, same environment).
- `Nodes`: the nodes of one ENT, their shared environment, all stopped at the end.
- `create_database`, `drop_database`, `seed_demo`: a fresh database, the demo written into it
  by `python -m realtime demo --out F` (the operators' command) against `DATABASE_URL`;
  `copy_database`: a database copied to another server (`pg_dump`, `pg_restore`).
- `PrivatePostgres`: a PostgreSQL cluster of one test (initdb in a temporary folder, its own
  port, trust authentication), which a test may stop (`pg_ctl stop -m immediate`, a crash)
  and start again without touching the shared server on 5432.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, TEST_KDF

SECRET = "multinode-secret-" + "y" * 32
HEARTBEAT_S = 0.5
PRESENCE_TIMEOUT_S = 3.0
READY_S = 60.0  # two cores shared by the whole suite: a node may take a while to start
READY_LINE = "ENT temps réel prêt"  # each server process prints it once started (serve.py)
PG_BIN = Path(os.environ.get("REALTIME_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_url(admin_url: str, dbname: str) -> str:
    """The URL of database `dbname` on the server `admin_url` points at."""
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{dbname}"


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    """A new database (a copy of `template` when given, else empty with `unaccent`): its URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        source = f'"{template}"' if template else "template0"
        conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE {source} ENCODING 'UTF8'")  # type: ignore[arg-type]
    url = server_url(admin_url, name)
    if template is None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    return url


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def seed_demo(database_url: str, workdir: Path) -> list[dict[str, Any]]:
    """`python -m realtime demo --out F` against `database_url`: the accounts it wrote."""
    out = workdir / "demo-accounts.json"
    env = {**os.environ, "DATABASE_URL": database_url,
           "REALTIME_DB": str(workdir / "seed" / "ent.sqlite3"), "REALTIME_LOG_JSON": "false"}
    done = subprocess.run([sys.executable, "-m", "realtime", "demo", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"demo seeding failed:\n{done.stdout[-2000:]}\n"
                             f"{done.stderr[-4000:]}")
    accounts: list[dict[str, Any]] = json.loads(out.read_text("utf-8"))
    return accounts


def copy_database(src_url: str, admin_url: str, name: str, workdir: Path) -> str:
    """Database `name` on the server of `admin_url`, a copy of `src_url`'s (`pg_dump`,
    `pg_restore`): its URL."""
    dump = workdir / f"{name}.dump"
    done = subprocess.run([str(PG_BIN / "pg_dump"), "--format=custom", "--no-owner",
                           "--file", str(dump), src_url],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"pg_dump failed: {done.stderr}")
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")  # type: ignore[arg-type]
    url = server_url(admin_url, name)
    done = subprocess.run([str(PG_BIN / "pg_restore"), "--no-owner", "--exit-on-error",
                           "--dbname", url, str(dump)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"pg_restore failed: {done.stderr}")
    dump.unlink()
    return url


class Node:
    """One `python -m realtime serve` on its own port (with `workers` processes)."""

    def __init__(self, name: str, env: dict[str, str], data: Path, workers: int = 1) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.data = data
        self.workers = workers
        self.log = data / "node.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Node:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "realtime", "serve", "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", str(self.workers)]
        with self.log.open("ab") as fh:
            fh.write(f"--- start {self.starts + 1} ---\n".encode())
            fh.flush()
            # A session of its own: kill() takes the node's every process, as a dead machine.
            self.proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=fh,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def health(self, timeout_s: float = 3.0) -> tuple[int, dict[str, Any]]:
        """`GET /healthz`: (status, body); (0, {}) when nothing answers."""
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=timeout_s) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")
        except (OSError, ValueError):
            return 0, {}

    def wait_ready(self, timeout_s: float = READY_S) -> Node:
        """Until `/healthz` answers 200 and every worker of a `--workers` node has started
        (each says so in the log, once per start): a test that then stops PostgreSQL or
        kills a worker does not catch one in the middle of its start-up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                raise AssertionError(f"node {self.name} exited:\n{self.log_text()[-4000:]}")
            status, _ = self.health(1.0)
            this_start = self.log_text().rsplit(f"--- start {self.starts} ---", 1)[-1]
            if (status == 200 and len(self.worker_pids()) >= self.workers
                    and this_start.count(READY_LINE) >= self.workers):
                return self
            time.sleep(0.1)
        raise AssertionError(f"node {self.name} not ready:\n{self.log_text()[-4000:]}")

    async def ready(self, timeout_s: float = READY_S) -> Node:
        import asyncio

        return await asyncio.to_thread(self.wait_ready, timeout_s)

    def worker_pids(self) -> set[int]:
        """The serving processes: the node itself, or its supervisor's live workers."""
        if self.proc is None:
            return set()
        if self.workers == 1:
            return {self.proc.pid}
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            children = [int(p) for p in path.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            return set()
        out = set()
        for pid in children:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (FileNotFoundError, ProcessLookupError):
                continue
            if state != "Z" and b"resource_tracker" not in cmdline:
                out.add(pid)
        return out

    def kill(self) -> None:
        """A crash: SIGKILL to every process of the node, no goodbye, nothing flushed."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def restart(self) -> Node:
        """Killed if running, then started again on the same port with the same environment
        (call `ready()` after)."""
        self.kill()
        return self.start()


class Nodes:
    """The nodes of one ENT: one database, one Redis prefix, one secret."""

    def __init__(self, tmp: Path, database_url: str, redis_url: str, prefix: str) -> None:
        self.tmp = tmp
        self.database_url = database_url
        self.redis_url = redis_url
        self.prefix = prefix
        self.nodes: list[Node] = []

    def env(self, data: Path, **extra: str) -> dict[str, str]:
        env = {**os.environ,
               "DATABASE_URL": self.database_url,
               "REALTIME_DB": str(data / "ent.sqlite3"),  # its folder: the node's own files
               "REDIS_URL": self.redis_url, "REALTIME_REDIS_PREFIX": self.prefix,
               "REALTIME_SECRET": SECRET,
               "REALTIME_KDF_TIME_COST": str(TEST_KDF[0]),
               "REALTIME_KDF_MEMORY_KIB": str(TEST_KDF[1]),
               "REALTIME_KDF_PARALLELISM": str(TEST_KDF[2]),
               "REALTIME_PRESENCE_HEARTBEAT": str(HEARTBEAT_S),
               "REALTIME_PRESENCE_TIMEOUT": str(PRESENCE_TIMEOUT_S),
               "REALTIME_SHUTDOWN_TIMEOUT": "3", "REALTIME_LOG_JSON": "false",
               "REALTIME_DB_POOL_MIN": "1", "REALTIME_DB_POOL_MAX": "4",
               # As in tests/conftest.py's make_settings: rolls of recent school days.
               "REALTIME_ATTENDANCE_TEACHER_PAST_DAYS": "150",
               "REALTIME_ATTENDANCE_CORRECTION_DAYS": "150"}
        env.pop("REALTIME_TEST_DB", None)
        env.update(extra)
        return env

    def spawn(self, workers: int = 1, **env: str) -> Node:
        """A node started (not yet ready: `wait_ready()` or `await ready()`)."""
        name = chr(ord("a") + len(self.nodes))
        data = self.tmp / f"node-{name}"
        node = Node(name, self.env(data, **env), data, workers)
        self.nodes.append(node)
        return node.start()

    def start(self, *workers: int) -> list[Node]:
        """Nodes with these worker counts, started together, each ready."""
        nodes = [self.spawn(w) for w in workers]
        for node in nodes:
            node.wait_ready()
        return nodes

    def stop_all(self) -> None:
        """Every node killed: their database and Redis keys are thrown away next."""
        for node in self.nodes:
            node.kill()


class PrivatePostgres:
    """A PostgreSQL 15 cluster of this test only, on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        # Not under pytest's tmp folder: the server runs as `postgres` when we are root,
        # and that folder is private to us.
        self.dir = Path(tempfile.mkdtemp(prefix="ent-private-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to `postgres`
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres")
        self.dir.chmod(0o700)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise AssertionError(f"{args[0]} failed: {done.stdout}\n{done.stderr}\n{log}")
        return done

    def init(self) -> None:
        initdb = PG_BIN / "initdb"
        if not initdb.exists():  # CI must fail, not skip
            raise AssertionError(f"{initdb} is missing (REALTIME_TEST_PG_BIN names another)")
        self._run(str(initdb), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")

    def start(self) -> None:
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
                " -c max_connections=60")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", opts, "-w", "-t", "30", "start")

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: every server process quits at once, as in a crash (recovery at the
        next start)."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop",
                  check=False)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

"""`serve --workers N`: N server processes on one port, supervised by this one.

Each worker is a whole server (its own uvloop, its own app) binding the same address with
SO_REUSEPORT: the kernel spreads new connections over them. Clients use the websocket
transport only, so a connection lives on one worker from start to end and no sticky session
is needed; what workers must share goes through Redis (Socket.IO emits, reliable streams,
presence, rate limits), which is why more than one worker needs REDIS_URL.

A board's connections are gathered on one worker, the board's home (realtime/placement.py):
each worker gets its index and a private directory where the workers' hand-over sockets live.

The parent does no serving. SIGTERM or SIGINT: it passes SIGTERM to every worker (each one
closes gracefully: clients told, boards snapshotted, database closed) and waits for them.
A worker that dies on its own is started again, so its clients' reconnections find a
process on the port — the surviving workers take them meanwhile. One that cannot start
while another serves (the database restarting) is started again later and later; when
none can start, the configuration is wrong and the supervisor gives up (`Supervisor._reap`).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

from realtime import metrics
from realtime.logs import configure
from realtime.placement import Placement
from realtime.settings import Settings

log = logging.getLogger("realtime.workers")

RESTART_DELAY_S = 1.0
MAX_RESTART_DELAY_S = 30.0  # a worker failing at start-up beside live ones: retried this often
POLL_S = 0.5
FAST_EXIT_S = 15.0  # a worker that dies sooner than this after its start failed to start
MAX_FAST_EXITS = 3  # in a row: give up rather than start it again forever

GIVING_UP = ("Erreur : les processus du serveur s'arrêtent dès leur démarrage ({n} fois de "
             "suite) ; arrêt. Voyez le journal ci-dessus (base de données, Redis, port…).")

NEEDS_REDIS = (
    "plusieurs processus (--workers {n}) exigent REDIS_URL : sans Redis, aucun processus "
    "ne transmettrait aux autres les événements en direct (chacun aurait ses propres salles "
    "et sa propre présence, et sur SQLite ses propres flux), et les utilisateurs ne se "
    "verraient pas d'un processus à l'autre. Configurez REDIS_URL ou lancez un seul "
    "processus."
)


def refusal(settings: Settings, workers: int) -> str | None:
    """Why this configuration cannot run, in French for the operator; None when it can."""
    if workers < 1:
        return "--workers doit valoir au moins 1."
    if workers > 1 and not settings.redis_url:
        return NEEDS_REDIS.format(n=workers)
    return None


def _worker_main(settings: Settings, placement: Placement | None, ready: Any) -> None:
    from realtime.serve import run

    run(settings, reuse_port=True, placement=placement, ready=ready.set)


class Supervisor:
    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings.with_(workers=workers)
        self.count = workers
        self.ctx = mp.get_context("spawn")
        self.procs: dict[int, BaseProcess] = {}
        self.started: dict[int, float] = {}
        self.ready: dict[int, Any] = {}  # each worker's multiprocessing Event: app started
        self.fast_exits = 0
        self.restart_at: dict[int, float] = {}  # dead workers, when to start them again
        self.delay: dict[int, float] = {}  # each one's next delay (doubles while it fails)
        self.stopping = False
        # The workers' hand-over sockets: a directory only this user can enter.
        self.directory = (Path(tempfile.mkdtemp(prefix="realtime-workers-"))
                          if settings.place_boards and workers > 1 else None)

    def _start(self, index: int) -> None:
        placement = (Placement(index, self.count, self.directory)
                     if self.directory is not None else None)
        self.ready[index] = self.ctx.Event()
        proc = self.ctx.Process(target=_worker_main,
                                args=(self.settings, placement, self.ready[index]),
                                name=f"realtime-worker-{index}")
        proc.start()
        self.procs[index] = proc
        self.started[index] = time.monotonic()
        log.info("worker started", extra={"worker": index, "pid": proc.pid})

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for index in range(self.count):
            self._start(index)
        print(f"ENT temps réel : {self.count} processus sur http://{self.settings.host}:"
              f"{self.settings.port}/ (pids {', '.join(str(p.pid) for p in self.procs.values())}).",
              flush=True)
        while not self.stopping:
            watched = [p.sentinel for i, p in self.procs.items() if i not in self.restart_at]
            if watched:
                wait(watched, timeout=POLL_S)
            else:
                time.sleep(POLL_S)
            if self._reap():
                self.stop()
                return 1
            now = time.monotonic()
            for index, due in list(self.restart_at.items()):
                if now >= due and not self.stopping:
                    del self.restart_at[index]
                    self._start(index)
        return self.stop()

    def _reap(self) -> bool:
        """Schedule the restart of every worker that died; True: give up.

        A worker that dies soon after its start failed to start. When they keep doing so
        (`MAX_FAST_EXITS` in a row) and no other worker is serving, the configuration is
        wrong (port, database, Redis): give up rather than restart for ever. But while
        another worker has started and is alive the node is serving, and a worker failing
        at start-up meets a passing fault (PostgreSQL restarting, say): it is started again,
        each time twice as late (up to `MAX_RESTART_DELAY_S`), until it starts."""
        now = time.monotonic()
        for index, proc in list(self.procs.items()):
            if proc.exitcode is None or index in self.restart_at or self.stopping:
                continue
            quick = now - self.started[index] < FAST_EXIT_S
            self.fast_exits = self.fast_exits + 1 if quick else 0
            serving = any(p.exitcode is None and self.ready[i].is_set()
                          for i, p in self.procs.items())
            if self.fast_exits >= MAX_FAST_EXITS and not serving:
                log.error("workers keep dying at start-up, giving up",
                          extra={"exits": self.fast_exits})
                print(GIVING_UP.format(n=self.fast_exits), file=sys.stderr, flush=True)
                return True
            delay = (min(MAX_RESTART_DELAY_S, 2 * self.delay.get(index, RESTART_DELAY_S / 2))
                     if quick else RESTART_DELAY_S)
            self.delay[index] = delay
            metrics.worker_gone(proc.pid or 0)  # its live gauges stop counting
            log.error("worker died, starting it again",
                      extra={"worker": index, "pid": proc.pid, "code": proc.exitcode,
                             "in_s": delay})
            self.restart_at[index] = now + delay
        return False

    def stop(self) -> int:
        """Every worker gets SIGTERM and time to close; one that hangs is killed."""
        for proc in self.procs.values():
            if proc.exitcode is None and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_timeout_s + 10
        for proc in self.procs.values():
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.exitcode is None:
                log.error("worker did not stop in time, killed", extra={"pid": proc.pid})
                proc.kill()
                proc.join(5)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        log.info("all workers stopped")
        return 0


def run_workers(settings: Settings, workers: int) -> int:
    configure(settings.log_level, settings.log_json)
    # One scrape of the shared port sums every worker (prometheus_client's multiprocess
    # mode): the workers inherit the directory through their environment.
    metrics.prepare_multiprocess(Path(metrics.multiprocess_dir()
                                      or settings.db_path.parent / "metrics"))
    return Supervisor(settings, workers).run()

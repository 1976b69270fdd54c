"""Guardians' devices for bench/attendance.py, in worker processes.

Thousands of python-socketio clients in the process that also drives the teachers saturate
its one event loop (at ~10,000 the clients miss their pings and `follow_feed` acks time
out). Here each worker process holds a share of the guardians as raw Engine.IO 4 /
Socket.IO 5 websockets (the frames python-socketio sends: namespace connect with auth,
`follow_feed` with an ack id, ping/pong), and reports each `notice` it receives to the
driver as (student id, receipt time). `time.perf_counter()` is CLOCK_MONOTONIC on Linux,
one clock for every process of the machine, so the driver subtracts its own send times.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from bench._rawsio import RawSocketIO

NS = "/attendance"


async def raw_guardian(http: aiohttp.ClientSession, url: str, token: str,
                       report: Callable[[int], None]) -> RawSocketIO:
    """A guardian's device on the minimal Socket.IO client (`bench/_rawsio.py`): follows its
    feed and reports the student of each `notice` it receives."""
    def on_event(name: str, payload: Any) -> None:
        if name == "notice":
            report(payload.get("student_id", -1))

    return await RawSocketIO.connect(http, url, NS, token, "follow_feed", {}, on_event,
                                     timeout_s=60)


def worker_main(conn: Connection, url: str, tokens: list[str], concurrency: int) -> None:
    import uvloop

    uvloop.run(_worker(conn, url, tokens, concurrency))


async def _worker(conn: Connection, url: str, tokens: list[str], concurrency: int) -> None:
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    gate = asyncio.Semaphore(concurrency)
    lock = threading.Lock()

    def report(student_id: int) -> None:
        t = time.perf_counter()
        with lock:
            conn.send(("notice", student_id, t))

    async def one(token: str) -> RawSocketIO | str:
        async with gate:
            try:
                return await raw_guardian(http, url, token, report)
            except Exception as exc:  # counted by the driver
                return repr(exc)[:200]

    results = await asyncio.gather(*(one(t) for t in tokens))
    clients = [r for r in results if isinstance(r, RawSocketIO)]
    errors = [r for r in results if isinstance(r, str)]
    # No collector pauses over thousands of clients in the measured window (a gen-2 pass
    # here took 250-500 ms and showed up as server latency): the run is short and bounded.
    gc.collect()
    gc.freeze()
    gc.disable()
    with lock:
        conn.send(("ready", len(clients), errors[:3], len(errors)))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, conn.recv)  # "stop"
    await asyncio.gather(*(c.disconnect() for c in clients))
    await http.close()
    with lock:
        conn.send(("done",))


class GuardianPool:
    """Worker processes holding the guardians' sockets; `on_notice(student_id, t)` is called
    in the driver's loop for each notice any of them receives."""

    def __init__(self, url: str, tokens: list[str], workers: int,
                 on_notice: Callable[[int, float], None], concurrency: int = 64) -> None:
        self.url, self.tokens, self.workers = url, tokens, max(1, workers)
        self.on_notice = on_notice
        self.concurrency = concurrency
        self.procs: list[Any] = []
        self.conns: list[Connection] = []
        self.connected = 0
        self.errors: list[str] = []
        self.error_count = 0

    async def start(self) -> None:
        ctx = mp.get_context("spawn")
        loop = asyncio.get_running_loop()
        ready: list[asyncio.Future[None]] = []
        for i in range(self.workers):
            parent, child = ctx.Pipe()
            share = self.tokens[i::self.workers]
            p = ctx.Process(target=worker_main, args=(child, self.url, share,
                                                      self.concurrency), daemon=True)
            p.start()
            child.close()
            self.procs.append(p)
            self.conns.append(parent)
            fut: asyncio.Future[None] = loop.create_future()
            ready.append(fut)
            threading.Thread(target=self._pump, args=(parent, loop, fut), daemon=True).start()
        await asyncio.gather(*ready)

    def _pump(self, conn: Connection, loop: asyncio.AbstractEventLoop,
              ready: asyncio.Future[None]) -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                loop.call_soon_threadsafe(lambda: ready.done() or ready.set_exception(
                    RuntimeError("a guardian worker died")))
                return
            if msg[0] == "notice":
                loop.call_soon_threadsafe(self.on_notice, msg[1], msg[2])
            elif msg[0] == "ready":
                def done(m: Any = msg) -> None:
                    self.connected += m[1]
                    self.errors += m[2]
                    self.error_count += m[3]
                    if not ready.done():
                        ready.set_result(None)
                loop.call_soon_threadsafe(done)
            elif msg[0] == "done":
                return

    async def stop(self) -> None:
        for c in self.conns:
            with contextlib.suppress(Exception):
                c.send("stop")
        loop = asyncio.get_running_loop()
        for p in self.procs:
            await loop.run_in_executor(None, p.join, 30)
            if p.is_alive():
                p.kill()

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

"""Issue #13 items 3–4 measured: what a hostile pupil costs the server on `/yjs`, before and
after the hardening, in the same run.

    .venv/bin/python -m bench.yjs_attacks [--baseline-ref 68e92c9] [--entries 200000]

Two servers, one after the other, each its own process on its own copy of one seeded demo
database: the code of `--baseline-ref` (checked out in a temporary git worktree: the server
before the fix) and the working tree's. Against each:

1. **Awareness flood**: a pupil of a class the course is shared with *read-only* sends
   `--entries` awareness entries (distinct client ids, frames of 2,000) on one connection.
   Measured: server RSS before and after, and the size of the awareness a newcomer receives
   when it asks (query-awareness) — what every later pupil would download.
2. **A reader that never reads**: on a course of ~200 KB, a client on a bare socket
   (`tests/coursedocs/rawws.py`, 4 KB receive buffer) asks for the whole document (sync
   step 1 with an empty state vector) 50 times a second for `--seconds`, never reading.
   Measured: peak server RSS during the attack, RSS 3 s after the socket closed, and when the
   server cut it off.
3. Throughout 2, `/healthz` is probed every 100 ms: its p50 and worst latency.

RSS is VmRSS of the server's process; a Python process does not give memory back to the
system eagerly, so "after" shows what stays held, as an operator's graph would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from bench.boards import (
    CHEAP_KDF,
    ROOT,
    Server,
    free_port,
    log_tail,
    login,
    proc_rss_mib,
    seed_demo,
    stop_server,
)
from realtime.coursedocs import protocol as wire
from tests.coursedocs.rawws import NonReader

STEP1_EMPTY = wire.sync_step1(b"\x00")


@dataclass
class Result:
    system: str
    rss_idle: float = 0.0
    flood_delta: float = 0.0  # MiB held after the awareness flood
    newcomer_bytes: int = 0  # awareness a newcomer downloads
    reader_peak_delta: float = 0.0
    reader_after_delta: float = 0.0
    reader_cut_s: float | None = None
    healthz_idle_ms: float = 0.0
    healthz_p50_ms: float = 0.0
    healthz_max_ms: float = 0.0


def spawn(name: str, cwd: Path, env: dict[str, str], log: Path) -> Server:
    """`python -m realtime serve` from `cwd`: that tree's `realtime` package is the one run."""
    port = free_port()
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "realtime", "serve", "--port", str(port)],
                                cwd=cwd, env={**env, "PYTHONPATH": str(cwd)}, stdout=fh,
                                stderr=subprocess.STDOUT)
    return Server(name, proc, f"http://127.0.0.1:{port}", log)


def worktree(ref: str, path: Path | None, remove: bool = False) -> None:
    if remove:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT,
                       capture_output=True)
    else:
        subprocess.run(["git", "worktree", "add", "--detach", str(path), ref], cwd=ROOT,
                       check=True, capture_output=True)


async def start(name: str, cwd: Path, env: dict[str, str], log: Path) -> Server:
    server = spawn(name, cwd, env, log)
    proc = server.proc
    assert proc is not None
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{server.url}/healthz") as r:
                    if r.status == 200:
                        return server
            await asyncio.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"{name} did not start:\n{log_tail(log)}")


def pick(accounts: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], str]:
    teacher = next(a for a in accounts if a["role"] == "teacher" and a["classes"])
    cls = teacher["classes"][0]
    pupil = next(a for a in accounts if a["role"] == "student" and a["classes"] == [cls]
                 and a["school"] == teacher["school"])
    return teacher, pupil, cls


async def prepare(http: aiohttp.ClientSession, url: str, accounts: list[dict[str, Any]]
                  ) -> tuple[str, str, int]:
    """A course of ~200 KB shared read-only with the teacher's first class."""
    teacher, pupil, cls = pick(accounts)
    t, p = await login(http, url, teacher), await login(http, url, pupil)
    h = {"Authorization": f"Bearer {t}"}
    async with http.post(f"{url}/api/docs", json={"title": "Cours attaqué"}, headers=h) as r:
        doc_id = (await r.json())["id"]
    async with http.get(f"{url}/api/classes", headers=h) as r:
        class_id = next(c["id"] for c in (await r.json())["classes"] if c["name"] == cls)
    async with http.put(f"{url}/api/docs/{doc_id}/access", headers=h,
                        json={"classes": [{"id": class_id, "mode": "read"}]}) as r:
        assert r.status == 200, await r.text()
    doc = Doc()
    frag = doc.get("prosemirror", type=XmlFragment)
    for i in range(4):
        para = frag.children.append(XmlElement("paragraph"))
        para.children.append(XmlText(f"{i} " + "La Révolution française, 1789. " * 1600))
    ws = await http.ws_connect(f"{url.replace('http', 'ws', 1)}/yjs/{doc_id}?token={t}")
    await ws.send_bytes(wire.sync_update(doc.get_update()))
    await asyncio.sleep(1.0)
    await ws.close()
    return t, p, doc_id


async def newcomer_awareness(http: aiohttp.ClientSession, ws_url: str) -> int:
    """Bytes of awareness a fresh client receives on joining and asking once."""
    got = 0
    ws = await http.ws_connect(ws_url, max_msg_size=0)
    await ws.send_bytes(wire.query_awareness())
    end = time.monotonic() + 3
    while time.monotonic() < end:
        try:
            msg = await asyncio.wait_for(ws.receive(), end - time.monotonic())
        except TimeoutError:
            break
        if msg.type is not aiohttp.WSMsgType.BINARY:
            break
        if msg.data[:1] == bytes([wire.MessageType.AWARENESS]):
            got += len(msg.data)
    await ws.close()
    return got


async def probe(url: str, stop: asyncio.Event, out: list[float]) -> None:
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            t0 = time.perf_counter()
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(f"{url}/healthz", timeout=aiohttp.ClientTimeout(10)) as r:
                    await r.read()
            out.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.1)


async def attack(server: Server, accounts: list[dict[str, Any]], args: argparse.Namespace
                 ) -> Result:
    assert server.proc is not None
    pid = server.proc.pid
    res = Result(server.name)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        teacher, pupil, doc_id = await prepare(http, server.url, accounts)
        ws_base = f"{server.url.replace('http', 'ws', 1)}/yjs/{doc_id}"
        idle: list[float] = []
        stop = asyncio.Event()
        prober = asyncio.create_task(probe(server.url, stop, idle))
        await asyncio.sleep(1.0)
        stop.set()
        await prober
        res.healthz_idle_ms = statistics.median(idle)

        # 1. The awareness flood, from a read-only pupil (their socket stays open).
        res.rss_idle = proc_rss_mib(pid)
        flood = await http.ws_connect(f"{ws_base}?token={pupil}")
        for start_id in range(0, args.entries, 2000):
            entries = [wire.AwarenessEntry(10_000 + i, 1, f'{{"user":{{"name":"x{i}"}}}}')
                       for i in range(start_id, min(start_id + 2000, args.entries))]
            if flood.closed:
                break
            with contextlib.suppress(ConnectionError):
                await flood.send_bytes(wire.awareness_message(wire.encode_awareness(entries)))
            await asyncio.sleep(0.03)  # under the frame rate limit: the flood is "legal"
        await asyncio.sleep(1.0)
        res.flood_delta = proc_rss_mib(pid) - res.rss_idle
        res.newcomer_bytes = await newcomer_awareness(http, f"{ws_base}?token={teacher}")
        await flood.close()
        await asyncio.sleep(1.0)

        # 2. + 3. The reader that never reads, /healthz probed meanwhile.
        before = proc_rss_mib(pid)
        lat: list[float] = []
        stop = asyncio.Event()
        prober = asyncio.create_task(probe(server.url, stop, lat))
        reader = await NonReader(f"{ws_base}?token={pupil}").connect()
        peak, t0 = before, time.monotonic()
        while time.monotonic() - t0 < args.seconds:
            if not await reader.send(STEP1_EMPTY):
                res.reader_cut_s = time.monotonic() - t0
                break
            peak = max(peak, proc_rss_mib(pid))
            await asyncio.sleep(0.02)
        reader.close()
        await asyncio.sleep(3.0)
        stop.set()
        await prober
        res.reader_peak_delta = peak - before
        res.reader_after_delta = proc_rss_mib(pid) - before
        res.healthz_p50_ms = statistics.median(lat)
        res.healthz_max_ms = max(lat)
    return res


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"


def table(before: Result, after: Result, args: argparse.Namespace) -> str:
    rows = [
        ("RSS idle, MiB", f"{before.rss_idle:.0f}", f"{after.rss_idle:.0f}"),
        (f"RSS held after {args.entries:,} awareness entries, MiB",
         f"+{before.flood_delta:.1f}", f"+{after.flood_delta:.1f}"),
        ("awareness a newcomer downloads, bytes", f"{before.newcomer_bytes:,}",
         f"{after.newcomer_bytes:,}"),
        ("non-reader: peak RSS growth, MiB", f"+{before.reader_peak_delta:.1f}",
         f"+{after.reader_peak_delta:.1f}"),
        ("non-reader: RSS held 3 s after close, MiB", f"+{before.reader_after_delta:.1f}",
         f"+{after.reader_after_delta:.1f}"),
        ("non-reader cut off after, s",
         "never" if before.reader_cut_s is None else f"{before.reader_cut_s:.1f}",
         "never" if after.reader_cut_s is None else f"{after.reader_cut_s:.1f}"),
        ("/healthz idle p50, ms", f"{before.healthz_idle_ms:.1f}", f"{after.healthz_idle_ms:.1f}"),
        ("/healthz during attack p50, ms", f"{before.healthz_p50_ms:.1f}",
         f"{after.healthz_p50_ms:.1f}"),
        ("/healthz during attack worst, ms", f"{before.healthz_max_ms:.1f}",
         f"{after.healthz_max_ms:.1f}"),
    ]
    lines = [f"before = {args.baseline_ref}, after = working tree; {args.entries:,} awareness "
             f"entries; non-reader {args.seconds:.0f} s at 50 requests/s on a ~200 KB course",
             "| measure | before | after | after / before |", "|---|---|---|---|"]
    for name, b, a in rows:
        try:
            r = ratio(float(a.strip("+").replace(",", "")), float(b.strip("+").replace(",", "")))
        except ValueError:
            r = ""
        lines.append(f"| {name} | {b} | {a} | {r} |")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> tuple[Result, Result]:
    with tempfile.TemporaryDirectory(prefix="bench-yjs-") as tmp_s:
        tmp = Path(tmp_s)
        db, accounts = seed_demo(tmp)
        old = tmp / "baseline"
        worktree(args.baseline_ref, old)
        results = []
        try:
            for name, cwd in ((f"before ({args.baseline_ref})", old), ("after", ROOT)):
                copy = tmp / f"{cwd.name}.sqlite3"
                shutil.copy(db, copy)
                env = {**CHEAP_KDF, "REALTIME_DB": str(copy), "REALTIME_LOG_LEVEL": "WARNING",
                       "REALTIME_SECRET": secrets.token_urlsafe(32), "PATH": "/usr/bin:/bin"}
                server = await start(name, cwd, env, tmp / f"{cwd.name}.log")
                try:
                    results.append(await attack(server, accounts, args))
                finally:
                    stop_server(server)
        finally:
            worktree(args.baseline_ref, old, remove=True)
    return results[0], results[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-ref", default="68e92c9",
                        help="git ref of the server before the fix (default: issue #13's)")
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    before, after = asyncio.run(run(args))
    print(table(before, after, args))


if __name__ == "__main__":
    main()

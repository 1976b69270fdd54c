"""Course documents under load: D documents × K concurrent editors replaying a typing trace.

    .venv/bin/python -m bench.docs [--docs 10] [--editors 5] [--rate 8] [--seconds 15]

The same run measures two servers, one after the other, each in its own process (so its CPU
and VmRSS are its own), driven by the very same clients over the same transport (aiohttp
websockets, one y-protocols message per frame):

- the ENT server (`python -m realtime serve`, demo data seeded for the run): documents made
  with `POST /api/docs`, editors on `/yjs/<id>?token=…`; every update is appended to SQLite
  before it is relayed;
- pycrdt-websocket's `WebsocketServer` (`bench/pycrdt_ws_server.py`), in memory, no store.

The trace (no public trace ships with the project, so it is generated, seeded, the same for
both servers): editor 0 first writes an introduction paragraph; then every editor types at
`--rate` keystrokes per second for the window, each keystroke one Yjs update, as a
y-prosemirror editor sends them: 80 % in its own paragraph, 20 % in the shared introduction
(concurrent inserts in one text), of which 85 % insert one character of French prose (with
accents), 10 % delete one character, 5 % start a new paragraph. A warm-up of 2 s is excluded.

Latency = receipt by another editor − send by the author, on the one clock of this process:
the author notes (its client id, the edit's first clock); a receiver reads the update's
update's header (client id, first clock) to know which edit it carries (delete-only
updates carry no such key and are not timed). Memory per open document is
(server RSS with every document open and its editors connected − RSS before) / D.
At the end every editor of a document must hold the same content (`converged`).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from bench.boards import (
    CHEAP_KDF,
    login,
    proc_cpu_s,
    proc_rss_mib,
    seed_demo,
    start_server,
    stop_server,
)
from realtime.coursedocs import protocol as wire

WARMUP_S = 2.0
PROSE = ("Les élèves étudient la Révolution française ; en 1789, les États généraux se "
         "réunissent à Versailles. Où était-ce ? Déjà l'été, forêt, maïs, garçon, Noël. ")


def edit_key(update: bytes) -> tuple[int, int] | None:
    """(client id, first clock) of the edit an update carries, from the v1 update header
    (clients, then structs, client, clock); None for a delete-only update."""
    r = wire.Reader(update)
    if r.var_uint() == 0:
        return None
    r.var_uint()  # number of structs
    return r.var_uint(), r.var_uint()


@dataclass
class Stats:
    sent: dict[tuple[int, int], float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    sent_in_window: int = 0
    delivered_in_window: int = 0
    window: tuple[float, float] = (0.0, 0.0)


class Editor:
    def __init__(self, http: aiohttp.ClientSession, url: str, stats: Stats, seed: int) -> None:
        self.http, self.url, self.stats = http, url, stats
        self.doc = Doc()
        self.frag = self.doc.get("prosemirror", type=XmlFragment)
        self.rng = random.Random(seed)
        self.own: XmlText | None = None
        self.synced = asyncio.Event()
        self._remote = False
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.doc.observe(self._local)

    def _local(self, event: Any) -> None:
        if self._remote or self.ws is None:
            return
        now = time.perf_counter()
        key = edit_key(event.update)
        if key is not None:
            self.stats.sent[key] = now
        lo, hi = self.stats.window
        if lo <= now < hi:
            self.stats.sent_in_window += 1
        asyncio.get_running_loop().create_task(self.ws.send_bytes(wire.sync_update(event.update)))

    async def connect(self) -> None:
        self.ws = await self.http.ws_connect(self.url, max_msg_size=0)
        await self.ws.send_bytes(wire.sync_step1(self.doc.get_state()))
        self._reader = asyncio.create_task(self._read())
        await asyncio.wait_for(self.synced.wait(), 30)

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.BINARY:
                break
            m = wire.decode(msg.data)
            if m.kind is not wire.MessageType.SYNC:
                continue
            if m.sync is wire.SyncType.STEP1:
                await self.ws.send_bytes(wire.sync_step2(self.doc.get_update(m.payload)))
                continue
            self._remote = True
            try:
                self.doc.apply_update(m.payload)
            finally:
                self._remote = False
            if m.sync is wire.SyncType.STEP2:
                self.synced.set()
                continue
            now = time.perf_counter()
            key = edit_key(m.payload)
            if key is None or key[0] == self.doc.client_id:
                continue  # pycrdt-websocket echoes edits to their author: not a delivery
            sent = self.stats.sent.get(key)
            if sent is not None and self.stats.window[0] <= sent < self.stats.window[1]:
                self.stats.latencies.append(now - sent)
                self.stats.delivered_in_window += 1

    def _paragraph(self) -> XmlText:
        with self.doc.transaction():
            p = self.frag.children.append(XmlElement("paragraph"))
            return p.children.append(XmlText())

    def keystroke(self) -> None:
        if self.own is None:
            self.own = self._paragraph()
            return
        texts = [c for p in self.frag.children if isinstance(p, XmlElement)
                 for c in p.children if isinstance(c, XmlText)]
        target = texts[0] if texts and self.rng.random() < 0.2 else self.own
        text = str(target)
        roll = self.rng.random()
        if roll < 0.05:
            self.own = self._paragraph()
        elif roll < 0.15 and text:
            i = self.rng.randrange(len(text))
            at = len(text[:i].encode())
            del target[at:at + len(text[i].encode())]
        else:
            i = self.rng.randint(0, len(text))
            target.insert(len(text[:i].encode()), PROSE[len(text) % len(PROSE)])

    def content(self) -> str:
        return str(self.frag)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


@dataclass
class Result:
    system: str
    updates_in: float
    deliveries: float
    p50: float
    p99: float
    server_cpu: float
    rss_per_doc: float
    converged: bool
    client_cpu: float = 0.0
    load: float = 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.inf
    values = sorted(values)
    return 1000 * values[min(len(values) - 1, int(q * len(values)))]


async def measure(name: str, server: Any, urls: list[str], args: argparse.Namespace) -> Result:
    stats = Stats()
    rss0 = proc_rss_mib(server.proc.pid)
    connector = aiohttp.TCPConnector(limit=0)  # one websocket per editor, no pool cap
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                     connector=connector) as http:
        groups = []
        for d, url in enumerate(urls):
            eds = [Editor(http, url, stats, seed=1000 * d + k) for k in range(args.editors)]
            for e in eds:
                await e.connect()
            with eds[0].doc.transaction():  # the introduction, before everyone types
                p = eds[0].frag.children.append(XmlElement("heading", {"level": 1}))
                p.children.append(XmlText("Introduction : "))
            groups.append(eds)
        await asyncio.sleep(0.5)
        start = time.perf_counter()
        stats.window = (start + WARMUP_S, start + WARMUP_S + args.seconds)

        async def type_(e: Editor, offset: float) -> None:
            tick = 1 / args.rate
            n = 0
            await asyncio.sleep(offset)
            while time.perf_counter() < stats.window[1]:
                e.keystroke()
                n += 1
                await asyncio.sleep(max(0.0, start + offset + n * tick - time.perf_counter()))

        tasks = [asyncio.create_task(type_(e, (i % 97) / 97 / args.rate))
                 for i, e in enumerate(e for g in groups for e in g)]
        await asyncio.sleep(WARMUP_S)
        cpu0, client0 = proc_cpu_s(server.proc.pid), time.process_time()
        await asyncio.gather(*tasks)
        cpu1, client1 = proc_cpu_s(server.proc.pid), time.process_time()
        rss1 = proc_rss_mib(server.proc.pid)
        deadline = time.perf_counter() + 15
        converged = False
        while time.perf_counter() < deadline:
            converged = all(len({e.content() for e in g}) == 1 for g in groups)
            if converged:
                break
            await asyncio.sleep(0.2)
        for g in groups:
            for e in g:
                await e.close()
    return Result(name, stats.sent_in_window / args.seconds,
                  stats.delivered_in_window / args.seconds, percentile(stats.latencies, 0.5),
                  percentile(stats.latencies, 0.99), 100 * (cpu1 - cpu0) / args.seconds,
                  (rss1 - rss0) / len(urls), converged,
                  100 * (client1 - client0) / args.seconds, os.getloadavg()[0])


async def run_ent(tmp: Path, db: Path, accounts: list[dict[str, Any]], rnd: int,
                  args: argparse.Namespace) -> Result:
    env = {**CHEAP_KDF, "REALTIME_DB": str(db), "REALTIME_SECRET": secrets.token_urlsafe(32),
           "REALTIME_LOG_LEVEL": "WARNING", "REALTIME_DOCS_FRAMES_PER_S": "1000"}
    server = await start_server("ENT server", ["-m", "realtime", "serve"], env,
                                tmp / f"ent-{rnd}.log")
    try:
        # Documents spread over the teachers (each may create 30 a minute).
        teachers = [a for a in accounts if a["role"] == "teacher"]
        urls = []
        ws = server.url.replace("http", "ws", 1)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            tokens: dict[str, str] = {}
            for d in range(args.docs):
                teacher = teachers[d % len(teachers)]
                if teacher["login"] not in tokens:
                    tokens[teacher["login"]] = await login(http, server.url, teacher)
                token = tokens[teacher["login"]]
                async with http.post(f"{server.url}/api/docs",
                                     json={"title": f"Banc d'essai {rnd}.{d + 1}"},
                                     headers={"Authorization": f"Bearer {token}"}) as r:
                    urls.append(f"{ws}/yjs/{(await r.json())['id']}?token={token}")
        return await measure("ENT server", server, urls, args)
    finally:
        stop_server(server)


async def run_baseline(tmp: Path, rnd: int, args: argparse.Namespace) -> Result:
    server = await start_server("pycrdt-websocket", ["-m", "bench.pycrdt_ws_server"], {},
                                tmp / f"pycrdt-{rnd}.log")
    try:
        ws = server.url.replace("http", "ws", 1)
        return await measure("pycrdt-websocket", server,
                             [f"{ws}/yjs/bench-{d}" for d in range(args.docs)], args)
    finally:
        stop_server(server)


async def run(args: argparse.Namespace) -> list[list[Result]]:
    """`--rounds` alternations ENT / baseline (the order swapped every round), so that the
    load of a shared machine weighs on both alike."""
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-docs-") as tmp_s:
        tmp = Path(tmp_s)
        db, accounts = seed_demo(tmp)
        for rnd in range(args.rounds):
            if rnd % 2 == 0:
                ent = await run_ent(tmp, db, accounts, rnd, args)
                base = await run_baseline(tmp, rnd, args)
            else:
                base = await run_baseline(tmp, rnd, args)
                ent = await run_ent(tmp, db, accounts, rnd, args)
            rounds.append([ent, base])
    return rounds


def median_ratio(rounds: list[list[Result]], attr: str) -> str:
    ratios = sorted(getattr(e, attr) / getattr(b, attr) for e, b in rounds
                    if getattr(b, attr) and math.isfinite(getattr(e, attr))
                    and math.isfinite(getattr(b, attr)))
    return f"{ratios[len(ratios) // 2]:.2f}×" if ratios else "n/a"


def table(rounds: list[list[Result]], args: argparse.Namespace) -> str:
    results = [r for pair in rounds for r in pair]
    head = ("system", "updates/s in", "relayed/s", "p50 ms", "p99 ms", "server CPU %",
            "MiB / open doc", "converged", "bench client CPU %", "machine load (1 min)")
    rows = [[r.system, f"{r.updates_in:,.0f}", f"{r.deliveries:,.0f}", f"{r.p50:.1f}",
             f"{r.p99:.1f}", f"{r.server_cpu:.0f}", f"{r.rss_per_doc:.2f}",
             "yes" if r.converged else "NO", f"{r.client_cpu:.0f}", f"{r.load:.1f}"]
            for r in results]
    rows.append(["median ratio ENT / pycrdt-websocket",
                 *(median_ratio(rounds, a) for a in ("updates_in", "deliveries", "p50", "p99",
                                                     "server_cpu", "rss_per_doc")),
                 "", "", ""])
    lines = [f"{args.docs} documents × {args.editors} editors × {args.rate} keystrokes/s, "
             f"{args.seconds} s window, {args.rounds} rounds",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=10)
    parser.add_argument("--editors", type=int, default=5)
    parser.add_argument("--rate", type=float, default=8.0, help="keystrokes/s per editor")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternations ENT / baseline; the ratios are their medians")
    args = parser.parse_args()
    print(table(asyncio.run(run(args)), args))


if __name__ == "__main__":
    main()

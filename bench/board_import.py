"""Worksheets on the board: PDF import speed and memory, and joining a board of background
pages.

    .venv/bin/python -m bench.board_import [--pages 40] [--pupils 30] [--board-pages 20]

Three tables, each against a baseline measured in the same run:

1. Rendering alone, each in its own process (time, pages/s, peak memory VmHWM): the ENT's
   `rasterize.render_pdf` (pypdfium2, 2880 × 1620 JPEG frames) against poppler's `pdftoppm
   -jpeg` at the same height (1620 px), on the same reportlab worksheet of `--pages` pages.
2. The whole import through the server: `POST /api/boards/{id}/import` of that PDF until its
   answer (upload, rendering, storing, one `add_page` op per page), pages/s, and the server's
   resident memory before and at its peak (sampled every 20 ms), with a pupil joined, who
   receives every page and the progress.
3. `--pupils` pupils joining at once a board of `--board-pages` imported pages, against the
   same board with blank pages: the `join` answer's time (p50, max) and size, and what a
   pupil then downloads for the background of the page shown (the JPEG).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from bench.boards import (
    CHEAP_KDF,
    ROOT,
    login,
    proc_rss_mib,
    seed_demo,
    start_server,
    stop_server,
)

RENDER_ENT = """
import sys, time
from realtime.boards.rasterize import render_pdf
data = open(sys.argv[1], 'rb').read()
sizes = []
t0 = time.perf_counter()
render_pdf(data, lambda i, n, jpeg: sizes.append(len(jpeg)))
took = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:'))
print(took, len(sizes), sum(sizes), hwm)
"""


def worksheet(pages: int) -> bytes:
    """The tests' worksheet (a band, a title, twelve lines of exercises per A4 page)."""
    sys.path.insert(0, str(ROOT))
    from tests.boards.pdfs import worksheet_pdf

    return worksheet_pdf(pages, "Banc d'essai")


def render_rows(pdf: Path, pages: int) -> list[list[str]]:
    out = subprocess.run([sys.executable, "-c", RENDER_ENT, str(pdf)], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()
    took, n, size, hwm = float(out[0]), int(out[1]), int(out[2]), int(out[3])
    rows = [["pypdfium2 (ENT rasterize)", n, took, n / took, hwm / 1024, size / n / 1024]]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True);"
                 " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        maxrss = subprocess.run(
            [sys.executable, "-c", probe, "pdftoppm", "-jpeg", "-jpegopt", "quality=85",
             "-scale-to", "1620", str(pdf), f"{tmp}/p"],
            check=True, capture_output=True, text=True).stdout.strip()
        took = time.perf_counter() - t0
        files = list(Path(tmp).iterdir())
        size = sum(f.stat().st_size for f in files)
    rows.append(["pdftoppm (poppler, baseline)", len(files), took, len(files) / took,
                 int(maxrss) / 1024, size / len(files) / 1024])
    ratio = rows[0][3] / rows[1][3]
    table = [[r[0], str(r[1]), f"{r[2]:.2f}", f"{r[3]:.1f}", f"{r[4]:.0f}", f"{r[5]:.0f}"]
             for r in rows]
    table.append(["ratio ENT / poppler", "", "", f"{ratio:.2f}×",
                  f"{rows[0][4] / rows[1][4]:.2f}×", ""])
    return table


async def peak_rss(pid: int, stop: asyncio.Event) -> float:
    peak = 0.0
    while not stop.is_set():
        peak = max(peak, proc_rss_mib(pid))
        await asyncio.sleep(0.02)
    return peak


class Teacher:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.headers = {"Authorization": f"Bearer {token}"}

    async def board(self, http: aiohttp.ClientSession, class_id: int, title: str) -> int:
        async with http.post(f"{self.url}/api/boards", headers=self.headers,
                             json={"title": title, "class_id": class_id}) as r:
            return (await r.json())["id"]

    async def upload(self, http: aiohttp.ClientSession, board: int, pdf: bytes) -> Any:
        form = aiohttp.FormData()
        form.add_field("file", pdf, filename="fiche.pdf", content_type="application/pdf")
        async with http.post(f"{self.url}/api/boards/{board}/import", data=form,
                             headers=self.headers) as r:
            body = await r.json()
            if r.status != 201:
                raise RuntimeError(f"import: {r.status} {body}")
            return body


async def client(url: str, token: str) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(url, namespaces=["/boards"], transports=["websocket"],
                      auth={"token": token}, wait_timeout=10)
    return sio


async def run(args: argparse.Namespace, tmp: Path) -> None:
    pdf = worksheet(args.pages)
    pdf_path = tmp / "fiche.pdf"
    pdf_path.write_bytes(pdf)
    print(f"Rendering {args.pages} pages, each in its own process…", file=sys.stderr)
    table1 = render_rows(pdf_path, args.pages)

    print("Seeding the demo data…", file=sys.stderr)
    db, accounts = seed_demo(tmp)
    server = await start_server("ENT", ["-m", "realtime", "--db", str(db), "serve"],
                                {**CHEAP_KDF, "REDIS_URL": ""}, tmp / "server.log")
    assert server.proc is not None
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            teacher_acct = next(a for a in accounts if a["role"] == "teacher" and a["classes"])
            cname = teacher_acct["classes"][0]
            pupils = [a for a in accounts if a["role"] == "student"
                      and a["school"] == teacher_acct["school"] and a["classes"][0] == cname]
            teacher = Teacher(server.url, await login(http, server.url, teacher_acct))
            async with http.get(f"{server.url}/api/classes", headers=teacher.headers) as r:
                class_id = next(c["id"] for c in (await r.json())["classes"]
                                if c["name"] == cname)
            tokens = [await login(http, server.url, p) for p in pupils]
            tokens = [tokens[i % len(tokens)] for i in range(args.pupils)]

            # 2. The whole import, a pupil watching.
            board = await teacher.board(http, class_id, "Import")
            watcher = await client(server.url, tokens[0])
            progress: list[Any] = []
            watcher.on("import", progress.append, namespace="/boards")
            await watcher.call("join", {"board_id": board}, namespace="/boards")
            rss0 = proc_rss_mib(server.proc.pid)
            stop = asyncio.Event()
            sampler = asyncio.create_task(peak_rss(server.proc.pid, stop))
            t0 = time.perf_counter()
            body = await teacher.upload(http, board, pdf)
            took = time.perf_counter() - t0
            stop.set()
            peak = await sampler
            for _ in range(100):
                if len(progress) == args.pages:
                    break
                await asyncio.sleep(0.05)
            await watcher.disconnect()
            n = len(body["pages"])
            table2 = [["POST …/import (ENT)", str(n), f"{took:.2f}", f"{n / took:.1f}",
                       f"{rss0:.0f}", f"{peak:.0f}", f"{len(progress)}"]]

            # 4. Another class's board on the same server while a PDF is imported: the ack
            # latency of its teacher's ops, quiet server (baseline) against during an import.
            other = next(a for a in accounts if a["role"] == "teacher" and a["classes"]
                         and a["login"] != teacher_acct["login"])
            other_t = Teacher(server.url, await login(http, server.url, other))
            async with http.get(f"{server.url}/api/classes", headers=other_t.headers) as r:
                other_class = (await r.json())["classes"][0]["id"]
            busy_board = await other_t.board(http, other_class, "Autre classe")
            drawer = await client(server.url, other_t.token)
            await drawer.call("join", {"board_id": busy_board}, namespace="/boards")
            table4 = []
            for label, importing in (("quiet server (baseline)", False),
                                     ("during a 40-page import", True)):
                target = await teacher.board(http, class_id, f"Import {label}")
                job = (asyncio.create_task(teacher.upload(http, target, pdf)) if importing
                       else None)
                acks = await ack_latencies(drawer, busy_board, seconds=3.0, rate=30,
                                           prefix="q" if not importing else "i")
                if job is not None:
                    await job
                acks.sort()
                table4.append([label, str(len(acks)), f"{acks[len(acks) // 2]:.1f}",
                               f"{acks[int(len(acks) * 0.99) - 1]:.1f}", f"{acks[-1]:.1f}"])
            await drawer.disconnect()
            table4.append(["ratio import / quiet", "",
                           f"{float(table4[1][2]) / float(table4[0][2]):.2f}×",
                           f"{float(table4[1][3]) / float(table4[0][3]):.2f}×", ""])

            # 3. Pupils joining a board of background pages, and of blank pages.
            rows3 = []
            # (a first round, not shown, warms the server's paths up for both)
            for label, make in (("warm-up", "blank"), ("blank pages (baseline)", "blank"),
                                ("background pages (ENT)", "image")):
                board = await teacher.board(http, class_id, f"Join {make}")
                if make == "image":
                    await teacher.upload(http, board, worksheet(args.board_pages))
                else:
                    t = await client(server.url, teacher.token)
                    await t.call("join", {"board_id": board}, namespace="/boards")
                    for i in range(args.board_pages):
                        await t.call("op", {"board_id": board, "op": {
                            "type": "add_page", "page": {"id": f"b{i}", "background": "blank"}}},
                            namespace="/boards")
                    await t.disconnect()
                clients = await asyncio.gather(*(client(server.url, tok) for tok in tokens))

                async def join(c: socketio.AsyncClient, board: int = board) -> tuple[float, int]:
                    t1 = time.perf_counter()
                    answer = await c.call("join", {"board_id": board}, namespace="/boards")
                    return time.perf_counter() - t1, len(json.dumps(answer).encode())

                results = await asyncio.gather(*(join(c) for c in clients))
                answer = await clients[0].call("join", {"board_id": board}, namespace="/boards")
                last = answer["snapshot"]["pages"][-1]
                bg = 0
                if last.get("image"):
                    async with http.get(f"{server.url}{last['image']}",
                                        headers={"Authorization": f"Bearer {tokens[0]}"}) as r:
                        bg = len(await r.read())
                for c in clients:
                    await c.disconnect()
                times = sorted(r[0] * 1000 for r in results)
                sizes = [r[1] for r in results]
                rows3.append([label, str(len(answer["snapshot"]["pages"])), str(len(clients)),
                              f"{statistics.median(times):.1f}", f"{times[-1]:.1f}",
                              f"{sizes[0] / 1024:.1f}", f"{bg / 1024:.0f}",
                              times, sizes])
            rows3 = rows3[1:]
            ratio = ["ratio ENT / blank", "", "",
                     f"{statistics.median(rows3[1][7]) / statistics.median(rows3[0][7]):.2f}×",
                     f"{rows3[1][7][-1] / rows3[0][7][-1]:.2f}×",
                     f"{rows3[1][8][0] / rows3[0][8][0]:.2f}×", ""]
            table3 = [r[:7] for r in rows3] + [ratio]
    finally:
        stop_server(server)
        problems = server.log_problems()
        if problems:
            print("server log:", *problems[:10], sep="\n  ", file=sys.stderr)

    show(f"1. Rendering a {args.pages}-page A4 worksheet",
         ["renderer", "pages", "seconds", "pages/s", "peak MiB", "KiB/page"], table1)
    show("2. The import through the server (upload → every page added, one pupil joined)",
         ["request", "pages", "seconds", "pages/s", "server RSS MiB before", "peak MiB",
          "progress events"], table2)
    show("4. Another board's ops on the same server (acked add, 30/s for 3 s)",
         ["while", "ops", "ack p50 ms", "ack p99 ms", "ack max ms"], table4)
    show(f"3. {args.pupils} pupils join at once a board of {args.board_pages} pages",
         ["board", "pages", "pupils", "join p50 ms", "join max ms", "join answer KiB",
          "background KiB (page shown)"], table3)


async def ack_latencies(sio: socketio.AsyncClient, board: int, seconds: float, rate: int,
                        prefix: str) -> list[float]:
    """Acked `add`s at `rate` per second for `seconds`: each one's ack latency in ms."""
    out: list[float] = []
    t_end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        ack = await sio.call("op", {"board_id": board, "op": {"type": "add", "item": {
            "id": f"{prefix}{i}", "kind": "stroke", "page_id": "p1",
            "points": [[i % 1900, 50], [i % 1900 + 5, 60]]}}}, namespace="/boards")
        took = time.perf_counter() - t0
        if ack.get("ok"):
            out.append(took * 1000)
        i += 1
        await asyncio.sleep(max(0.0, 1 / rate - took))
    return out


def show(title: str, head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=False)]
    line = lambda cells: "| " + " | ".join(  # noqa: E731
        str(c).ljust(w) if i == 0 else str(c).rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=False))) + " |"
    print(f"\n{title}\n")
    print(line(head))
    print("| " + " | ".join(("-" * w) for w in widths) + " |")
    for r in rows:
        print(line(r))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pages", type=int, default=40)
    p.add_argument("--pupils", type=int, default=30)
    p.add_argument("--board-pages", type=int, default=20)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()


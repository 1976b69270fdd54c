"""Course documents through a worker crash: `serve --workers 2` on one port with Redis, a stock
Yjs client (node: yjs + y-websocket), pycrdt and y-py clients co-edit one course in French while
the worker holding some of them is SIGKILLed. The ones it held keep typing offline (Yjs keeps
their edits), reconnect to the same address and resync; the survivor's client types through the
outage. Everyone ends with the same text, every paragraph in it exactly once and each writer's
in the order it typed them, and the stored document (REST, SQLite, fresh readers on the
surviving and on the restarted worker) is that text. A client that died with the worker never
comes back: what the server had relayed of it (so had made durable) is kept all the same."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import pycrdt
import pytest
import y_py as Y
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from realtime.coursedocs import protocol as wire
from tests.conftest import ROOT, wait_until
from tests.coursedocs.conftest import new_doc, teacher_token
from tests.coursedocs.test_socket import stored_text
from tests.scale.conftest import Cluster, Node

pytestmark = pytest.mark.redis

PHRASE = "Les élèves étudient la Révolution française — « Liberté »"
MARKER = re.compile(r"\[([^\]·]+)·(\d+)\]")
NODE_CLIENT = Path(__file__).with_name("yjs_live_client.cjs")
TYPING_EVERY_S = 0.04  # the pace of each writer (a pace, not something waited for)


def line(name: str, i: int) -> str:
    return f"[{name}·{i}] {PHRASE}"


def markers(text: str) -> list[str]:
    """The writer·number of every paragraph of ours in a document text, in document order."""
    return [f"{name}·{i}" for name, i in MARKER.findall(text)]


def marker(text: str) -> str:
    found = markers(text)
    assert len(found) == 1, text
    return found[0]


def worker_of(node: Node, client_port: int) -> int:
    """Which worker holds the server side of the client's connection from `client_port`:
    the socket's inode in /proc/net/tcp, then the worker with that socket among its fds."""
    server_port = int(node.url.rsplit(":", 1)[1])
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            f = row.split()
            if (int(f[1].rsplit(":", 1)[1], 16) == server_port
                    and int(f[2].rsplit(":", 1)[1], 16) == client_port):
                inodes.add(f"socket:[{f[9]}]")
    for pid in node.worker_pids():
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return pid
    raise AssertionError(f"no worker holds the connection from port {client_port}")


class Editor:
    """A Yjs replica that outlives its connections, as an editor tab does: it writes whether
    connected or not, sends its edits while connected, and on (re)connection syncs both ways
    (y-protocols step 1 / step 2), which hands the server whatever it typed offline."""

    def __init__(self, name: str, http: aiohttp.ClientSession, doc_id: int, token: str,
                 changed: asyncio.Event) -> None:
        self.name = name
        self.http = http
        self.path = f"/yjs/{doc_id}?token={token}"
        self.changed = changed
        self.written: list[str] = []  # marker of each paragraph typed, in typing order
        self.offline = 0  # of them, typed with no connection
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.port: int | None = None
        self.synced = False
        self.connections = 0
        self.drops = 0  # connections lost (not closed by us)
        self.text_at_drop: str | None = None
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._remote = False

    # --- per library -------------------------------------------------------------------

    def _hello(self) -> bytes:
        raise NotImplementedError

    def _sync(self, frame: bytes, message: wire.Message) -> bytes | None:
        raise NotImplementedError

    def _write(self, text: str) -> None:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError

    # --- common --------------------------------------------------------------------------

    async def connect(self, base: str) -> Editor:
        ws = await self.http.ws_connect(base.replace("http", "ws", 1) + self.path)
        self.ws, self.synced = ws, False
        self.port = ws.get_extra_info("sockname")[1]
        self.connections += 1
        self._outbox = outbox = asyncio.Queue()
        outbox.put_nowait(self._hello())
        sender = asyncio.create_task(self._send(ws, outbox))
        self._tasks = [sender, asyncio.create_task(self._read(ws, outbox, sender))]
        await wait_until(self.changed, lambda: self.synced, 10)
        return self

    def _local(self, frame: bytes) -> None:
        if not self._remote and self.ws is not None:
            self._outbox.put_nowait(frame)

    async def _send(self, ws: aiohttp.ClientWebSocketResponse,
                    outbox: asyncio.Queue[bytes]) -> None:
        while True:
            frame = await outbox.get()
            try:
                await ws.send_bytes(frame)
            except (ConnectionError, RuntimeError):
                return  # the edits stay in the Doc: the next sync sends them

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, outbox: asyncio.Queue[bytes],
                    sender: asyncio.Task[None]) -> None:
        try:
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.BINARY:
                    break
                message = wire.decode(msg.data)
                if message.kind is not wire.MessageType.SYNC:
                    continue
                self._remote = True
                try:
                    reply = self._sync(msg.data, message)
                finally:
                    self._remote = False
                if reply is not None:
                    outbox.put_nowait(reply)
                if message.sync is wire.SyncType.STEP2:
                    self.synced = True
                self.changed.set()
        finally:
            sender.cancel()
            if self.ws is ws:  # lost, not closed by us
                self.ws, self.synced = None, False
                self.drops += 1
                self.text_at_drop = self.text()
            self.changed.set()

    async def write(self, text: str) -> None:
        if self.ws is None:
            self.offline += 1
        self._write(text)
        self.written.append(marker(text))
        self.changed.set()

    async def close(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            await ws.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


class PycrdtEditor(Editor):
    """pycrdt, with pycrdt's own sync helpers (not the server's encoder).

    Its client id is drawn on 32 bits, as Yjs draws its own: pycrdt's default is a 53-bit id,
    which y-py (yrs 0.16) truncates to 32 bits, so a y-py client that re-sends such a peer's
    content (the step 2 of a reconnection) hands it over as another client's and it appears
    twice (see docs/coursedocs.md, « Compatibility »)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.doc = Doc(client_id=secrets.randbits(32))
        self.frag = self.doc.get("prosemirror", type=XmlFragment)
        self.doc.observe(self._observed)

    def _observed(self, event: Any) -> None:
        if event.update != wire.EMPTY_UPDATE:
            self._local(pycrdt.create_update_message(event.update))

    def _hello(self) -> bytes:
        return pycrdt.create_sync_message(self.doc)

    def _sync(self, frame: bytes, message: wire.Message) -> bytes | None:
        return pycrdt.handle_sync_message(frame[1:], self.doc)

    def _write(self, text: str) -> None:
        with self.doc.transaction():
            p = self.frag.children.append(XmlElement("paragraph"))
            t = p.children.append(XmlText(text))
            t.insert(len(t), " (italique)", attrs={"italic": {}})

    def text(self) -> str:
        return str(self.frag)


class YpyEditor(Editor):
    """y-py; the y-protocols framing by hand (y-py has none)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.doc = Y.YDoc()
        self.root = self.doc.get_xml_element("prosemirror")
        self.doc.observe_after_transaction(self._observed)

    def _observed(self, event: Any) -> None:
        update = event.get_update()
        if update != wire.EMPTY_UPDATE:
            self._local(wire.sync_update(update))

    def _hello(self) -> bytes:
        return wire.sync_step1(Y.encode_state_vector(self.doc))

    def _sync(self, frame: bytes, message: wire.Message) -> bytes | None:
        if message.sync is wire.SyncType.STEP1:
            return wire.sync_step2(Y.encode_state_as_update(self.doc, message.payload))
        Y.apply_update(self.doc, message.payload)
        return None

    def _write(self, text: str) -> None:
        with self.doc.begin_transaction() as t:
            p = self.root.push_xml_element(t, "paragraph")
            p.push_xml_text(t).push(t, text)

    def text(self) -> str:
        """The replica's whole content, rendered as the others render it (y-py prints its
        root element's tag around the fragment)."""
        return str(_fragment_of(Y.encode_state_as_update(self.doc)))


def _fragment_of(update: bytes) -> XmlFragment:
    doc = Doc()
    doc.apply_update(update)
    return doc.get("prosemirror", type=XmlFragment)


class NodeEditor:
    """The stock Yjs client in node (tests/scale/yjs_live_client.cjs): its provider
    reconnects by itself; `on_disconnect` paragraphs are typed the moment it loses the
    connection, so they are offline edits for sure."""

    def __init__(self, name: str, changed: asyncio.Event) -> None:
        self.name = name
        self.changed = changed
        self.written: list[str] = []  # as node reports them typed, in its order
        self.offline = 0
        self.port: int | None = None
        self.connected = False
        self.synced = False
        self.connections = 0
        self.drops = 0
        self.latest = ""  # the fragment, as node last reported it
        self.returncode: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self.stderr = b""

    async def start(self, base: str, doc_id: int, token: str,
                    on_disconnect: list[str]) -> NodeEditor:
        exe = shutil.which("node")
        if exe is None or not (ROOT / "web_client" / "node_modules" / "y-websocket").exists():
            pytest.fail("node and web_client/node_modules are needed "
                        "(cd web_client && npm ci)")
        self._proc = await asyncio.create_subprocess_exec(
            exe, str(NODE_CLIENT), base.replace("http", "ws", 1) + "/yjs", str(doc_id), token,
            f"{self.name} (Yjs) — Élise", json.dumps({"on_disconnect": on_disconnect}),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        self._reader = asyncio.create_task(self._read())
        await wait_until(self.changed, lambda: self.synced, 15)
        return self

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for raw in self._proc.stdout:
            event = json.loads(raw)
            kind = event["event"]
            if kind == "connected":
                self.connected, self.port = True, event["port"]
                self.connections += 1
            elif kind == "synced":
                self.synced = True
            elif kind == "disconnected":
                self.connected = self.synced = False
                self.drops += 1
            elif kind == "wrote":
                self.written.append(marker(event["text"]))
                self.offline += not event["online"]
            elif kind == "text":
                self.latest = event["text"]
            self.changed.set()
        self.changed.set()

    async def _command(self, command: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self._proc.stdin.drain()

    async def write(self, text: str) -> None:
        await self._command({"write": text})

    def text(self) -> str:
        return self.latest

    async def close(self) -> None:
        if self._proc is None:
            return
        if self._proc.returncode is None:
            with contextlib.suppress(ConnectionError):
                await self._command({"quit": True})
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._reader is not None:
            await self._reader
        assert self._proc.stderr is not None
        self.stderr = await self._proc.stderr.read()
        self.returncode = self._proc.returncode


Writer = Editor | NodeEditor


async def typing(writer: Writer, stop: asyncio.Event, until: Callable[[], bool] = bool,
                 start: int = 0) -> int:
    """Type a paragraph every TYPING_EVERY_S until `stop` (or `until()` turns true)."""
    i = start
    while not stop.is_set() and not until():
        await writer.write(line(writer.name, i))
        i += 1
        await asyncio.sleep(TYPING_EVERY_S)
    return i


def texts_of(clients: Iterable[Writer]) -> dict[str, str]:
    return {c.name: c.text() for c in clients}


async def test_a_killed_worker_course_editors_converge(
    cluster: Cluster, demo_accounts: list[dict[str, Any]]
) -> None:
    node = await cluster.node(workers=2)
    assert len(await node.answering_pids()) == 2
    changed = asyncio.Event()
    opened: list[Editor] = []
    yjs = NodeEditor("Yjs", changed)
    async with aiohttp.ClientSession() as http:
        token = await teacher_token(http, node.url, demo_accounts)
        doc_id = (await new_doc(http, node.url, token, "Histoire — la Révolution française"
                                ))["id"]

        async def editor(cls: type[Editor], name: str) -> Editor:
            e = await cls(name, http, doc_id, token, changed).connect(node.url)
            opened.append(e)
            return e

        try:
            # The node client first: its worker is the one to kill. Then pycrdt and y-py
            # clients until that worker holds a pycrdt client that will come back (V), one
            # that never will (Parti) and the y-py client, and the other worker a pycrdt
            # client (S). The kernel spreads connections: extras are closed unused.
            offline_lines = [line("Yjs-horsligne", k) for k in range(2)]
            await yjs.start(node.url, doc_id, token, offline_lines)
            assert yjs.port is not None
            victim = worker_of(node, yjs.port)
            roles: dict[str, Editor] = {}
            for attempt in range(60):
                wanted = [r for r in ("V", "Parti", "S", "y-py") if r not in roles]
                if not wanted:
                    break
                cls: type[Editor] = YpyEditor if wanted == ["y-py"] else PycrdtEditor
                e = await editor(cls, f"essai{attempt}")
                on_victim = worker_of(node, e.port or 0) == victim
                role = next((r for r in wanted if (r == "y-py") == (cls is YpyEditor)
                             and (r == "S") != on_victim), None)
                if role is None:
                    await e.close()
                    opened.remove(e)
                else:
                    e.name = role
                    roles[role] = e
            assert len(roles) == 4, f"the kernel never spread the connections: {roles}"
            v, parti, s, ypy = roles["V"], roles["Parti"], roles["S"], roles["y-py"]
            comeback: list[Editor] = [v, ypy]  # on the victim, will reconnect
            live: list[Editor] = [v, s, ypy]  # the Python clients there at the end
            writers: list[Writer] = [yjs, v, parti, s, ypy]

            # Everyone types; everyone sees everything (the steady state before the crash).
            for i in range(3):
                for w in writers:
                    await w.write(line(w.name, i))
            first = {f"{w.name}·{i}" for w in writers for i in range(3)}
            await wait_until(changed, lambda: all(first <= set(markers(e.text()))
                                                  for e in [yjs, *live, parti]), 10)

            # Everyone keeps typing; the victim worker is killed in the middle of it.
            stop = asyncio.Event()
            loops = {w.name: asyncio.create_task(typing(
                w, stop, (lambda: parti.drops > 0) if w is parti else bool, start=3))
                for w in writers}
            typed_before = {w.name: len(w.written) for w in (v, s, ypy, parti)}
            await wait_until(changed, lambda: all(len(w.written) >= typed_before[w.name] + 4
                                                  for w in (v, s, ypy, parti)), 10)
            assert v.offline == s.offline == ypy.offline == yjs.offline == 0
            os.kill(victim, signal.SIGKILL)
            await wait_until(changed, lambda: all(e.drops == 1 for e in (v, ypy, parti))
                             and yjs.drops == 1, 10)
            # What any client had received of Parti's had been made durable by the server
            # and relayed: acknowledged, so it must survive although Parti never returns.
            acked_parti = {m for e in (v, ypy, s) for m in markers(
                e.text_at_drop if e.text_at_drop is not None else e.text())
                if m.startswith("Parti·")}
            assert {f"Parti·{i}" for i in range(3)} <= acked_parti

            # The outage: S types on the surviving worker, V and y-py type offline; node
            # typed its offline lines the moment it lost the connection.
            s_at_kill = len(s.written)
            await wait_until(changed, lambda: len(s.written) >= s_at_kill + 3
                             and v.offline >= 3 and ypy.offline >= 3, 10)
            assert s.offline == 0
            for e in comeback:  # the same address: the surviving or the restarted worker
                await e.connect(node.url)
            await wait_until(changed, lambda: yjs.synced and yjs.connections == 2, 15)
            assert yjs.offline >= len(offline_lines)
            after = {w.name: len(w.written) for w in (v, s, ypy)}
            await wait_until(changed, lambda: all(len(w.written) >= after[w.name] + 3
                                                  for w in (v, s, ypy)), 10)
            stop.set()
            typed = {name: await task for name, task in loops.items()}
            commanded = typed["Yjs"] + len(offline_lines)
            await wait_until(changed, lambda: len(yjs.written) == commanded, 10)

            # Every client converges on one text: each paragraph once, nothing else.
            expected = Counter(m for w in (yjs, v, s, ypy) for m in w.written)

            def parti_in(text: str) -> Counter[str]:
                return Counter(m for m in markers(text) if m.startswith("Parti·"))

            def converged() -> bool:
                texts = texts_of([yjs, *live])
                text = texts["S"]
                return (len(set(texts.values())) == 1
                        and Counter(markers(text)) == expected + parti_in(text))

            try:
                await wait_until(changed, converged, 15)
            except TimeoutError:
                texts = texts_of([yjs, *live])
                missing = {n: sorted(set(expected) - set(markers(t))) for n, t in texts.items()}
                doubled = {n: sorted(m for m, c in Counter(markers(t)).items() if c > 1)
                           for n, t in texts.items()}
                raise AssertionError(f"no convergence: missing {missing}, twice {doubled}"
                                     ) from None
            final = s.text()
            found = Counter(markers(final))
            extra = set(parti_in(final))
            assert set(found.values()) == {1}
            assert acked_parti <= extra <= set(parti.written)
            assert final.count(PHRASE) == sum(found.values())
            # Each writer's paragraphs in the order it typed them, the offline ones included.
            order = markers(final)
            for w in (yjs, v, s, ypy, parti):
                kept = [m for m in w.written if m in found]
                assert sorted(kept, key=order.index) == kept, w.name
            assert v.offline >= 3 and ypy.offline >= 3 and len(s.written) >= s_at_kill + 3
            # The survivor's client never noticed anything; node's provider came back once.
            assert s.drops == 0 and s.connections == 1
            assert yjs.drops == 1 and yjs.connections == 2
            assert all(e.connections == 2 and e.drops == 1 for e in comeback)

            # The durable store has exactly that text: REST (the ENT's read), SQLite, and
            # fresh readers on each worker — the survivor and the one started again.
            async with http.get(f"{node.url}/api/docs/{doc_id}?format=yjs",
                                headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200
                assert str(_fragment_of(await r.read())) == final
            assert await stored_text(cluster.db, doc_id) == final
            await node.wait_ready()
            pids = node.worker_pids()
            assert len(pids) == 2 and victim not in pids  # the dead worker was replaced
            read_on: set[int] = set()
            for attempt in range(60):
                if read_on == pids:
                    break
                reader = await editor(PycrdtEditor, f"lecteur{attempt}")
                read_on.add(worker_of(node, reader.port or 0))
                assert reader.text() == final, reader.name
                await reader.close()
            assert read_on == pids
        finally:
            for e in opened:
                await e.close()
            await yjs.close()
        # Everyone gone (the rooms unload and compact): the stored text is still that.
        async with http.get(f"{node.url}/api/docs/{doc_id}?format=yjs",
                            headers={"Authorization": f"Bearer {token}"}) as r:
            assert str(_fragment_of(await r.read())) == final
    assert yjs.returncode == 0, yjs.stderr.decode()

"""Compatibility proof: stock Yjs (node: yjs + y-websocket + ws), pycrdt and y-py edit one
document at the same time through `/yjs/{id}` and converge; accents survive every hop."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import y_py as Y
from pycrdt import XmlElement, XmlText

from realtime.app import create_app
from realtime.coursedocs import protocol as wire
from tests.conftest import ROOT, login, make_settings
from tests.coursedocs.conftest import new_doc, teacher_token, until
from tests.silence import nothing_arrived

NODE_CLIENT = Path(__file__).with_name("yjs_client.cjs")


async def run_node(base: str, doc_id: int, token: str, name: str, config: dict[str, Any]
                   ) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (ROOT / "web_client" / "node_modules" / "y-websocket").exists():
        pytest.fail("node and web_client/node_modules are needed (scripts/dev.sh installs them)")
    proc = await asyncio.create_subprocess_exec(
        node, str(NODE_CLIENT), base.replace("http", "ws", 1) + "/yjs", str(doc_id), token,
        name, json.dumps(config), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 40)
    assert proc.returncode == 0, (out.decode(), err.decode())
    return json.loads(out.decode().strip().splitlines()[-1])


class YpyClient:
    """y-py over an aiohttp websocket; the y-protocols framing by hand (y-py has none)."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url
        self.doc = Y.YDoc()
        self.root = self.doc.get_xml_element("prosemirror")
        self.synced = False
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._remote = False
        self.doc.observe_after_transaction(self._local)

    def _local(self, event: Any) -> None:
        update = event.get_update()
        if self._remote or self.ws is None or update == wire.EMPTY_UPDATE:
            return
        asyncio.get_running_loop().create_task(self.ws.send_bytes(wire.sync_update(update)))

    async def connect(self) -> YpyClient:
        self.ws = await self.session.ws_connect(self.url)
        await self.ws.send_bytes(wire.sync_step1(Y.encode_state_vector(self.doc)))
        self._task = asyncio.create_task(self._read())
        await until(lambda: self.synced)
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            m = wire.decode(msg.data)
            if m.kind is not wire.MessageType.SYNC:
                continue
            if m.sync is wire.SyncType.STEP1:
                await self.ws.send_bytes(wire.sync_step2(
                    Y.encode_state_as_update(self.doc, m.payload)))
                continue
            self._remote = True
            try:
                Y.apply_update(self.doc, m.payload)
            finally:
                self._remote = False
            if m.sync is wire.SyncType.STEP2:
                self.synced = True

    def write(self, text: str) -> None:
        with self.doc.begin_transaction() as t:
            p = self.root.push_xml_element(t, "paragraph")
            p.push_xml_text(t).push(t, text)

    def text(self) -> str:
        return str(self.root)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._task is not None:
            await self._task


def pycrdt_write(client: Any, text: str) -> None:
    with client.doc.transaction():
        p = client.frag.children.append(XmlElement("paragraph"))
        t = p.children.append(XmlText(text))
        t.insert(len(t), " (italique)", attrs={"italic": {}})


MARKS = {"node": "Écrit par Yjs : « Noël à l'école »",
         "pycrdt": "Écrit par pycrdt : çà et là, œuvre",
         "ypy": "Écrit par y-py : forêt, maïs, déjà"}


async def test_yjs_pycrdt_and_ypy_converge(
    tmp_path: Path, demo_db_path: Path, aiohttp_server: Any, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]], yclient: Any,
) -> None:
    settings = make_settings(tmp_path, db_path=demo_db_path)
    server = await aiohttp_server(create_app(settings))
    base = str(server.make_url("")).rstrip("/")
    token = await teacher_token(http, base, demo_accounts)
    doc = await new_doc(http, base, token, "Cours partagé")
    py = await yclient(base, doc["id"], token)
    ypy = await YpyClient(http, base.replace("http", "ws", 1)
                          + f"/yjs/{doc['id']}?token={token}").connect()
    everything = list(MARKS.values())
    # Node edits while the two Python clients edit: all three start together.
    node_task = asyncio.create_task(run_node(base, doc["id"], token, "Éloïse (Yjs)", {
        "write": [MARKS["node"]], "expect": everything, "linger_ms": 300}))
    await py.send(wire.awareness_message(wire.encode_awareness([wire.AwarenessEntry(
        777, 1, json.dumps({"user": {"name": "Amélie (pycrdt)", "color": "#e66"}}))])))
    for i in range(3):
        pycrdt_write(py, f"{MARKS['pycrdt']} {i}")
        ypy.write(f"{MARKS['ypy']} {i}")
        await asyncio.sleep(0.05)
    node = await node_task
    await until(lambda: all(m in py.text() and m in ypy.text() for m in everything))
    await until(lambda: py.text() == node["text"])
    assert node["synced"] and not node["denied"]
    assert "Amélie (pycrdt)" in node["names"]  # awareness string lengths are UTF-8 bytes
    # y-py renders the same tree (its XmlElement root prints its tag around it).
    for m in everything:
        assert m in ypy.text()
    assert "<bold>" in py.text() and "education.gouv.fr" in py.text()
    await ypy.close()
    before = py.text()

    # The document survives a server restart, for every kind of client.
    await server.close()
    server2 = await aiohttp_server(create_app(settings))
    base2 = str(server2.make_url("")).rstrip("/")
    again = await yclient(base2, doc["id"], token)
    assert again.text() == before
    node2 = await run_node(base2, doc["id"], token, "Relecture", {"expect": everything})
    assert node2["text"] == before
    async with http.get(f"{base2}/api/docs/{doc['id']}?format=md",
                        headers={"Authorization": f"Bearer {token}"}) as r:
        md = await r.text()
    assert "« Noël à l'école »" in md and "**" in md


async def test_read_only_yjs_client_cannot_change_the_document(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    yclient: Any, demo_db_path: Path,
) -> None:
    from tests.coursedocs.test_socket import _class_id
    t = next(a for a in demo_accounts if a["role"] == "teacher" and "6e A" in a["classes"]
             and a["school"] == "Collège Charlemagne")
    token = await login(http, demo_server, t)
    doc = await new_doc(http, demo_server, token)
    class_id = await _class_id(demo_db_path, "6e A")
    async with http.put(f"{demo_server}/api/docs/{doc['id']}/access",
                        json={"classes": [{"id": class_id, "mode": "read"}]},
                        headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200
    py = await yclient(demo_server, doc["id"], token)
    pycrdt_write(py, "Leçon : les fractions")
    student = next(a for a in demo_accounts if a["role"] == "student"
                   and a["classes"] == ["6e A"] and a["school"] == "Collège Charlemagne")
    stoken = await login(http, demo_server, student)
    out = await run_node(demo_server, doc["id"], stoken, "Élève", {
        "write": ["Modification interdite"], "expect": ["fractions"], "expect_denied": True})
    assert out["denied"], out
    # The teacher's replica never sees it: a colleague's edit (another connection of the
    # teacher), made after it in the same room, does reach it.
    colleague = await yclient(demo_server, doc["id"], token)

    async def colleague_writes() -> None:
        pycrdt_write(colleague, "Suite du cours")

    await nothing_arrived(lambda: "interdite" in py.text(), control=colleague_writes,
                          arrived=lambda: "Suite du cours" in py.text())
    async with http.get(f"{demo_server}/api/docs/{doc['id']}?format=md",
                        headers={"Authorization": f"Bearer {token}"}) as r:
        assert "interdite" not in await r.text()


def test_restored_content_is_not_doubled_by_a_ypy_resync() -> None:
    """y-py (yrs 0.16) keeps client ids on 32 bits, as Yjs draws them: content written under
    a wider id (pycrdt's default is 53 bits) is renumbered when y-py encodes it, so the step 2
    of a y-py client's reconnection hands it back as another client's and it appears twice.
    A restore is the one edit the server writes itself: it must use a 32-bit id."""
    from pycrdt import Doc

    from realtime.coursedocs import content

    author = Doc(client_id=123456789)  # a Yjs-like client
    frag = content.fragment(author)
    with author.transaction():
        frag.children.append(XmlElement("paragraph")).children.append(
            XmlText("Version du lundi : « Liberté, égalité »"))
    monday = author.get_update()
    with author.transaction():
        frag.children.append(XmlElement("paragraph")).children.append(XmlText("Ajout à jeter"))
    restore = content.restore_update(author.get_update(), monday)
    server = content.build([author.get_update(), restore])
    restored = str(content.fragment(server))
    assert restored == "<paragraph>Version du lundi : « Liberté, égalité »</paragraph>"
    ypy = Y.YDoc()
    Y.apply_update(ypy, server.get_update())  # a y-py client synced after the restore…
    server.apply_update(Y.encode_state_as_update(ypy, server.get_state()))  # …reconnects
    assert str(content.fragment(server)) == restored

"""Issue #13 against `/yjs` and the course documents, each attack made by a real client (raw
websocket or pycrdt Yjs client) against a real server: awareness floods and hijacks, readers
that never read, poisoned updates (nesting, node count, values that crashed yrs), foreign
origins, malformed frames, unsafe links in the renderings."""

from __future__ import annotations

import asyncio
import gc
import logging
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from realtime import keys
from realtime.app import create_app
from realtime.coursedocs import protocol as wire
from realtime.coursedocs import store
from tests.conftest import login, make_settings
from tests.coursedocs.conftest import YClient, new_doc, teacher_token, until
from tests.coursedocs.rawws import NonReader
from tests.coursedocs.test_socket import _class_id, paragraph
from tests.engines import open_test_db
from tests.silence import nothing_arrived

STEP1_EMPTY = wire.sync_step1(b"\x00")  # "send me the whole document"


def poisoned_value(levels: int) -> bytes:
    """A Yjs update v1 holding one ContentAny: an array nested `levels` deep."""
    return (bytes([1, 1, 1, 0, 8, 1, 1]) + b"x" + bytes([1]) + bytes([117, 1]) * levels
            + bytes([126]) + bytes([0]))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def app_server(aiohttp_server: Any, tmp_path: Path, db: Path, **overrides: Any
                     ) -> tuple[Any, str]:
    app = create_app(make_settings(tmp_path, db_path=db, **overrides))
    server = await aiohttp_server(app)
    return app, str(server.make_url("")).rstrip("/")


def ws_url(base: str, doc_id: int, token: str | None = None) -> str:
    url = base.replace("http", "ws", 1) + f"/yjs/{doc_id}"
    return url + (f"?token={token}" if token else "")


async def shared_with_pupil(http: aiohttp.ClientSession, base: str,
                            demo_accounts: list[dict[str, Any]], db: Path, mode: str
                            ) -> tuple[str, str, dict[str, Any]]:
    """A teacher's course shared with their class 6e A (`mode`); (teacher, pupil, doc)."""
    t = next(a for a in demo_accounts if a["role"] == "teacher" and "6e A" in a["classes"]
             and a["school"] == "Collège Charlemagne")
    token = await login(http, base, t)
    doc = await new_doc(http, base, token)
    class_id = await _class_id(db, "6e A")
    async with http.put(f"{base}/api/docs/{doc['id']}/access", headers=auth(token),
                        json={"classes": [{"id": class_id, "mode": mode}]}) as r:
        assert r.status == 200, await r.text()
    pupil = next(a for a in demo_accounts if a["role"] == "student"
                 and a["classes"] == ["6e A"] and a["school"] == "Collège Charlemagne")
    async with aiohttp.ClientSession() as s:
        ptoken = await login(s, base, pupil)
    return token, ptoken, doc


# --- item 3: awareness ------------------------------------------------------------------------

def awareness(*entries: tuple[int, int, str]) -> bytes:
    return wire.awareness_message(wire.encode_awareness(
        [wire.AwarenessEntry(c, k, s) for c, k, s in entries]))


async def test_awareness_is_bound_to_its_sender_and_bounded(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    yclient: Any, demo_db_path: Path,
) -> None:
    token, ptoken, doc = await shared_with_pupil(http, demo_server, demo_accounts,
                                                 demo_db_path, "read")
    teacher = await yclient(demo_server, doc["id"], token)
    mine = '{"user":{"name":"Mme Professeure","color":"#d33"}}'
    await teacher.send(awareness((7, 1, mine)))
    await until(lambda: any(e.client_id == 7 for e in teacher.awareness))
    pupil = await yclient(demo_server, doc["id"], ptoken)
    # The read-only pupil shows their cursor: everyone sees it.
    await pupil.send(awareness((99, 1, '{"user":{"name":"Élève"}}')))
    await until(lambda: any(e.client_id == 99 for e in teacher.awareness))
    # …but cannot overwrite nor remove the teacher's entry, whatever the clock says.
    teacher.awareness.clear()
    await pupil.send(awareness((7, 50, '{"user":{"name":"Pirate"}}')))
    await pupil.send(awareness((7, 51, "null")))
    # …nor flood: 400 client ids in one frame, then entries of 10 KB.
    await pupil.send(awareness(*[(1000 + i, 1, '{"n":1}') for i in range(400)]))
    await pupil.send(awareness((99, 2, '{"big":"' + "x" * 10_000 + '"}')))
    # Nothing relayed about the teacher's entry, nothing oversized: the pupil's next small
    # cursor move, sent after them on the same websocket, reaches the teacher.
    await nothing_arrived(
        lambda: [e for e in teacher.awareness if e.client_id == 7 or len(e.state) > 4096],
        control=lambda: pupil.send(awareness((99, 3, '{"user":{"name":"Élève","x":1}}'))),
        arrived=lambda: any(e.client_id == 99 and e.clock == 3 for e in teacher.awareness))
    late = await yclient(demo_server, doc["id"], token)
    await late.send(wire.query_awareness())
    await until(lambda: any(e.client_id == 7 for e in late.awareness))
    states = {e.client_id: e.state for e in late.awareness if not e.removed}
    assert states[7] == mine  # the teacher's entry, untouched
    assert len([c for c in states if c >= 1000]) <= 7  # 8 per connection, 99 included
    assert len(states) <= 1 + 8
    assert pupil.close_code is None  # a stock client echoing others' states is not cut off


# --- item 4: readers that never read ----------------------------------------------------------

async def test_a_reader_that_never_reads_is_bounded_then_cut_and_freed(
    tmp_path: Path, demo_db_path: Path, aiohttp_server: Any, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]],
) -> None:
    cap = 1 << 20
    app, base = await app_server(aiohttp_server, tmp_path, demo_db_path,
                                 docs_send_queue_bytes=cap)
    service = app[keys.DOCS]
    token = await teacher_token(http, base, demo_accounts)
    doc = await new_doc(http, base, token)
    writer = await YClient(http, base, doc["id"], token).connect()
    for i in range(6):  # a 300 KB course
        paragraph(writer, f"{i} " + "Le Moyen Âge occidental. " * 2000)
    await until(lambda: not service.rooms[doc["id"]].busy and len(writer.text()) > 290_000)

    gc.disable()  # freed by reference counting alone, not by a later full collection
    try:
        room = service.rooms[doc["id"]]
        before = set(room.conns)
        attacker = await NonReader(ws_url(base, doc["id"], token)).connect()
        assert attacker.status == 101
        await until(lambda: len(room.conns) == 2)
        ref = weakref.ref((room.conns - before).pop())
        del before
        peak = 0
        for _ in range(200):  # asks for the whole document, again and again
            if not await attacker.send(STEP1_EMPTY):
                break
            live = ref()
            if live is not None:
                peak = max(peak, live.queued_bytes)
            del live
            await asyncio.sleep(0)
        await until(lambda: len(room.conns) == 1)  # cut off
        assert 0 < peak <= cap
        attacker.close()
        await until(lambda: ref() is None, 5)  # the connection and its queue are gone
    finally:
        gc.enable()
    # The others never noticed.
    paragraph(writer, "Toujours là")
    await until(lambda: "Toujours là" in str(service.rooms[doc["id"]].doc.get(
        "prosemirror", type=XmlFragment)))
    await writer.close()


async def test_a_reader_that_vanishes_mid_send_is_freed(
    tmp_path: Path, demo_db_path: Path, aiohttp_server: Any, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]],
) -> None:
    """The leak of issue #13 item 4: a client stops reading while the server writes to it,
    then its connection drops. aiohttp keeps the write's « Connection lost » error, whose
    traceback held the send loop's frame — and the connection, with everything queued."""
    app, base = await app_server(aiohttp_server, tmp_path, demo_db_path)
    service = app[keys.DOCS]
    token = await teacher_token(http, base, demo_accounts)
    doc = await new_doc(http, base, token)
    writer = await YClient(http, base, doc["id"], token).connect()
    for i in range(24):  # a 1.2 MB course: more than the socket buffers take
        paragraph(writer, f"{i} " + "Le Moyen Âge occidental. " * 2000)
    await until(lambda: not service.rooms[doc["id"]].busy and len(writer.text()) > 1_150_000)
    room = service.rooms[doc["id"]]
    gc.disable()
    try:
        before = set(room.conns)
        reader = await NonReader(ws_url(base, doc["id"], token)).connect()
        await until(lambda: len(room.conns) == 2)
        ref = weakref.ref((room.conns - before).pop())
        del before
        for _ in range(4):  # within the budget: the server writes 4 × 1.2 MB it cannot send
            await reader.send(STEP1_EMPTY)
        await asyncio.sleep(0.5)
        reader.close()  # unread data: the connection is reset under the blocked write
        await until(lambda: len(room.conns) == 1)
        await until(lambda: ref() is None, 5)
    finally:
        gc.enable()
    await writer.close()


async def test_asking_for_the_document_again_and_again_is_throttled_then_closed(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    yclient: Any,
) -> None:
    token = await teacher_token(http, demo_server, demo_accounts)
    doc = await new_doc(http, demo_server, token)
    c = await yclient(demo_server, doc["id"], token)
    for _ in range(40):
        if c.close_code is not None:
            break
        await c.send(STEP1_EMPTY)
    await until(lambda: c.close_code is not None)
    assert c.close_code == 1008


# --- item 6: poisoned content -----------------------------------------------------------------

def test_a_deeply_nested_value_is_refused_without_crashing_the_process() -> None:
    """yrs overflows its stack on this (SIGSEGV, the whole server gone): run it in a child."""
    code = ("from realtime.coursedocs.content import check_update, BadUpdate\n"
            "from tests.coursedocs.test_attacks import poisoned_value\n"
            "try:\n    check_update(poisoned_value(100_000))\nexcept BadUpdate:\n"
            "    print('refused')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == b"refused"


async def test_poisoned_update_over_the_socket_closes_only_the_attacker(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    yclient: Any, demo_db_path: Path,
) -> None:
    token = await teacher_token(http, demo_server, demo_accounts)
    doc = await new_doc(http, demo_server, token)
    honest = await yclient(demo_server, doc["id"], token)
    paragraph(honest, "Cours intact")
    attacker = await yclient(demo_server, doc["id"], token)
    await attacker.send(wire.sync_update(poisoned_value(32)))  # just past the bound
    await until(lambda: attacker.close_code is not None)
    assert attacker.close_code == 1007
    # Other roots than the course's fragment are refused too (nothing renders them).
    other = Doc()
    other.get("ailleurs", type=XmlFragment).children.append(XmlText("caché"))
    intruder = await yclient(demo_server, doc["id"], token)
    await intruder.send(wire.sync_update(other.get_update()))
    await until(lambda: intruder.close_code is not None)
    assert intruder.close_code == 1009
    async with http.get(f"{demo_server}/healthz") as r:
        assert r.status == 200
    paragraph(honest, "et la suite")
    again = await yclient(demo_server, doc["id"], token)
    await until(lambda: "et la suite" in again.text())
    assert "Cours intact" in again.text() and honest.close_code is None


async def test_nesting_grown_update_after_update_is_refused(
    tmp_path: Path, demo_db_path: Path, start_server: Any, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]], yclient: Any,
) -> None:
    base = await start_server(make_settings(tmp_path, db_path=demo_db_path,
                                            docs_max_depth=10, docs_max_nodes=100))
    token = await teacher_token(http, base, demo_accounts)
    doc = await new_doc(http, base, token)
    c = await yclient(base, doc["id"], token)
    node: Any = c.frag
    level = 0
    while level < 30:  # one level more per update, as a script would
        level += 1
        if c.close_code is not None:
            break
        node = node.children.append(XmlElement("blockquote"))
        await asyncio.sleep(0.05)
    await until(lambda: c.close_code is not None)
    assert c.close_code == 1009 and level <= 12
    fresh = await yclient(base, doc["id"], token)
    depth, node = 0, fresh.frag
    while len(node.children):
        node, depth = node.children[0], depth + 1
    assert depth == 10  # everything up to the limit, nothing past it
    # Too many nodes in one update.
    wide = await yclient(base, doc["id"], token)
    with wide.doc.transaction():
        for i in range(150):
            paragraph(wide, f"ligne {i}")
    await until(lambda: wide.close_code is not None)
    assert wide.close_code == 1009
    async with http.get(f"{base}/api/docs/{doc['id']}", headers=auth(token)) as r:
        assert r.status == 200


async def test_every_rendering_of_a_deep_document_answers(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    demo_db_path: Path,
) -> None:
    """A document stored before the limit existed (written here straight into SQLite): JSON,
    HTML, Markdown and the restore of a version holding it never turn into a 500."""
    token = await teacher_token(http, demo_server, demo_accounts)
    doc = await new_doc(http, demo_server, token)
    deep = Doc()
    node: Any = deep.get("prosemirror", type=XmlFragment)
    for _ in range(3000):
        node = node.children.append(XmlElement("blockquote"))
    node.children.append(XmlText("tout au fond"))
    db = await open_test_db(demo_db_path)
    try:
        await store.append(db, doc["id"], [deep.get_update()], 1.0)
    finally:
        await db.close()
    for fmt in ("json", "html", "md", "yjs"):
        async with http.get(f"{demo_server}/api/docs/{doc['id']}?format={fmt}",
                            headers=auth(token)) as r:
            assert r.status == 200, (fmt, await r.text())
    async with http.post(f"{demo_server}/api/docs/{doc['id']}/versions",
                         json={"label": "profonde"}, headers=auth(token)) as r:
        version = await r.json()
        assert r.status == 201, version
    async with http.post(f"{demo_server}/api/docs/{doc['id']}/versions/{version['id']}/restore",
                         headers=auth(token)) as r:
        assert r.status == 200, await r.text()


# --- item 7: origin ---------------------------------------------------------------------------

async def test_a_page_of_another_origin_cannot_use_the_cookie(
    demo_server: str, demo_accounts: list[dict[str, Any]],
) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        token = await teacher_token(browser, demo_server, demo_accounts)  # sets the cookie
        doc = await new_doc(browser, demo_server, token)
        url = ws_url(demo_server, doc["id"])
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await browser.ws_connect(url, headers={"Origin": "https://evil.example"})
        assert err.value.status == 403
        ok = await browser.ws_connect(url, headers={"Origin": demo_server})
        assert (await ok.receive()).type is aiohttp.WSMsgType.BINARY
        await ok.close()


# --- item 10: malformed frames ----------------------------------------------------------------

async def test_malformed_frames_are_counted_not_logged_as_errors(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    yclient: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    token = await teacher_token(http, demo_server, demo_accounts)
    doc = await new_doc(http, demo_server, token)
    caplog.set_level(logging.INFO)
    frames = [b"\x07", b"\x00\x02\x03zzz", poisoned_value(5)[:9],
              # an awareness state nested 100,000 deep: json.loads raised RecursionError
              wire.awareness_message(wire.encode_awareness(
                  [wire.AwarenessEntry(5, 1, "[" * 100_000 + "]" * 100_000)]))]
    for frame in frames * 5:
        c = await yclient(demo_server, doc["id"], token)
        await c.send(frame)
        await until(lambda c=c: c.close_code is not None)
        assert c.close_code == 1007, frame[:10]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    async with http.get(f"{demo_server}/metrics") as r:
        text = await r.text()
    line = next(x for x in text.splitlines()
                if x.startswith('realtime_yjs_refused_total{reason="malformed"}'))
    assert float(line.split()[-1]) >= 20


# --- item 11: unsafe links and titles ---------------------------------------------------------

async def test_renderings_drop_unsafe_links_and_escape_the_title(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    yclient: Any,
) -> None:
    token = await teacher_token(http, demo_server, demo_accounts)
    doc = await new_doc(http, demo_server, token, "<img src=x onerror=alert(1)> [a](javascript:b)")
    c = await yclient(demo_server, doc["id"], token)
    with c.doc.transaction():
        p = c.frag.children.append(XmlElement("paragraph"))
        t = p.children.append(XmlText("clic ici"))
        t.format(0, 4, {"link": {"href": "javascript:alert(1)"}})
        t.format(5, 8, {"link": {"href": "https://fr.wikipedia.org/"}})
        c.frag.children.append(XmlElement("image", {"src": "data:text/html,<script>x</script>"}))
        c.frag.children.append(XmlElement("image", {"src": "java\tscript:alert(2)"}))
        c.frag.children.append(XmlElement("image", {"src": "/api/docs/1/images/2"}))
    await asyncio.sleep(0.3)
    bodies = {}
    for fmt in ("json", "html", "md"):
        async with http.get(f"{demo_server}/api/docs/{doc['id']}?format={fmt}",
                            headers=auth(token)) as r:
            assert r.status == 200
            bodies[fmt] = await r.text()
    for fmt, body in bodies.items():
        assert "javascript" not in body.replace("javascript:b", ""), fmt
        assert "data:text" not in body and "script:alert" not in body, fmt
        assert "wikipedia" in body and "/api/docs/1/images/2" in body, fmt
    first = bodies["md"].splitlines()[0]
    assert first == r"# \<img src=x onerror=alert(1)\> \[a\](javascript:b)"


# --- item 16: sharing ------------------------------------------------------------------------

async def test_a_teacher_shares_only_with_classes_they_teach(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    demo_db_path: Path,
) -> None:
    t = next(a for a in demo_accounts if a["role"] == "teacher" and "6e A" in a["classes"]
             and a["school"] == "Collège Charlemagne")
    token = await login(http, demo_server, t)
    doc = await new_doc(http, demo_server, token)
    db = await open_test_db(demo_db_path)
    try:
        rows = await db.fetchall(
            "SELECT c.id, c.name FROM classes c JOIN schools s ON s.id = c.school_id"
            " WHERE s.name = 'Collège Charlemagne'")
    finally:
        await db.close()
    foreign = next(r["id"] for r in rows if r["name"] not in t["classes"])
    async with http.put(f"{demo_server}/api/docs/{doc['id']}/access", headers=auth(token),
                        json={"classes": [{"id": foreign, "mode": "read"}]}) as r:
        body = await r.json()
        assert r.status == 400 and "enseignez" in body["error"]["message"]
    async with http.get(f"{demo_server}/api/docs/{doc['id']}", headers=auth(token)) as r:
        assert (await r.json())["classes"] == []
    mine = await _class_id(demo_db_path, "6e A")
    async with http.put(f"{demo_server}/api/docs/{doc['id']}/access", headers=auth(token),
                        json={"classes": [{"id": mine, "mode": "edit"}]}) as r:
        assert r.status == 200



async def test_a_document_that_leaves_memory_is_freed_at_once(
    tmp_path: Path, demo_db_path: Path, aiohttp_server: Any, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]],
) -> None:
    """The room's writer task held the room (and its two copies of the document) in a cycle:
    freed only by a full collection. Now by reference counting."""
    app, base = await app_server(aiohttp_server, tmp_path, demo_db_path)
    service = app[keys.DOCS]
    token = await teacher_token(http, base, demo_accounts)
    doc = await new_doc(http, base, token)
    gc.disable()
    try:
        c = await YClient(http, base, doc["id"], token).connect()
        paragraph(c, "Un cours de " + "géographie " * 5000)
        await until(lambda: not service.rooms[doc["id"]].busy)
        room = weakref.ref(service.rooms[doc["id"]])
        await c.close()
        await until(lambda: doc["id"] not in service.rooms)
        await until(lambda: room() is None, 5)
    finally:
        gc.enable()

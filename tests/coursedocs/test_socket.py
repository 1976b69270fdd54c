"""`/yjs/{id}` with real pycrdt clients over real sockets, against the stored truth."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from pycrdt import XmlElement, XmlText

from realtime import keys
from realtime.app import create_app
from realtime.coursedocs import protocol as wire
from realtime.coursedocs import store
from tests.conftest import make_settings
from tests.coursedocs.conftest import new_doc, teacher_token, until
from tests.engines import open_test_db
from tests.silence import nothing_arrived


def paragraph(client: Any, text: str) -> None:
    p = client.frag.children.append(XmlElement("paragraph"))
    p.children.append(XmlText(text))


async def stored_text(db_path: Any, doc_id: int) -> str:
    from realtime.coursedocs import content
    db = await open_test_db(db_path)
    try:
        stored = await store.load(db, doc_id)
    finally:
        await db.close()
    return str(content.fragment(content.build(stored.all_updates())))


async def test_two_clients_converge_and_store_agrees(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    yclient: Any, demo_db_path: Any,
) -> None:
    token = await teacher_token(http, demo_server, demo_accounts)
    doc = await new_doc(http, demo_server, token)
    a = await yclient(demo_server, doc["id"], token)
    b = await yclient(demo_server, doc["id"], token)
    paragraph(a, "Les Gaulois étaient ")
    paragraph(b, "Vercingétorix à Alésia")
    await until(lambda: a.text() == b.text() and "Alésia" in a.text() and "Gaulois" in b.text())
    late = await yclient(demo_server, doc["id"], token)
    assert late.text() == a.text()
    async with http.get(f"{demo_server}/api/docs/{doc['id']}?format=yjs",
                        headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200 and r.content_type == "application/octet-stream"
    assert await stored_text(demo_db_path, doc["id"]) == a.text()


async def test_awareness_echoed_to_sender_and_removed_on_close(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    yclient: Any,
) -> None:
    token = await teacher_token(http, demo_server, demo_accounts)
    doc = await new_doc(http, demo_server, token)
    a = await yclient(demo_server, doc["id"], token)
    b = await yclient(demo_server, doc["id"], token)
    state = '{"user":{"name":"Hélène Léger","color":"#d33"}}'
    await a.send(wire.awareness_message(wire.encode_awareness(
        [wire.AwarenessEntry(4242, 1, state)])))
    await until(lambda: any(e.client_id == 4242 for e in a.awareness))  # echoed to sender
    await until(lambda: any(e.client_id == 4242 for e in b.awareness))
    got = next(e for e in b.awareness if e.client_id == 4242)
    assert wire.awareness_state(got)["user"]["name"] == "Hélène Léger"
    # A newcomer asking (query-awareness) hears about everyone present.
    c = await yclient(demo_server, doc["id"], token)
    await until(lambda: any(e.client_id == 4242 for e in c.awareness))
    c.awareness.clear()
    await c.send(wire.query_awareness())
    await until(lambda: any(e.client_id == 4242 for e in c.awareness))
    await a.close()
    await until(lambda: any(e.client_id == 4242 and e.removed for e in b.awareness))


async def test_read_only_student_is_refused_and_changes_nothing(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    yclient: Any, demo_db_path: Any,
) -> None:
    t = next(a for a in demo_accounts if a["role"] == "teacher" and "6e A" in a["classes"]
             and a["school"] == "Collège Charlemagne")
    from tests.conftest import login
    token = await login(http, demo_server, t)
    doc = await new_doc(http, demo_server, token)
    class_id = await _class_id(demo_db_path, "6e A")
    async with http.put(f"{demo_server}/api/docs/{doc['id']}/access",
                        json={"classes": [{"id": class_id, "mode": "read"}]},
                        headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200, await r.text()
    teacher_client = await yclient(demo_server, doc["id"], token)
    paragraph(teacher_client, "Consigne du professeur")
    student = next(a for a in demo_accounts if a["role"] == "student"
                   and a["classes"] == ["6e A"] and a["school"] == "Collège Charlemagne")
    stoken = await login(http, demo_server, student)
    s = await yclient(demo_server, doc["id"], stoken)
    await until(lambda: "Consigne" in s.text())
    paragraph(s, "Graffiti d'élève")
    await until(lambda: bool(s.denied))
    assert "lecture seule" in s.denied[0]
    # The teacher never sees it: the pupil's cursor, sent after the refused edit on the same
    # websocket, reaches the teacher (a reader may show where it reads).
    me = s.doc.client_id
    await nothing_arrived(
        lambda: "Graffiti" in teacher_client.text(),
        control=lambda: s.send(wire.awareness_message(wire.encode_awareness(
            [wire.AwarenessEntry(me, 1, '{"user":{"name":"Élève"}}')]))),
        arrived=lambda: any(e.client_id == me for e in teacher_client.awareness))
    assert "Graffiti" not in await stored_text(demo_db_path, doc["id"])
    # Switched to editable: a live connection may now write (a fresh client here, since the
    # refused edit above is one this replica holds and the server never will).
    s2 = await yclient(demo_server, doc["id"], stoken)
    async with http.put(f"{demo_server}/api/docs/{doc['id']}/access",
                        json={"classes": [{"id": class_id, "mode": "edit"}]},
                        headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200
    await until(lambda: s2.access == ["edit"])  # told at once, no reconnection
    paragraph(s2, "Travail de groupe")
    await until(lambda: "Travail de groupe" in teacher_client.text())
    # Unshared: the connection is closed.
    async with http.put(f"{demo_server}/api/docs/{doc['id']}/access", json={},
                        headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200
    await until(lambda: s2.close_code is not None)
    assert s2.close_code == 4403


async def _class_id(db_path: Any, name: str) -> int:
    db = await open_test_db(db_path)
    try:
        row = await db.fetchone(
            "SELECT c.id FROM classes c JOIN schools s ON s.id = c.school_id"
            " WHERE c.name = ? AND s.name = 'Collège Charlemagne'", (name,))
    finally:
        await db.close()
    assert row is not None
    return int(row["id"])


async def test_refusals_before_upgrade(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
) -> None:
    token = await teacher_token(http, demo_server, demo_accounts)
    other = await teacher_token(http, demo_server, demo_accounts, 1)
    doc = await new_doc(http, demo_server, token)
    ws_base = demo_server.replace("http", "ws", 1)
    for url, status in [
        (f"{ws_base}/yjs/{doc['id']}?token=nope", 401),
        (f"{ws_base}/yjs/{doc['id']}?token={other}", 404),  # exists, not theirs
        (f"{ws_base}/yjs/999999?token={token}", 404),
        (f"{ws_base}/yjs/abc?token={token}", 404),
    ]:
        async with aiohttp.ClientSession() as fresh:
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await fresh.ws_connect(url)
            assert err.value.status == status, url


@pytest.mark.parametrize("frame", [
    b"", b"\x07", b"\x00\x09\x00", b"\x00\x02\x05\x01\x02", b"\x00\x02\x03zzz",
    b"\x01\x05\x01\x01\x01\x03abc", b"\x00\x00\x01\x00extra",
])
async def test_malformed_frames_close_the_connection_and_change_nothing(
    frame: bytes, demo_server: str, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]], yclient: Any, demo_db_path: Any,
) -> None:
    token = await teacher_token(http, demo_server, demo_accounts)
    doc = await new_doc(http, demo_server, token)
    c = await yclient(demo_server, doc["id"], token)
    await c.send(frame)
    await until(lambda: c.close_code is not None)
    assert c.close_code == 1007
    db = await open_test_db(demo_db_path)
    try:
        assert await store.pending_count(db, doc["id"]) == 0
    finally:
        await db.close()


async def test_text_frames_and_floods_are_refused(
    tmp_path: Any, demo_db_path: Any, start_server: Any, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]], yclient: Any,
) -> None:
    base = await start_server(make_settings(tmp_path, db_path=demo_db_path,
                                            docs_frames_per_s=5, docs_max_frame_bytes=4096))
    token = await teacher_token(http, base, demo_accounts)
    doc = await new_doc(http, base, token)
    c = await yclient(base, doc["id"], token)
    assert c.ws is not None
    await c.ws.send_str("bonjour")
    await until(lambda: c.close_code is not None)
    assert c.close_code == 1003
    big = await yclient(base, doc["id"], token)
    await big.send(wire.sync_update(b"\x00" * 10_000))
    await until(lambda: big.close_code is not None)
    assert big.close_code == 1009
    flood = await yclient(base, doc["id"], token)
    for _ in range(40):
        if flood.close_code is not None:
            break
        await flood.send(wire.query_awareness())
    await until(lambda: flood.close_code is not None)
    assert flood.close_code == 1008


async def test_document_leaves_memory_only_after_the_write(
    tmp_path: Any, demo_db_path: Any, aiohttp_server: Any, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]], yclient: Any,
) -> None:
    app = create_app(make_settings(tmp_path, db_path=demo_db_path))
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    token = await teacher_token(http, base, demo_accounts)
    doc = await new_doc(http, base, token)
    service = app[keys.DOCS]
    c = await yclient(base, doc["id"], token)
    assert doc["id"] in service.rooms
    db = app[keys.DB]
    async with db.transaction() as conn:  # hold the writer: the append cannot commit yet
        # (SQLite: the one writer is ours; PostgreSQL: the document's row, which an
        # append locks first)
        await conn.execute("SELECT id FROM course_docs WHERE id = ? FOR UPDATE", (doc["id"],))
        paragraph(c, "Dernier mot avant de partir")
        await until(lambda: service.rooms[doc["id"]].busy)
        await c.close()
        await asyncio.sleep(0.3)
        assert doc["id"] in service.rooms  # the write is pending: still in memory
    await until(lambda: doc["id"] not in service.rooms)
    assert "Dernier mot" in await stored_text(demo_db_path, doc["id"])


async def test_document_survives_a_restart(
    tmp_path: Any, demo_db_path: Any, aiohttp_server: Any, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]], yclient: Any,
) -> None:
    settings = make_settings(tmp_path, db_path=demo_db_path)
    server = await aiohttp_server(create_app(settings))
    base = str(server.make_url("")).rstrip("/")
    token = await teacher_token(http, base, demo_accounts)
    doc = await new_doc(http, base, token)
    c = await yclient(base, doc["id"], token)
    paragraph(c, "Texte à garder : œuvre, Noël, garçon")
    await asyncio.sleep(0.3)
    before = c.text()
    await server.close()  # graceful: the server's cleanup drains pending writes
    server2 = await aiohttp_server(create_app(settings))
    base2 = str(server2.make_url("")).rstrip("/")
    again = await yclient(base2, doc["id"], token)
    assert again.text() == before and "Noël" in before


async def test_keepalive_pings_close_a_silent_client(
    tmp_path: Any, demo_db_path: Any, start_server: Any, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]],
) -> None:
    base = await start_server(make_settings(tmp_path, db_path=demo_db_path,
                                            docs_heartbeat_s=0.3))
    token = await teacher_token(http, base, demo_accounts)
    doc = await new_doc(http, base, token)
    url = base.replace("http", "ws", 1) + f"/yjs/{doc['id']}?token={token}"
    # A client that answers pings stays; one that never does is closed by the server.
    alive = await http.ws_connect(url)

    async def read_alive() -> None:  # aiohttp answers pings while someone reads
        async for _ in alive:
            pass

    reader = asyncio.create_task(read_alive())
    silent = await http.ws_connect(url, autoping=False)
    pinged = False
    while True:
        msg = await asyncio.wait_for(silent.receive(), 5)
        if msg.type is aiohttp.WSMsgType.PING:
            pinged = True
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                        aiohttp.WSMsgType.CLOSING):
            break
    assert pinged
    assert not alive.closed
    await alive.send_bytes(wire.query_awareness())
    await asyncio.sleep(0.5)
    assert not alive.closed
    await alive.close()
    await reader


async def test_background_compaction_while_editing_loses_nothing(
    tmp_path: Any, demo_db_path: Any, aiohttp_server: Any, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]], yclient: Any,
) -> None:
    settings = make_settings(tmp_path, db_path=demo_db_path, docs_compact_every=7)
    app = create_app(settings)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    token = await teacher_token(http, base, demo_accounts)
    doc = await new_doc(http, base, token)
    a = await yclient(base, doc["id"], token)
    b = await yclient(base, doc["id"], token)
    for i in range(60):  # compactions start every 7 appends while both keep typing
        paragraph(a if i % 2 else b, f"phrase {i} : où l'été s'achève")
        if i % 5 == 0:
            await asyncio.sleep(0.01)
    await until(lambda: a.text() == b.text() and a.text().count("phrase") == 60)
    await until(lambda: not app[keys.DOCS].rooms._tasks)  # background compactions done
    db = app[keys.DB]
    stored = await store.load(db, doc["id"])
    assert stored.snapshot is not None  # it did compact…
    assert len(stored.updates) < 60  # …and folded most of the log
    await server.close()
    again = await aiohttp_server(create_app(settings))
    c = await yclient(str(again.make_url("")).rstrip("/"), doc["id"], token)
    assert c.text() == a.text()  # …without losing a word

"""Two real nodes on one PostgreSQL and one Redis act as one ENT: a login on A is valid on B,
and boards, chat, attendance pushes, presence and course documents cross them. Node A is one
process, node B `--workers 2`: a client of B lands on either of its workers."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from yarl import URL

from realtime.coursedocs import content
from realtime.coursedocs import store as doc_store
from realtime.db import Database
from tests.attendance.conftest import AttendanceClient
from tests.attendance.conftest import Cast as AttendanceCast
from tests.boards.test_socket import Cast, create_board
from tests.chat.conftest import Cast as ChatCast
from tests.chat.conftest import ChatClient
from tests.chat.test_messages import PDF
from tests.conftest import login, token_for, user_id
from tests.coursedocs.conftest import YClient, new_doc, until
from tests.coursedocs.test_socket import paragraph
from tests.multinode.harness import Node
from tests.multinode.people import fresh_rolls, validate_with_absent
from tests.presence.conftest import PresenceClient
from tests.scale.clients import Follower, stroke
from tests.silence import nothing_arrived

pytestmark = pytest.mark.multinode

ACCENTS = "Élève : « déjà vu », ça côtoie l'œuvre de Noël — où ?"


async def test_a_login_on_a_is_valid_on_b_token_and_cookie(
    pair: tuple[Node, Node], demo_accounts: list[dict[str, Any]]
) -> None:
    a, b = pair
    acct = next(x for x in demo_accounts if x["role"] == "teacher")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        token = await login(s, a.url, acct)
        assert s.cookie_jar.filter_cookies(URL(a.url))  # the session cookie A set
        # The cookie alone (a cookie names its host, not its port: the browser of an ENT
        # behind one address sends it to whichever node the balancer picks).
        async with s.get(f"{b.url}/api/me") as r:
            assert r.status == 200, await r.text()
            by_cookie = await r.json()
    async with aiohttp.ClientSession() as bare:
        async with bare.get(f"{b.url}/api/me",
                            headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200, await r.text()
            by_token = await r.json()
        async with bare.get(f"{b.url}/api/me") as r:  # the control: nothing, refused
            assert r.status == 401
    assert by_cookie["user"]["login"] == by_token["user"]["login"] == acct["login"]
    # A live connection made on A with that token; the session ended on B closes it.
    on_a = await ChatClient(a.url, token).connect()
    try:
        async with aiohttp.ClientSession() as bare, bare.post(
            f"{b.url}/api/logout", headers={"Authorization": f"Bearer {token}"}, json={}
        ) as r:
            assert r.status == 200, await r.text()
        await until(lambda: not on_a.sio.connected)
        for node in (a, b):
            async with aiohttp.ClientSession() as bare, bare.get(
                f"{node.url}/api/me", headers={"Authorization": f"Bearer {token}"}
            ) as r:
                assert r.status == 401
    finally:
        await on_a.close()


async def test_boards_and_presence_cross_nodes(
    pair: tuple[Node, Node], demo_accounts: list[dict[str, Any]]
) -> None:
    a, b = pair
    cast = Cast(demo_accounts)
    board = await create_board(a.url, cast, "Tableau sur deux nœuds")
    scope = f"board:{board}"
    watcher = await PresenceClient(a.url, await token_for(a.url, cast.teacher)).connect()
    cpe_watcher = await PresenceClient(b.url, await token_for(b.url, cast.cpe)).connect()
    teacher = await Follower(await token_for(a.url, cast.teacher), board).connect(a.url)
    alice = await Follower(await token_for(b.url, cast.alice), board).connect(b.url)
    bob = await Follower(await token_for(b.url, cast.bob), board).connect(b.url)
    try:
        for w in (watcher, cpe_watcher):
            assert (await w.subscribe(scope))["ok"]
        ids = {await user_id(a.url, x) for x in (cast.teacher, cast.alice, cast.bob)}
        # The teacher, on A, sees who follows the board from B; the CPE, on B, sees the
        # teacher who is on A.
        for w in (watcher, cpe_watcher):
            await w.wait_for(lambda w=w: w.ids(scope) == ids, 15)
        seqs = []
        for i in range(12):
            ack = await teacher.call("op", {"op": stroke(f"t{i}")})
            assert ack["ok"], ack
            seqs.append(ack["seq"])
        assert seqs == list(range(1, 13))
        grant = await teacher.call("grant", {"pen": "everyone"})
        assert grant["ok"], grant
        await alice.wait_for(lambda: alice.seq >= grant["seq"])
        mine = await alice.call("op", {"op": stroke("alice")})  # drawn on B
        assert mine["ok"], mine
        for f in (teacher, alice, bob):
            await f.wait_for(lambda f=f: f.seq >= mine["seq"])
            assert [s for _e, s in f.applied] == list(range(1, mine["seq"] + 1))
            assert f.duplicates == 0 and f.gaps == 0
            assert f.items == {f"t{i}" for i in range(12)} | {"alice"}
        # Bob leaves on B: the watcher on A sees him go, and only him.
        bob_id = await user_id(a.url, cast.bob)
        await bob.close()
        await watcher.wait_for(lambda: bob_id not in watcher.ids(scope), 15)
        assert watcher.ids(scope) == ids - {bob_id}
        # The teacher leaves on A: the CPE, on B, sees it.
        teacher_id = await user_id(a.url, cast.teacher)
        await teacher.close()
        await cpe_watcher.wait_for(lambda: teacher_id not in cpe_watcher.ids(scope), 15)
        assert cpe_watcher.ids(scope) == ids - {bob_id, teacher_id}
    finally:
        for c in (teacher, alice, bob, watcher, cpe_watcher):
            await c.close()


async def test_chat_messages_cross_nodes_live_and_in_history(
    pair: tuple[Node, Node], demo_accounts: list[dict[str, Any]]
) -> None:
    a, b = pair
    cast = ChatCast(demo_accounts)
    teacher_token = await token_for(a.url, cast.teacher)
    alice_token = await token_for(b.url, cast.alice)
    teacher = await ChatClient(a.url, teacher_token).connect()
    alice = await ChatClient(b.url, alice_token).connect()
    outsider = await ChatClient(b.url, await token_for(b.url, cast.other_teacher)).connect()
    clients = [teacher, alice, outsider]
    try:
        members = [await user_id(a.url, cast.alice), await user_id(a.url, cast.bob)]
        created = await teacher.ok("create", {"kind": "group", "title": "Deux nœuds",
                                              "members": members, "body": ACCENTS})
        conv = created["conversation_id"]
        for i in range(1, 6):
            await teacher.ok("send", {"conversation_id": conv, "body": f"depuis A {i}"})
        # Alice answers from B with a file she uploaded to B.
        attachment = await upload(b.url, alice_token, PDF, "devoir.pdf")
        reply = await alice.ok("send", {"conversation_id": conv, "body": "depuis B",
                                        "attachments": [attachment["id"]]})
        bodies = [ACCENTS] + [f"depuis A {i}" for i in range(1, 6)] + ["depuis B"]
        assert reply["seq"] == len(bodies)
        for c in (teacher, alice):  # live, on both nodes: once each, in order
            await c.wait_event(conv, len(bodies))
            mine = [e for e in c.events if e["conversation_id"] == conv]
            assert [e["seq"] for e in mine] == list(range(1, len(bodies) + 1))
            assert [e["message"]["body"] for e in mine] == bodies
        # The teacher, on A, downloads the file stored through B.
        async with aiohttp.ClientSession() as http, http.get(
            f"{a.url}/api/chat/attachments/{attachment['id']}",
            headers={"Authorization": f"Bearer {teacher_token}"},
        ) as r:
            assert r.status == 200 and await r.read() == PDF
        # History, asked of B by a device that was not connected (Bob) and by Alice.
        bob = await ChatClient(b.url, await token_for(b.url, cast.bob)).connect()
        clients.append(bob)
        for c in (alice, bob):
            synced = await c.ok("sync", {"conversation_id": conv, "since": 0})
            assert [e["message"]["body"] for e in synced["events"]] == bodies
        # Search, on PostgreSQL's full text (accents folded, prefix), from B.
        found = await bob.ok("search", {"q": "cotoi"})
        assert [m["body"] for m in found["messages"]] == [ACCENTS]
        # The outsider, on B, heard nothing: a message the CPE sends it from A arrives alone.
        cpe = await ChatClient(a.url, await token_for(a.url, cast.cpe)).connect()
        clients.append(cpe)
        own: list[int] = []

        async def cpe_writes() -> None:
            made = await cpe.ok("create", {"kind": "direct", "members": [outsider.me["id"]],
                                           "body": "Réunion à 17 h"})
            own.append(made["conversation_id"])

        await nothing_arrived(
            lambda: [e for e in outsider.events if e["conversation_id"] == conv],
            control=cpe_writes,
            arrived=lambda: any(e["conversation_id"] in own for e in outsider.events))
    finally:
        for c in clients:
            await c.close()


async def upload(base: str, token: str, data: bytes, name: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.post(
        f"{base}/api/chat/attachments", params={"name": name}, data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
    ) as r:
        body = await r.json()
        assert r.status == 201, body
        return body  # type: ignore[no-any-return]


async def test_an_absence_recorded_on_a_is_pushed_to_a_parent_on_b(
    pair: tuple[Node, Node], demo_accounts: list[dict[str, Any]]
) -> None:
    a, b = pair
    cast = AttendanceCast(demo_accounts)
    teacher = await AttendanceClient(a.url, await token_for(a.url, cast.teacher)).connect()
    parents = [await AttendanceClient(b.url, await token_for(b.url, g)).connect()
               for g in cast.guardians]
    try:
        before = []
        for p in parents:
            follow = await p.call("follow_feed", {})
            assert follow["ok"] and "snapshot" in follow, follow
            before.append(follow)
        (opened,) = await fresh_rolls(a.url, teacher, cast.teacher, cast.class_name, 1)
        sid = next(s["id"] for s in opened["students"] if s["name"] == cast.student["name"])
        await validate_with_absent(teacher, opened, [sid])
        for p, follow in zip(parents, before, strict=True):
            await p.wait_for(lambda p=p: p.events["notice"], 15)
            (notice,) = p.events["notice"]
            assert notice["student_id"] == sid and notice["kind"] == "absence"
            assert cast.student["name"] in notice["body"]
            assert notice["seq"] == follow["seq"] + 1  # the next of this parent's feed
            # A device that follows now, from B, gets it in its snapshot.
            again = await p.call("follow_feed", {})
            assert any(n["id"] == notice["id"] for n in again["snapshot"]), again
    finally:
        for c in (teacher, *parents):
            await c.close()


async def stored_text(database_url: str, doc_id: int) -> str:
    db = await Database.open(database_url, migrate=False, pool_min=1, pool_max=1)
    try:
        stored = await doc_store.load(db, doc_id)
    finally:
        await db.close()
    return str(content.fragment(content.build(stored.all_updates())))


async def test_a_course_document_edited_on_a_converges_on_b(
    pair: tuple[Node, Node], demo_accounts: list[dict[str, Any]], database: str
) -> None:
    a, b = pair
    acct = next(x for x in demo_accounts if x["role"] == "teacher"
                and x["school"] == "Collège Charlemagne")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        token = await login(http, a.url, acct)
        doc = await new_doc(http, a.url, token, "Français — deux nœuds")
        on_a = await YClient(http, a.url, doc["id"], token).connect()
        on_b = await YClient(http, b.url, doc["id"], token).connect()
        try:
            paragraph(on_a, ACCENTS)
            await until(lambda: ACCENTS in on_b.text())
            for i in range(5):
                paragraph(on_a, f"Nœud A, ligne {i}")
                paragraph(on_b, f"Nœud B, ligne {i}")
            await until(lambda: on_a.text() == on_b.text() and on_a.text().count("ligne") == 10)
            # A newcomer on B is synced from the stored updates and the live document.
            late = await YClient(http, b.url, doc["id"], token).connect()
            await until(lambda: late.text() == on_a.text())
            await late.close()
            # What the nodes wrote to PostgreSQL is that document: each node stores an update
            # before it relays it, so once both clients converged, all of it is stored. (Read
            # while the clients are still there: the compaction that follows the last one's
            # departure is not this test's subject.)
            assert await stored_text(database, doc["id"]) == on_a.text()
        finally:
            await on_a.close()
            await on_b.close()

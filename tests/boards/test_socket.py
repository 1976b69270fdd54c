"""The /boards namespace with real servers and at least three real Socket.IO clients."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import pytest

from realtime import keys
from tests.boards.conftest import BoardClient, stroke
from tests.clocks import ManualClock, freeze_budgets
from tests.conftest import live_clients, login
from tests.silence import nothing_arrived

CHARLEMAGNE = "Collège Charlemagne"


class Cast:
    """The people of one class of the demo: its teacher, two pupils, outsiders."""

    def __init__(self, accounts: list[dict[str, Any]]) -> None:
        self.teacher = next(a for a in accounts if a["role"] == "teacher"
                            and a["school"] == CHARLEMAGNE)
        self.class_name = self.teacher["classes"][0]
        pupils = [a for a in accounts if a["role"] == "student" and a["school"] == CHARLEMAGNE
                  and a["classes"] == [self.class_name]]
        self.alice, self.bob = pupils[0], pupils[1]
        self.outsider = next(a for a in accounts if a["role"] == "student"
                             and a["classes"] != [self.class_name])
        self.parent = next(a for a in accounts if a["role"] == "parent"
                           and self.alice["login"] in a["children"])
        self.cpe = next(a for a in accounts if a["role"] == "cpe" and a["school"] == CHARLEMAGNE)


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def create_board(base: str, cast: Cast, title: str = "Fractions — séance 1") -> int:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, cast.teacher)
        async with s.get(f"{base}/api/me") as r:
            me = await r.json()
        async with s.get(f"{base}/api/classes") as r:
            classes = (await r.json())["classes"]
        class_id = next(c["id"] for c in classes if c["name"] == cast.class_name)
        async with s.post(f"{base}/api/boards", json={"title": title, "class_id": class_id}) as r:
            assert r.status == 201, await r.text()
            board = await r.json()
    assert board["owner_id"] == me["user"]["id"] and board["state"] == "live"
    return board["id"]


async def test_ops_reach_everyone_in_order(demo_server: str, board_client: Any,
                                           cast: Cast) -> None:
    board = await create_board(demo_server, cast)
    teacher, alice, bob = [await board_client(a) for a in (cast.teacher, cast.alice, cast.bob)]
    joins = [await c.call("join", {"board_id": board}) for c in (teacher, alice, bob)]
    assert all(j["ok"] for j in joins), joins
    assert joins[0]["me"]["is_teacher"] and joins[0]["me"]["can_draw"]
    assert not joins[1]["me"]["is_teacher"] and not joins[1]["me"]["can_draw"]
    assert joins[1]["snapshot"]["pages"] == [{"id": "p1"}] and joins[1]["snapshot"]["items"] == []
    assert joins[1]["limits"]["points_per_stroke"] == 5000

    acks = []
    for i in range(10):
        acks.append(await teacher.call("op", {"board_id": board, "op": stroke(f"s{i}", x=i)}))
        acks.append(await teacher.call("op", {"board_id": board, "op": {
            "type": "append", "item_id": f"s{i}", "points": [[50, 50], [60, 65.5]]}}))
    assert [a["seq"] for a in acks] == list(range(1, 21))
    for c in (teacher, alice, bob):
        await c.wait_seq(20)
        assert [o["seq"] for o in c.ops] == list(range(1, 21))  # gap-free, in order, once
    first = alice.ops[0]
    assert first["author"] == joins[0]["me"]["id"] and first["op"]["item"]["author"] == first[
        "author"]
    # Live view and stored truth agree: a fresh join sees what the ops built.
    fresh = await board_client(cast.cpe)
    snap = (await fresh.call("join", {"board_id": board}))["snapshot"]
    assert [i["id"] for i in snap["items"]] == [f"s{i}" for i in range(10)]
    assert all(len(i["points"]) == 5 for i in snap["items"])


async def test_resume_after_a_disconnect_gets_exactly_the_missed_ops(
    demo_server: str, board_client: Any, cast: Cast
) -> None:
    board = await create_board(demo_server, cast)
    teacher, alice = await board_client(cast.teacher), await board_client(cast.alice)
    await teacher.call("join", {"board_id": board})
    join = await alice.call("join", {"board_id": board})
    await teacher.call("op", {"board_id": board, "op": stroke("a")})
    await alice.wait_seq(1)
    epoch = join["epoch"]
    await alice.close()  # the network drops
    for i in range(3):
        await teacher.call("op", {"board_id": board, "op": stroke(f"b{i}")})
    back = await board_client(cast.alice)
    again = await back.call("join", {"board_id": board, "since": {"epoch": epoch, "seq": 1}})
    assert again["ok"] and "snapshot" not in again and again["seq"] == 4
    assert [o["seq"] for o in again["ops"]] == [2, 3, 4]
    assert [o["op"]["item"]["id"] for o in again["ops"]] == ["b0", "b1", "b2"]
    # Unknown epoch or a seq from the future: a snapshot, never a partial replay.
    for since in ({"epoch": "autre", "seq": 1}, {"epoch": epoch, "seq": 99}):
        other = await back.call("join", {"board_id": board, "since": since})
        assert "ops" not in other and len(other["snapshot"]["items"]) == 4


async def test_undo_redo_and_undo_of_a_clear(demo_server: str, board_client: Any,
                                             cast: Cast) -> None:
    board = await create_board(demo_server, cast)
    teacher, alice = await board_client(cast.teacher), await board_client(cast.alice)
    await teacher.call("join", {"board_id": board})
    await alice.call("join", {"board_id": board})
    assert (await teacher.call("grant", {"board_id": board, "pen": "everyone"}))["ok"]
    await teacher.call("op", {"board_id": board, "op": stroke("t1")})
    assert (await alice.call("op", {"board_id": board, "op": stroke("a1")}))["ok"]
    clear = await teacher.call("op", {"board_id": board, "op": {"type": "clear", "page_id": "p1"}})
    assert clear["ok"]
    refused = await alice.call("op", {"board_id": board, "op": {"type": "clear",
                                                                "page_id": "p1"}})
    assert refused["error"]["code"] == "forbidden"
    undo = await teacher.call("undo", {"board_id": board})
    assert undo["ok"]
    await alice.wait_seq(undo["seq"])
    restore = alice.ops[-1]["op"]
    assert restore["type"] == "restore" and {i["id"] for i in restore["items"]} == {"t1", "a1"}
    # Alice's own undo removes her stroke only; redo brings it back.
    mine = await alice.call("undo", {"board_id": board})
    await alice.wait_seq(mine["seq"])
    assert alice.ops[-1]["op"] == {"type": "remove", "item_ids": ["a1"]}
    redo = await alice.call("redo", {"board_id": board})
    await alice.wait_seq(redo["seq"])
    assert alice.ops[-1]["op"]["type"] == "restore"
    nothing = await alice.call("redo", {"board_id": board})
    assert nothing == {"ok": False, "error": {"code": "invalid", "message": "Rien à rétablir."}}


async def test_refusals(demo_server: str, board_client: Any, cast: Cast) -> None:
    board = await create_board(demo_server, cast)
    teacher = await board_client(cast.teacher)
    alice = await board_client(cast.alice)
    await teacher.call("join", {"board_id": board})
    assert (await alice.call("join", {"board_id": board}))["ok"]

    # A pupil without the pen.
    r = await alice.call("op", {"board_id": board, "op": stroke("x")})
    assert r["error"]["code"] == "forbidden" and "stylet" in r["error"]["message"]
    assert (await alice.call("undo", {"board_id": board}))["error"]["code"] == "forbidden"
    for event, data in (("grant", {"board_id": board, "pen": "everyone"}),
                        ("lock", {"board_id": board, "locked": True}),
                        ("end", {"board_id": board}),
                        ("view", {"board_id": board, "page_id": "p1"})):
        assert (await alice.call(event, data))["error"]["code"] == "forbidden", event

    # A pupil of another class, and a parent, cannot even see it (the same answer as a board
    # that does not exist, as DESIGN.md wants).
    for acct in (cast.outsider, cast.parent):
        c = await board_client(acct)
        r = await c.call("join", {"board_id": board})
        assert r["error"]["code"] == "not_found", acct["role"]
        assert (await c.call("join", {"board_id": 999999}))["error"]["code"] == "not_found"
        r = await c.call("op", {"board_id": board, "op": stroke("y")})
        assert r["ok"] is False

    # The pen for Bob only; then locked; then ended: read-only for everyone.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, demo_server, cast.teacher)
        async with s.get(f"{demo_server}/api/boards/{board}") as r:
            class_id = (await r.json())["class_id"]
        async with s.get(f"{demo_server}/api/classes/{class_id}/students") as r:
            ids = {st["login"]: st["id"] for st in (await r.json())["students"]}
    g = await teacher.call("grant", {"board_id": board, "pen": [ids[cast.bob["login"]]]})
    assert g["ok"]
    await alice.wait_for(lambda: alice.events["pen"])
    assert alice.events["pen"][-1]["pen"] == [ids[cast.bob["login"]]]
    assert (await alice.call("op", {"board_id": board, "op": stroke("x")}))["error"][
        "code"] == "forbidden"
    bob = await board_client(cast.bob)
    await bob.call("join", {"board_id": board})
    assert (await bob.call("op", {"board_id": board, "op": stroke("b")}))["ok"]
    stranger = await teacher.call("grant", {"board_id": board, "pen": [999999]})
    assert stranger["error"]["code"] == "invalid"

    assert (await teacher.call("lock", {"board_id": board, "locked": True}))["ok"]
    r = await bob.call("op", {"board_id": board, "op": stroke("b2")})
    assert r["error"]["code"] == "forbidden" and "verrouillé" in r["error"]["message"]
    assert (await teacher.call("op", {"board_id": board, "op": stroke("t")}))["ok"]
    assert (await teacher.call("end", {"board_id": board}))["ok"]
    r = await teacher.call("op", {"board_id": board, "op": stroke("t2")})
    assert r["error"]["code"] == "forbidden" and "lecture seule" in r["error"]["message"]
    review = await board_client(cast.alice)
    j = await review.call("join", {"board_id": board})
    assert j["state"] == "ended" and not j["me"]["can_draw"]
    assert {i["id"] for i in j["snapshot"]["items"]} == {"b", "t"}


@pytest.mark.parametrize(("data", "code"), [
    (None, "invalid"),
    ("texte", "invalid"),
    ({"board_id": "1"}, "invalid"),
    ({"board_id": 1, "op": {"type": "explode"}}, "invalid"),
    ({"board_id": 1, "op": stroke("a b")}, "invalid"),
    ({"board_id": 1, "op": {**stroke("a"), "extra": True}}, "invalid"),
])
async def test_malformed_ops_are_invalid(demo_server: str, board_client: Any, cast: Cast,
                                         data: Any, code: str) -> None:
    teacher = await board_client(cast.teacher)
    r = await teacher.call("op", data)
    assert r["ok"] is False and r["error"]["code"] == code and r["error"]["message"]


async def test_size_and_rate_limits(demo_app: tuple[str, Any], cast: Cast) -> None:
    base, app = demo_app
    clock = freeze_budgets(app, "/boards")  # the burst is judged at one instant
    async with live_clients(BoardClient, base) as board_client:
        await _size_and_rate_limits(base, board_client, cast, clock, app[keys.BOARDS].limits)


async def _size_and_rate_limits(base: str, board_client: Any, cast: Cast,
                                clock: ManualClock, limits: Any) -> None:
    board = await create_board(base, cast)
    teacher, alice = await board_client(cast.teacher), await board_client(cast.alice)
    await teacher.call("join", {"board_id": board})
    await alice.call("join", {"board_id": board})
    huge = stroke("big", n=6000)
    r = await teacher.call("op", {"board_id": board, "op": huge})
    assert r["error"]["code"] == "too_large"
    long_text = {"type": "add", "item": {"id": "t", "kind": "text", "page_id": "p1",
                                          "box": {"x": 0, "y": 0, "w": 10, "h": 10},
                                          "text": "é" * 2001}}
    assert (await teacher.call("op", {"board_id": board, "op": long_text}))["error"][
        "code"] == "too_large"
    before = len(alice.ops)
    # A burst well over the budget: the server refuses the excess, the board keeps the rest.
    acks = await asyncio.gather(*(teacher.call("op", {"board_id": board, "op": stroke(f"r{i}")})
                                  for i in range(250)))
    limited = [a for a in acks if not a["ok"]]
    assert limited and all(a["error"]["code"] == "rate_limited" for a in limited)
    accepted = [a for a in acks if a["ok"]]
    # The budget, exactly: the burst less the op refused for its text (a join is free, an
    # oversized payload is refused before it costs anything).
    assert len(accepted) == limits.ops_burst - 1
    await alice.wait_for(lambda: len(alice.ops) - before == len(accepted))
    assert len(alice.ops) - before == len(accepted)  # nothing refused was applied
    # A second later, a second's worth again, no more.
    clock.advance(1)
    acks = await asyncio.gather(*(teacher.call("op", {"board_id": board, "op": stroke(f"s{i}")})
                                  for i in range(100)))
    assert sum(a["ok"] for a in acks) == limits.ops_per_second


async def test_pointer_and_view_are_volatile(demo_server: str, board_client: Any,
                                             cast: Cast) -> None:
    board = await create_board(demo_server, cast)
    teacher, alice, bob = [await board_client(a) for a in (cast.teacher, cast.alice, cast.bob)]
    for c in (teacher, alice, bob):
        await c.call("join", {"board_id": board})
    # Volatile means a busy server may drop one: send again until it arrives, as a pointer
    # that keeps moving does.
    for _ in range(20):
        await teacher.sio.emit("pointer", {"board_id": board, "x": 100, "y": 200,
                                           "page_id": "p1", "laser": True}, namespace="/boards")
        with contextlib.suppress(TimeoutError):
            await alice.wait_for(lambda: alice.events["pointer"], 0.5)
            break
    assert alice.events["pointer"][0]["laser"] is True and alice.events["pointer"][0]["x"] == 100
    for _ in range(20):
        assert (await teacher.call("view", {"board_id": board, "page_id": "p1",
                                            "zoom": 2}))["ok"]
        with contextlib.suppress(TimeoutError):
            await bob.wait_for(lambda: bob.events["view"], 0.5)
            break
    assert bob.events["view"][-1]["zoom"] == 2
    late = await board_client(cast.cpe)
    assert (await late.call("join", {"board_id": board}))["view"]["zoom"] == 2
    # Not echoed to its sender: the control is a pointer from the teacher's other tab,
    # which this connection does get.
    other_tab = await board_client(cast.teacher)
    assert (await other_tab.call("join", {"board_id": board}))["ok"]

    async def other_tab_points() -> None:
        for _ in range(20):
            await other_tab.sio.emit("pointer", {"board_id": board, "x": 7, "y": 7,
                                                 "page_id": "p1"}, namespace="/boards")
            with contextlib.suppress(TimeoutError):
                await teacher.wait_for(lambda: teacher.events["pointer"], 0.5)
                return

    await nothing_arrived(lambda: [p for p in teacher.events["pointer"] if p["x"] != 7],
                          control=other_tab_points,
                          arrived=lambda: teacher.events["pointer"])
    # Nothing sequenced: the control is one op, which everyone gets, and gets first.
    clients = (teacher, alice, bob)

    async def one_op() -> None:
        ack = await teacher.call("op", {"board_id": board, "op": stroke("apres")})
        assert ack["ok"] and ack["seq"] == 1, ack

    await nothing_arrived(
        lambda: [o for c in clients for o in c.ops if o["op"]["item"]["id"] != "apres"],
        control=one_op, arrived=lambda: all(c.ops for c in clients))


async def test_rest_endpoints(demo_server: str, cast: Cast) -> None:
    board = await create_board(demo_server, cast, "Géométrie <b>")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, demo_server, cast.alice)
        async with s.get(f"{demo_server}/api/boards/{board}") as r:
            meta = await r.json()
        assert meta["title"] == "Géométrie <b>"
        async with s.get(f"{demo_server}/api/boards?class_id={meta['class_id']}") as r:
            assert [b["id"] for b in (await r.json())["boards"]] == [board]
        async with s.post(f"{demo_server}/api/boards", json={
                "title": "x", "class_id": meta["class_id"]}) as r:
            assert r.status == 403  # pupils do not create boards
        for body in ({"title": "", "class_id": meta["class_id"]},
                     {"title": "x", "class_id": "3"}, {"title": "x"}):
            async with s.post(f"{demo_server}/api/boards", json=body) as r:
                assert r.status in (400, 403)
        png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
        async with s.post(f"{demo_server}/api/boards/{board}/images", data=png,
                          headers={"Content-Type": "image/png"}) as r:
            assert r.status == 403  # no pen, no upload
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, demo_server, cast.teacher)
        async with s.post(f"{demo_server}/api/boards/{board}/images", data=png,
                          headers={"Content-Type": "image/png"}) as r:
            assert r.status == 201
            src = (await r.json())["src"]
        async with s.get(f"{demo_server}{src}") as r:
            assert r.status == 200 and await r.read() == png
        async with s.post(f"{demo_server}/api/boards/{board}/images", data=b"<svg/>",
                          headers={"Content-Type": "image/png"}) as r:
            assert r.status == 400
        async with s.post(f"{demo_server}/api/boards/{board}/images",
                          data=b"\x89PNG\r\n\x1a\n" + b"\x00" * (3 * 1024 * 1024),
                          headers={"Content-Type": "image/png"}) as r:
            assert r.status == 413
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, demo_server, cast.parent)
        for path in (f"/api/boards/{board}", src):
            async with s.get(f"{demo_server}{path}") as r:
                assert r.status == 404

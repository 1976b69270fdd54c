"""Two server processes' worth of apps on one Redis: members on either see every op, in order."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from realtime import keys
from realtime.app import create_app
from tests import engines
from tests.boards.conftest import stroke
from tests.boards.pdfs import worksheet_pdf
from tests.boards.test_import import fetch, upload
from tests.boards.test_socket import Cast, create_board
from tests.conftest import REDIS_URL, make_settings, two_nodes


async def test_ops_cross_nodes_through_redis(
    start_server: Any, node_board_client: Any, tmp_path: Path, demo_db_path: Path,
    redis_prefix: str, redis_cleanup: aioredis.Redis, demo_accounts: list[dict[str, Any]],
) -> None:
    a, b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix)
    cast = Cast(demo_accounts)
    board = await create_board(a, cast)
    teacher = await node_board_client(cast.teacher, base=a)
    alice = await node_board_client(cast.alice, base=b)
    bob = await node_board_client(cast.bob, base=b)
    for c in (teacher, alice, bob):
        assert (await c.call("join", {"board_id": board}))["ok"]
    seqs = [(await teacher.call("op", {"board_id": board, "op": stroke(f"s{i}")}))["seq"]
            for i in range(20)]
    assert seqs == list(range(1, 21))
    g = await teacher.call("grant", {"board_id": board, "pen": "everyone"})
    assert g["ok"]
    # The grant reached node B through the stream: Alice, connected there, may draw now.
    await alice.wait_seq(g["seq"])
    mine = await alice.call("op", {"board_id": board, "op": stroke("alice")})
    assert mine["ok"], mine
    for c in (teacher, alice, bob):
        await c.wait_seq(mine["seq"])
        assert [o["seq"] for o in c.ops] == list(range(1, mine["seq"] + 1))  # once each
    # Each node applied the same events: both give the same snapshot.
    late_a = await node_board_client(cast.cpe, base=a)
    late_b = await node_board_client(cast.cpe, base=b)
    snap_a = (await late_a.call("join", {"board_id": board}))["snapshot"]
    snap_b = (await late_b.call("join", {"board_id": board}))["snapshot"]
    assert snap_a == snap_b and len(snap_a["items"]) == 21


async def test_imported_pages_and_instruments_reach_the_other_node(
    start_server: Any, node_board_client: Any, tmp_path: Path, demo_db_path: Path,
    redis_prefix: str, redis_cleanup: aioredis.Redis, demo_accounts: list[dict[str, Any]],
) -> None:
    """A PDF imported through node A: a pupil on node B sees each page and the progress, and
    gets its image from B; a rename and the teacher's ruler cross too."""
    a, b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix)
    cast = Cast(demo_accounts)
    board = await create_board(a, cast)
    teacher = await node_board_client(cast.teacher, base=a)
    alice = await node_board_client(cast.alice, base=b)
    for c in (teacher, alice):
        assert (await c.call("join", {"board_id": board}))["ok"]
    status, body = await upload(a, cast.teacher, board, worksheet_pdf(3))
    assert status == 201, body
    await alice.wait_for(lambda: len(alice.events["import"]) == 3)
    added = [o["op"]["page"]["id"] for o in alice.ops if o["op"]["type"] == "add_page"]
    assert added == [p["id"] for p in body["pages"]]
    status, jpeg, mime = await fetch(b, cast.alice, body["pages"][0]["image"])
    assert status == 200 and mime == "image/jpeg" and jpeg.startswith(b"\xff\xd8")
    renamed = await teacher.call("rename", {"board_id": board, "title": "Fiche 2"})
    await alice.wait_seq(renamed["seq"])
    assert alice.ops[-1]["op"]["title"] == "Fiche 2"
    ruler = {"board_id": board, "kind": "ruler", "page_id": "p1", "x": 10, "y": 20}
    assert (await teacher.call("instrument", ruler))["ok"]
    await alice.wait_for(lambda: alice.events["instrument"])
    assert alice.events["instrument"][-1]["kind"] == "ruler"

async def test_two_authors_on_two_nodes_at_once(
    start_server: Any, node_board_client: Any, tmp_path: Path, demo_db_path: Path,
    redis_prefix: str, redis_cleanup: aioredis.Redis, demo_accounts: list[dict[str, Any]],
) -> None:
    """Authors on both nodes drawing at once: appends are grouped into script calls and each
    node hands its own ops to its follower without waiting for pub/sub, yet every seq is
    handed out once, acked to its author, and every member on either node receives the same
    ops in the same order (the other node's ops in between come through pub/sub)."""
    # Ordering is what this test checks, not admission control: a loaded machine's lagging
    # loop would refuse some of the 25 ops sent at once (rate_limited).
    a, b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix,
                           board_admit_lag_ms=0)
    cast = Cast(demo_accounts)
    board = await create_board(a, cast)
    teacher = await node_board_client(cast.teacher, base=a)
    alice = await node_board_client(cast.alice, base=b)
    bob = await node_board_client(cast.bob, base=a)
    cpe = await node_board_client(cast.cpe, base=b)
    for c in (teacher, alice, bob, cpe):
        assert (await c.call("join", {"board_id": board}))["ok"]
    g = await teacher.call("grant", {"board_id": board, "pen": "everyone"})
    await alice.wait_seq(g["seq"])

    async def draw(client: Any, name: str) -> list[int]:
        answers = await asyncio.gather(*(
            client.call("op", {"board_id": board, "op": stroke(f"{name}{i}")})
            for i in range(25)))
        assert all(r["ok"] for r in answers), answers
        return [r["seq"] for r in answers]

    mine_t, mine_a = await asyncio.gather(draw(teacher, "t"), draw(alice, "a"))
    last = g["seq"] + 50
    assert sorted(mine_t + mine_a) == list(range(g["seq"] + 1, last + 1))
    assert mine_t == sorted(mine_t) and mine_a == sorted(mine_a)  # each author's order kept
    for c in (teacher, alice, bob, cpe):
        await c.wait_seq(last)
    seen = [[(o["seq"], o["author"], o["op"].get("item", {}).get("id")) for o in c.ops]
            for c in (teacher, alice, bob, cpe)]
    assert [s for s, _, _ in seen[0]] == list(range(1, last + 1))  # once each, in order
    assert seen[1] == seen[0] and seen[2] == seen[0] and seen[3] == seen[0]
    late_a = await node_board_client(cast.cpe, base=a)
    late_b = await node_board_client(cast.cpe, base=b)
    snap_a = (await late_a.call("join", {"board_id": board}))["snapshot"]
    snap_b = (await late_b.call("join", {"board_id": board}))["snapshot"]
    assert snap_a == snap_b and len(snap_a["items"]) == 50


async def test_controls_from_two_nodes_at_once_end_as_stored(
    aiohttp_server: Any, node_board_client: Any, tmp_path: Path, demo_db_path: Path,
    redis_prefix: str, redis_cleanup: aioredis.Redis, demo_accounts: list[dict[str, Any]],
) -> None:
    """The teacher's TBI on node A and laptop on node B hand out the pen at the same moment.
    Each node stores its controls, then appends them to the board's stream after its commit,
    so the two appends can come in the other order than the two commits (here forced: A's
    append waits until B has stored and appended). The board must end as the database says,
    on both nodes: the last control stored is the last the class applies."""
    cfg = {"db_path": demo_db_path, "redis_url": REDIS_URL, "redis_prefix": redis_prefix}
    app_a = create_app(make_settings(tmp_path / "a", **cfg))
    a = str((await aiohttp_server(app_a)).make_url("")).rstrip("/")
    b = str((await aiohttp_server(create_app(make_settings(tmp_path / "b", **cfg))))
            .make_url("")).rstrip("/")
    cast = Cast(demo_accounts)
    board = await create_board(a, cast)
    tbi = await node_board_client(cast.teacher, base=a)
    laptop = await node_board_client(cast.teacher, base=b)
    for c in (tbi, laptop):
        assert (await c.call("join", {"board_id": board}))["ok"]
    with engines.connect(demo_db_path) as conn:
        alice = conn.execute("SELECT id FROM users WHERE login = ?",
                             (cast.alice["login"],)).fetchone()[0]

    def stored() -> str | list[int]:
        with engines.connect(demo_db_path) as conn:
            row = conn.execute("SELECT pen_all, pen FROM boards WHERE id = ?",
                               (board,)).fetchone()
        return "everyone" if row[0] else sorted(json.loads(row[1])) or "none"

    # Node A's first control append waits for node B's control to be stored and appended.
    rooms = app_a[keys.BOARDS].rooms
    append, a_holds, b_done = rooms.append, asyncio.Event(), asyncio.Event()

    async def late_append(live: Any, event: Any) -> int:
        if event.control is not None and not a_holds.is_set():
            a_holds.set()
            await b_done.wait()
        return await append(live, event)

    rooms.append = late_append  # type: ignore[method-assign]
    on_a = asyncio.create_task(tbi.call("grant", {"board_id": board, "pen": "everyone"}))
    await asyncio.wait_for(a_holds.wait(), 10)  # A stored « everyone », waits to append it
    assert stored() == "everyone"
    on_b = await laptop.call("grant", {"board_id": board, "pen": [alice]})
    assert on_b["ok"] and stored() == [alice]  # B stored last: the board must end so
    b_done.set()
    assert (await on_a)["ok"]
    await asyncio.sleep(0.3)  # what A appends after its own stale event
    for base in (a, b):
        late = await node_board_client(cast.cpe, base=base)
        assert (await late.call("join", {"board_id": board}))["pen"] == [alice], base
        await late.close()
    for c in (tbi, laptop):  # the members saw it end there too
        await c.wait_for(lambda c=c: c.events["pen"] and c.events["pen"][-1]["pen"] == [alice])

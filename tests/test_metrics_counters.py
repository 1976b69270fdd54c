"""Every counter the metrics page promises (`realtime.metrics.PROMISED`) is one its owner
keeps (`counters()`), is on the page, and moves there when its feature really acts: board
ops, a shed pointer, a Redis restart under live listeners, a stream message pub/sub never
announced, a course update stored without being relayed, a WAL that starts over, presence
calls while Redis is away. Real server, real clients, a Redis of this test only."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from realtime import db as db_module
from realtime import keys
from realtime.app import create_app
from realtime.coursedocs import store as docs_store
from realtime.metrics import PROMISED
from realtime.streams.sql import SqlStreamStore
from tests import engines
from tests.boards.conftest import BoardClient, stroke
from tests.boards.test_socket import Cast, create_board
from tests.conftest import login, make_settings, token_for
from tests.coursedocs.conftest import YClient, new_doc
from tests.coursedocs.test_store import Writer
from tests.engines import open_test_db
from tests.presence.conftest import Tab
from tests.scale.conftest import OwnRedis
from tests.silence import eventually
from tests.test_metrics import Samples, scrape, value

# Where each promised counter shows on the page: (series, labels).
PAGE: dict[tuple[Any, str], tuple[str, dict[str, str]]] = {
    (keys.BOARDS, "frames_sent"): ("realtime_board_fanout_frames_total", {}),
    (keys.BOARDS, "deliveries"): ("realtime_board_fanout_deliveries_total", {}),
    (keys.BOARDS, "volatile_dropped"): ("realtime_volatile_dropped_total",
                                        {"namespace": "/boards"}),
    (keys.SIO, "direct_packets"): ("realtime_sio_direct_packets_total", {}),
    (keys.SIO, "redis_reconnects"): ("realtime_redis_reconnects_total",
                                     {"component": "socketio"}),
    (keys.SIO, "malformed_frames"): ("realtime_malformed_frames_total",
                                     {"transport": "socketio"}),
    (keys.SESSIONS, "closed_connections"): ("realtime_session_ended_connections_total", {}),
    (keys.DOCS, "relay_reconnects"): ("realtime_redis_reconnects_total", {"component": "yjs"}),
    (keys.DOCS, "gaps_caught_up"): ("realtime_yjs_gaps_total", {}),
    (keys.STREAMS, "reconnects"): ("realtime_redis_reconnects_total",
                                   {"component": "streams"}),
    (keys.STREAMS, "gaps"): ("realtime_stream_gaps_total", {}),
    (keys.DB, "wal_restarts"): ("realtime_sqlite_wal_restarts_total", {}),
    (keys.DB, "unavailable"): ("realtime_db_unavailable_total", {}),
    (keys.PRESENCE, "store_errors"): ("realtime_presence_store_errors_total", {}),
}


def test_the_page_names_every_promised_counter() -> None:
    assert set(PAGE) == {(key, name) for key, name, _ in PROMISED}


@dataclass
class Server:
    base: str
    app: web.Application
    cast: Cast
    redis: OwnRedis | None


Act = Callable[[Server], Awaitable[None]]


async def board_with(server: Server) -> tuple[int, BoardClient, BoardClient]:
    board = await create_board(server.base, server.cast)
    clients = []
    for acct in (server.cast.teacher, server.cast.alice):
        c = await BoardClient(server.base, await token_for(server.base, acct)).connect()
        assert (await c.call("join", {"board_id": board}))["ok"]
        clients.append(c)
    return board, clients[0], clients[1]


async def ops(server: Server) -> None:
    board, teacher, alice = await board_with(server)
    try:
        ack = await teacher.call("op", {"board_id": board, "op": stroke("mesure")})
        assert ack["ok"]
        await alice.wait_seq(ack["seq"])
    finally:
        for c in (teacher, alice):
            await c.close()


async def shed_pointer(server: Server) -> None:
    board, teacher, alice = await board_with(server)
    fanout = server.app[keys.BOARDS].rooms.fanout
    try:
        for _ in range(20):  # the server shares this loop: blocking it is the server lagging
            time.sleep(0.15)  # noqa: ASYNC251
            await asyncio.sleep(0.06)  # its lag gauge wakes late and says so
            if fanout.gauge.overloaded:
                await teacher.sio.emit("pointer", {"board_id": board, "x": 1, "y": 1},
                                       namespace="/boards")
                await teacher.call("leave", {"board_id": 999})  # a round trip: handled
                if fanout.volatile_dropped:
                    return
    finally:
        for c in (teacher, alice):
            await c.close()


async def restart_redis(server: Server, listening: Callable[[], Awaitable[Any]]) -> None:
    """Redis restarts (every key gone, connections cut) under live listeners."""
    assert server.redis is not None
    held = await listening()
    try:
        await asyncio.to_thread(server.redis.restart, 0.5)
        await asyncio.sleep(1)  # the listeners notice, reconnect and count
    finally:
        for c in held:
            await c.close()


async def with_board(server: Server) -> list[Any]:
    _board, teacher, alice = await board_with(server)  # the board's stream is followed
    return [teacher, alice]


async def with_doc(server: Server) -> list[Any]:
    http = aiohttp.ClientSession()
    token = await login(http, server.base, server.cast.teacher)
    doc = await new_doc(http, server.base, token)
    client = await YClient(http, server.base, doc["id"], token).connect()  # relayed on Redis

    class Held:
        async def close(self) -> None:
            await client.close()
            await http.close()

    return [Held()]


async def unannounced_stream_message(server: Server) -> None:
    store = server.app[keys.STREAMS]
    assert isinstance(store, SqlStreamStore)
    silent = SqlStreamStore(store.db, 1000, 3600)  # another writer: never announced
    got: list[Any] = []
    async with await store.subscribe("mesure") as sub:
        async def read() -> None:
            async for item in sub:
                got.append(item)
        reader = asyncio.create_task(read())
        await store.append("mesure", {"i": 1})
        await silent.append("mesure", {"i": 2})
        await store.append("mesure", {"i": 3})
        await eventually(lambda: len(got) == 3, 5, "the subscriber never filled its gap")
        reader.cancel()


async def unrelayed_course_update(server: Server) -> None:
    """Another process stored an update and never relayed it: the open document's recheck
    reads it from SQLite."""
    [held] = await with_doc(server)
    try:
        room_doc = server.app[keys.DOCS].rooms.values()[0].doc_id
        other = await open_test_db(server.app[keys.SETTINGS].db_path)
        try:
            await docs_store.append(other, room_doc, [Writer().write("Leçon")], now=2.0)
        finally:
            await other.close()
        await eventually(lambda: server.app[keys.DOCS].rooms.gaps_caught_up, 10,
                         "the recheck never caught the update up")
    finally:
        await held.close()


async def sustained_writes(server: Server) -> None:
    def insert(conn: sqlite3.Connection, n: int) -> int:
        conn.execute("INSERT INTO streams (name, epoch, seq, trimmed_to) "
                     "VALUES (?, 'e', 0, 0)", (f"mesure-{n}",))
        return 1

    db = server.app[keys.DB]
    for i in range(3000):
        await db.write_batch(insert, i)
        await asyncio.sleep(0.001)
        if db.wal_restarts:
            return


async def postgres_connections_cut(server: Server) -> None:
    """Every pooled connection of the server ended by PostgreSQL (as a restart does): the
    next request that reads the database answers `unavailable`."""
    url = server.app[keys.SETTINGS].database_url
    assert url is not None
    token = await token_for(server.base, server.cast.alice)
    schema = engines.schema_for(server.app[keys.SETTINGS].db_path)
    with engines.connect(server.app[keys.SETTINGS].db_path) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE application_name = ? AND pid <> pg_backend_pid()", (schema,))
    async with aiohttp.ClientSession() as s:
        for _ in range(20):
            async with s.get(f"{server.base}/api/me",
                             headers={"Authorization": f"Bearer {token}"}) as r:
                if r.status == 503:
                    assert (await r.json())["error"]["code"] == "unavailable"
                    return
    raise AssertionError("no request met a cut connection")


async def presence_while_redis_is_away(server: Server) -> None:
    assert server.redis is not None
    token = await token_for(server.base, server.cast.alice)
    server.redis.stop()
    try:
        tab = Tab(server.base, token)
        try:
            await asyncio.wait_for(tab.open(), 10)  # an open tab: presence enters it
        except Exception:
            pass  # the connection may fail too; the presence call was made
        await eventually(lambda: server.app[keys.PRESENCE].store_errors, 10,
                         "no presence call failed")
        await tab.close()
    finally:
        server.redis.start()


async def malformed_frame(server: Server) -> None:
    token = await token_for(server.base, server.cast.alice)
    url = server.base.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        assert (await ws.receive()).data.startswith("0{")  # Engine.IO open
        await ws.send_str("40/presence," + json.dumps({"token": token}))
        while not (await ws.receive()).data.startswith("40/presence,"):
            pass
        await ws.send_str('42/presence,["subscribe",{]')  # unreadable: refused, counted
        await eventually(lambda: server.app[keys.SIO].malformed_frames, 5,
                         "the malformed frame was not counted")


async def logout_while_connected(server: Server) -> None:
    token = await token_for(server.base, server.cast.teacher)
    tab = await Tab(server.base, token).open()
    try:
        async with aiohttp.ClientSession() as s, s.post(
                f"{server.base}/api/logout", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200
        await eventually(lambda: not tab.sio.connected, 5, "the tab was not cut")
    finally:
        await tab.close()


ACTS: dict[tuple[Any, str], tuple[bool, Act]] = {  # (needs its own Redis, the act)
    (keys.BOARDS, "frames_sent"): (False, ops),
    (keys.BOARDS, "deliveries"): (False, ops),
    (keys.BOARDS, "volatile_dropped"): (False, shed_pointer),
    (keys.SIO, "direct_packets"): (False, ops),
    (keys.SIO, "redis_reconnects"): (True, lambda s: restart_redis(s, lambda: with_board(s))),
    (keys.SIO, "malformed_frames"): (False, malformed_frame),
    (keys.SESSIONS, "closed_connections"): (False, logout_while_connected),
    (keys.DOCS, "relay_reconnects"): (True, lambda s: restart_redis(s, lambda: with_doc(s))),
    (keys.DOCS, "gaps_caught_up"): (True, unrelayed_course_update),
    (keys.STREAMS, "reconnects"): (True, lambda s: restart_redis(s, lambda: with_board(s))),
    (keys.STREAMS, "gaps"): (False, unannounced_stream_message),
    (keys.DB, "wal_restarts"): (False, sustained_writes),
    (keys.DB, "unavailable"): (False, postgres_connections_cut),
    (keys.PRESENCE, "store_errors"): (True, presence_while_redis_is_away),
}


@pytest_asyncio.fixture
async def serve(aiohttp_server: Any, tmp_path: Path, demo_db_path: Path,
                demo_accounts: list[dict[str, Any]]) -> AsyncIterator[Any]:
    owned: list[OwnRedis] = []

    async def start(own_redis: bool) -> Server:
        redis = None
        overrides: dict[str, Any] = {}
        if own_redis:
            redis = OwnRedis(tmp_path)
            redis.start()
            owned.append(redis)
            overrides = {"redis_url": redis.url, "redis_prefix": "mesures",
                         "docs_recheck_s": 0.2}
        app = create_app(make_settings(tmp_path, db_path=demo_db_path, **overrides))
        server = await aiohttp_server(app)
        return Server(str(server.make_url("")).rstrip("/"), app, Cast(demo_accounts), redis)

    yield start
    for r in owned:
        r.stop()


# The database's counters are those of the engine under test.
OF_THE_OTHER_ENGINE = (keys.DB, "wal_restarts" if engines.POSTGRES else "unavailable")
APPLICABLE = [(k, n) for k, n, _ in PROMISED if (k, n) != OF_THE_OTHER_ENGINE]


@pytest.mark.parametrize("promised", APPLICABLE,
                         ids=[n if k is not keys.SIO else f"sio_{n}" for k, n in APPLICABLE])
async def test_each_promised_counter_moves_when_its_feature_acts(
    serve: Any, promised: tuple[Any, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, name = promised
    own_redis, act = ACTS[promised]
    if promised == (keys.DB, "wal_restarts"):  # a WAL that fills in a second, not an hour
        monkeypatch.setattr(db_module, "CHECKPOINT_EVERY_S", 0.05)
        monkeypatch.setattr(db_module, "WAL_RESTART_FRAMES", 64)
    server = await serve(own_redis)
    owner = server.app[key]
    assert name in owner.counters()  # kept by its owner, under the name promised
    series, labels = PAGE[promised]
    before_count = owner.counters()[name]
    before: Samples = await scrape(server.base)
    await act(server)
    await eventually(lambda: owner.counters()[name] > before_count, 30,
                     f"{name} never moved")
    after = await scrape(server.base)
    assert value(after, series, **labels) > value(before, series, **labels), (series, labels)

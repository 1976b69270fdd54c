"""A member that stops reading is cut off, not buffered without bound, and resumes with `since`."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import aiohttp

from realtime import keys
from realtime.app import create_app
from tests.boards.conftest import BoardClient, stroke
from tests.boards.test_socket import Cast, create_board
from tests.conftest import login, make_settings

NS = "/boards"


def small_receive_buffer(addr_info: Any) -> socket.socket:
    """A client socket with a tiny receive window, so the server's send side fills quickly."""
    family, type_, proto, _name, _addr = addr_info
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


async def raw_member(base: str, token: str, board: int
                     ) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    """Engine.IO 4 / Socket.IO 5 by hand: connect, authenticate, join; then read nothing."""
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        socket_factory=small_receive_buffer))
    ws = await http.ws_connect(base.replace("http", "ws", 1)
                               + "/socket.io/?EIO=4&transport=websocket")
    assert (await ws.receive_str(timeout=5)).startswith("0")
    await ws.send_str(f"40{NS},{json.dumps({'token': token})}")
    assert (await ws.receive_str(timeout=5)).startswith(f"40{NS},")
    await ws.send_str(f'42{NS},1["join",{json.dumps({"board_id": board})}]')
    while True:
        data = await ws.receive_str(timeout=5)
        if data.startswith(f"43{NS},1"):
            assert json.loads(data[len(f"43{NS},1"):])[0]["ok"]
            return http, ws


async def test_a_member_that_stops_reading_is_cut_and_resumes(
    aiohttp_server: Any, tmp_path: Path, demo_db_path: Path,
    demo_accounts: list[dict[str, Any]],
) -> None:
    # The flood below may keep this process's loop busy for a while: that is not the
    # overload admission control is about (test_admission.py), so it is off here.
    app = create_app(make_settings(tmp_path, db_path=demo_db_path, board_admit_lag_ms=0))
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    app[keys.BOARDS].rooms.fanout.max_buffer = 64 * 1024  # cut sooner than in production
    cast = Cast(demo_accounts)
    board = await create_board(base, cast)
    tokens = {}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        for who in ("teacher", "alice", "bob"):
            tokens[who] = await login(s, base, getattr(cast, who))
    teacher = await BoardClient(base, tokens["teacher"]).connect()
    bob = await BoardClient(base, tokens["bob"]).connect()
    http, slow = await raw_member(base, tokens["alice"], board)
    try:
        for c in (teacher, bob):
            assert (await c.call("join", {"board_id": board}))["ok"]
        # A slow link: the kernel's buffers on the server's side of Alice's connection are
        # made small too, so what she does not read piles up in the server's process.
        service = app[keys.BOARDS]
        live = service.rooms.live[board]
        alice_id = next(m.principal.id for m in live.members.values()
                        if m.principal.user.login == cast.alice["login"])
        sid = next(s for s, m in live.members.items() if m.principal.id == alice_id)
        eio_sid = app[keys.SIO].manager.eio_sid_from_sid(sid, NS)
        transport = app[keys.SIO].eio.sockets[eio_sid].aiohttp_ws._writer.transport
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        # 150 strokes of 400 points (~6 KB each): far more than the slow member can take in.
        acks = await asyncio.gather(*(
            teacher.call("op", {"board_id": board, "op": stroke(f"s{i}", n=400, x=i)})
            for i in range(150)))
        assert all(a["ok"] for a in acks), acks[:3]
        await bob.wait_seq(150)  # the others are not held back
        assert [o["seq"] for o in bob.ops] == list(range(1, 151))

        # Now the slow member reads: a gap-free prefix of the ops, then a disconnect.
        seqs: list[int] = []
        while True:
            msg = await slow.receive(timeout=10)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            if msg.data.startswith(f"42{NS},"):
                name, frame = json.loads(msg.data[len(f"42{NS},"):])
                if name == "ops":
                    seqs += [o["seq"] for o in frame["ops"]]
            elif msg.data.startswith(f"41{NS}"):
                break
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < 150, seqs[-3:]
        assert sid in service.rooms.fanout.cut or sid not in live.members

        # It comes back and asks for what it missed: exactly the rest.
        back = await BoardClient(base, tokens["alice"]).connect()
        join = await back.call("join", {"board_id": board, "since": {
            "epoch": (await bob.call("join", {"board_id": board}))["epoch"],
            "seq": len(seqs)}})
        assert [o["seq"] for o in join["ops"]] == list(range(len(seqs) + 1, 151))
        await back.close()
    finally:
        await slow.close()
        await http.close()
        await teacher.close()
        await bob.close()

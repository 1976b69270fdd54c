"""Packets written straight to the websocket (realtime/direct.py) keep the queue's order.

A real aiohttp server with the ENT's Socket.IO server class, real python-socketio clients
over loopback websockets."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
from aiohttp import web

from realtime.direct import DirectServer, MsgspecJSON, writer_parked

BIG = 1024 * 1024  # far above the transport's high-water mark: the writer waits to drain


class _Sock:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()


async def test_writer_parked_only_while_waiting_on_an_empty_queue() -> None:
    sock = _Sock()
    assert not writer_parked(sock)  # no writer waiting (it holds packets, or is gone)
    getter = asyncio.ensure_future(sock.queue.get())
    await asyncio.sleep(0)
    assert writer_parked(sock)
    sock.queue.put_nowait("packet")  # woken, not run yet: it will write "packet" first
    assert not writer_parked(sock)
    assert await getter == "packet"
    assert not writer_parked(sock)


async def _serve(aiohttp_server: Any) -> tuple[str, DirectServer]:
    sio = DirectServer(async_mode="aiohttp", transports=["websocket"], async_handlers=False,
                       json=MsgspecJSON, logger=False, engineio_logger=False)
    app = web.Application()
    sio.attach(app)

    @sio.on("burst")
    async def burst(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        # Two binary packets go through the queue (the writer takes both, writes the first
        # and waits for the transport to drain), then text packets and the ack follow.
        for name in data["big"]:
            await sio.emit("big", {"name": name, "blob": b"\x00" * BIG}, to=sid)
        for i in range(data["small"]):
            await sio.emit("small", {"i": i, "texte": "élève — café"}, to=sid)
        return {"ok": True, "sent": data["small"]}

    server = await aiohttp_server(app)
    return str(server.make_url("")), sio


async def test_direct_packets_never_overtake_queued_ones(aiohttp_server: Any) -> None:
    url, sio = await _serve(aiohttp_server)
    client = socketio.AsyncClient(reconnection=False)
    order: list[Any] = []
    client.on("big", lambda d: order.append(("big", d["name"], len(d["blob"]))))
    client.on("small", lambda d: order.append(("small", d["i"], d["texte"])))
    await client.connect(url, transports=["websocket"])
    try:
        for round_ in range(3):
            order.clear()
            answer = await client.call("burst", {"big": ["a", "b"], "small": 20}, timeout=30)
            order.append(("ack", answer))
            assert order == [
                ("big", "a", BIG), ("big", "b", BIG),
                *[("small", i, "élève — café") for i in range(20)],
                ("ack", {"ok": True, "sent": 20}),
            ], round_
        # Without binary packets in the way, the text packets and the acks went straight
        # to the socket.
        before = sio.direct_packets
        order.clear()
        answer = await client.call("burst", {"big": [], "small": 5}, timeout=10)
        assert answer == {"ok": True, "sent": 5}
        assert [o[1] for o in order] == list(range(5))
        assert sio.direct_packets - before == 6
    finally:
        await client.disconnect()


async def test_invalid_json_in_a_packet_changes_nothing(aiohttp_server: Any) -> None:
    """msgspec refuses what the standard library accepted loosely (NaN) or not at all: the
    packet is dropped, the connection and the next event are fine."""
    url, _sio = await _serve(aiohttp_server)
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"])
    try:
        ws = client.eio.ws
        await ws.send_str('42["burst",{"big":[],"small":NaN}]')
        await ws.send_str('42["burst",{"big":[],"small":')
        answer = await client.call("burst", {"big": [], "small": 1}, timeout=10)
        assert answer == {"ok": True, "sent": 1}
    finally:
        await client.disconnect()

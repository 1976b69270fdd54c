"""Malformed Engine.IO / Socket.IO frames are answered (the connection is closed) and counted,
not logged as ERROR tracebacks, and nothing writes an HTTP 500 into an upgraded websocket
(issue #13 item 10). Real websockets against a real server."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from realtime import keys
from realtime.app import create_app
from tests.conftest import account, make_settings, token_for

# Engine.IO-level garbage: not a packet at all; the connection is closed.
EIO_GARBAGE = ["", "9", "x", "\x00\xff", "4" + "[" * 5000]
# Socket.IO-level: a packet with unreadable or impossible content; refused, counted.
SIO_MALFORMED = ["4", "42[", "40{", "4x", '42["op",{]', "42[1,2]", "42[]", "42", "43",
                 "45-[]", "46", "42/boards,[1,2", "4\x00\xff"]


async def _server(aiohttp_server: Any, tmp_path: Path, db: Path) -> tuple[str, web.Application]:
    app = create_app(make_settings(tmp_path, db_path=db))

    async def broken_after_upgrade(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()
        raise RuntimeError("bug after the upgrade")

    app.router.add_get("/test-broken-ws", broken_after_upgrade)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), app


async def _connected(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Until the namespace's CONNECT answer (the `session` event may come first)."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        if msg.data.startswith("40"):
            return


async def _closed(ws: aiohttp.ClientWebSocketResponse) -> None:
    while True:
        msg = await asyncio.wait_for(ws.receive(), 5)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                        aiohttp.WSMsgType.CLOSING):
            return
        assert msg.type is aiohttp.WSMsgType.TEXT and "HTTP/1.1" not in msg.data, msg


async def _answer(ws: aiohttp.ClientWebSocketResponse, prefix: str) -> Any:
    while True:
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        if msg.data.startswith(prefix):
            return json.loads(msg.data[len(prefix):])


async def test_malformed_frames_are_answered_counted_and_quiet(
        aiohttp_server: Any, tmp_path: Path, demo_db_path: Path,
        demo_accounts: list[dict[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
    base, app = await _server(aiohttp_server, tmp_path, demo_db_path)
    token = await token_for(base, account(demo_accounts, "student"))
    ws_url = base.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    caplog.set_level(logging.INFO)
    sio = app[keys.SIO]

    async def connected() -> aiohttp.ClientWebSocketResponse:
        ws = await s.ws_connect(ws_url)
        assert (await ws.receive()).data.startswith("0{")  # Engine.IO open
        await ws.send_str("40/presence," + json.dumps({"token": token}))
        await _answer(ws, "40/presence,")
        return ws

    async with aiohttp.ClientSession() as s:
        for frame in EIO_GARBAGE * 3:  # not Engine.IO: closed
            ws = await connected()
            await ws.send_str(frame)
            await _closed(ws)
        before = sio.malformed_frames
        ws = await connected()
        for frame in SIO_MALFORMED:  # refused one by one, the connection goes on
            await ws.send_str(frame)
        # a malformed event that asked for an answer gets `invalid`
        await ws.send_str('42/presence,7["subscribe",{"scope":]')
        assert await _answer(ws, "43/presence,7") == [
            {"ok": False, "error": {"code": "invalid",
                                    "message": "Message illisible : il a été ignoré."}}]
        # and the connection still works
        await ws.send_str('42/presence,8["subscribe",{"scope":"school:1"}]')
        [ack] = await _answer(ws, "43/presence,8")  # handled by the namespace itself
        assert ack["ok"] or ack["error"]["message"] != "Message illisible : il a été ignoré."
        assert sio.malformed_frames - before == len(SIO_MALFORMED) + 1
        # a flood of them closes it
        for _ in range(25):
            await ws.send_str("42[")
        await _closed(ws)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert not [r for r in caplog.records if r.exc_info]
    # one line for the first malformed packet of a connection, not one per frame
    refused = [r for r in caplog.records if "malformed Socket.IO packet refused" in r.getMessage()]
    assert len(refused) == 1


async def test_extra_event_arguments_are_invalid(demo_server: str,
                                                 demo_accounts: list[dict[str, Any]]) -> None:
    import socketio

    token = await token_for(demo_server, account(demo_accounts, "student"))
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(demo_server, namespaces=["/presence"], transports=["websocket"],
                         auth={"token": token}, wait_timeout=5)
    try:
        ack = await client.call("subscribe", ({"scope": "school"}, "extra", 3),
                                namespace="/presence", timeout=5)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid"
    finally:
        await client.disconnect()


async def test_no_500_written_into_an_upgraded_websocket(
        aiohttp_server: Any, tmp_path: Path, demo_db_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    base, _app = await _server(aiohttp_server, tmp_path, demo_db_path)
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(base.replace("http", "ws", 1) + "/test-broken-ws")
        await ws.send_str("hello")
        msg = await asyncio.wait_for(ws.receive(), 5)
        # the socket closes; before the fix, "HTTP/1.1 500" arrived as websocket bytes
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR), msg
        await ws.close()
    assert any("after the response started" in r.getMessage() for r in caplog.records)

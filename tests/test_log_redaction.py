"""Tokens never reach logs (issue #13 item 9): `/yjs/<id>?token=…` and other credential
parameters are masked in the access log the server runs with (realtime/serve.py)."""

from __future__ import annotations

import inspect
import logging
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from realtime import serve
from realtime.app import create_app
from realtime.logs import AccessLogger, redact_query
from tests.conftest import account, make_settings, token_for


def test_redact_query() -> None:
    assert redact_query("token=abc.def&x=1") == "token=[masqué]&x=1"
    assert redact_query("EIO=4&transport=websocket") == "EIO=4&transport=websocket"
    assert redact_query("TICKET=ST-1-xyz&service=a") == "TICKET=[masqué]&service=a"


def test_serve_uses_the_redacting_access_logger() -> None:
    assert "access_log_class=AccessLogger" in inspect.getsource(serve.run)


async def test_yjs_token_is_not_logged(tmp_path: Path, demo_db_path: Path,
                                       demo_accounts: list[dict[str, Any]],
                                       caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(make_settings(tmp_path, db_path=demo_db_path))
    runner = web.AppRunner(app, access_log=logging.getLogger("realtime.access"),
                           access_log_class=AccessLogger)
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    base = f"http://127.0.0.1:{port}"
    try:
        teacher = account(demo_accounts, "teacher")
        token = await token_for(base, teacher)
        caplog.set_level(logging.DEBUG)
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/api/docs", json={"title": "Cours"},
                                 headers={"Authorization": f"Bearer {token}"}) as r:
                doc_id = (await r.json())["id"]
            ws = await http.ws_connect(f"{base.replace('http', 'ws')}/yjs/{doc_id}"
                                       f"?token={token}")
            await ws.send_bytes(b"\xff\xff")  # malformed: the server closes it
            await ws.receive()
            await ws.close()
            async with http.get(f"{base}/api/me?token={token}&x=1") as r:
                assert r.status == 401
        await runner.cleanup()
        logged = caplog.text
        assert f"/yjs/{doc_id}?token=[masqué]" in logged
        assert "/api/me?token=[masqué]&x=1" in logged
        assert token not in logged
        assert token.split(".")[0] not in logged
    finally:
        await runner.cleanup()

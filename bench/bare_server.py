"""The baseline for `bench.boards`: a bare python-socketio room broadcast, nothing else.

Same transport as the ENT server (aiohttp + uvloop, websocket, one event at a time per
connection) and the same event names on `/boards`, so the very same clients drive both; but no
auth, no validation, no stream, no state: `join` enters a room, `op` numbers the op and does
one `sio.emit('op', …, room=…)` to every member (the sender included), then acks.

    python -m bench.bare_server --port 8765
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import socketio
from aiohttp import web

NS = "/boards"


def create_app() -> web.Application:
    sio = socketio.AsyncServer(async_mode="aiohttp", transports=["websocket"],
                               async_handlers=False, ping_interval=20, ping_timeout=20,
                               logger=False, engineio_logger=False)
    app = web.Application()
    sio.attach(app)
    seqs: dict[int, int] = {}

    @sio.on("connect", namespace=NS)
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        return None

    @sio.on("join", namespace=NS)
    async def join(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        board = int(data["board_id"])
        await sio.enter_room(sid, f"board:{board}", namespace=NS)
        return {"ok": True, "seq": seqs.get(board, 0)}

    @sio.on("op", namespace=NS)
    async def op(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        board = int(data["board_id"])
        seq = seqs[board] = seqs.get(board, 0) + 1
        message = {"board_id": board, "seq": seq, "author": 0, "op": data["op"]}
        await sio.emit("op", message, room=f"board:{board}", skip_sid=None, namespace=NS)
        return {"ok": True, "seq": seq}

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        import asyncio

        loop = asyncio.new_event_loop()
    web.run_app(create_app(), host=args.host, port=args.port, print=None, access_log=None,
                shutdown_timeout=2, loop=loop)


if __name__ == "__main__":
    main()

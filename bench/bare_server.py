"""The baseline for `bench.boards`: a bare python-socketio room broadcast, nothing else.

Same transport as the ENT server (aiohttp + uvloop, websocket, one event at a time per
connection) and the same event names on `/boards`, so the very same clients drive both; but no
auth, no validation, no stream, no state: `join` enters a room, `op` numbers the op and does
one `sio.emit('op', …, room=…)` to every member (the sender included), then acks.

    python -m bench.bare_server --port 8765
"""

from __future__ import annotations

import argparse
from typing import Any

from aiohttp import web

from bench._serve import serve, socketio_app

NS = "/boards"


def create_app(_args: argparse.Namespace | None = None) -> web.Application:
    app, sio = socketio_app()
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

    return app


if __name__ == "__main__":
    serve(__doc__, create_app)

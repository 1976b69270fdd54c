"""The baseline for `bench.chat`: a bare python-socketio chat fan-out, nothing else.

Same transport as the ENT server (aiohttp + uvloop, websocket, one event at a time per
connection), the same `/chat` event names and the same delivery shape (one emit per
participant to the room `chatuser:<id>`, so every device of a user gets it), so the very same
clients drive both; but no auth (the token *is* the user id), no validation, no policy, no
SQLite, no names: `send` numbers the message and emits it to each member, then acks.

    python -m bench.bare_chat --port 8766 --plan plan.json   # {"<conv id>": [user ids]}
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import socketio
from aiohttp import web

NS = "/chat"


def create_app(members: dict[int, list[int]]) -> web.Application:
    sio = socketio.AsyncServer(async_mode="aiohttp", transports=["websocket"],
                               async_handlers=False, ping_interval=20, ping_timeout=20,
                               logger=False, engineio_logger=False)
    app = web.Application()
    sio.attach(app)
    seqs: dict[int, int] = {}

    @sio.on("connect", namespace=NS)
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        uid = int(auth["token"])
        await sio.enter_room(sid, f"chatuser:{uid}", namespace=NS)
        await sio.emit("welcome", {"me": {"id": uid}, "conversations": []}, to=sid,
                       namespace=NS)

    @sio.on("send", namespace=NS)
    async def send(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        conv = int(data["conversation_id"])
        seq = seqs[conv] = seqs.get(conv, 0) + 1
        event = {"conversation_id": conv, "seq": seq, "kind": "message", "at": time.time(),
                 "message": {"seq": seq, "body": data["body"], "author_id": 0}}
        for uid in members[conv]:
            await sio.emit("event", event, room=f"chatuser:{uid}", namespace=NS)
        return {"ok": True, "seq": seq}

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--plan", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    members = {int(k): v for k, v in json.loads(args.plan.read_text()).items()}
    import uvloop

    web.run_app(create_app(members), host=args.host, port=args.port, print=None,
                access_log=None, shutdown_timeout=2, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()

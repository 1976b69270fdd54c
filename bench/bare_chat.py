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
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from bench._serve import serve, socketio_app

NS = "/chat"


def create_app(members: dict[int, list[int]]) -> web.Application:
    app, sio = socketio_app()
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

    return app


def from_args(args: argparse.Namespace) -> web.Application:
    return create_app({int(k): v for k, v in json.loads(args.plan.read_text()).items()})


if __name__ == "__main__":
    serve(__doc__, from_args,
          lambda parser: parser.add_argument("--plan", type=Path, required=True))

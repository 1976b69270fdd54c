"""`GET /healthz`: is the database answering, and Redis when configured?"""

from __future__ import annotations

import asyncio
import os

import socketio
from aiohttp import web

from realtime import keys
from realtime.api import json_response


async def _check(probe: object) -> str:
    try:
        ok = await asyncio.wait_for(probe, timeout=2)  # type: ignore[arg-type]
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok" if ok else "error"


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    checks = {"database": await _check(app[keys.DB].ping())}
    redis = app[keys.REDIS]
    checks["redis"] = await _check(redis.ping()) if redis is not None else "not_configured"
    healthy = all(v in ("ok", "not_configured") for v in checks.values())
    return json_response(
        {"status": "ok" if healthy else "error", "checks": checks},
        status=200 if healthy else 503,
        # Which process answered: behind one port (serve --workers), operators and tests
        # can tell the workers apart.
        headers={"X-Realtime-Pid": str(os.getpid())},
    )


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    app.router.add_get("/healthz", healthz)

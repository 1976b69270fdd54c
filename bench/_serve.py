"""Start-up shared by the bench's baseline servers (`bare_server`, `bare_chat`,
`pycrdt_ws_server`): each is an aiohttp app run the same way — `--host`, `--port`, warnings
only, uvloop, no access log, a `/healthz` the bench polls until the server is up — so that
the baselines differ from each other and from the ENT server only in what they serve.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable

import socketio
from aiohttp import web


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def socketio_app() -> tuple[web.Application, socketio.AsyncServer]:
    """An aiohttp app with a python-socketio server configured as the ENT server's: websocket
    only, one event at a time per connection (`async_handlers=False`), the same pings."""
    sio = socketio.AsyncServer(async_mode="aiohttp", transports=["websocket"],
                               async_handlers=False, ping_interval=20, ping_timeout=20,
                               logger=False, engineio_logger=False)
    app = web.Application()
    sio.attach(app)
    app.router.add_get("/healthz", healthz)
    return app, sio


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()


def serve(doc: str | None, create_app: Callable[[argparse.Namespace], web.Application],
          add_arguments: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    """Parse `--host`/`--port` (and the server's own options), then run the app until
    SIGTERM, as the bench stops it."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    web.run_app(create_app(args), host=args.host, port=args.port, print=None,
                access_log=None, shutdown_timeout=2, loop=_new_loop())

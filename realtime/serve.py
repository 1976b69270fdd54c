"""Running the server: uvloop, structured logs, graceful shutdown on SIGTERM."""

from __future__ import annotations

import logging
import os

from aiohttp import web

from realtime.app import create_app
from realtime.logs import configure
from realtime.settings import Settings

log = logging.getLogger("realtime.serve")


def run(settings: Settings, reuse_port: bool = False) -> None:
    """One server process; `reuse_port` lets several bind the same port (serve --workers)."""
    configure(settings.log_level, settings.log_json)
    app = create_app(settings)

    async def announce(_app: web.Application) -> None:
        url = f"http://{settings.host}:{settings.port}/"
        log.info("server ready", extra={"url": url, "db": str(settings.db_path),
                                        "redis": bool(settings.redis_url)})
        print(f"ENT temps réel prêt : ouvrez {url} pour vous connecter (processus "
              f"{os.getpid()}).", flush=True)

    app.on_startup.append(announce)
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        import asyncio

        loop = asyncio.new_event_loop()
    # run_app turns SIGTERM/SIGINT into a graceful exit: stop listening, run on_shutdown
    # (clients told and disconnected), wait up to shutdown_timeout for handlers, then close
    # resources in reverse order (the database after its last write).
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_timeout_s,
        access_log=logging.getLogger("realtime.access"),
        print=None,
        loop=loop,
        reuse_port=reuse_port or None,
    )

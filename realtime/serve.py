"""Running the server: uvloop, structured logs, graceful shutdown on SIGTERM."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable

from aiohttp import web

from realtime import keys, node_guard
from realtime.app import create_app
from realtime.logs import AccessLogger, configure
from realtime.placement import Handovers, Placement, serve_placed
from realtime.settings import Settings

log = logging.getLogger("realtime.serve")

# The youngest generation's threshold (CPython's default is 700 allocations). Every op and
# frame makes short-lived containers; objects still in flight when a young collection runs
# are promoted, and enough promotions trigger a full collection, which walks every live
# object with the event loop stopped (tens of ms with a thousand connections). A larger
# first generation lets in-flight objects die young: fewer promotions, fewer full passes.
GC_YOUNG_THRESHOLD = 20_000


async def settle_heap(_app: web.Application) -> None:
    """Once everything is loaded and opened: the modules, classes and resources allocated
    so far live as long as the process, so they are moved out of the collector's sight
    (`gc.freeze`), and later full collections walk only what the server allocates while
    serving."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def run(settings: Settings, reuse_port: bool = False,
        placement: Placement | None = None, ready: Callable[[], object] | None = None) -> None:
    """One server process; `reuse_port` lets several bind the same port (serve --workers),
    and `placement` puts each board's connections on its home worker (realtime/placement.py).
    `ready()` is called once the app has started (the supervisor's sign of a live worker).
    """
    configure(settings.log_level, settings.log_json)
    app = create_app(settings)
    node_guard.install(app)  # PostgreSQL: all nodes with Redis, or one alone without

    async def announce(_app: web.Application) -> None:
        url = f"http://{settings.host}:{settings.port}/"
        log.info("server ready", extra={"url": url, "db": str(settings.db_path),
                                        "redis": bool(settings.redis_url)})
        print(f"ENT temps réel prêt : ouvrez {url} pour vous connecter (processus "
              f"{os.getpid()}).", flush=True)
        if ready is not None:
            ready()

    app.on_startup.append(settle_heap)
    app.on_startup.append(announce)
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        import asyncio

        loop = asyncio.new_event_loop()
    if placement is not None:  # the same runner as run_app's below, with a placing site
        counts = Handovers()
        app[keys.PLACEMENT] = counts
        serve_placed(app, host=settings.host, port=settings.port, placement=placement,
                     counts=counts, loop=loop, shutdown_timeout=settings.shutdown_timeout_s,
                     access_log=logging.getLogger("realtime.access"),
                     access_log_class=AccessLogger)
        return
    # run_app turns SIGTERM/SIGINT into a graceful exit: stop listening, run on_shutdown
    # (clients told and disconnected), wait up to shutdown_timeout for handlers, then close
    # resources in reverse order (the database after its last write).
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_timeout_s,
        access_log=logging.getLogger("realtime.access"),
        access_log_class=AccessLogger,  # no token or ticket from a URL in the logs
        print=None,
        loop=loop,
        reuse_port=reuse_port or None,
    )

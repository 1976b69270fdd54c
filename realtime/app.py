"""The one application factory: resources in dependency order, then every feature."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import socketio
from aiohttp import web

from realtime import (
    attendance,
    boards,
    chat,
    coursedocs,
    headers,
    health,
    keys,
    metrics,
    presence,
    redis_client,
    retention,
    webclient,
)
from realtime import sio as sio_mod
from realtime.api import errors_middleware, same_origin_middleware, websocket_compression
from realtime.db import open_database
from realtime.directory import routes as directory_routes
from realtime.identity import routes as identity_routes
from realtime.identity import sso
from realtime.identity import store as identity_store
from realtime.identity.codes import CodeHasher
from realtime.identity.model import Role
from realtime.identity.service import IdentityService
from realtime.identity.sessions import SessionBus, channel_for
from realtime.identity.tokens import TokenSigner
from realtime.ratelimit import (
    MemoryRateLimiter,
    MemoryThrottle,
    RateLimiter,
    RedisRateLimiter,
    RedisThrottle,
)
from realtime.settings import Settings
from realtime.shared import session_secret
from realtime.streams import open_stream_store

log = logging.getLogger(__name__)

MAINTENANCE_EVERY_S = 600.0

# Each feature exposes setup(app, sio); the factory lists them here.
# Presence comes before the features that report into it (opened before, closed after them).
FEATURES = (headers, health, metrics, identity_routes, sso, directory_routes, presence,
            boards, attendance, coursedocs, webclient, sio_mod, chat,
            retention)


async def _database(app: web.Application) -> AsyncIterator[None]:
    db = await open_database(app[keys.SETTINGS])
    db.observer = app[keys.METRICS].wrote  # write latency and batch sizes
    app[keys.DB] = db
    yield
    await db.close()  # waits for the transaction under way


async def _redis(app: web.Application) -> AsyncIterator[None]:
    url = app[keys.SETTINGS].redis_url
    client = redis_client.connect(url) if url else None
    if client is not None:
        await client.ping()
    app[keys.REDIS] = client
    yield
    if client is not None:
        await client.aclose()


async def _streams(app: web.Application) -> AsyncIterator[None]:
    store = open_stream_store(app[keys.SETTINGS], app[keys.DB], app[keys.REDIS])
    app[keys.STREAMS] = store
    yield
    await store.close()


def _limiter(app: web.Application, name: str, limit: int) -> RateLimiter:
    s = app[keys.SETTINGS]
    redis = app[keys.REDIS]
    if redis is not None:
        return RedisRateLimiter(redis, f"{s.redis_prefix}:{name}", limit, s.login_window_s)
    return MemoryRateLimiter(limit, s.login_window_s)


async def _sessions(app: web.Application) -> AsyncIterator[None]:
    """Live connections by session, closed when their session ends (docs/security.md)."""
    s = app[keys.SETTINGS]
    bus = SessionBus(app[keys.DB], app[keys.REDIS], channel_for(s.redis_prefix),
                     recheck_s=s.session_recheck_s)
    await bus.start()
    app[keys.SESSIONS] = bus
    yield
    await bus.close()


async def _identity(app: web.Application) -> AsyncIterator[None]:
    s = app[keys.SETTINGS]
    app[keys.IDENTITY] = IdentityService(
        app[keys.DB],
        CodeHasher(s.kdf_time_cost, s.kdf_memory_kib, s.kdf_parallelism),
        TokenSigner(await session_secret(s, app[keys.DB]), s.token_ttl_s),
        per_login=_limiter(app, "login", s.login_max_failures_per_login),
        per_address=_limiter(app, "login-addr", s.login_max_failures_per_ip),
        code_login_off=frozenset(Role(r) for r in s.code_login_off),
        sessions=app[keys.SESSIONS],
        throttle=(RedisThrottle(app[keys.REDIS], f"{s.redis_prefix}:login")
                  if app[keys.REDIS] is not None else MemoryThrottle()),
        max_delay_s=s.login_max_delay_s,
    )
    yield


async def _maintenance_loop(app: web.Application) -> None:
    """Bound what grows: stream history by size and age, dead sessions."""
    while True:
        await asyncio.sleep(MAINTENANCE_EVERY_S)
        try:
            await app[keys.STREAMS].trim()
            async with app[keys.DB].transaction() as conn:
                await identity_store.purge_sessions(conn, time.time())
        except Exception:
            log.exception("maintenance failed")


async def _background(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_maintenance_loop(app), name="maintenance")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_clients(app: web.Application) -> None:
    """SIGTERM: the listening socket is already closed; tell clients why and let them go."""
    sio = app[keys.SIO]
    closed = await sio_mod.disconnect_everyone(sio)
    await sio.shutdown()
    log.info("clients closed for shutdown", extra={"clients": closed})


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[websocket_compression(settings.ws_compression), errors_middleware,
                     same_origin_middleware],
    )
    app[keys.SETTINGS] = settings
    metrics.install(app)
    sio: socketio.AsyncServer = sio_mod.create_sio(settings)
    sio.attach(app)
    app[keys.SIO] = sio
    for ctx in (_database, _redis, _streams, _sessions, _identity, _background):
        app.cleanup_ctx.append(ctx)
    app.on_shutdown.append(_close_clients)
    for feature in FEATURES:
        feature.setup(app, sio)
    return app

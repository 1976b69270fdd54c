"""Every use of a library's private names, in one place, checked at start-up.

The server's fast paths lean on a few internals of python-engineio, python-socketio, aiohttp
and asyncio that have no public equivalent (docs/performance.md measured what each saves).
They live here only, each behind a function that falls back to the public, slower way when the
internal is not there, and `self_check()` says at start-up which ones are on: a gauge
`realtime_fast_path{path}` per path (1 on, 0 fallen back) and one warning per path that fell
back, so an upgrade that breaks one is loud, not a silent slowdown. `tests/test_internals.py`
asserts every path is on at the pinned versions (pyproject.toml's upper bounds).

Where a public way exists it is used instead (redis-py's `PubSub` constructor; a plain
`sqlite3` connection owned by `realtime/db.py` rather than aiosqlite's).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import socketio
from aiohttp import web
from aiohttp.http_websocket import WebSocketWriter
from engineio.async_drivers import aiohttp as eio_aiohttp

log = logging.getLogger(__name__)

FAST_PATHS: dict[str, str] = {
    "engineio_websocket_driver": "python-engineio's per-server driver table "
                                 "(AsyncServer._async['websocket']), to note each connection's "
                                 "aiohttp response",
    "engineio_raw_websocket": "python-engineio's aiohttp websocket wrapper keeps aiohttp's "
                              "response as `_sock`",
    "asyncio_queue_getters": "asyncio.Queue keeps its waiting getters in `_getters` (is the "
                             "connection's writer parked?)",
    "aiohttp_ws_transport": "aiohttp's WebSocketResponse keeps its writer in `_writer`, whose "
                            "`transport` takes a frame directly",
    "socketio_send_hooks": "python-socketio's AsyncServer sends every packet through "
                           "`_send_packet` / `_send_eio_packet` (DirectServer overrides them)",
    "socketio_redis_connect": "python-socketio's AsyncRedisManager connects in "
                              "`_redis_connect` (redis, valkey and sentinel URLs)",
}

_warned: set[str] = set()


# --- python-engineio -------------------------------------------------------------------------

def install_websocket_driver(sio: socketio.AsyncServer, cls: type) -> bool:
    """Use `cls` (a subclass of python-engineio's aiohttp `WebSocket`) for this server's
    websockets only (the driver table is copied). False: the table is not where it was."""
    table = getattr(sio.eio, "_async", None)
    if not isinstance(table, dict):
        fell_back("engineio_websocket_driver")
        return False
    if table.get("websocket") in (eio_aiohttp.WebSocket, cls):
        sio.eio._async = {**table, "websocket": cls}
        return True
    return False


def raw_websocket(eio_ws: Any) -> web.WebSocketResponse | None:
    """aiohttp's response behind python-engineio's websocket wrapper, or None."""
    ws = getattr(eio_ws, "_sock", None)
    if ws is None:
        fell_back("engineio_raw_websocket")
    return ws


# --- asyncio and aiohttp ---------------------------------------------------------------------

def queue_has_waiting_getter(queue: asyncio.Queue[Any]) -> bool:
    """A task waits in `queue.get()` right now (its future is not done yet). False when
    that cannot be known: the caller then takes the queue, the always-safe way."""
    getters = getattr(queue, "_getters", None)
    if getters is None:
        fell_back("asyncio_queue_getters")
        return False
    return any(not waiter.done() for waiter in getters)


def websocket_transport(ws: web.WebSocketResponse) -> asyncio.Transport | None:
    """The transport an open aiohttp websocket writes its frames to, or None."""
    writer = getattr(ws, "_writer", None)
    transport = getattr(writer, "transport", None)
    if writer is not None and transport is None:
        fell_back("aiohttp_ws_transport")
    return transport


# --- python-socketio ---------------------------------------------------------------------------

def redis_client_for(manager: socketio.AsyncRedisManager) -> Any:
    """A new Redis client for `manager`'s URL, made the way python-socketio makes its own
    (so `redis+sentinel://` and `valkey://` URLs work); the manager's own client, pub/sub and
    state are left as they were. redis-py's `from_url` when that method is gone."""
    connect = getattr(manager, "_redis_connect", None)
    if not callable(connect):
        fell_back("socketio_redis_connect")
        import redis.asyncio as aioredis

        return aioredis.Redis.from_url(manager.redis_url, **manager.redis_options)
    saved = (manager.redis, manager.pubsub, manager.connected)
    try:
        connect()  # sets manager.redis (and a pub/sub object that never connected)
        return manager.redis
    finally:
        manager.redis, manager.pubsub, manager.connected = saved


# --- the self-check ----------------------------------------------------------------------------

def _check(name: str) -> bool:
    if name == "engineio_websocket_driver":
        server = socketio.AsyncServer(async_mode="aiohttp")
        table = getattr(server.eio, "_async", None)
        return isinstance(table, dict) and table.get("websocket") is eio_aiohttp.WebSocket
    if name == "engineio_raw_websocket":
        return "self._sock" in inspect.getsource(eio_aiohttp.WebSocket)
    if name == "asyncio_queue_getters":
        return hasattr(asyncio.Queue(), "_getters")
    if name == "aiohttp_ws_transport":
        return (hasattr(web.WebSocketResponse(), "_writer")
                and "transport" in inspect.signature(WebSocketWriter.__init__).parameters)
    if name == "socketio_send_hooks":
        return all(callable(getattr(socketio.AsyncServer, m, None))
                   for m in ("_send_packet", "_send_eio_packet"))
    if name == "socketio_redis_connect":
        return callable(getattr(socketio.AsyncRedisManager, "_redis_connect", None))
    raise KeyError(name)


def self_check() -> dict[str, bool]:
    """Which fast paths this process has (`FAST_PATHS`); warns once for each that is off."""
    result: dict[str, bool] = {}
    for name in FAST_PATHS:
        try:
            result[name] = bool(_check(name))
        except Exception:  # the check itself met a changed library: that path is off
            result[name] = False
        if not result[name]:
            fell_back(name)
    return result


def fell_back(name: str) -> None:
    """Say once per process that a fast path is off (the slower public way is taken)."""
    if name in _warned:
        return
    _warned.add(name)
    log.warning("fast path off: a library changed; the slower public way is used",
                extra={"fast_path": name, "what": FAST_PATHS.get(name, "")})

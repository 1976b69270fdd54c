"""A lean Redis connection for the streams' hot path: the append script and the pub/sub read.

Every board op costs its worker one script call (the durable append) and one pub/sub message
(the append's echo, or another process's op). Through redis-py 8 each is a long way in Python:
a connection taken from the pool and given back (locks, events, observability hooks), a
timeout context per read, the retry wrapper, then the message handed from `get_message` to a
listener task. Profiled under bench/scale.py, that was a fifth of a Redis worker's CPU per op
(docs/performance.md, « The streams' own Redis connections »).

Here each is one `asyncio.Protocol` on its own connection, parsing with hiredis's C reader:

- `RedisLink.call(*args)`: the command packed by hiredis, written, and a future resolved by
  `data_received` in reply order (Redis answers a connection's commands in order, so calls
  may overlap: a FIFO of futures is all the bookkeeping);
- `LeanPubSub`: SUBSCRIBE/UNSUBSCRIBE on a connection of its own; each message is handed to a
  callback from `data_received`, synchronously, in the order Redis sent them — no task hop.

Neither reconnects by itself: a lost connection fails every call in flight with redis-py's
`ConnectionError` (the store's callers see what they saw before), and the next call opens a
new connection; `ResilientPubSub` reopens a lost `LeanPubSub` and resubscribes, as it did the
redis-py one. Plain TCP and Unix sockets only: with TLS (`rediss://`) the store keeps
redis-py (`lean_supported`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0


def lean_supported(redis: aioredis.Redis) -> bool:
    """A plain TCP or Unix socket connection (no TLS, no custom connection class)."""
    cls = redis.connection_pool.connection_class
    return cls in (Connection, UnixDomainSocketConnection)


def _error(reply: hiredis.ReplyError) -> ResponseError:
    """redis-py's exception for an error reply, so callers catch what they caught before."""
    text = str(reply)
    return NoScriptError(text) if text.startswith("NOSCRIPT") else ResponseError(text)


class _Wire(asyncio.Protocol):
    """One connection. Replies go, in order, to the futures of `waiting` (Redis answers a
    connection's commands in order); what comes with nobody waiting (pub/sub messages) goes
    to `pushes`. Lost once: every future still waiting fails, and `on_lost` is told."""

    def __init__(self, pushes: Callable[[Any], None] | None = None,
                 on_lost: Callable[[Exception], None] | None = None) -> None:
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.pushes = pushes
        self.on_lost = on_lost
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        try:
            reply = reader.gets()
            while reply is not False:
                if self.waiting:
                    fut = self.waiting.popleft()
                    if not fut.done():
                        fut.set_result(reply)
                elif self.pushes is not None:
                    self.pushes(reply)
                reply = reader.gets()
        except hiredis.ProtocolError as exc:
            self.abort(RedisConnectionError(f"redis protocol error: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone(RedisConnectionError(f"connection to redis lost: {exc!r}"))

    def _gone(self, exc: Exception) -> None:
        self.transport = None
        if self.lost is not None:
            return
        self.lost = exc
        waiting, self.waiting = self.waiting, collections.deque()
        for fut in waiting:
            if not fut.done():
                fut.set_exception(exc)
        if self.on_lost is not None:
            self.on_lost(exc)

    def send(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Write one command; the future gets its reply (a `hiredis.ReplyError` for an error
        reply, returned, not raised)."""
        if self.transport is None:
            raise self.lost or RedisConnectionError("not connected to redis")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.transport.write(hiredis.pack_command(args))
        self.waiting.append(fut)
        return fut

    def write(self, args: tuple[Any, ...]) -> None:
        """Write one command whose answers come as pushes (SUBSCRIBE, UNSUBSCRIBE)."""
        if self.transport is None:
            raise self.lost or RedisConnectionError("not connected to redis")
        self.transport.write(hiredis.pack_command(args))

    def abort(self, exc: Exception) -> None:
        transport = self.transport
        self._gone(exc)
        if transport is not None:
            transport.abort()


async def _open(redis: aioredis.Redis, pushes: Callable[[Any], None] | None = None,
                on_lost: Callable[[Exception], None] | None = None) -> _Wire:
    """A connection as `redis`'s pool would open it (same host or path, credentials, name,
    db)."""
    kw = redis.connection_pool.connection_kwargs
    loop = asyncio.get_running_loop()
    timeout = kw.get("socket_connect_timeout") or CONNECT_TIMEOUT_S
    wire: _Wire | None = None
    try:
        async with asyncio.timeout(timeout):
            if kw.get("path"):
                _t, wire = await loop.create_unix_connection(lambda: _Wire(pushes, on_lost),
                                                             kw["path"])
            else:
                _t, wire = await loop.create_connection(
                    lambda: _Wire(pushes, on_lost), kw.get("host") or "localhost",
                    kw.get("port") or 6379)
            steps: list[tuple[Any, ...]] = []
            if kw.get("password"):
                steps.append(("AUTH", kw["username"], kw["password"]) if kw.get("username")
                             else ("AUTH", kw["password"]))
            if kw.get("client_name"):
                steps.append(("CLIENT", "SETNAME", kw["client_name"]))
            if kw.get("db"):
                steps.append(("SELECT", kw["db"]))
            for reply in [await fut for fut in [wire.send(step) for step in steps]]:
                if isinstance(reply, hiredis.ReplyError):
                    raise _error(reply)
    except BaseException as exc:
        if wire is not None:
            wire.on_lost = None  # never opened, as far as the caller knows
            wire.abort(RedisConnectionError("handshake failed"))
        if isinstance(exc, TimeoutError):
            raise RedisTimeoutError("timed out connecting to redis") from exc
        if isinstance(exc, OSError):
            raise RedisConnectionError(f"cannot connect to redis: {exc!r}") from exc
        raise
    return wire


class RedisLink:
    """Commands on one connection of our own, pipelined: `await link.call("EVALSHA", …)`."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._wire: _Wire | None = None
        self._opening: asyncio.Lock | None = None

    async def call(self, *args: Any) -> Any:
        wire = self._wire
        if wire is None or wire.transport is None:
            wire = await self._connect()
        reply = await wire.send(args)
        if isinstance(reply, hiredis.ReplyError):
            raise _error(reply)
        return reply

    async def script(self, sha: str, body: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA, and EVAL once when Redis does not know the script (restarted)."""
        try:
            return await self.call("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.call("EVAL", body, len(keys), *keys, *args)

    async def _connect(self) -> _Wire:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._wire is None or self._wire.transport is None:
                self._wire = await _open(self.redis)
            return self._wire

    async def aclose(self) -> None:
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.abort(RedisConnectionError("closed"))


class LeanPubSub:
    """The part of redis-py's `PubSub` that `ResilientPubSub` uses — `subscribe`,
    `unsubscribe`, `get_message`, `connection`, `aclose` — with every message handed to
    `on_message` from `data_received` (in Redis's order, never awaiting) instead of queued
    for `get_message`, which here only waits: for `timeout` (then None, the listener's
    periodic pass) or for the connection to be lost (then it raises, and the listener
    reopens)."""

    def __init__(self, redis: aioredis.Redis, on_message: Callable[[dict[str, Any]], None]
                 ) -> None:
        self.redis = redis
        self.on_message = on_message
        self.connection: _Wire | None = None
        self._lost: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        self._opening: asyncio.Lock | None = None

    async def _wire(self) -> _Wire:
        if self._error is not None:
            raise self._error
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self.connection is None:
                self._lost = asyncio.get_running_loop().create_future()
                self.connection = await _open(self.redis, self._push, self._on_lost)
            return self.connection

    async def subscribe(self, *channels: str) -> None:
        (await self._wire()).write(("SUBSCRIBE", *channels))

    async def unsubscribe(self, *channels: str) -> None:
        if channels:
            (await self._wire()).write(("UNSUBSCRIBE", *channels))

    def _push(self, reply: Any) -> None:
        if isinstance(reply, hiredis.ReplyError):
            log.warning("redis pub/sub error", extra={"error": str(reply)})
            return
        if not isinstance(reply, list) or len(reply) != 3:
            return
        kind = reply[0]
        msg = {"type": kind.decode() if isinstance(kind, bytes) else str(kind),
               "pattern": None, "channel": reply[1], "data": reply[2]}
        try:
            self.on_message(msg)
        except Exception:  # one bad message must not cut the connection
            log.exception("pub/sub message handler failed")

    def _on_lost(self, exc: Exception) -> None:
        # `connection` stays set: the listener calls get_message, which raises, and reopens.
        self._error = exc
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    async def get_message(self, timeout: float) -> None:  # noqa: ASYNC109 (redis-py's API)
        """Wait `timeout` (messages go to `on_message` meanwhile); raise if the connection
        was lost."""
        if self._error is not None:
            raise self._error
        lost = self._lost
        if lost is None:
            await asyncio.sleep(timeout)
            return None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(lost), timeout)
        if self._error is not None:
            raise self._error
        return None

    async def aclose(self) -> None:
        wire = self.connection
        self._error = self._error or RedisConnectionError("closed")
        if wire is not None:
            wire.abort(self._error)

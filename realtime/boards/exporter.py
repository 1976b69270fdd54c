"""Board exports (SVG, PDF) off the event loop: a process pool, a per-user rate limit, a cache
keyed by the board's seq, and one render shared by identical requests.

Rendering a full board is pure Python for up to a second. On the loop (the SVG used to be) or
in a thread (the PDF: reportlab holds the GIL), four parallel exports by one pupil kept
`/healthz` waiting 6.8 s. In worker processes the loop only pickles the board's state and
awaits the bytes; how many renders may wait is bounded, and each user has a budget per
minute. A board not changed since its last export (same epoch and seq, same title) is served
from memory without rendering again.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import msgspec

from realtime.boards import export
from realtime.boards.ops import Item, Page
from realtime.errors import AppError
from realtime.ratelimit import RateLimiter

CACHE_BYTES = 32 * 1024 * 1024
PER_USER_RENDERS = 2
ONE_AT_A_TIME_MESSAGE = "Vos exports précédents sont en cours : réessayez dans un instant."
BUSY_MESSAGE = "Le serveur prépare déjà beaucoup d'exports : réessayez dans un instant."


def _rate_message(seconds: int) -> str:
    return (f"Trop d'exports en peu de temps : réessayez dans {seconds} s "
            "(le dernier export reste disponible tant que le tableau ne change pas).")


_STATE = tuple[list[Page], list[Item], dict[str, tuple[str, bytes]]]


def _render_packed(fmt: str, title: str, packed: bytes) -> bytes:
    """In a worker process. The state arrives as one msgpack blob: encoding it on the event
    loop takes a few milliseconds, where pickling thousands of structs holds the GIL (the
    executor's feeder thread) for tens, stalling the loop all the same."""
    pages, items, images = msgspec.msgpack.decode(packed, type=_STATE)
    return _render(fmt, title, pages, items, images)


def _render(fmt: str, title: str, pages: list[Any], items: list[Any],
            images: export.Images) -> bytes:
    if fmt == "svg":
        return export.render_svg(title, pages, items, images).encode()
    return export.render_pdf(title, pages, items, images)


def _lower_priority() -> None:
    """Worker processes run niced: when cores are short, the kernel serves the event loop
    (live boards, roll calls, /healthz) before an export, which may well wait a moment."""
    with contextlib.suppress(OSError):
        os.nice(10)


def _warm() -> int:
    return os.getpid()


Key = tuple[int, str, int, str, str]  # board, epoch, seq, title, format


class Exporter:
    def __init__(self, limiter: RateLimiter, workers: int = 2,
                 cache_bytes: int = CACHE_BYTES) -> None:
        self.limiter = limiter
        # 0: the behaviour before issue #13 (SVG on the event loop, PDF in a thread), kept
        # only as the same-run baseline of bench/export_attack.py; never in production.
        self.inline = workers == 0
        self.workers = max(1, workers)
        self.max_waiting = 4 * self.workers  # renders queued or running, all users together
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[Key, bytes] = OrderedDict()
        self._cached_size = 0
        self._running: dict[Key, asyncio.Future[bytes]] = {}
        self._by_user: dict[int, int] = {}  # renders each user is waiting for
        self._pool: ProcessPoolExecutor | None = None
        self.renders = 0  # renders started (tests, metrics)
        self.hits = 0

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:  # (from the event loop's thread only: no race)
            # forkserver: a clean process, not a fork of a server holding threads and locks.
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("forkserver"),
                initializer=_lower_priority)
        return self._pool

    async def admit(self, user_id: int) -> None:
        """Count one export against the user's budget, or refuse with `rate_limited`."""
        key = f"export:{user_id}"
        if await self.limiter.hit(key) > self.limiter.limit:
            wait = await self.limiter.retry_after(key)
            raise AppError("rate_limited", _rate_message(wait), retry_after=wait)

    def cached(self, key: Key) -> bytes | None:
        data = self._cache.get(key)
        if data is not None:
            self._cache.move_to_end(key)
            self.hits += 1
        return data

    async def render(self, key: Key, title: str, pages: list[Any], items: list[Any],
                     images: export.Images, user_id: int = 0) -> bytes:
        """The export's bytes: from the cache, from a render of the same state already
        under way, or rendered now in a worker process. One user waits for at most
        `PER_USER_RENDERS` renders at a time, so nobody can fill the queue for everyone."""
        if self._by_user.get(user_id, 0) >= PER_USER_RENDERS and not self.inline:
            raise AppError("rate_limited", ONE_AT_A_TIME_MESSAGE, retry_after=2)
        self._by_user[user_id] = self._by_user.get(user_id, 0) + 1
        try:
            return await self._render_once(key, title, pages, items, images)
        finally:
            left = self._by_user[user_id] - 1
            if left:
                self._by_user[user_id] = left
            else:
                del self._by_user[user_id]

    async def _render_once(self, key: Key, title: str, pages: list[Any], items: list[Any],
                           images: export.Images) -> bytes:
        data = self.cached(key)
        if data is not None:
            return data
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        if len(self._running) >= self.max_waiting:
            raise AppError("rate_limited", BUSY_MESSAGE, retry_after=2)
        loop = asyncio.get_running_loop()
        if self.inline:
            self.renders += 1
            if key[4] == "svg":
                return _render("svg", title, pages, items, images)
            return await asyncio.to_thread(_render, "pdf", title, pages, items, images)
        # Submitted from a thread: the first submit starts the forkserver and the worker
        # processes, which would otherwise block the event loop for a second.
        packed = msgspec.msgpack.encode((pages, items, images))
        submitted = await asyncio.to_thread(self._executor().submit, _render_packed, key[4],
                                            title, packed)
        future = asyncio.wrap_future(submitted, loop=loop)
        self._running[key] = future
        self.renders += 1
        try:
            data = await asyncio.shield(future)
        finally:
            if future.done():
                self._running.pop(key, None)
            else:  # the client left: the render finishes for the next one
                future.add_done_callback(lambda _f: self._running.pop(key, None))
        self._store(key, data)
        return data

    def _store(self, key: Key, data: bytes) -> None:
        if len(data) > self.cache_bytes // 4:
            return
        # older states of the same board are worth nothing now
        for old in [k for k in self._cache if k[0] == key[0] and k[4] == key[4]]:
            self._cached_size -= len(self._cache.pop(old))
        self._cache[key] = data
        self._cached_size += len(data)
        while self._cached_size > self.cache_bytes and self._cache:
            _k, dropped = self._cache.popitem(last=False)
            self._cached_size -= len(dropped)

    async def warm(self) -> None:
        """Start the worker processes ahead of the first export."""
        await asyncio.get_running_loop().run_in_executor(self._executor(), _warm)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

"""Two writers at once, in a chosen order: what SQLite's single writer serialised, checked
on PostgreSQL where two nodes (two `Database`s, two servers) write side by side.

A test holds writer A's transaction open at the point that matters (its own transaction, or
`Hold` on the real store function the service calls), starts writer B, waits with
`until_waiting` until B is stuck behind A's locks (or finished: then B did not wait, which
is what a missing lock looks like), lets A commit, and checks what both left. Without the
lock under test, B reads the « before » and writes over A; with it, B reads what A wrote.

On SQLite a transaction holds the one write lock from its BEGIN, so B cannot get anywhere
before A commits whatever it waits on: the same test then checks the same outcome without
an interleaving to observe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import engines


def _waiting(schema: str) -> int:
    """Connections of that schema waiting for a lock (a row, an advisory lock, a unique
    key another transaction is inserting)."""
    assert engines._admin is not None
    row = engines._admin.execute(
        "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE NOT l.granted AND a.application_name = %s", (schema,)).fetchone()
    return int(row[0])


async def until_waiting(path: Path, *tasks: asyncio.Future[Any], count: int = 1) -> None:
    """Return once `count` connections of the database standing for `path` wait for a lock
    (PostgreSQL), or one of `tasks` is done (it waited for nothing). On SQLite, once the
    tasks had a few turns of the loop."""
    if not engines.POSTGRES:
        for _ in range(5):
            await asyncio.sleep(0)
        return
    schema = engines.schema_for(path)
    # PostgreSQL tells nobody when a backend starts waiting: its lock table is polled.
    while _waiting(schema) < count and not any(t.done() for t in tasks):  # noqa: ASYNC110
        await asyncio.sleep(0.005)


class Hold:
    """The first call of `module.name` for which `when(*args, **kwargs)` is true runs, then
    waits for `release()` before returning: its caller's transaction stays open with what
    the call wrote and locked. `entered` is set once it waits."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str,
                 when: Callable[..., bool] = lambda *a, **k: True) -> None:
        self.entered = asyncio.Event()
        self._released = asyncio.Event()
        self._used = False
        real = getattr(module, name)

        async def held(*args: Any, **kwargs: Any) -> Any:
            result = await real(*args, **kwargs)
            if not self._used and when(*args, **kwargs):
                self._used = True
                self.entered.set()
                await self._released.wait()
            return result

        monkeypatch.setattr(module, name, held)

    def release(self) -> None:
        self._released.set()

"""Several server processes on one PostgreSQL: all with Redis, or one alone without.

Without `REDIS_URL` a process tells only its own clients: Socket.IO emits and rooms, the
reliable streams' live delivery (realtime/streams/sql.py), presence, leases and rate limits
live in its memory. Two nodes on one PostgreSQL of which one (or both) has no Redis would
each serve part of the ENT (a board op drawn on A never reaching B's pupils, a roster missing
B's people), while every request still succeeds. `serve --workers N` refuses N > 1 without
Redis (realtime/workers.py); nodes on other machines cannot be seen from the command line, so
the database tells. Every server process on PostgreSQL holds a session advisory lock, keyed
by the database schema, on a connection of its own for as long as it runs: exclusive
without Redis, shared with it. A process that cannot take it refuses to start and says which
host holds it: a second node without Redis, or a node with Redis beside one without (or the
reverse). Nodes that all have Redis share the lock and start. (That they name the same
Redis is the operator's part: docs/deployment.md.)

It is the server process's, not the application's: `realtime/serve.py` installs it (`install`)
as the first of the app's cleanup contexts, so a refused node opens nothing and migrates
nothing; several apps in one process (the tests, a bench) are no nodes and take none.

The lock lives with its connection: if PostgreSQL restarts, it is gone, and the watch (which
starts once the whole app has started) takes it again once the server is back. A conflicting
node started in that gap is a misconfiguration this one can only report (an error in the
log, every `WATCH_S`); it keeps serving its own clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator

import psycopg
from aiohttp import web
from psycopg.conninfo import conninfo_to_dict

from realtime import keys
from realtime.db import is_postgres_url
from realtime.pg import lock_key

log = logging.getLogger(__name__)

WATCH_S = 10.0
CONNECT_TIMEOUT_S = 5

WHY = ("Sans REDIS_URL, un serveur ne prévient que ses propres clients : des nœuds sur une "
       "même base ne font un seul ENT (tableaux, messages, présence) que s'ils ont tous le "
       "même REDIS_URL.")
TAKEN_WITHOUT_REDIS = ("un autre serveur utilise déjà cette base PostgreSQL sans Redis "
                       "({holder}). " + WHY + " Configurez REDIS_URL sur chaque nœud, ou "
                       "arrêtez l'autre serveur.")
TAKEN_WITH_REDIS = ("cette base PostgreSQL est déjà utilisée par des serveurs avec Redis "
                    "({holder}), et celui-ci n'a pas de REDIS_URL. " + WHY + " Configurez "
                    "REDIS_URL ici aussi.")


class StartRefused(Exception):
    """This configuration must not serve; the message, in French, is for the operator."""


def _split(key: int) -> tuple[int, int]:
    """A bigint advisory key as pg_locks shows it: (classid, objid), two unsigned halves."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


class NodeGuard:
    """This process's share of the database: the whole of it without Redis (`shared`
    False), a share beside the other Redis nodes otherwise."""

    def __init__(self, url: str, *, shared: bool) -> None:
        self.url = url
        self.shared = shared
        # What the refusal names the holder by: the URL's application_name when the operator
        # set one (the pool's connections carry it too), else this host and process.
        given = conninfo_to_dict(url).get("application_name")
        redis = "avec Redis" if shared else "sans Redis"
        self.name = str(given or f"ent-realtime {socket.gethostname()} pid {os.getpid()} "
                                 f"{redis}")[:63]
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._key: int | None = None
        self._watch: asyncio.Task[None] | None = None

    async def claim(self) -> None:
        """Take the lock or raise `StartRefused`; keep it until `close()`."""
        if not await self._take():
            exclusive, holders = await self._holders()
            await self._drop()
            # Held alone: by a node without Redis; shared: by nodes with it, this one without.
            template = TAKEN_WITHOUT_REDIS if exclusive else TAKEN_WITH_REDIS
            raise StartRefused(template.format(holder=holders))

    def watch(self) -> None:
        """Check the lock every `WATCH_S` from now on (`check`) until `close()`."""
        if self._watch is None:
            self._watch = asyncio.create_task(self._watching(), name="node-guard")

    async def _take(self) -> bool:
        conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
            application_name=self.name)
        self._conn = conn
        cur = await conn.execute("SELECT current_schema()")
        row = await cur.fetchone()
        self._key = lock_key(f"nodes:{row[0] if row else ''}")
        take = "pg_try_advisory_lock_shared" if self.shared else "pg_try_advisory_lock"
        cur = await conn.execute(f"SELECT {take}(%s)", (self._key,))  # type: ignore[arg-type]
        row = await cur.fetchone()
        return bool(row and row[0])

    async def _holders(self) -> tuple[bool, str]:
        """Whether the lock is held alone (by a node without Redis), and who holds it, for
        the operator: the first holder's name, host and start time."""
        assert self._conn is not None and self._key is not None
        classid, objid = _split(self._key)
        cur = await self._conn.execute(
            "SELECT l.mode, a.application_name, host(a.client_addr), a.backend_start"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()"
            " AND l.database = (SELECT oid FROM pg_database"
            "  WHERE datname = current_database())"
            " AND l.classid = %s AND l.objid = %s AND l.objsubid = 1"
            " ORDER BY a.backend_start", (classid, objid))
        rows = await cur.fetchall()
        if not rows:
            return not self.shared, "un serveur qui vient de s'arrêter"
        mode, name, addr, since = rows[0]
        where = f" depuis {addr}" if addr else ""
        more = f" et {len(rows) - 1} autre(s)" if len(rows) > 1 else ""
        return (mode == "ExclusiveLock",
                f"« {name} »{where}, démarré le {since:%d/%m/%Y à %H:%M}{more}")

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def _watching(self) -> None:
        while True:
            await asyncio.sleep(WATCH_S)
            await self.check()

    async def check(self) -> None:
        """One round of the watch (every `WATCH_S`): the connection still answers, so the
        lock is still held; or it is opened again and the lock taken again, or the conflict
        logged."""
        try:
            assert self._conn is not None
            await self._conn.execute("SELECT 1")
            return
        except Exception:
            await self._drop()
        try:
            if await self._take():
                log.info("node lock taken again")
            else:
                _exclusive, holders = await self._holders()
                log.error("servers with and without Redis share this PostgreSQL",
                          extra={"holder": holders})
                await self._drop()
        except Exception as exc:  # PostgreSQL still away: next round
            await self._drop()
            log.warning("node lock not held, PostgreSQL unreachable",
                        extra={"error": repr(exc)})

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self._drop()  # closing the connection releases the lock


def install(app: web.Application) -> None:
    """This server process's guard (`realtime/serve.py`), on PostgreSQL: claimed first of
    the app's cleanup contexts, released last; watched once every other start-up step is
    done (a start that fails later leaves no watch behind to take the lock again)."""
    settings = app[keys.SETTINGS]
    if not is_postgres_url(settings.db_target):
        return
    guard = NodeGuard(str(settings.db_target), shared=bool(settings.redis_url))

    async def hold(_app: web.Application) -> AsyncIterator[None]:
        await guard.claim()
        yield
        await guard.close()

    async def watch(_app: web.Application) -> None:
        guard.watch()

    app.cleanup_ctx.insert(0, hold)
    app.on_startup.append(watch)

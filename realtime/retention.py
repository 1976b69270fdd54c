"""One retention job for every feature: what is kept how long (docs/retention.md).

Each feature owns its purge (a function in its store that deletes inside a transaction it is
given and says how many rows went); this module only decides the cutoffs from the settings and
the clock, calls them one category at a time, and removes attachments' bytes after the commit
(files beside SQLite, rows of `stored_files` on PostgreSQL: realtime/files.py).
A dry run executes the very same statements and rolls them back, so its report is exactly
what a real run would remove at that instant, not an estimate that could drift from it.

It runs in the background (a minute after start, then every `REALTIME_RETENTION_EVERY`), under
a lease so that one process of several does it, and from the command line:
`python -m realtime retention purge [--dry-run]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiosqlite
import msgspec
from aiohttp import web

from realtime import keys
from realtime.attendance import retention as attendance_retention
from realtime.boards import store as boards_store
from realtime.chat import store as chat_store
from realtime.chat.files import chat_files
from realtime.coursedocs import store as docs_store
from realtime.db import Database
from realtime.files import FileStore
from realtime.lease import Leases
from realtime.settings import Settings

log = logging.getLogger(__name__)

DAY_S = 24 * 3600.0
FIRST_RUN_S = 60.0  # a minute after start, as attendance's purge always did
LEASE_TTL_S = 900.0

# In the order they run: boards first, so that the search rows of their session chats (which
# go with them) are swept by the chat category's purge.
CATEGORIES = ("attendance", "boards", "chat", "departed")
LABELS_FR = {
    "attendance": "Vie scolaire (détails des absences)",
    "boards": "Tableaux (TBI) inactifs",
    "chat": "Messagerie (messages et pièces jointes)",
    "departed": "Documents de cours des comptes désactivés",
}


class Policy(msgspec.Struct, frozen=True):
    """Durations by category; 0 days means that category is never purged."""

    attendance_years: int = 2
    chat_days: int = 365
    boards_days: int = 365
    departed_days: int = 90

    @classmethod
    def from_settings(cls, s: Settings) -> Policy:
        policy = cls(attendance_years=s.attendance_retention_years,
                     chat_days=s.retention_chat_days, boards_days=s.retention_boards_days,
                     departed_days=s.retention_departed_days)
        for name in ("attendance_years", "chat_days", "boards_days", "departed_days"):
            if getattr(policy, name) < 0:
                raise ValueError(f"retention: {name} must be ≥ 0")
        return policy


class CategoryReport(msgspec.Struct):
    category: str
    cutoff: str | None  # ISO date (attendance) or date-time; None when the category is off
    rows: dict[str, int] = msgspec.field(default_factory=dict)
    files: int = 0


class Report(msgspec.Struct):
    at: float
    dry_run: bool
    categories: list[CategoryReport]

    def text(self, tz: Any) -> str:
        """The report an operator reads (CLI), in French."""
        when = dt.datetime.fromtimestamp(self.at, tz).strftime("%d/%m/%Y %H:%M")
        head = ("Simulation (rien n'est supprimé)" if self.dry_run else "Purge effectuée")
        lines = [f"{head} — {when}"]
        for c in self.categories:
            lines.append(f"\n{LABELS_FR[c.category]}")
            if c.cutoff is None:
                lines.append("  conservation illimitée (durée 0) : rien n'est purgé")
                continue
            lines.append(f"  avant le {_french_cutoff(c.cutoff)}")
            for table, n in c.rows.items():
                lines.append(f"  {table:<28} {n:>8}")
            if c.category == "chat":
                lines.append(f"  {'fichiers joints':<28} {c.files:>8}")
        return "\n".join(lines)


def _french_cutoff(iso: str) -> str:
    """« 01/09/2024 » for a date, « 04/12/2025 à 21:49 » for a moment."""
    if len(iso) == 10:
        return dt.date.fromisoformat(iso).strftime("%d/%m/%Y")
    return dt.datetime.fromisoformat(iso).strftime("%d/%m/%Y à %H:%M")


class _DryRun(Exception):
    """Raised inside a transaction to roll it back after counting."""


Purge = Callable[[aiosqlite.Connection], Awaitable[tuple[dict[str, int], list[str]]]]


def _no_files(fn: Callable[[aiosqlite.Connection], Awaitable[dict[str, int]]]) -> Purge:
    async def run(conn: aiosqlite.Connection) -> tuple[dict[str, int], list[str]]:
        return await fn(conn), []
    return run


async def _one(db: Database, purge: Purge, dry_run: bool) -> tuple[dict[str, int], list[str]]:
    result: tuple[dict[str, int], list[str]] = ({}, [])
    try:
        async with db.transaction() as conn:
            result = await purge(conn)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return result


def _iso(ts: float, tz: Any) -> str:
    return dt.datetime.fromtimestamp(ts, tz).isoformat(timespec="minutes")


async def purge(db: Database, settings: Settings, now: float, *, dry_run: bool = False,
                files: FileStore | None = None) -> Report:
    """Run every category at `now` (the clock is the caller's: tests pass a fixed one)."""
    policy = Policy.from_settings(settings)
    tz = settings.tz
    files = files or chat_files(settings, db)
    today = dt.datetime.fromtimestamp(now, tz).date()
    out: list[CategoryReport] = []
    for category in CATEGORIES:
        plan = _plan(category, policy, now, today, tz)
        if plan is None:
            out.append(CategoryReport(category, None))
            continue
        cutoff, fn = plan
        rows, keys_ = await _one(db, fn, dry_run)
        if keys_ and not dry_run:
            await files.remove(keys_)
        out.append(CategoryReport(category, cutoff, rows, len(keys_)))
    return Report(at=now, dry_run=dry_run, categories=out)


def _plan(category: str, policy: Policy, now: float, today: dt.date, tz: Any
          ) -> tuple[str, Purge] | None:
    if category == "attendance":
        years = policy.attendance_years
        if years == 0:
            return None
        from realtime.attendance.absences import retention_cutoff
        return (retention_cutoff(today, years).isoformat(),
                _no_files(lambda c: attendance_retention.purge_in(c, today, years)))
    days = {"boards": policy.boards_days, "chat": policy.chat_days,
            "departed": policy.departed_days}[category]
    if days == 0:
        return None
    cutoff = now - days * DAY_S
    if category == "boards":
        return _iso(cutoff, tz), _no_files(lambda c: boards_store.purge_before(c, cutoff))
    if category == "chat":
        return _iso(cutoff, tz), lambda c: chat_store.purge_before(c, cutoff)
    return _iso(cutoff, tz), _no_files(lambda c: docs_store.purge_departed(c, cutoff))


# --- in the server ------------------------------------------------------------------------------

async def _loop(app: web.Application, leases: Leases) -> None:
    s = app[keys.SETTINGS]
    await asyncio.sleep(FIRST_RUN_S)
    while True:
        try:
            async with leases.hold("retention") as mine:
                if mine:
                    report = await purge(app[keys.DB], s, time.time())
                    removed = {f"{c.category}.{t}": n for c in report.categories
                               for t, n in c.rows.items() if n}
                    if removed:
                        log.info("retention purge", extra=removed)
        except Exception:
            log.exception("retention purge failed")
        await asyncio.sleep(s.retention_every_s or DAY_S)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    s = app[keys.SETTINGS]
    Policy.from_settings(s)  # a bad setting stops the start, not the first purge a day later
    leases = Leases(app[keys.REDIS], s.redis_prefix, LEASE_TTL_S)
    task = asyncio.create_task(_loop(app, leases), name="retention")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: web.Application, sio: object) -> None:
    app.cleanup_ctx.append(_lifecycle)

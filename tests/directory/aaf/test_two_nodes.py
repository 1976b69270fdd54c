"""Two nodes' nightly AAF imports at once (two `Database`s on one database, as two machines'
cron jobs): one runs, the other is refused at once and writes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest

from realtime.directory.aaf.apply import ALREADY_RUNNING, AafError, import_aaf
from tests.directory.aaf.files import snapshot
from tests.engines import open_test_db

NOW = dt.datetime(2026, 12, 4, 22, 0, tzinfo=dt.UTC)


def _other_node_imports(path: Path, folder: Path) -> BaseException | None:
    """The second node's import, on its own database connection and its own event loop (a
    thread): what it raised, or None when it ran."""
    async def run() -> None:
        db = await open_test_db(path)
        try:
            await import_aaf(db, folder, now=NOW)
        finally:
            await db.close()

    try:
        asyncio.run(run())
    except BaseException as exc:  # handed to the test
        return exc
    return None


async def test_a_second_import_while_one_runs_is_refused(tmp_path: Path) -> None:
    """Node A's import is between its two schools when node B's starts (node A is held
    there until B's import has returned): B is refused with nothing written, A finishes
    alone and whole; once A is done, an import runs again (and finds nothing to do)."""
    path, folder = tmp_path / "ent.sqlite3", snapshot(tmp_path / "snap1")
    node_a = await open_test_db(path)
    outcome: list[BaseException | None] = []

    def progress(line: str) -> None:
        if line.startswith("Établissement 1/") and not outcome:
            # Node A's loop waits here, its lock held, while node B tries.
            worker = threading.Thread(target=lambda: outcome.append(
                _other_node_imports(path, folder)))
            worker.start()
            worker.join()

    try:
        summary = await import_aaf(node_a, folder, now=NOW, progress=progress)
        assert len(outcome) == 1
        assert isinstance(outcome[0], AafError), outcome
        assert str(outcome[0]) == ALREADY_RUNNING
        assert not [s for s in summary.skipped if "rien n'a été appliqué" in s.reason]
        assert summary.counts["schools"]["created"] == 2
        assert summary.counts["pupils"]["created"] == 5
        users: Any = await node_a.fetchall(
            "SELECT external_id, COUNT(*) AS n FROM users WHERE external_id IS NOT NULL"
            " GROUP BY external_id")
        assert users and all(r["n"] == 1 for r in users)
        again = await import_aaf(node_a, folder, now=NOW + dt.timedelta(days=1))
        assert again.changes() == 0, again.lines()
    finally:
        await node_a.close()


async def test_a_dry_run_is_not_refused_beside_an_import(tmp_path: Path) -> None:
    """A dry run writes nothing: it runs while an import holds the lock."""
    path, folder = tmp_path / "ent.sqlite3", snapshot(tmp_path / "snap1")
    node_a, node_b = await open_test_db(path), await open_test_db(path)
    try:
        async with node_a.exclusive("aaf:import") as mine:
            assert mine
            with pytest.raises(AafError):
                await import_aaf(node_b, folder, now=NOW)
            dry = await import_aaf(node_b, folder, now=NOW, dry_run=True)
            assert dry.counts["pupils"]["created"] == 5
        assert (await import_aaf(node_b, folder, now=NOW)).counts["pupils"]["created"] == 5
    finally:
        await node_a.close()
        await node_b.close()

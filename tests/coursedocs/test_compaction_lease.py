"""One process at a time compacts a document: two services (two processes' worth) on one
SQLite file and the real Redis never merge the same document at once, and the content is
intact afterwards while a teacher keeps typing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from realtime.coursedocs import content, store
from realtime.coursedocs.service import DocService
from realtime.db import Database
from tests.conftest import REDIS_URL, ConcurrencyWatch, make_settings
from tests.coursedocs.test_store import Writer, _doc, _text
from tests.engines import open_test_db


@contextlib.asynccontextmanager
async def two_services(db_path: Path, tmp_path: Path, redis_prefix: str, **overrides: Any
                       ) -> AsyncIterator[tuple[list[Database], DocService, DocService]]:
    """Two processes' worth of document services on one SQLite file and the real Redis."""
    dbs = [await open_test_db(db_path) for _ in range(2)]
    redises = [aioredis.Redis.from_url(REDIS_URL) for _ in range(2)]
    settings = make_settings(tmp_path, redis_url=REDIS_URL, redis_prefix=redis_prefix,
                             **overrides)
    a, b = (DocService(d, settings, redis=r) for d, r in zip(dbs, redises, strict=True))
    try:
        yield dbs, a, b
    finally:
        for service in (a, b):
            await service.close()
        for d in dbs:
            await d.close()
        for r in redises:
            await r.aclose()


@pytest.mark.redis
async def test_two_processes_never_compact_a_document_at_once(
    demo_db_path: Path, tmp_path: Path, redis_prefix: str, redis_cleanup: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    watch = ConcurrencyWatch(content.merge, 0.02)
    monkeypatch.setattr(content, "merge", watch)
    async with two_services(demo_db_path, tmp_path, redis_prefix) as (dbs, a, b):
        doc_id = await _doc(dbs[0])
        w = Writer()
        results: list[bool] = []

        async def typist() -> None:
            for i in range(120):
                await store.append(dbs[i % 2], doc_id, [w.write(f"Leçon {i} : été")], now=2.0)
                await asyncio.sleep(0)

        async def compactor(service: DocService) -> None:
            for _ in range(15):
                results.append(await service.rooms.compact(doc_id))
                await asyncio.sleep(0.005)

        await asyncio.gather(typist(), compactor(a), compactor(b))
        assert watch.most == 1  # never two merges of the document at once
        assert True in results and watch.calls < len(results)  # some skipped: held elsewhere
        assert await redis_cleanup.exists(a.rooms.leases.key(f"doc:{doc_id}")) == 0  # released
        await store.append(dbs[0], doc_id, [w.write("Dernière ligne")], now=3.0)
        assert await b.rooms.compact(doc_id)
        stored = await store.load(dbs[1], doc_id)
        assert stored.updates == [] and _text(stored) == str(w.frag)
        assert str(w.frag).count("eçon") == 120


async def test_without_redis_the_lease_is_per_process(demo_db_path: Path, tmp_path: Path
                                                      ) -> None:
    db = await open_test_db(demo_db_path)
    service = DocService(db, make_settings(tmp_path))
    try:
        doc_id = await _doc(db)
        w = Writer()
        for i in range(10):
            await store.append(db, doc_id, [w.write(f"x{i}")], now=2.0)
        async with service.rooms.leases.hold(f"doc:{doc_id}") as mine:
            assert mine
            assert not await service.rooms.compact(doc_id)  # the holder is compacting: skip
        assert await service.rooms.compact(doc_id)
        assert _text(await store.load(db, doc_id)) == str(w.frag)
    finally:
        await service.close()
        await db.close()


@pytest.mark.redis
async def test_a_recheck_reads_past_a_compaction_it_never_heard_of(
    demo_db_path: Path, tmp_path: Path, redis_prefix: str, redis_cleanup: aioredis.Redis,
) -> None:
    """Updates another process stored without relaying, then compacted into the snapshot:
    the open document's recheck finds its known id below the snapshot's and reads it all."""
    async with two_services(demo_db_path, tmp_path, redis_prefix,
                            docs_recheck_s=3600) as (dbs, a, b):
        doc_id = await _doc(dbs[0])
        w = Writer()
        await store.append(dbs[0], doc_id, [w.write("Première leçon")], now=2.0)
        room = await a.rooms.open(doc_id)
        assert not await a.rooms.catch_up_stored(room)  # nothing new
        for text in ("Deuxième : « élève »", "Troisième : café"):  # B never relays these
            await store.append(dbs[1], doc_id, [w.write(text)], now=3.0)
        assert await b.rooms.compact(doc_id)
        stored = await store.load(dbs[1], doc_id)
        assert stored.updates == [] and stored.upto > room.known_id
        assert await a.rooms.catch_up_stored(room)
        assert str(content.fragment(room.doc)) == str(w.frag)
        assert room.known_id == stored.upto and a.rooms.gaps_caught_up == 1
        assert not await a.rooms.catch_up_stored(room)

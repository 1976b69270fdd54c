"""The update log, compaction and versions on a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pycrdt import Doc, XmlElement, XmlText

from realtime.coursedocs import content, store
from realtime.coursedocs.service import DocService
from realtime.db import Database
from tests.conftest import make_settings
from tests.engines import open_test_db


class Writer:
    """A pycrdt replica producing real Yjs updates, one per edit."""

    def __init__(self) -> None:
        self.doc = Doc()
        self.frag = content.fragment(self.doc)
        self.updates: list[bytes] = []
        self.doc.observe(lambda e: self.updates.append(e.update))

    def write(self, text: str) -> bytes:
        with self.doc.transaction():
            p = self.frag.children.append(XmlElement("paragraph"))
            t = p.children.append(XmlText(text))
            t.format(0, 1, {"bold": {}})
        return self.updates[-1]


@pytest.fixture
async def db(demo_db_path: Path):
    database = await open_test_db(demo_db_path)
    yield database
    await database.close()


async def _doc(db: Database) -> int:
    row = await db.fetchone("SELECT id, school_id FROM users WHERE role = 'teacher' LIMIT 1")
    assert row is not None
    meta = await store.create(db, school_id=row["school_id"], owner_id=row["id"],
                              title="Cours", now=1.0)
    return meta.id


def _text(stored: store.Stored) -> str:
    return str(content.fragment(content.build(stored.all_updates())))


async def test_compaction_keeps_content_identical(db: Database, tmp_path: Path) -> None:
    doc_id = await _doc(db)
    w = Writer()
    for i in range(50):
        await store.append(db, doc_id, [w.write(f"Ligne {i} : été, forêt")], now=2.0)
    before = _text(await store.load(db, doc_id))
    service = DocService(db, make_settings(tmp_path))
    assert await service.rooms.compact(doc_id)
    after = await store.load(db, doc_id)
    assert after.snapshot is not None and after.updates == []
    assert _text(after) == before == str(w.frag)


async def test_updates_appended_during_compaction_are_kept(db: Database) -> None:
    doc_id = await _doc(db)
    w = Writer()
    for i in range(20):
        await store.append(db, doc_id, [w.write(f"avant {i}")], now=2.0)
    read = await store.load(db, doc_id)  # compaction reads…
    merged = content.merge(read.all_updates())  # …merges…
    for i in range(5):  # …while teachers keep typing
        await store.append(db, doc_id, [w.write(f"pendant {i}")], now=3.0)
    assert await store.commit_compaction(db, doc_id, read, merged)
    after = await store.load(db, doc_id)
    assert len(after.updates) == 5
    assert _text(after) == str(w.frag)
    assert "endant 4" in _text(after) and "vant 0" in _text(after)


async def test_a_second_compaction_of_the_same_prefix_changes_nothing(db: Database) -> None:
    doc_id = await _doc(db)
    w = Writer()
    for i in range(10):
        await store.append(db, doc_id, [w.write(f"x{i}")], now=2.0)
    read = await store.load(db, doc_id)
    merged = content.merge(read.all_updates())
    assert await store.commit_compaction(db, doc_id, read, merged)
    await store.append(db, doc_id, [w.write("y")], now=2.0)
    # A stale compaction (read before the first committed) must not overwrite the snapshot.
    assert not await store.commit_compaction(db, doc_id, read, content.merge(read.updates and
                                                                            [read.updates[0][1]]))
    assert _text(await store.load(db, doc_id)) == str(w.frag)


async def test_concurrent_compactions_and_appends_lose_nothing(db: Database,
                                                               tmp_path: Path) -> None:
    doc_id = await _doc(db)
    service = DocService(db, make_settings(tmp_path))
    w = Writer()

    async def typist() -> None:
        for i in range(200):
            await store.append(db, doc_id, [w.write(f"frappe {i}")], now=2.0)
            await asyncio.sleep(0)

    async def compactor() -> None:
        for _ in range(30):
            await service.rooms.compact(doc_id)
            await asyncio.sleep(0.001)

    await asyncio.gather(typist(), compactor(), compactor())
    await service.rooms.compact(doc_id)
    assert _text(await store.load(db, doc_id)) == str(w.frag)
    assert str(w.frag).count("rappe") == 200


async def test_versions_are_listed_newest_first(db: Database) -> None:
    doc_id = await _doc(db)
    user = (await store.get(db, doc_id)).owner_id  # type: ignore[union-attr]
    await store.add_version(db, doc_id, "Avant le conseil", b"\x00\x00", user, now=10.0)
    await store.add_version(db, doc_id, "Version finale", b"\x00\x00", user, now=20.0)
    labels = [v.label for v in await store.versions(db, doc_id)]
    assert labels == ["Version finale", "Avant le conseil"]
    assert await store.version_state(db, doc_id + 1000, 1) is None


def test_restore_update_brings_a_diverged_replica_back() -> None:
    w = Writer()
    w.write("Introduction")
    old = w.doc.get_update()
    w.write("Paragraphe ajouté ensuite")
    other = Doc()
    other.apply_update(w.doc.get_update())  # a connected client
    update = content.restore_update(w.doc.get_update(), old)
    other.apply_update(update)
    assert str(content.fragment(other)) == str(content.fragment(content.build([old])))
    # History is kept: the restore is a new edit on top of today's state.
    assert len(update) > 2 and "Paragraphe" not in str(content.fragment(other))

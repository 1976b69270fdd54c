"""Two nodes writing one course document at once (two `Database`s on one database).

On PostgreSQL an update's id comes from an identity sequence when it is inserted, and two
transactions may commit in the other order than they took their ids. A reader that follows
the log by id (`updates_after(known)`, then `known = last_id`) or a compaction that deletes
« every id <= the last one it read » would then skip or delete an update that commits later
with a lower id. The store's appends to one document take their ids in commit order, and its
reads are consistent: these tests write from two nodes as fast as they can while a third
follows, or compacts, and then count."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from realtime.coursedocs import content, store
from realtime.db import Database
from tests.coursedocs.test_store import Writer, _doc, _text
from tests.engines import open_test_db

APPENDS = 60  # per node
BATCH = 3  # updates per append: a few rows per transaction


@pytest.fixture
async def nodes(demo_db_path: Path):
    a = await open_test_db(demo_db_path)
    b = await open_test_db(demo_db_path)
    yield a, b
    await a.close()
    await b.close()


async def _type(db: Database, doc_id: int, w: Writer, name: str, done: list[str]) -> None:
    for i in range(APPENDS):
        await store.append(db, doc_id, [w.write(f"x{name} {i}.{k}") for k in range(BATCH)],
                           now=2.0)
    done.append(name)


async def test_a_reader_following_by_id_misses_no_update_of_two_nodes(
        nodes: tuple[Database, Database]) -> None:
    a, b = nodes
    doc_id = await _doc(a)
    done: list[str] = []
    seen: list[int] = []
    known = 0

    async def follow() -> None:
        nonlocal known
        while True:
            finished = len(done) == 2  # read once more after both writers are done
            later = await store.updates_after(b, doc_id, known)
            assert later.upto == 0  # nothing compacts here: every update is in the log
            seen.extend(i for i, _ in later.updates)
            known = max(known, later.last_id)  # as a room's catch_up does
            if finished:
                return
            await asyncio.sleep(0)

    await asyncio.gather(_type(a, doc_id, Writer(), "a", done),
                         _type(b, doc_id, Writer(), "b", done), follow())
    stored = [i for i, _ in (await store.load(a, doc_id)).updates]
    assert len(stored) == 2 * APPENDS * BATCH
    assert sorted(seen) == seen == stored  # each once, in order, none skipped


async def test_compacting_while_two_nodes_write_loses_no_update(
        nodes: tuple[Database, Database]) -> None:
    a, b = nodes
    doc_id = await _doc(a)
    done: list[str] = []
    wa, wb = Writer(), Writer()
    folded = 0

    async def compact() -> None:
        nonlocal folded
        while len(done) < 2:
            read = await store.load(b, doc_id)
            if read.updates:
                merged = await asyncio.to_thread(content.merge, read.all_updates())
                folded += await store.commit_compaction(b, doc_id, read, merged)
            await asyncio.sleep(0)

    await asyncio.gather(_type(a, doc_id, wa, "a", done), _type(b, doc_id, wb, "b", done),
                         compact())
    assert folded > 0  # compactions did commit while the nodes wrote
    text = _text(await store.load(a, doc_id))
    for name in ("a", "b"):
        for i in range(APPENDS):
            for k in range(BATCH):
                assert f"{name} {i}.{k}" in text
    assert text.count(".") == 2 * APPENDS * BATCH


async def test_two_nodes_uploading_images_at_once_stay_within_the_cap(
        nodes: tuple[Database, Database]) -> None:
    """The course's images are bounded together: the sum is read, then written on, under
    the document's lock, so uploads racing on two nodes cannot both pass the check."""
    a, b = nodes
    doc_id = await _doc(a)
    size, fits = 1000, 3
    images = [bytes([i]) * size for i in range(12)]

    async def upload(db: Database, data: bytes) -> bool:
        return await store.put_image(db, doc_id, hashlib.sha256(data).hexdigest(),
                                     "image/png", data, 1, 2.0, cap=fits * size)

    stored = await asyncio.gather(*(upload((a, b)[i % 2], d) for i, d in enumerate(images)))
    assert sum(stored) == fits
    row = await a.fetchone("SELECT COUNT(*) AS n, SUM(LENGTH(data)) AS total"
                           " FROM course_doc_images WHERE doc_id = ?", (doc_id,))
    assert row is not None and (row["n"], row["total"]) == (fits, fits * size)
    # The same image again is the one already there, even at the cap.
    kept = next(d for d, ok in zip(images, stored, strict=True) if ok)
    assert await upload(b, kept)


async def test_two_nodes_sharing_at_once_leave_one_whole_list(
        nodes: tuple[Database, Database]) -> None:
    """Two teachers change the course's co-editors at the same moment on two nodes: each
    replaces the list whole, one after the other (no collision on the keys, no mix)."""
    a, b = nodes
    doc_id = await _doc(a)
    teachers = [r["id"] for r in await a.fetchall(
        "SELECT id FROM users WHERE role = 'teacher' ORDER BY id LIMIT 4")]
    lists = ({teachers[0], teachers[1], teachers[2]}, {teachers[1], teachers[2], teachers[3]})

    async def share(db: Database, editors: set[int]) -> None:
        async with db.transaction() as conn:
            await store.share(conn, doc_id, editors, {}, 3.0)

    for _ in range(15):
        await asyncio.gather(share(a, lists[0]), share(b, lists[1]))
        meta = await store.get(a, doc_id)
        assert meta is not None and meta.editors in lists


async def test_two_nodes_versioning_one_document_at_once_store_it_once(
        nodes: tuple[Database, Database]) -> None:
    # A session ends on two nodes at once (each had co-editors of the document): each takes
    # its automatic version of the same state; the timeline gets one.
    a, b = nodes
    doc_id = await _doc(a)
    w = Writer()
    await store.append(a, doc_id, [w.write("Séance du lundi")], now=2.0)
    state = w.doc.get_update()
    stored = 0
    for _ in range(10):
        got = await asyncio.gather(*(
            store.add_version_if_changed(db, doc_id, "Fin de séance", state, 3.0)
            for db in (a, b, a, b)))
        stored += sum(v is not None for v in got)
    assert stored == 1
    assert [v.label for v in await store.versions(b, doc_id)] == ["Fin de séance"]
    # A change is versioned again; the same state once more is not.
    await store.append(b, doc_id, [w.write(" et du mardi")], now=4.0)
    changed = w.doc.get_update()
    first, again = await asyncio.gather(
        store.add_version_if_changed(b, doc_id, "Version automatique", changed, 5.0),
        store.add_version_if_changed(a, doc_id, "Version automatique", changed, 5.0))
    assert (first is None) != (again is None)
    assert await store.add_version_if_changed(a, doc_id, "x", changed, 6.0) is None
    assert len(await store.versions(a, doc_id)) == 2

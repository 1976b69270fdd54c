"""Bytes kept under a random key (chat attachments): beside the database on SQLite, in it on
PostgreSQL.

A feature's table holds what the bytes are (name, type, size, who sent them) and the key; the
store holds the bytes, so nothing a user types ever becomes part of a path. On SQLite (one
machine) the bytes are files, `<root>/<2 hex>/<32 hex>`, served with `sendfile`. On
PostgreSQL several nodes share the database but not a disk, so the bytes are rows of
`stored_files` (migration 0016): a file uploaded through one node downloads through any
other. Reads there go by chunks (`open` → `chunks()`), so a download holds one chunk in
memory, not the whole file, and no pooled connection while the client reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from realtime.db import Database
from realtime.private import write_private

CHUNK = 1024 * 1024  # bytes per read of a stored file
DELETE_BATCH = 500  # keys per DELETE


def check_key(key: str) -> str:
    """Keys are the store's own random hex: anything else is refused before any I/O."""
    if not key.isalnum() or not key.isascii():
        raise ValueError("bad storage key")
    return key


@dataclass(frozen=True, slots=True)
class Opened:
    """A stored file found: its size, and either a path on this machine (served as a file)
    or its bytes read chunk by chunk (`chunks()`; also works when `path` is set)."""

    size: int
    path: Path | None
    chunks: Callable[[], AsyncIterator[bytes]]


class FileStore(Protocol):
    """Where bytes live; `file_store` picks the implementation for the database's engine."""

    async def put(self, data: bytes) -> str:
        """Store the bytes; their new random key."""
        ...

    async def open(self, key: str) -> Opened | None:
        """The file for serving, or None when it is gone."""
        ...

    async def remove(self, keys: list[str]) -> None:
        """Forget these files (missing ones are no error). Called after the commit that
        deleted the rows naming them."""
        ...


async def read_all(files: FileStore, key: str) -> bytes | None:
    """The whole file (its size is bounded by whoever stored it), or None when it is gone."""
    opened = await files.open(key)
    if opened is None:
        return None
    try:
        return b"".join([chunk async for chunk in opened.chunks()])
    except FileNotFoundError:  # removed while being read
        return None


def file_store(db: Database, root: Path) -> FileStore:
    """The store for this database: rows of `stored_files` on PostgreSQL (shared by every
    node), files under `root` on SQLite (one machine, as before)."""
    if db.engine == "postgres":
        return DatabaseFiles(db)
    return DiskFiles(root)


class DiskFiles:
    """Files under `root` (0600 in 0700 directories, realtime/private.py)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key

    async def put(self, data: bytes) -> str:
        key = secrets.token_hex(16)
        await asyncio.to_thread(_write, self.path(key), data)
        return key

    async def open(self, key: str) -> Opened | None:
        path = self.path(key)
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None

        async def chunks() -> AsyncIterator[bytes]:
            with await asyncio.to_thread(path.open, "rb") as fh:
                while part := await asyncio.to_thread(fh.read, CHUNK):
                    yield part

        return Opened(size=size, path=path, chunks=chunks)

    async def remove(self, keys: list[str]) -> None:
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(os.unlink, self.path(key))


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".part")
    write_private(tmp, data)  # 0600 in 0700 directories (realtime/private.py)
    os.replace(tmp, path)


class DatabaseFiles:
    """Rows of `stored_files`: every node sharing the database sees every file."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time,
                 chunk: int = CHUNK) -> None:
        self.db = db
        self.clock = clock
        self.chunk = chunk

    async def put(self, data: bytes) -> str:
        key = secrets.token_hex(16)
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO stored_files (key, data, size, created_at) VALUES (?, ?, ?, ?)",
                (key, data, len(data), self.clock()))
        return key

    async def open(self, key: str) -> Opened | None:
        # A small file comes back with its size, in the same query; a larger one by chunks.
        row = await self.db.fetchone(
            "SELECT size, CASE WHEN size <= ? THEN data ELSE NULL END AS data"
            " FROM stored_files WHERE key = ?", (self.chunk, check_key(key)))
        if row is None:
            return None
        size, first = int(row["size"]), row["data"]

        async def chunks() -> AsyncIterator[bytes]:
            if first is not None:
                if first:
                    yield bytes(first)
                return
            for offset in range(0, size, self.chunk):
                part = await self.db.fetchone(
                    "SELECT substr(data, CAST(? AS INTEGER), CAST(? AS INTEGER)) AS part"
                    " FROM stored_files WHERE key = ?", (offset + 1, self.chunk, key))
                if part is None:
                    raise FileNotFoundError(key)  # removed while being read
                yield bytes(part["part"])

        return Opened(size=size, path=None, chunks=chunks)

    async def remove(self, keys: list[str]) -> None:
        keys = [check_key(k) for k in keys]
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start:start + DELETE_BATCH]
            async with self.db.transaction() as conn:
                await conn.execute(
                    f"DELETE FROM stored_files WHERE key IN ({', '.join('?' * len(batch))})",
                    batch)

    async def adopt(self, root: Path) -> int:
        """Copy the files a SQLite node kept under `root` (DiskFiles' layout) into the
        database, keeping their keys, so the rows naming them still find them once the node
        moves to PostgreSQL (`db copy`). Files already there are left as they are."""
        count = 0
        for path in await asyncio.to_thread(_disk_files, root):
            data = await asyncio.to_thread(path.read_bytes)
            async with self.db.transaction() as conn:
                cur = await conn.execute(
                    "INSERT INTO stored_files (key, data, size, created_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (key) DO NOTHING",
                    (path.name, data, len(data), path.stat().st_mtime))
                count += max(cur.rowcount, 0)
        return count


def _disk_files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("*/*")
                  if p.is_file() and p.name.isalnum() and p.name.isascii()
                  and p.parent.name == p.name[:2])

"""Attachment files on disk, beside the database: `<data dir>/chat-files/<key>`.

The database holds who sent what (name, type, size); the disk holds bytes under a random
key, so nothing a user types ever becomes part of a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from pathlib import Path


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        if not key.isalnum():
            raise ValueError("bad storage key")
        return self.root / key[:2] / key

    async def put(self, data: bytes) -> str:
        key = secrets.token_hex(16)
        path = self.path(key)
        await asyncio.to_thread(_write, path, data)
        return key

    async def remove(self, keys: list[str]) -> None:
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(os.unlink, self.path(key))


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)

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

from realtime.private import write_private


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
    tmp = path.with_suffix(".part")
    write_private(tmp, data)  # 0600 in 0700 directories (realtime/private.py)
    os.replace(tmp, path)

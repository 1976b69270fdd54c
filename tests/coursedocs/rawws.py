"""A websocket client that never reads: the attacker of issue #13 item 4, on a bare socket.

aiohttp's client keeps reading into its own buffer; this one sends the upgrade, reads the
101 answer, then only writes masked frames, with a small receive buffer, so whatever the
server sends piles up on the server's side — the memory a hostile reader tries to grow.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from urllib.parse import urlsplit


def frame(payload: bytes, opcode: int = 0x2) -> bytes:
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


class NonReader:
    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.writer: asyncio.StreamWriter | None = None
        self.status = 0

    async def connect(self) -> NonReader:
        u = urlsplit(self.url)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((u.hostname or "127.0.0.1", u.port or 80))
        sock.setblocking(False)
        reader, self.writer = await asyncio.open_connection(sock=sock, limit=1 << 16)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        path = u.path + (f"?{u.query}" if u.query else "")
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n".encode())
        await self.writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self._reader = reader  # kept, never read again
        return self

    async def send(self, payload: bytes) -> bool:
        """False once the server has closed the connection."""
        assert self.writer is not None
        try:
            self.writer.write(frame(payload))
            await asyncio.wait_for(self.writer.drain(), 2)
        except (ConnectionError, TimeoutError):
            return False
        return True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

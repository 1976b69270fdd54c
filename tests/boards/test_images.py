"""Board images over real HTTP: a chunked upload (no Content-Length) arrives whole or not at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from tests.boards.test_socket import Cast, create_board
from tests.conftest import login

PNG = b"\x89PNG\r\n\x1a\n"


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    """The body in pieces, each sent on its own: the server sees them arrive one by one."""
    for i in range(0, len(data), size):
        yield data[i:i + size]
        await asyncio.sleep(0)  # let the server read what has arrived so far


async def test_a_chunked_image_upload_is_read_to_its_end(
        demo_server: str, demo_accounts: list[dict[str, Any]]) -> None:
    cast = Cast(demo_accounts)
    board = await create_board(demo_server, cast)
    image = PNG + bytes(range(256)) * 4000  # ~1 MB, under the 2 MiB cap
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, demo_server, cast.teacher)
        async with s.post(f"{demo_server}/api/boards/{board}/images",
                          data=pieces(image, 16 * 1024),
                          headers={"Content-Type": "image/png"}) as r:
            assert r.request_info.headers.get("Transfer-Encoding") == "chunked"
            assert r.status == 201, await r.text()
            src = (await r.json())["src"]
        async with s.get(f"{demo_server}{src}") as r:
            assert r.status == 200 and await r.read() == image  # every byte, in order

        # Over the cap with no length announced: refused once the cap is passed, nothing kept.
        too_big = PNG + b"\x00" * (2 * 1024 * 1024)
        async with s.post(f"{demo_server}/api/boards/{board}/images",
                          data=pieces(too_big, 64 * 1024),
                          headers={"Content-Type": "image/png"}) as r:
            assert r.status == 413
            body = await r.json()
        assert body["error"]["code"] == "too_large" and "Image trop lourde" in body["error"][
            "message"]

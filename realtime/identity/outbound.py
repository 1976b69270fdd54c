"""Calls from this server to the ENT's identity provider: bounded in time and in size.

A provider that hangs or answers a gigabyte must not hold a request (or the memory) of ours:
every call has a total timeout and its body is read up to a cap, then refused.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from yarl import URL

TIMEOUT_S = 10.0


class ProviderUnavailable(Exception):
    """The provider did not answer, answered too much, or not with 2xx where that matters."""


def client_session() -> aiohttp.ClientSession:
    """No cookie jar: nothing the provider sets may leak from one person's sign-in to the
    next one's."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": "ent-realtime-sso"},
    )


async def fetch(session: aiohttp.ClientSession, method: str, url: str, cap: int,
                **kwargs: Any) -> tuple[int, bytes]:
    """(status, body) of one request, without following redirects; ProviderUnavailable on a
    network error, a timeout or a body larger than `cap` bytes. The URL is sent exactly as
    written (yarl would otherwise re-quote it, and a CAS service URL must match byte for
    byte the one the ticket was issued for)."""
    try:
        async with session.request(method, URL(url, encoded=True), allow_redirects=False,
                                   **kwargs) as resp:
            if resp.content_length is not None and resp.content_length > cap:
                raise ProviderUnavailable(f"{url}: {resp.content_length} bytes")
            chunks, size = [], 0
            while chunk := await resp.content.read(64 * 1024):  # a piece, not the whole
                size += len(chunk)
                if size > cap:
                    raise ProviderUnavailable(f"{url}: more than {cap} bytes")
                chunks.append(chunk)
            return resp.status, b"".join(chunks)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        raise ProviderUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc

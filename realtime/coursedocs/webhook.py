"""Signed, debounced webhooks telling the ENT that a course changed.

A burst of keystrokes becomes one call per document once it has been quiet for `debounce_s`
(at most one call per `debounce_s * 6` while typing goes on). The body is JSON; the signature
is `X-ENT-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with the Unix
timestamp in `X-ENT-Timestamp`, so the receiver can refuse replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time

import aiohttp
import msgspec

log = logging.getLogger(__name__)

RETRIES = 3


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class Change(msgspec.Struct, frozen=True):
    event: str  # course.changed | course.deleted
    doc_id: int
    school_id: int
    title: str
    updated_at: float




class Notifier:
    """Coalesces changes per document and posts them; does nothing without a URL."""

    def __init__(self, url: str | None, secret: str | None, debounce_s: float) -> None:
        self.url = url
        self.secret = secret or ""
        self.debounce_s = debounce_s
        self._latest: dict[int, Change] = {}
        self._first: dict[int, float] = {}
        self._timers: dict[int, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def changed(self, change: Change) -> None:
        if not self.enabled:
            return
        self._latest[change.doc_id] = change
        now = time.monotonic()
        first = self._first.setdefault(change.doc_id, now)
        timer = self._timers.get(change.doc_id)
        if timer is not None and now - first < self.debounce_s * 6:
            timer.cancel()  # still typing: push the call back
        elif timer is not None:
            return  # waited long enough: let the pending call go
        self._timers[change.doc_id] = asyncio.get_running_loop().create_task(
            self._later(change.doc_id), name=f"webhook-{change.doc_id}")

    async def _later(self, doc_id: int) -> None:
        await asyncio.sleep(self.debounce_s)
        self._timers.pop(doc_id, None)
        self._first.pop(doc_id, None)
        change = self._latest.pop(doc_id, None)
        if change is not None:
            await self._post(change)

    async def _post(self, change: Change) -> None:
        assert self.url
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        body = msgspec.json.encode(change)
        for attempt in range(RETRIES):
            ts = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-ENT-Timestamp": ts,
                       "X-ENT-Signature": sign(self.secret, ts, body)}
            try:
                async with self._session.post(self.url, data=body, headers=headers) as r:
                    if r.status < 300:
                        return
                    log.warning("webhook refused", extra={"status": r.status})
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("webhook failed", extra={"error": str(exc)})
            await asyncio.sleep(0.5 * 2**attempt)
        log.error("webhook dropped", extra={"doc_id": change.doc_id})

    async def close(self) -> None:
        """Send what is still waiting (shutdown), then close."""
        timers = list(self._timers.values())
        for t in timers:
            t.cancel()
        for t in timers:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._timers.clear()
        pending, self._latest = list(self._latest.values()), {}
        for change in pending:
            await self._post(change)
        if self._session is not None:
            await self._session.close()

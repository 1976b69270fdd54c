"""Browser Web Push (RFC 8030 / 8291 / 8292) with pywebpush: VAPID keys, subscriptions, sends.

The VAPID private key comes from REALTIME_VAPID_PRIVATE_KEY (PEM, or the raw key in
base64url); without it one is generated on first start and reused afterwards, so browsers'
subscriptions survive restarts: into `vapid_private.pem` beside a SQLite database (mode 0600),
into the database on PostgreSQL, so that every node pushes with the same key.
Sends run in the background after the commit: a slow push service never delays a roll.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from pywebpush import WebPushException, webpush_async

from realtime.db import Database
from realtime.errors import AppError
from realtime.settings import Settings
from realtime.shared import VAPID_PRIVATE_KEY, data_dir, shared_secret

log = logging.getLogger(__name__)

PUSH_TTL_S = 24 * 3600
SUBSCRIPTIONS_PER_USER = 10


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def load_vapid(settings: Settings, db: Database) -> Vapid:
    """REALTIME_VAPID_PRIVATE_KEY when set; else the key generated once and shared: in
    `vapid_private.pem` beside SQLite, in the database on PostgreSQL, so every node pushes
    with the key the browsers subscribed with (realtime/shared.py)."""
    if settings.vapid_private_key:
        raw = settings.vapid_private_key.strip()
        if raw.startswith("-----BEGIN"):
            return Vapid.from_pem(raw.encode())
        return Vapid.from_string(raw)
    pem = await shared_secret(db, data_dir(settings), VAPID_PRIVATE_KEY, _fresh_pem)
    return Vapid.from_pem(pem.encode())


def _fresh_pem() -> str:
    fresh = Vapid()
    fresh.generate_keys()
    return fresh.private_pem().decode()


def application_server_key(vapid: Vapid) -> str:
    """The public key a browser passes to pushManager.subscribe (uncompressed P-256)."""
    return b64url(vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def check_endpoint(settings: Settings, endpoint: str) -> None:
    """Only a known push service's https address: the server must never be made to post to
    an address of someone's choosing (another machine on the inside, for one)."""
    try:
        parts = urlsplit(endpoint)
    except ValueError as exc:
        raise AppError("invalid", "Adresse d'abonnement invalide.") from exc
    host = (parts.hostname or "").lower()
    scheme_ok = parts.scheme == "https" or (settings.push_allow_http and parts.scheme == "http")
    host_ok = any(host == h or host.endswith("." + h) for h in settings.push_allowed_hosts)
    if not scheme_ok or not host_ok or len(endpoint) > 1000:
        raise AppError("invalid", "Ce service de notification n'est pas accepté.")


def check_key(value: str, size: int, name: str) -> None:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, TypeError) as exc:
        raise AppError("invalid", f"Clé « {name} » invalide.") from exc
    if len(raw) != size or (name == "p256dh" and raw[0] != 4):
        raise AppError("invalid", f"Clé « {name} » invalide.")


async def subscribe(db: Database, user_id: int, endpoint: str, p256dh: str, auth: str,
                    now: float) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (endpoint) DO UPDATE SET user_id ="
            " excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth",
            (user_id, endpoint, p256dh, auth, now))
        # Keep the newest few per person: old browsers fall off.
        await conn.execute(
            "DELETE FROM push_subscriptions WHERE user_id = ? AND id NOT IN (SELECT id FROM"
            " push_subscriptions WHERE user_id = ? ORDER BY id DESC LIMIT ?)",
            (user_id, user_id, SUBSCRIPTIONS_PER_USER))


async def unsubscribe(db: Database, user_id: int, endpoint: str) -> bool:
    async with db.transaction() as conn:
        cur = await conn.execute(
            "DELETE FROM push_subscriptions WHERE user_id = ? AND endpoint = ?",
            (user_id, endpoint))
        return cur.rowcount > 0


class PushSender:
    """Sends notices to every browser subscribed by the given people, in the background."""

    def __init__(self, settings: Settings, db: Database, vapid: Vapid) -> None:
        self.settings = settings
        self.db = db
        self.vapid = vapid
        self.public_key = application_server_key(self.vapid)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0

    def send(self, user_id: int, payload: dict[str, Any]) -> None:
        task = asyncio.create_task(self._send_all(user_id, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_all(self, user_id: int, payload: dict[str, Any]) -> None:
        rows = await self.db.fetchall(
            "SELECT endpoint, p256dh, auth FROM push_subscriptions WHERE user_id = ?",
            (user_id,))
        if not rows:
            return
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        data = json.dumps(payload, ensure_ascii=False)
        for r in rows:
            await self._send_one(r["endpoint"], r["p256dh"], r["auth"], data)

    async def _send_one(self, endpoint: str, p256dh: str, auth: str, data: str) -> None:
        info = {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}
        try:
            await webpush_async(info, data, vapid_private_key=self.vapid,
                                vapid_claims={"sub": self.settings.vapid_subject},
                                ttl=PUSH_TTL_S, aiohttp_session=self._session, timeout=10)
            self.sent += 1
        except WebPushException as exc:
            self.failed += 1
            status = exc.response.status if exc.response is not None else None
            if status in (404, 410):  # the browser unsubscribed: forget it
                await self.db.execute("DELETE FROM push_subscriptions WHERE endpoint = ?",
                                      (endpoint,))
            log.warning("push refused", extra={"status": status})
        except (aiohttp.ClientError, TimeoutError, ValueError):
            self.failed += 1
            log.warning("push failed", exc_info=True)

    async def drain(self) -> None:
        """Wait for the sends under way (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.drain(), 5)
        if self._session is not None:
            await self._session.close()

"""Web Push end to end: a parent's browser subscription (keys made here, as a browser
would), a local push service on loopback that receives the push, and decryption of the
payload with the subscription's private key (RFC 8291, http_ece) to check what was sent."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import http_ece
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from realtime import keys
from realtime.attendance.webpush import load_vapid
from tests import engines
from tests.attendance.conftest import Cast, absent_and_validate, recent_slot, session_for
from tests.attendance.test_socket import student_id
from tests.conftest import make_settings


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Browser:
    """The keys a browser's PushManager makes for one subscription."""

    def __init__(self, endpoint: str) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        public = self.private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        self.subscription = {"endpoint": endpoint, "expirationTime": None,
                             "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)}}

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(body, private_key=self.private, auth_secret=self.auth,
                                 version="aes128gcm")
        return json.loads(plain)


async def push_service(aiohttp_server: Any, status: int = 201) -> tuple[str, list[Any]]:
    received: list[Any] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((request.match_info["token"], request.headers.copy(),
                         await request.read()))
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/push/{token}", receive)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), received


async def test_absence_is_pushed_encrypted_to_the_parents_browser(
        att_app: Any, att_client: Any, aiohttp_server: Any, cast: Cast) -> None:
    push_base, received = await push_service(aiohttp_server)
    base, app = await att_app(push_allow_http=True, push_allowed_hosts=("127.0.0.1",))
    browser = Browser(f"{push_base}/push/parent-1")
    async with await session_for(base, cast.guardians[0]) as s:
        async with s.get(f"{base}/api/push/key") as r:
            server_key = (await r.json())["public_key"]
        async with s.post(f"{base}/api/push/subscriptions", json=browser.subscription) as r:
            assert r.status == 201, await r.text()

    teacher = await att_client(cast.teacher, base)
    slot, day = await recent_slot(base, cast.teacher, cast.class_name)
    opened = await teacher.call("open_roll", {"slot_id": slot["id"], "date": day})
    await absent_and_validate(teacher, opened, [student_id(opened, cast.student)])
    await app[keys.ATTENDANCE].push.drain()

    [(token, headers, body)] = received
    assert token == "parent-1" and headers["Content-Encoding"] == "aes128gcm"
    assert int(headers["TTL"]) > 0
    payload = browser.decrypt(body)
    assert payload["kind"] == "absence" and cast.student["name"] in payload["body"]
    assert payload["title"].startswith("Absence") and payload["url"].startswith("/#/absences")
    # VAPID (RFC 8292): signed by the server's key, the one it gives browsers.
    scheme, _, params = headers["Authorization"].partition(" ")
    fields = dict(p.strip().split("=", 1) for p in params.split(","))
    assert scheme == "vapid" and fields["k"] == server_key
    assert Vapid02.verify(headers["Authorization"])


async def test_gone_subscriptions_are_forgotten(att_app: Any, att_client: Any,
                                                aiohttp_server: Any, cast: Cast,
                                                demo_db_path: Path) -> None:
    push_base, received = await push_service(aiohttp_server, status=410)
    base, app = await att_app(push_allow_http=True, push_allowed_hosts=("127.0.0.1",))
    browser = Browser(f"{push_base}/push/old")
    async with await session_for(base, cast.guardians[1]) as s:
        async with s.post(f"{base}/api/push/subscriptions", json=browser.subscription) as r:
            assert r.status == 201
    teacher = await att_client(cast.teacher, base)
    slot, day = await recent_slot(base, cast.teacher, cast.class_name)
    opened = await teacher.call("open_roll", {"slot_id": slot["id"], "date": day})
    await absent_and_validate(teacher, opened, [student_id(opened, cast.student)])
    await app[keys.ATTENDANCE].push.drain()
    assert len(received) == 1
    with engines.connect(demo_db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM push_subscriptions").fetchone()[0] == 0


async def test_subscriptions_are_checked(demo_server: str, cast: Cast,
                                         demo_db_path: Path) -> None:
    good = Browser("https://fcm.googleapis.com/fcm/send/abc").subscription
    cases = [
        {**good, "endpoint": "http://fcm.googleapis.com/fcm/send/abc"},  # not https
        {**good, "endpoint": "https://127.0.0.1:8080/internal"},  # not a push service
        {**good, "endpoint": "https://evil.example/fcm.googleapis.com"},
        {**good, "keys": {"p256dh": "AAAA", "auth": good["keys"]["auth"]}},
        {**good, "keys": {"p256dh": good["keys"]["p256dh"], "auth": "!!"}},
        {**good, "admin": True},
    ]
    async with await session_for(demo_server, cast.guardians[0]) as s:
        for body in cases:
            async with s.post(f"{demo_server}/api/push/subscriptions", json=body) as r:
                assert r.status == 400, body
                assert (await r.json())["error"]["message"]
        with engines.connect(demo_db_path) as conn:
            assert conn.execute("SELECT COUNT(*) FROM push_subscriptions").fetchone()[0] == 0
        async with s.post(f"{demo_server}/api/push/subscriptions", json=good) as r:
            assert r.status == 201
        async with s.delete(f"{demo_server}/api/push/subscriptions",
                            json={"endpoint": good["endpoint"]}) as r:
            assert (await r.json()) == {"removed": True}
    async with aiohttp.ClientSession() as anonymous, anonymous.post(
            f"{demo_server}/api/push/subscriptions", json=good) as r:
        assert r.status == 401


async def test_vapid_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    db = await engines.open_test_db(settings.db_path)
    try:
        first = await load_vapid(settings, db)
        path = tmp_path / "vapid_private.pem"
        if engines.POSTGRES:  # in the database, where every node finds it (tests/test_shared)
            assert not path.exists()
        else:
            assert path.stat().st_mode & 0o777 == 0o600
        again = await load_vapid(settings, db)
        assert first.private_pem() == again.private_pem()
        pem = first.private_pem().decode()
        from_env = await load_vapid(settings.with_(vapid_private_key=pem), db)
        assert from_env.private_pem() == first.private_pem()
    finally:
        await db.close()

"""Login limits an attacker cannot turn against everyone (issue #13 item 2), over real HTTP:
forwarding headers believed only from trusted proxies, progressive delays per login and per
address, lockout per (login, address) pair, and the rightful user's own device never
refused because of someone else's failures."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import aiohttp

from realtime import keys
from realtime.app import create_app
from realtime.ratelimit import MemoryRateLimiter, MemoryThrottle
from tests.clocks import ManualClock
from tests.conftest import StartServer, account, make_settings

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


async def _try(s: aiohttp.ClientSession, base: str, login_: str, code: str,
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    async with s.post(f"{base}/api/login", json={"login": login_, "code": code},
                      headers=headers or {}) as r:
        return r.status, await r.json(), r.headers.get("Retry-After", "")


def _jar() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_behind_the_proxy_one_attacker_does_not_lock_everyone_out(
        start_server: StartServer, tmp_path: Path, demo_db_path: Path,
        demo_accounts: list[dict[str, Any]]) -> None:
    base = await start_server(make_settings(tmp_path, db_path=demo_db_path,
                                            trusted_proxies=LOOPBACK,
                                            login_max_failures_per_ip=4))
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    async with _jar() as s:
        statuses = [(await _try(s, base, f"eleve{i}", "xxxxxxxx", attacker))[0]
                    for i in range(12)]
        assert statuses[:4] == [401] * 4 and 429 in statuses  # the attacker is slowed down
        # A client that writes its own X-Forwarded-For before the proxy's hop is still
        # counted by the hop the proxy appended (the first untrusted one from the right).
        forged = {"X-Forwarded-For": "198.51.100.50, 203.0.113.9"}
        status, body, retry = await _try(s, base, "eleve99", "xxxxxxxx", forged)
        assert status == 429 and body["error"]["code"] == "rate_limited" and int(retry) >= 1
        status, *_ = await _try(s, base, "eleve98", "xxxxxxxx",
                                {"Forwarded": 'for="203.0.113.9:4711";proto=https'})
        assert status == 429
    # Everyone else behind the same proxy logs in.
    for i, acct in enumerate([account(demo_accounts, "teacher"),
                              account(demo_accounts, "student")]):
        async with _jar() as s:
            status, body, _ = await _try(s, base, acct["login"], acct["code"],
                                         {"X-Forwarded-For": f"198.51.100.{7 + i}, 10.0.0.2"})
            assert status == 200, body


async def test_forwarding_headers_from_anyone_else_are_ignored(
        start_server: StartServer, tmp_path: Path, demo_db_path: Path) -> None:
    """Without trusted proxies, a client rotating X-Forwarded-For is still one address."""
    base = await start_server(make_settings(tmp_path, db_path=demo_db_path,
                                            login_max_failures_per_ip=4))
    async with _jar() as s:
        statuses = [(await _try(s, base, f"eleve{i}", "xxxxxxxx",
                                {"X-Forwarded-For": f"192.0.2.{i}"}))[0] for i in range(8)]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 3


async def test_rightful_users_own_device_is_never_refused(
        start_server: StartServer, tmp_path: Path, demo_db_path: Path,
        demo_accounts: list[dict[str, Any]]) -> None:
    """prénom.nom is guessable: someone behind the same school address tries 20 wrong codes
    on a teacher's login. The teacher's own browser (it logged in there before) still gets
    in with the right code, at once; the attacker stays locked out."""
    base = await start_server(make_settings(tmp_path, db_path=demo_db_path))
    teacher = account(demo_accounts, "teacher")
    async with _jar() as own_device, _jar() as attacker:
        status, *_ = await _try(own_device, base, teacher["login"], teacher["code"])
        assert status == 200
        async with own_device.post(f"{base}/api/logout") as r:
            assert r.status == 200
        statuses = [(await _try(attacker, base, teacher["login"], f"mauvais{i:02d}"))[0]
                    for i in range(20)]
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
        # the attacker's pair is locked: even the right code is refused from it
        status, *_ = await _try(attacker, base, teacher["login"], teacher["code"])
        assert status == 429
        # a forged device cookie is worth nothing
        attacker.cookie_jar.update_cookies({"ent_device": "eyJkIjoieCJ9.forged.sig"})
        status, *_ = await _try(attacker, base, teacher["login"], teacher["code"])
        assert status == 429
        # the teacher's own browser, same address
        status, body, _ = await _try(own_device, base, teacher["login"], teacher["code"])
        assert status == 200, body


async def test_failures_cost_the_attacker_time_per_login(
        aiohttp_server: Any, tmp_path: Path, demo_db_path: Path,
        demo_accounts: list[dict[str, Any]]) -> None:
    """Spread over many addresses (a botnet behind the proxy), guesses on one login are
    slowed to one per 1, 2, 4 … s; the pair that failed 5 times is locked until the window
    ends. The server's limits run on a clock the test moves: a slow machine (each failure
    costs a hash) cannot let a slot free itself between two attempts."""
    app = create_app(make_settings(tmp_path, db_path=demo_db_path, trusted_proxies=LOOPBACK))
    base = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    identity = app[keys.IDENTITY]
    clock = ManualClock()
    for limiter in (identity.per_login, identity.per_address, identity.throttle):
        assert isinstance(limiter, MemoryRateLimiter | MemoryThrottle)
        limiter.clock = clock
    teacher = account(demo_accounts, "teacher")

    def at(n: int) -> dict[str, str]:
        return {"X-Forwarded-For": f"203.0.113.{n}"}

    async with _jar() as s:
        statuses = [(await _try(s, base, teacher["login"], "xxxxxxxx", at(i)))[0]
                    for i in range(5)]
        assert statuses == [401] * 5
        # past 5 failures: one attempt per delay for the login, whatever the address, and
        # the delay doubles with each failure
        for n, delay in enumerate((1, 2, 4, 8)):
            status, *_ = await _try(s, base, teacher["login"], "xxxxxxxx", at(50 + n))
            assert status == 401  # the slot
            status, body, retry = await _try(s, base, teacher["login"], "xxxxxxxx",
                                             at(60 + n))
            assert status == 429 and "patientez" in body["error"]["message"]
            assert retry == str(delay), (n, retry)
            clock.advance(delay - 0.5)
            status, _b, retry = await _try(s, base, teacher["login"], "xxxxxxxx", at(70 + n))
            assert status == 429 and retry == "1"  # half a second left: « 1 s »
            clock.advance(0.5)
    async with _jar() as s:  # one address failing 5 times on that login is locked
        for _ in range(5):
            await _try(s, base, "autre.compte", "xxxxxxxx", at(77))
        status, body, retry = await _try(s, base, "autre.compte", "xxxxxxxx", at(77))
        assert status == 429 and int(retry) > 60


async def test_delays_are_shared_by_every_node(
        start_server: StartServer, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
        redis_cleanup: Any, demo_accounts: list[dict[str, Any]]) -> None:
    """With Redis, the slots of the progressive delay are one for the whole ENT: a botnet
    cannot multiply its guesses by the number of nodes."""
    from tests.conftest import two_nodes

    a, b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix,
                           trusted_proxies=LOOPBACK)
    teacher = account(demo_accounts, "teacher")
    async with _jar() as s:
        for i in range(5):
            node = a if i % 2 else b
            status, *_ = await _try(s, node, teacher["login"], "xxxxxxxx",
                                    {"X-Forwarded-For": f"203.0.113.{i}"})
            assert status == 401
        status, *_ = await _try(s, a, teacher["login"], "xxxxxxxx",
                                {"X-Forwarded-For": "203.0.113.60"})
        assert status == 401  # the slot, taken on node a
        status, body, retry = await _try(s, b, teacher["login"], "xxxxxxxx",
                                         {"X-Forwarded-For": "203.0.113.61"})
        assert status == 429 and int(retry) >= 1, body  # node b knows

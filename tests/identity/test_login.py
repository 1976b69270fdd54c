"""Login, sessions, tokens and rate limits over real HTTP against a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from realtime import keys
from realtime.ratelimit import MemoryRateLimiter
from tests.clocks import ManualClock
from tests.conftest import account, login, make_settings, two_nodes


async def test_login_sets_cookie_and_me_works(demo_server: str, http: aiohttp.ClientSession,
                                              demo_accounts: list[dict[str, Any]]) -> None:
    teacher = account(demo_accounts, "teacher")
    async with http.post(f"{demo_server}/api/login",
                         json={"login": teacher["login"], "code": teacher["code"]}) as r:
        assert r.status == 200
        body = await r.json()
        cookie = r.headers["Set-Cookie"]
    assert body["user"]["login"] == teacher["login"]
    assert body["user"]["role"] == "teacher"
    assert body["user"]["name"] == teacher["name"]
    assert set(body["user"]) == {"id", "login", "role", "name", "school_id"}
    assert isinstance(body["user"]["school_id"], int)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # The cookie alone authenticates…
    async with http.get(f"{demo_server}/api/me") as r:
        assert r.status == 200
        me = await r.json()
    assert me["user"]["login"] == teacher["login"]
    assert me["school"]["name"] == "Collège Charlemagne"
    # …and so does the bearer token, without cookies.
    async with aiohttp.ClientSession() as bare, bare.get(
        f"{demo_server}/api/me", headers={"Authorization": f"Bearer {body['token']}"}
    ) as r:
        assert r.status == 200


async def test_wrong_code_and_unknown_login_look_the_same(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]]
) -> None:
    teacher = account(demo_accounts, "teacher")
    answers = []
    for creds in ({"login": teacher["login"], "code": "mauvais-code"},
                  {"login": "personne.inconnue", "code": "mauvais-code"}):
        async with http.post(f"{demo_server}/api/login", json=creds) as r:
            answers.append((r.status, await r.json()))
            assert "Set-Cookie" not in r.headers
    assert answers[0] == answers[1]
    status, body = answers[0]
    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["message"] == "Identifiant ou code personnel incorrect."


async def test_no_session_is_401(demo_server: str, http: aiohttp.ClientSession) -> None:
    for headers in ({}, {"Authorization": "Bearer forged.token.value"}):
        async with http.get(f"{demo_server}/api/me", headers=headers) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "unauthorized"


async def test_logout_revokes_the_token(demo_server: str, http: aiohttp.ClientSession,
                                        demo_accounts: list[dict[str, Any]]) -> None:
    token = await login(http, demo_server, account(demo_accounts, "parent"))
    auth = {"Authorization": f"Bearer {token}"}
    async with http.post(f"{demo_server}/api/logout", headers=auth) as r:
        assert r.status == 200
    async with aiohttp.ClientSession() as bare, bare.get(
        f"{demo_server}/api/me", headers=auth
    ) as r:
        assert r.status == 401  # the signed token is still well-formed, but revoked
    async with http.get(f"{demo_server}/api/me") as r:
        assert r.status == 401  # and the cookie was cleared


async def test_token_expires(start_server: Any, tmp_path: Path, demo_db_path: Path,
                             demo_accounts: list[dict[str, Any]]) -> None:
    import asyncio

    base = await start_server(make_settings(tmp_path, db_path=demo_db_path, token_ttl_s=1))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        token = await login(s, base, account(demo_accounts, "student"))
        await asyncio.sleep(2.1)
        async with s.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 401


async def _fail_until_limited(session: aiohttp.ClientSession, base: str, login_: str,
                              attempts: int, headers: dict[str, str] | None = None
                              ) -> list[int]:
    statuses = []
    for _ in range(attempts):
        async with session.post(f"{base}/api/login", json={"login": login_, "code": "xxxxxxxx"},
                                headers=headers) as r:
            statuses.append(r.status)
            if r.status == 429:
                body = await r.json()
                assert body["error"]["code"] == "rate_limited"
                assert body["error"]["message"].startswith(
                    "Trop de tentatives de connexion échouées")
                assert int(r.headers["Retry-After"]) > 0
    return statuses


async def test_failed_logins_are_limited_per_login(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]]
) -> None:
    teacher = account(demo_accounts, "teacher")
    statuses = await _fail_until_limited(http, demo_server, teacher["login"], 7)
    assert statuses == [401] * 5 + [429] * 2
    # Even the right code is refused while the login is locked.
    async with http.post(f"{demo_server}/api/login",
                         json={"login": teacher["login"], "code": teacher["code"]}) as r:
        assert r.status == 429
    # Another account from the same address is not affected yet.
    other = account(demo_accounts, "student")
    assert await login(http, demo_server, other)


async def test_failed_logins_are_limited_per_address(
    start_server: Any, tmp_path: Path, demo_db_path: Path, demo_accounts: list[dict[str, Any]]
) -> None:
    base = await start_server(make_settings(tmp_path, db_path=demo_db_path,
                                            login_max_failures_per_ip=4))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        statuses = []
        for i in range(6):
            statuses += await _fail_until_limited(s, base, f"inconnu{i}", 1)
        # Past the limit, one attempt per 1, 2, 4 … s from that address (docs/security.md).
        assert statuses == [401] * 5 + [429]
        async with s.post(f"{base}/api/login", json={
            "login": demo_accounts[0]["login"], "code": demo_accounts[0]["code"]}) as r:
            assert r.status == 429


async def test_a_locked_login_opens_again_when_its_window_ends(
    demo_app: tuple[str, Any], demo_accounts: list[dict[str, Any]]
) -> None:
    """The window is the server's clock, moved by the test: no sleeping for 15 minutes."""
    base, app = demo_app
    identity = app[keys.IDENTITY]
    clock = ManualClock()
    for limiter in (identity.per_login, identity.per_address):
        assert isinstance(limiter, MemoryRateLimiter)
        limiter.clock = clock
    teacher = account(demo_accounts, "teacher")
    right = {"login": teacher["login"], "code": teacher["code"]}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        assert await _fail_until_limited(s, base, teacher["login"], 6) == [401] * 5 + [429]
        async with s.post(f"{base}/api/login", json=right) as r:
            assert r.status == 429 and r.headers["Retry-After"] == str(15 * 60)
            assert (await r.json())["error"]["message"].endswith("Réessayez dans 15 minutes.")
        clock.advance(14 * 60 + 1)
        async with s.post(f"{base}/api/login", json=right) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "59"
            assert (await r.json())["error"]["message"].endswith("Réessayez dans 1 minute.")
        clock.advance(59)
        async with s.post(f"{base}/api/login", json=right) as r:
            assert r.status == 200, await r.text()


async def test_rate_limit_is_shared_through_redis(
    start_server: Any, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
    redis_cleanup: Any, demo_accounts: list[dict[str, Any]]
) -> None:
    """Two servers (as two workers) count the same failures."""
    a, b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix)
    teacher = account(demo_accounts, "teacher")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        assert await _fail_until_limited(s, a, teacher["login"], 3) == [401] * 3
        assert await _fail_until_limited(s, b, teacher["login"], 3) == [401, 401, 429]

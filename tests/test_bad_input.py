"""Malformed JSON, wrong types, unknown fields, oversized bodies, unknown routes: a 4xx with a
JSON error body, and nothing changes (no session is created)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests import engines
from tests.conftest import account


def _rows(db_path: Path) -> tuple[int, int]:
    """(sessions, users): what a login could change."""
    with engines.connect(db_path) as conn:
        return (conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0],
                conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])


BAD_BODIES = [
    ("not json", b"{login: x", "application/json", 400, "invalid"),
    ("wrong type", b'{"login": 42, "code": "abcdefgh"}', "application/json", 400, "invalid"),
    ("missing field", b'{"login": "x"}', "application/json", 400, "invalid"),
    ("unknown field", b'{"login": "x", "code": "y", "admin": true}', "application/json", 400,
     "invalid"),
    ("array", b'["x", "y"]', "application/json", 400, "invalid"),
    ("not json content type", b"login=x&code=y", "application/x-www-form-urlencoded", 415,
     "unsupported_media_type"),
    ("too large", b'{"login": "' + b"x" * (70 * 1024) + b'", "code": "y"}', "application/json",
     413, "too_large"),
]


@pytest.mark.parametrize(("case", "body", "ctype", "status", "code"), BAD_BODIES,
                         ids=[c[0] for c in BAD_BODIES])
async def test_bad_login_bodies(demo_server: str, http: aiohttp.ClientSession, case: str,
                                body: bytes, ctype: str, status: int, code: str,
                                demo_db_path: Path) -> None:
    before = _rows(demo_db_path)
    async with http.post(f"{demo_server}/api/login", data=body,
                         headers={"Content-Type": ctype}) as r:
        assert r.status == status, case
        assert r.content_type == "application/json"
        err = (await r.json())["error"]
        assert err["code"] == code
        assert err["message"]  # a sentence for a person, in French
        assert "Set-Cookie" not in r.headers
    assert _rows(demo_db_path) == before


async def test_bad_bodies_do_not_count_as_failed_logins(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]]
) -> None:
    """Garbage is refused before identity is touched: the real login still works after."""
    teacher = account(demo_accounts, "teacher")
    for _ in range(10):
        async with http.post(f"{demo_server}/api/login", data=b"{",
                             headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400
    async with http.post(f"{demo_server}/api/login",
                         json={"login": teacher["login"], "code": teacher["code"]}) as r:
        assert r.status == 200


@pytest.mark.parametrize("path", ["/api/nope", "/nope", "/api/classes/abc/students",
                                  "/api/classes/99999999999999999999/students"])
async def test_unknown_routes(demo_server: str, http: aiohttp.ClientSession, path: str) -> None:
    async with http.get(f"{demo_server}{path}") as r:
        assert r.status in (401, 404)
        body = await r.json()
        assert body["error"]["code"] in ("not_found", "unauthorized")


async def test_wrong_method(demo_server: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{demo_server}/api/login") as r:
        assert r.status == 405
        assert (await r.json())["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("query", ["date=31-12-2026", "date=2026-13-01", "class_id=abc",
                                   "student_id=-3", "class_id=1&student_id=2"])
async def test_bad_query_parameters(demo_server: str, http: aiohttp.ClientSession,
                                    demo_accounts: list[dict[str, Any]], query: str) -> None:
    from tests.conftest import login

    await login(http, demo_server, account(demo_accounts, "cpe"))
    async with http.get(f"{demo_server}/api/timetable?{query}") as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "invalid"

"""Cross-site requests (issue #13 item 8): a page on another site cannot make a logged-in
browser log out, upload, restore a version or create anything with its cookie, JSON body or
not. Real HTTP with the cookie, and the headers a browser adds."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.conftest import account, login

EVIL = {"Origin": "https://ent-college.evil.example"}


async def _me(s: aiohttp.ClientSession, base: str) -> int:
    async with s.get(f"{base}/api/me") as r:
        return r.status


@pytest.mark.parametrize("headers", [
    EVIL,
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "same-site"},  # a sibling sub-domain is not the ENT either
])
async def test_cross_site_posts_with_the_cookie_are_refused(
        demo_server: str, demo_accounts: list[dict[str, Any]],
        headers: dict[str, str]) -> None:
    teacher = account(demo_accounts, "teacher")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, demo_server, teacher)
        async with s.post(f"{demo_server}/api/docs", json={"title": "Cours"}) as r:
            assert r.status == 201
            doc_id = (await r.json())["id"]
        async with s.post(f"{demo_server}/api/docs/{doc_id}/versions",
                          json={"label": "v1"}) as r:
            assert r.status == 201
            version = (await r.json())["id"]
        attacks = [
            ("POST", "/api/logout", {}),  # no body at all
            ("POST", f"/api/docs/{doc_id}/versions/{version}/restore", {}),
            ("POST", "/api/chat/attachments?name=x.txt",
             {"data": b"hello", "headers": {"Content-Type": "text/plain"}}),
            ("POST", "/api/docs", {"data": "title=Pirate",
                                   "headers": {"Content-Type": "text/plain"}}),
            ("PATCH", f"/api/docs/{doc_id}", {"json": {"title": "Piraté"}}),
            ("DELETE", f"/api/docs/{doc_id}", {}),
        ]
        for method, path, kwargs in attacks:
            extra = {**headers, **kwargs.pop("headers", {})}
            async with s.request(method, f"{demo_server}{path}", headers=extra,
                                 **kwargs) as r:
                body = await r.json()
                assert r.status == 403, (path, body)
                assert body["error"]["code"] == "forbidden"
                assert "ENT" in body["error"]["message"]
        # nothing happened: still logged in, the document is there under its title
        assert await _me(s, demo_server) == 200
        async with s.get(f"{demo_server}/api/docs/{doc_id}") as r:
            assert r.status == 200 and (await r.json())["title"] == "Cours"


async def test_same_origin_and_non_browser_requests_pass(
        demo_server: str, demo_accounts: list[dict[str, Any]]) -> None:
    teacher = account(demo_accounts, "teacher")
    host = demo_server.split("://", 1)[1]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        token = await login(s, demo_server, teacher)
        for headers in ({"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"},
                        {"Origin": f"http://{host}"}, {}):
            async with s.post(f"{demo_server}/api/docs", json={"title": "Cours"},
                              headers=headers) as r:
                assert r.status == 201
        # a bearer token is never attached by a browser on its own: other services may post
        async with aiohttp.ClientSession() as service:
            async with service.post(f"{demo_server}/api/docs", json={"title": "Cours"},
                                    headers={**EVIL, "Authorization": f"Bearer {token}"}) as r:
                assert r.status == 201
        async with s.post(f"{demo_server}/api/logout",
                          headers={"Origin": f"http://{host}"}) as r:
            assert r.status == 200
        assert await _me(s, demo_server) == 401

"""Signing in through CAS against a real django-cas-server on loopback, driven by an HTTP
client that fills the CAS login form as a person would."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from yarl import URL

from tests import engines
from tests.identity.peers import CAS_USERS, CasServer, submit_form


def jar_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def cas_ticket_url(http: aiohttp.ClientSession, base: str, username: str,
                         next_path: str | None = None) -> URL:
    """Our /auth/cas/login → the CAS form, filled → the CAS sends the browser back to our
    callback with a ticket: that URL (not followed yet)."""
    params = {"next": next_path} if next_path is not None else {}
    async with http.get(f"{base}/auth/cas/login", params=params, allow_redirects=False) as r:
        assert r.status == 302
        cas_login = r.headers["Location"]
    async with http.get(URL(cas_login, encoded=True)) as r:  # exactly as a browser would
        assert r.status == 200
        page, page_url = await r.text(), str(r.url)
    async with await submit_form(http, page_url, page, {
            "username": username, "password": CAS_USERS[username][0]}) as r:
        assert r.status == 302, await r.text()
        back = r.headers["Location"]
    assert back.startswith(f"{base}/auth/cas/callback")
    assert parse_qs(urlsplit(back).query)["ticket"][0].startswith("ST-")
    return URL(back, encoded=True)


async def me(http: aiohttp.ClientSession, base: str) -> tuple[int, Any]:
    async with http.get(f"{base}/api/me") as r:
        return r.status, await r.json()


@pytest.mark.parametrize("validate", ["/serviceValidate", "/p3/serviceValidate"])
async def test_cas_sign_in_by_external_id_lands_on_next(
        sso_server: Any, sso_people: dict[str, Any], validate: str) -> None:
    base = await sso_server(cas_validate=validate)
    async with jar_session() as http:
        back = await cas_ticket_url(http, base, "prof.cas", next_path="/#/messages")
        async with http.get(back, allow_redirects=False) as r:
            assert r.status == 302, await r.text()
            assert r.headers["Location"] == "/#/messages"
            cookie = r.headers["Set-Cookie"]
        assert "ent_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        status, body = await me(http, base)
    assert status == 200
    teacher = sso_people["ACA-1001"]
    assert body["user"]["login"] == teacher["login"]
    assert body["user"]["role"] == "teacher"


async def test_cas_refusals_open_no_session(sso_server: Any, cas_server: CasServer) -> None:
    base = await sso_server()
    cases = {
        "eleve.inconnu": ("Compte introuvable", "ACA-9999"),
        "eleve.desactive": ("Compte désactivé", "ne peut plus se connecter"),
    }
    for username, (title, text) in cases.items():
        async with jar_session() as http:
            back = await cas_ticket_url(http, base, username)
            async with http.get(back, allow_redirects=False) as r:
                assert r.status == 403
                page = await r.text()
                assert "ent_session" not in r.headers.get("Set-Cookie", "")
            assert f"<h1>{title}</h1>" in page and text in page
            assert (await me(http, base))[0] == 401
    # A forged ticket: the CAS server does not know it.
    async with jar_session() as http:
        async with http.get(f"{base}/auth/cas/callback",
                            params={"ticket": "ST-forged-by-a-pupil"}) as r:
            assert r.status == 403
            assert "Ticket de connexion refusé" in await r.text()
        assert (await me(http, base))[0] == 401


async def test_cas_replayed_ticket_is_refused(sso_server: Any) -> None:
    base = await sso_server()
    async with jar_session() as http:
        back = await cas_ticket_url(http, base, "prof.cas")
        async with http.get(back, allow_redirects=False) as r:
            assert r.status == 302
    # The same ticket again, from another browser (someone who saw the URL).
    async with jar_session() as other:
        async with other.get(back, allow_redirects=False) as r:
            assert r.status == 403
            page = await r.text()
            assert "ent_session" not in r.headers.get("Set-Cookie", "")
        assert "Ticket déjà utilisé" in page
        assert (await me(other, base))[0] == 401


@pytest.mark.parametrize("hostile_next", [
    "https://evil.example/phish", "//evil.example/x", "/\\evil.example", "javascript:alert(1)",
    "/ok\r\nSet-Cookie: x=y",
])
async def test_cas_next_never_leaves_the_site(sso_server: Any, hostile_next: str) -> None:
    base = await sso_server()
    async with jar_session() as http:
        back = await cas_ticket_url(http, base, "prof.cas", next_path=hostile_next)
        async with http.get(back, allow_redirects=False) as r:
            assert r.status == 302
            assert r.headers["Location"] == "/"


async def test_back_channel_logout_and_single_logout(sso_server: Any,
                                                     cas_server: CasServer) -> None:
    """Leaving the ENT (CAS /logout) ends our session through the CAS server's back-channel
    request; and our own logout sends the browser to the CAS logout."""
    base = await sso_server()
    async with jar_session() as http:
        back = await cas_ticket_url(http, base, "prof.cas")
        async with http.get(back, allow_redirects=False) as r:
            token = r.cookies["ent_session"].value
        assert (await me(http, base))[0] == 200
        async with http.get(f"{cas_server.url}/logout") as r:  # the person leaves the ENT
            assert r.status == 200
        assert (await me(http, base))[0] == 401
    async with aiohttp.ClientSession() as bare, bare.get(
            f"{base}/api/me", headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 401  # the token is revoked server-side, not just a cookie gone

    async with jar_session() as http:
        back = await cas_ticket_url(http, base, "prof.cas")
        async with http.get(back, allow_redirects=False):
            pass
        async with http.post(f"{base}/api/logout") as r:
            body = await r.json()
        assert body["redirect"] == f"{cas_server.url}/logout?service=" + (
            base.replace(":", "%3A").replace("/", "%2F") + "%2F")
        assert (await me(http, base))[0] == 401


async def test_back_channel_logout_rejects_garbage(sso_server: Any) -> None:
    base = await sso_server()
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">'
            "<samlp:SessionIndex>&lol2;</samlp:SessionIndex></samlp:LogoutRequest>")
    async with aiohttp.ClientSession() as http:
        for data in ({"logoutRequest": bomb}, {"logoutRequest": "pas du XML"}, {"autre": "x"}):
            async with http.post(f"{base}/auth/cas/callback", data=data) as r:
                assert r.status == 400
                assert (await r.json())["error"]["code"] == "invalid"


async def test_personal_code_can_be_turned_off_for_roles_the_feed_covers(
        sso_server: Any, demo_accounts: list[dict[str, Any]],
        sso_people: dict[str, Any]) -> None:
    base = await sso_server(code_login_off=("teacher",))
    teacher = sso_people["ACA-1001"]
    async with jar_session() as http:
        async with http.get(f"{base}/api/config") as r:
            sso = (await r.json())["sso"]
        assert sso["code_login_off"] == ["teacher"]
        assert sso["providers"][0] == {"id": "cas", "url": "/auth/cas/login",
                                       "label": "Se connecter avec l'ENT"}
        async with http.post(f"{base}/api/login", json={"login": teacher["login"],
                                                        "code": teacher["code"]}) as r:
            assert r.status == 403
            err = (await r.json())["error"]
            assert "Set-Cookie" not in r.headers
        assert err["message"].startswith("Les enseignants se connectent avec leur compte ENT")
        # A wrong code still reads as any wrong code: nothing learnt about the account.
        async with http.post(f"{base}/api/login", json={"login": teacher["login"],
                                                        "code": "mauvais-code"}) as r:
            assert r.status == 401
        parent = next(a for a in demo_accounts if a["role"] == "parent")
        async with http.post(f"{base}/api/login", json={"login": parent["login"],
                                                        "code": parent["code"]}) as r:
            assert r.status == 200  # roles outside the feed keep their code
        # …and the teacher still comes in through the ENT.
        back = await cas_ticket_url(http, base, "prof.cas")
        async with http.get(back, allow_redirects=False) as r:
            assert r.status == 302
        assert (await me(http, base))[1]["user"]["login"] == teacher["login"]


async def test_two_nodes_share_replay_protection_and_back_channel_logout(
        start_server: Any, tmp_path: Any, sso_db_path: Any, cas_server: CasServer,
        redis_prefix: str, redis_cleanup: Any) -> None:
    """Several nodes of the ENT behind one address share the database: a ticket used on one
    is refused on the other, and a back-channel logout reaching any node ends the session."""
    from tests.conftest import two_nodes

    a, b = await two_nodes(start_server, tmp_path, sso_db_path, redis_prefix,
                           cas_url=cas_server.url, cas_id="externalId")
    async with jar_session() as http:
        back = await cas_ticket_url(http, a, "prof.cas")
        async with http.get(back, allow_redirects=False) as r:
            assert r.status == 302
            token = r.cookies["ent_session"].value
        ticket = parse_qs(urlsplit(str(back)).query)["ticket"][0]
    on_b = URL(str(back).replace(a, b), encoded=True)
    async with jar_session() as other, other.get(on_b, allow_redirects=False) as r:
        assert r.status == 403
        assert "Ticket déjà utilisé" in await r.text()

    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as bare:
        async with bare.get(f"{a}/api/me", headers=auth) as r:
            assert r.status == 200
        logout_request = (
            '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"'
            ' xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="id1" Version="2.0"'
            ' IssueInstant="2026-12-04T10:00:00Z"><saml:NameID>@NOT_USED@</saml:NameID>'
            f"<samlp:SessionIndex>{ticket}</samlp:SessionIndex></samlp:LogoutRequest>")
        async with bare.post(f"{b}/auth/cas/callback",
                             data={"logoutRequest": logout_request}) as r:
            assert r.status == 200
        for node in (a, b):
            async with bare.get(f"{node}/api/me", headers=auth) as r:
                assert r.status == 401


async def test_sso_is_absent_until_configured(demo_server: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{demo_server}/api/config") as r:
            assert (await r.json())["sso"] == {"providers": [], "code_login_off": []}
        for path in ("/auth/cas/login", "/auth/cas/callback?ticket=ST-1", "/auth/oidc/login"):
            async with http.get(f"{demo_server}{path}", allow_redirects=False) as r:
                assert r.status == 404


async def test_match_on_the_cas_user_as_login(sso_server: Any, sso_db_path: Any,
                                              demo_accounts: list[dict[str, Any]]) -> None:
    """REALTIME_CAS_ID=user with REALTIME_SSO_MATCH=login: the CAS login is our login."""

    parent = next(a for a in demo_accounts if a["role"] == "parent")
    with engines.connect(sso_db_path) as conn:
        conn.execute("UPDATE users SET login = 'eleve.inconnu' WHERE login = ?",
                     (parent["login"],))
    base = await sso_server(cas_id="user", sso_match="login")
    async with jar_session() as http:
        back = await cas_ticket_url(http, base, "eleve.inconnu")
        async with http.get(back, allow_redirects=False) as r:
            assert r.status == 302
        status, body = await me(http, base)
    assert status == 200 and body["user"]["name"] == parent["name"]


async def test_open_ent_ng_external_id_service_with_academy_prefix(
        sso_server: Any, sso_db_path: Any, demo_accounts: list[dict[str, Any]]) -> None:
    """Open ENT NG's ExternalId registered service sends the AAF id without the academy
    prefix in <cas:user>; the AAF import stored it with the prefix (AIX-2397809)."""

    parent = next(a for a in demo_accounts if a["role"] == "parent")
    with engines.connect(sso_db_path) as conn:
        conn.execute("UPDATE users SET external_id = 'AIX-2397809' WHERE login = ?",
                     (parent["login"],))
    base = await sso_server(cas_id="user", sso_id_prefix="AIX-")
    async with jar_session() as http:
        back = await cas_ticket_url(http, base, "2397809")
        async with http.get(back, allow_redirects=False) as r:
            assert r.status == 302
        status, body = await me(http, base)
    assert status == 200 and body["user"]["login"] == parent["login"]


async def test_a_flood_of_forged_tickets_stops_reaching_the_cas(
        sso_server: Any, cas_server: CasServer) -> None:
    """A pupil hammering the callback with made-up tickets: after the address's allowance,
    refused at once, without a round trip to the CAS server each time."""
    base = await sso_server(login_max_failures_per_ip=3)
    async with aiohttp.ClientSession() as http:
        for i in range(3):
            async with http.get(f"{base}/auth/cas/callback",
                                params={"ticket": f"ST-forged-{i}"}) as r:
                assert r.status == 403
        before = cas_server.validations()
        for i in range(5):
            async with http.get(f"{base}/auth/cas/callback",
                                params={"ticket": f"ST-forged-more-{i}"}) as r:
                assert r.status == 429
                assert "Trop de tentatives" in await r.text()
        assert cas_server.validations() == before


async def test_a_disabled_account_gets_no_session_by_any_path(
        sso_server: Any, sso_db_path: Any, sso_people: dict[str, Any]) -> None:
    """Disabled (by the AAF import or an administrator): not by CAS, not by its personal
    code, and a session opened before is no longer honoured."""

    base = await sso_server()
    teacher = sso_people["ACA-1001"]
    async with jar_session() as http:
        back = await cas_ticket_url(http, base, "prof.cas")
        async with http.get(back, allow_redirects=False) as r:
            assert r.status == 302
        assert (await me(http, base))[0] == 200
        with engines.connect(sso_db_path) as conn:
            conn.execute("UPDATE users SET disabled = 1 WHERE external_id = 'ACA-1001'")
        assert (await me(http, base))[0] == 401
        # Still signed in at the ENT: the CAS hands a ticket at once, and it opens nothing.
        async with http.get(f"{base}/auth/cas/login") as r:
            assert r.status == 403
            assert str(r.url).startswith(f"{base}/auth/cas/callback?ticket=ST-")
            assert "Compte désactivé" in await r.text()
        assert (await me(http, base))[0] == 401
        async with http.post(f"{base}/api/login", json={"login": teacher["login"],
                                                        "code": teacher["code"]}) as r:
            assert r.status == 401
            assert "Set-Cookie" not in r.headers


async def test_a_cas_answering_garbage_is_unavailable_not_a_forged_ticket(
        start_server: Any, aiohttp_server: Any, tmp_path: Any, sso_db_path: Any) -> None:
    """A proxy's HTML error page where the CAS answer should be: « ENT injoignable »."""
    from aiohttp import web

    from tests.conftest import make_settings

    async def error_page(_request: web.Request) -> web.Response:
        return web.Response(text="<html><body>502 Bad Gateway</body></html>",
                            content_type="text/html")

    proxy_page = web.Application()
    proxy_page.router.add_get("/cas/serviceValidate", error_page)
    broken = await aiohttp_server(proxy_page)
    base = await start_server(make_settings(
        tmp_path, db_path=sso_db_path, cas_url=str(broken.make_url("/cas")).rstrip("/")))
    async with jar_session() as http:
        async with http.get(f"{base}/auth/cas/callback", params={"ticket": "ST-1"}) as r:
            assert r.status == 502
            assert "ENT injoignable" in await r.text()
        assert (await me(http, base))[0] == 401

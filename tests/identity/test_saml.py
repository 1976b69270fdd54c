"""Signing in with SAML 2.0 (ÉduConnect through a federation) against a real pysaml2 IdP on
loopback, with signatures made and checked by xmlsec1."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.identity.peers import forms_of, submit_form
from tests.identity.saml_idp import SAML_USERS


def jar_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def saml_response_page(http: aiohttp.ClientSession, base: str, username: str,
                             next_path: str | None = None) -> tuple[str, str]:
    """Our /auth/saml/login → the IdP's form, filled → the IdP's page that posts the signed
    Response back to us: (that page, its URL)."""
    params = {"next": next_path} if next_path is not None else {}
    async with http.get(f"{base}/auth/saml/login", params=params, allow_redirects=False) as r:
        assert r.status == 302, await r.text()
        location = r.headers["Location"]
    assert "SAMLRequest=" in location and "Signature=" in location  # a signed request
    async with http.get(URL(location, encoded=True)) as r:
        assert r.status == 200, await r.text()
        page, page_url = await r.text(), str(r.url)
    async with await submit_form(http, page_url, page, {
            "username": username, "password": SAML_USERS[username][0]}) as r:
        assert r.status == 200, await r.text()
        return await r.text(), str(r.url)


async def post_back(http: aiohttp.ClientSession, page: str, page_url: str,
                    **changes: str) -> aiohttp.ClientResponse:
    return await submit_form(http, page_url, page, changes)


async def me(http: aiohttp.ClientSession, base: str) -> tuple[int, Any]:
    async with http.get(f"{base}/api/me") as r:
        return r.status, await r.json()


async def test_saml_sign_in(saml_server: tuple[str, Any], sso_people: dict[str, Any]) -> None:
    base, _idp = saml_server
    async with jar_session() as http:
        page, page_url = await saml_response_page(http, base, "prof.saml", "/#/messages")
        assert forms_of(page)[0]["action"] == f"{base}/auth/saml/acs"
        async with await post_back(http, page, page_url) as r:
            assert r.status == 302, await r.text()
            assert r.headers["Location"] == "/#/messages"
        status, body = await me(http, base)
    assert status == 200 and body["user"]["login"] == sso_people["ACA-1001"]["login"]


async def test_saml_id_from_an_attribute(start_saml: Any,
                                         sso_people: dict[str, Any]) -> None:
    """ÉduConnect names people by attributes (FrEduCtId…), not only by the NameID."""
    base, _idp = await start_saml(saml_id_attribute="FrEduCtId")
    async with jar_session() as http:
        page, page_url = await saml_response_page(http, base, "prof.saml")
        async with await post_back(http, page, page_url) as r:
            assert r.status == 302, await r.text()
        status, body = await me(http, base)
    assert status == 200 and body["user"]["login"] == sso_people["ACA-1001"]["login"]


async def test_saml_refusals(saml_server: tuple[str, Any]) -> None:
    base, _idp = saml_server
    for username, title in (("inconnu.saml", "Compte introuvable"),
                            ("eleve.saml.desactive", "Compte désactivé")):
        async with jar_session() as http:
            page, page_url = await saml_response_page(http, base, username)
            async with await post_back(http, page, page_url) as r:
                assert r.status == 403
                assert f"<h1>{title}</h1>" in await r.text()
                assert "ent_session" not in r.headers.get("Set-Cookie", "")
            assert (await me(http, base))[0] == 401


async def test_saml_replayed_tampered_and_unsolicited_responses(
        saml_server: tuple[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="realtime.identity.sso")
    base, _idp = saml_server
    async with jar_session() as http:
        page, page_url = await saml_response_page(http, base, "prof.saml")
        async with await post_back(http, page, page_url) as r:
            assert r.status == 302
    response_b64 = forms_of(page)[0]["fields"]["SAMLResponse"]
    async with jar_session() as thief:
        # The same Response posted again (seen over a shoulder, kept in a history).
        async with await post_back(thief, page, page_url) as r:
            assert r.status == 400
            assert "Demande de connexion expirée" in await r.text()
        assert (await me(thief, base))[0] == 401

    async with jar_session() as pupil:
        # A pupil signs in as an unknown person and rewrites the NameID to be the teacher.
        page, page_url = await saml_response_page(pupil, base, "inconnu.saml")
        xml = base64.b64decode(forms_of(page)[0]["fields"]["SAMLResponse"]).decode()
        assert "ACA-9999" in xml
        forged = base64.b64encode(xml.replace("ACA-9999", "ACA-1001").encode()).decode()
        async with await post_back(pupil, page, page_url, SAMLResponse=forged) as r:
            assert r.status == 403
            assert "Réponse de l&#x27;ENT refusée" in await r.text()
        assert (await me(pupil, base))[0] == 401
    # Refused by xmlsec1's signature check, not by something later.
    assert any("SignatureError" in getattr(r, "detail", "") for r in caplog.records)

    async with jar_session() as stranger:
        # A Response nobody here asked for (IdP-initiated or forged): refused.
        unsolicited = base64.b64encode(base64.b64decode(response_b64).replace(
            b'InResponseTo="', b'InResponseTo="x')).decode()
        async with stranger.post(f"{base}/auth/saml/acs",
                                 data={"SAMLResponse": unsolicited}) as r:
            assert r.status == 400
        async with stranger.post(f"{base}/auth/saml/acs", data={"SAMLResponse": "pas du SAML"}
                                 ) as r:
            assert r.status == 400


async def test_a_flood_of_saml_logins_cannot_grow_the_pending_table(
        saml_server: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from realtime.identity import saml

    monkeypatch.setattr(saml, "MAX_PENDING_REQUESTS", 3)
    base, _idp = saml_server
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(5):
            async with http.get(f"{base}/auth/saml/login", allow_redirects=False) as r:
                statuses.append(r.status)
                if r.status == 429:
                    assert "Trop de tentatives" in await r.text()
    assert statuses == [302, 302, 302, 429, 429]

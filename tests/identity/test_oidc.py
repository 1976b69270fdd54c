"""Signing in with OpenID Connect against a real provider (oidc-provider-mock) on loopback,
reached through `HostileNetwork`, which plays the attacker when a test asks it to."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from yarl import URL

from tests.identity.conftest import OIDC_CLIENT_ID
from tests.identity.peers import HostileNetwork, submit_form, with_query


def jar_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def provider_form(http: aiohttp.ClientSession, base: str,
                        next_path: str | None = None) -> tuple[str, str, str]:
    """Our /auth/oidc/login → the provider's form: (page, its URL, the flow cookie)."""
    params = {"next": next_path} if next_path is not None else {}
    async with http.get(f"{base}/auth/oidc/login", params=params, allow_redirects=False) as r:
        assert r.status == 302, await r.text()
        flow = r.cookies["ent_sso_flow"].value
        location = r.headers["Location"]
    async with http.get(URL(location, encoded=True)) as r:
        assert r.status == 200, await r.text()
        return await r.text(), str(r.url), flow


async def callback_url(http: aiohttp.ClientSession, base: str, sub: str,
                       next_path: str | None = None, action: dict[str, str] | None = None
                       ) -> tuple[URL, str]:
    """The person types their id in the provider's form and authorizes: the URL the provider
    sends the browser back to (not followed yet), and the flow cookie."""
    page, page_url, flow = await provider_form(http, base, next_path)
    form = 1 if action else 0
    async with await submit_form(http, page_url, page, action or {"sub": sub}, form) as r:
        assert r.status == 302, await r.text()
        back = r.headers["Location"]
    assert back.startswith(f"{base}/auth/oidc/callback?")
    return URL(back, encoded=True), flow


async def me(http: aiohttp.ClientSession, base: str) -> int:
    async with http.get(f"{base}/api/me") as r:
        return r.status


async def refused(http: aiohttp.ClientSession, url: URL, status: int, title: str) -> str:
    async with http.get(url, allow_redirects=False) as r:
        page = await r.text()
        assert r.status == status, page
        assert "ent_session" not in r.headers.get("Set-Cookie", "")
    assert f"<h1>{title}</h1>" in page
    return page


async def test_oidc_sign_in_with_pkce_s256_state_and_nonce(
        sso_server: Any, oidc_provider: HostileNetwork, sso_people: dict[str, Any]) -> None:
    base = await sso_server(oidc_provider)
    async with jar_session() as http:
        back, _ = await callback_url(http, base, "ACA-1001", next_path="/#/messages")
        async with http.get(back, allow_redirects=False) as r:
            assert r.status == 302, await r.text()
            assert r.headers["Location"] == "/#/messages"
        async with http.get(f"{base}/api/me") as r:
            assert r.status == 200
            assert (await r.json())["user"]["login"] == sso_people["ACA-1001"]["login"]
    # What crossed the network: PKCE S256, a nonce, and the verifier only at the token
    # endpoint, server to server.
    authorize = next(p for m, path, p in oidc_provider.seen
                     if path == "/oauth2/authorize" and m == "GET")
    token = next(p for m, path, p in oidc_provider.seen if path == "/oauth2/token")
    assert authorize["client_id"] == OIDC_CLIENT_ID
    assert authorize["redirect_uri"] == f"{base}/auth/oidc/callback"
    assert authorize["code_challenge_method"] == "S256" and len(authorize["nonce"]) >= 32
    assert "code_verifier" not in authorize
    digest = hashlib.sha256(token["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == authorize[
        "code_challenge"]
    assert token["redirect_uri"] == f"{base}/auth/oidc/callback"


async def test_oidc_plain_pkce_where_only_that_is_offered(
        sso_server: Any, oidc_provider: HostileNetwork) -> None:
    oidc_provider.only_plain_pkce = True
    base = await sso_server(oidc_provider)
    async with jar_session() as http:
        back, _ = await callback_url(http, base, "ACA-1001")
        async with http.get(back, allow_redirects=False) as r:
            assert r.status == 302
    authorize = next(p for _, path, p in oidc_provider.seen if path == "/oauth2/authorize")
    token = next(p for _, path, p in oidc_provider.seen if path == "/oauth2/token")
    assert authorize["code_challenge_method"] == "plain"
    assert authorize["code_challenge"] == token["code_verifier"]


async def test_oidc_id_claim_other_than_sub(sso_server: Any, oidc_provider: HostileNetwork,
                                            sso_people: dict[str, Any]) -> None:
    """Open ENT NG style: the subject is an opaque uuid, the directory key is `externalId`."""
    async with aiohttp.ClientSession() as http, http.put(
            f"{oidc_provider.url}/users/3f1c-uuid-prof",
            json={"externalId": "ACA-1001", "name": "Virginie"}) as r:
        assert r.status == 204
    base = await sso_server(oidc_provider, oidc_id_claim="externalId")
    async with jar_session() as http:
        back, _ = await callback_url(http, base, "3f1c-uuid-prof")
        async with http.get(back, allow_redirects=False) as r:
            assert r.status == 302, await r.text()
        async with http.get(f"{base}/api/me") as r:
            assert (await r.json())["user"]["login"] == sso_people["ACA-1001"]["login"]


async def test_oidc_unknown_and_disabled_people(sso_server: Any,
                                                oidc_provider: HostileNetwork) -> None:
    base = await sso_server(oidc_provider)
    for sub, title in (("ACA-9999", "Compte introuvable"), ("ACA-1002", "Compte désactivé")):
        async with jar_session() as http:
            back, _ = await callback_url(http, base, sub)
            await refused(http, back, 403, title)
            assert await me(http, base) == 401


async def test_oidc_bad_state_is_refused_before_the_code_is_used(
        sso_server: Any, oidc_provider: HostileNetwork) -> None:
    base = await sso_server(oidc_provider)
    async with jar_session() as http:
        back, _ = await callback_url(http, base, "ACA-1001")
        forged = URL(with_query(str(back), state="etat-force"), encoded=True)
        await refused(http, forged, 400, "Demande de connexion expirée")
        assert await me(http, base) == 401
    assert not any(path == "/oauth2/token" for _, path, _ in oidc_provider.seen)
    # A callback reached without having started a sign-in here (login CSRF) is refused too.
    async with jar_session() as stranger:
        await refused(stranger, back, 400, "Demande de connexion expirée")


async def test_oidc_wrong_nonce_is_refused(sso_server: Any,
                                           oidc_provider: HostileNetwork) -> None:
    """The provider issues a token for another nonce (a token from another sign-in)."""
    oidc_provider.forge_nonce = "nonce-d-une-autre-connexion"
    base = await sso_server(oidc_provider)
    async with jar_session() as http:
        back, _ = await callback_url(http, base, "ACA-1001")
        page = await refused(http, back, 403, "Réponse de l&#x27;ENT refusée")
        assert "ne correspond pas à cette demande" in page
        assert await me(http, base) == 401


async def test_oidc_tampered_id_token_is_refused(sso_server: Any, oidc_provider: HostileNetwork,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A pupil signs in as themselves and rewrites the ID token to be the teacher."""
    caplog.set_level("INFO", logger="realtime.identity.sso")
    oidc_provider.tamper_id_token = {"sub": "ACA-1001"}
    base = await sso_server(oidc_provider)
    async with jar_session() as http:
        back, _ = await callback_url(http, base, "ACA-9999")
        page = await refused(http, back, 403, "Réponse de l&#x27;ENT refusée")
        assert "signature" in page
        assert await me(http, base) == 401
    # Refused by the signature check itself, not by some later claim.
    assert any("BadSignatureError" in getattr(r, "detail", "") for r in caplog.records)


async def test_oidc_replayed_callback_is_refused(sso_server: Any,
                                                oidc_provider: HostileNetwork) -> None:
    base = await sso_server(oidc_provider)
    async with jar_session() as http:
        back, flow = await callback_url(http, base, "ACA-1001")
        async with http.get(back, allow_redirects=False) as r:
            assert r.status == 302
    async with jar_session() as thief:  # the callback URL and the flow cookie, both stolen
        thief.cookie_jar.update_cookies({"ent_sso_flow": flow}, URL(base))
        await refused(thief, back, 403, "Ticket déjà utilisé")
        assert await me(thief, base) == 401


async def test_oidc_denied_at_the_provider(sso_server: Any,
                                           oidc_provider: HostileNetwork) -> None:
    base = await sso_server(oidc_provider)
    async with jar_session() as http:
        back, _ = await callback_url(http, base, "", action={"action": "deny"})
        assert parse_qs(urlsplit(str(back)).query)["error"] == ["access_denied"]
        await refused(http, back, 403, "Connexion annulée")


@pytest.mark.parametrize("hostile_next", ["https://evil.example/", "//evil.example",
                                          "/\\evil.example"])
async def test_oidc_next_never_leaves_the_site(sso_server: Any, oidc_provider: HostileNetwork,
                                               hostile_next: str) -> None:
    base = await sso_server(oidc_provider)
    async with jar_session() as http:
        back, _ = await callback_url(http, base, "ACA-1001", next_path=hostile_next)
        async with http.get(back, allow_redirects=False) as r:
            assert r.status == 302
            assert r.headers["Location"] == "/"


async def test_providers_that_do_not_answer(start_server: Any, tmp_path: Any,
                                            sso_db_path: Any) -> None:
    """The ENT is down: a French page says so, nothing is opened, nothing hangs."""
    from tests.conftest import make_settings
    from tests.identity.peers import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    base = await start_server(make_settings(
        tmp_path, db_path=sso_db_path, cas_url=f"{dead}/cas", oidc_issuer=dead,
        oidc_client_id=OIDC_CLIENT_ID))
    async with jar_session() as http:
        async with http.get(f"{base}/auth/oidc/login", allow_redirects=False) as r:
            assert r.status == 502
            assert "ENT injoignable" in await r.text()
        async with http.get(f"{base}/auth/cas/callback", params={"ticket": "ST-1"}) as r:
            assert r.status == 502
            assert "ENT injoignable" in await r.text()
        assert await me(http, base) == 401


async def test_oidc_logout_goes_on_to_the_providers_end_session(
        sso_server: Any, oidc_provider: HostileNetwork) -> None:
    base = await sso_server(oidc_provider, cas_url=None)
    async with jar_session() as http:
        back, _ = await callback_url(http, base, "ACA-1001")
        async with http.get(back, allow_redirects=False) as r:
            assert r.status == 302
        async with http.post(f"{base}/api/logout") as r:
            body = await r.json()
        assert await me(http, base) == 401
        end = urlsplit(body["redirect"])
        assert f"{end.scheme}://{end.netloc}{end.path}" == (
            f"{oidc_provider.url}/oauth2/end_session")
        assert parse_qs(end.query) == {"client_id": [OIDC_CLIENT_ID],
                                       "post_logout_redirect_uri": [f"{base}/"]}
        # The provider's own end-of-session page answers it (and then sends the person back).
        async with http.get(URL(body["redirect"], encoded=True)) as r:
            assert r.status == 200
    base = await sso_server(oidc_provider, cas_url=None, oidc_single_logout=False)
    async with jar_session() as http:
        back, _ = await callback_url(http, base, "ACA-1001")
        async with http.get(back, allow_redirects=False):
            pass
        async with http.post(f"{base}/api/logout") as r:
            assert "redirect" not in await r.json()

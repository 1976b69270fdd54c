"""« Se connecter avec l'ENT » in real headless Chromium: our login page, the provider's own
form (django-cas-server, oidc-provider-mock), and back in « Mon espace »."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests.browser.test_home_page import (  # noqa: F401  (the `browser` fixture)
    SCREENSHOTS,
    browser,
    check_accessibility,
    new_page,
)
from tests.identity.peers import CAS_USERS, CasServer, HostileNetwork

pytestmark = pytest.mark.browser


async def test_cas_in_chromium_there_and_back(browser: Browser, sso_server: Any,  # noqa: F811
                                              cas_server: CasServer,
                                              sso_people: dict[str, Any]) -> None:
    base = await sso_server(code_login_off=("teacher", "student"))
    context, page = await new_page(browser)
    await page.goto(f"{base}/#/messages")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Connexion à votre espace")
    ent = page.get_by_role("link", name="Se connecter avec l'ENT")
    await expect(ent).to_be_visible()
    await expect(page.get_by_text("Les enseignants et élèves se connectent avec l'ENT")
                 ).to_be_visible()
    await check_accessibility(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "login-ent.png")

    await ent.click()
    await page.wait_for_url(f"{cas_server.url}/login?**")
    await page.locator("input[name=username]").fill("prof.cas")
    await page.locator("input[name=password]").fill(CAS_USERS["prof.cas"][0])
    await page.locator("form#login_form [type=submit]").click()
    # Back on the page that was asked for before signing in: the messagerie.
    await page.wait_for_url(f"{base}/#/messages")
    await expect(page.get_by_role("heading", name="Messagerie", level=1)).to_be_visible()
    await page.goto(f"{base}/#/")
    await expect(page.get_by_role("heading", name="Mon espace", level=1)).to_be_visible()
    await expect(page.get_by_role("banner")).to_contain_text(sso_people["ACA-1001"]["name"])

    # Logging out here leaves the ENT too, then comes back to our login page.
    await page.get_by_role("button", name="Se déconnecter").click()
    await page.wait_for_url(f"{base}/**")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Connexion à votre espace")
    assert (await page.request.get(f"{base}/api/me")).status == 401
    # The ENT session is over as well: signing in again asks for the password.
    await page.get_by_role("link", name="Se connecter avec l'ENT").click()
    await expect(page.locator("input[name=password]")).to_be_visible()
    # The test CAS's own page wants jQuery from a CDN it may not reach here; ours have no error.
    errors = page.js_errors  # type: ignore[attr-defined]
    assert [e for e in errors if "jQuery" not in e] == []
    await context.close()


async def test_oidc_in_chromium_there_and_back(browser: Browser, sso_server: Any,  # noqa: F811
                                               oidc_provider: HostileNetwork,
                                               sso_people: dict[str, Any]) -> None:
    base = await sso_server(oidc_provider, cas_url=None)
    context, page = await new_page(browser)
    await page.goto(f"{base}/")
    await page.get_by_role("link", name="Se connecter avec l'ENT").click()
    await page.wait_for_url(f"{oidc_provider.url}/oauth2/authorize?**")
    await page.locator("input[name=sub]").fill("ACA-1001")
    await page.get_by_role("button", name="Authorize").click()
    await expect(page.get_by_role("heading", name="Mon espace", level=1)).to_be_visible()
    await expect(page.get_by_role("banner")).to_contain_text(sso_people["ACA-1001"]["name"])
    await expect(page.get_by_role("banner").get_by_role("status")).to_have_text("En ligne")

    # A refusal is a French page with a way back.
    await context.clear_cookies()
    await page.goto(f"{base}/")
    await page.get_by_role("link", name="Se connecter avec l'ENT").click()
    await page.locator("input[name=sub]").fill("ACA-9999")
    await page.get_by_role("button", name="Authorize").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Compte introuvable")
    await expect(page.get_by_role("alert")).to_contain_text("ACA-9999")
    await check_accessibility(page)
    await page.screenshot(path=SCREENSHOTS / "login-ent-refused.png")
    await page.get_by_role("link", name="Revenir à la page de connexion").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Connexion à votre espace")
    assert page.js_errors == []  # type: ignore[attr-defined]
    await context.close()


async def test_saml_in_chromium_there_and_back(browser: Browser,  # noqa: F811
                                               saml_server: tuple[str, Any],
                                               sso_people: dict[str, Any]) -> None:
    from tests.identity.saml_idp import SAML_USERS

    base, idp = saml_server
    context, page = await new_page(browser)
    await page.goto(f"{base}/")
    await page.get_by_role("link", name="Se connecter avec ÉduConnect").click()
    await page.wait_for_url(f"{idp.url}/sso/redirect?**")
    await page.get_by_label("Identifiant").fill("prof.saml")
    await page.get_by_label("Mot de passe").fill(SAML_USERS["prof.saml"][0])
    await page.get_by_role("button", name="Se connecter").click()
    # The IdP's page posts the signed Response back to us by itself.
    await expect(page.get_by_role("heading", name="Mon espace", level=1)).to_be_visible()
    await expect(page.get_by_role("banner")).to_contain_text(sso_people["ACA-1001"]["name"])
    assert page.js_errors == []  # type: ignore[attr-defined]
    await context.close()

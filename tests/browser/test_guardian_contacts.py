"""« Responsables » on the CPE's class page: guardians' phones and e-mails from the AAF."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser.test_home_page import (  # noqa: F401 (the browser fixture)
    SCREENSHOTS,
    browser,
    check_accessibility,
    log_in,
    new_page,
)
from tests.conftest import StartServer, make_settings
from tests.directory.aaf.files import imported

pytestmark = pytest.mark.browser


async def test_cpe_opens_a_pupils_guardians(
        browser: Browser, start_server: StartServer, tmp_path: Path) -> None:  # noqa: F811
    settings = make_settings(tmp_path)
    codes = await imported(settings, tmp_path / "snap1", ("karim.haddad",))
    base = await start_server(settings)
    context, page = await new_page(browser)
    await log_in(page, base, {"login": "karim.haddad", "code": codes["karim.haddad"]})
    await page.get_by_role("button", name="6A 1 élève").click()
    panel = page.get_by_role("region", name="Élèves de la classe 6A")
    toggle = panel.get_by_role("button", name="Responsables de Léa MARTIN")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(panel).to_contain_text("Sophie MARTIN")
    mobile = panel.get_by_role("link", name="06 11 22 33 44")
    await expect(mobile).to_have_attribute("href", "tel:0611223344")
    await expect(panel.get_by_role("link", name="sophie@exemple.fr")).to_have_attribute(
        "href", "mailto:sophie@exemple.fr")
    await expect(panel).to_contain_text("Travail : 04 92 00 00 02")
    await check_accessibility(page)
    await page.screenshot(path=SCREENSHOTS / "home-cpe-guardians.png", full_page=True)
    await toggle.click()
    await expect(panel.get_by_role("link", name="06 11 22 33 44")).to_be_hidden()
    assert page.js_errors == []  # type: ignore[attr-defined]
    await context.close()

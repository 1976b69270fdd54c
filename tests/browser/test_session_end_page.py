"""A session ended elsewhere (logout in another tab, a new code, an account disabled) takes
the open page back to the login form at once, in real Chromium (issue #13 item 1)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests.browser.test_home_page import (  # the same Chromium, the same helpers
    browser,  # noqa: F401 (a fixture)
    log_in,
    new_page,
)

pytestmark = pytest.mark.browser


async def test_logout_in_another_tab_closes_this_one(
    browser: Browser, demo_server: str, demo_accounts: list[dict[str, Any]],  # noqa: F811
) -> None:
    teacher = next(a for a in demo_accounts if a["role"] == "teacher")
    ctx, page = await new_page(browser)
    await log_in(page, demo_server, teacher)
    await expect(page.get_by_role("banner").get_by_role("status")).to_have_text("En ligne")
    other_tab = await ctx.new_page()  # same browser, same session cookie
    await other_tab.goto(f"{demo_server}/")
    await expect(other_tab.get_by_role("heading", name="Mon espace", level=1)).to_be_visible()
    await other_tab.get_by_role("button", name="Se déconnecter").click()
    await expect(other_tab.get_by_role("heading", level=1)).to_have_text(
        "Connexion à votre espace")
    # the first tab did nothing: its live connection was cut, it shows the login form
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Connexion à votre espace", timeout=8_000)
    assert page.js_errors == []  # type: ignore[attr-defined]
    await ctx.close()

"""Presence in real Chromium: the teacher's board shows who follows it, live; the CPE's
classes show how many pupils are online in each."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests.boards.test_socket import Cast, create_board
from tests.browser.test_home_page import (  # the same Chromium, the same helpers
    SCREENSHOTS,
    api_json,
    browser,  # noqa: F401 (a fixture)
    check_accessibility,
    log_in,
    new_page,
)
from tests.conftest import token_for
from tests.presence.conftest import Tab
from tests.scale.clients import Follower

pytestmark = pytest.mark.browser
TBI = {"width": 1920, "height": 1080}


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def test_teacher_sees_who_follows_the_board(browser: Browser, demo_server: str,  # noqa: F811
                                                  cast: Cast) -> None:
    base = demo_server
    board = await create_board(base, cast)
    context, page = await new_page(browser, viewport=TBI)
    await log_in(page, base, cast.teacher)
    await page.goto(f"{base}/#/boards/{board}")
    panel = page.locator("details.followers")
    await expect(panel).to_have_attribute("data-count", "0")
    alice = await Follower(await token_for(base, cast.alice), board).connect(base)
    bob = await Follower(await token_for(base, cast.bob), board).connect(base)
    try:
        await expect(panel).to_have_attribute("data-count", "2")
        await panel.locator("summary").click()
        await expect(panel.get_by_role("listitem")).to_have_count(2)
        await expect(panel).to_contain_text(cast.alice["name"])
        await expect(panel).to_contain_text(cast.bob["name"])
        await check_accessibility(page)
        # The list opens inside the window, not past its right edge (the menu sits at the
        # bar's end on a TBI).
        box = await panel.locator(".menu-list").evaluate(
            "e => { const r = e.getBoundingClientRect();"
            " return [r.left, r.right, window.innerWidth]; }")
        assert 0 <= box[0] and box[1] <= box[2], box
        await page.screenshot(path=SCREENSHOTS / "board-followers.png")
        await bob.close()
        await expect(panel).to_have_attribute("data-count", "1")
        await expect(panel).not_to_contain_text(cast.bob["name"])
    finally:
        await alice.close()
        await bob.close()
    assert page.js_errors == []  # type: ignore[attr-defined]
    await context.close()


async def test_cpe_sees_pupils_online_per_class(browser: Browser, demo_server: str,  # noqa: F811
                                               cast: Cast) -> None:
    base = demo_server
    tab = await Tab(base, await token_for(base, cast.alice)).open()  # Alice has the ENT open
    try:
        context, page = await new_page(browser)
        await log_in(page, base, cast.cpe)
        classes = (await api_json(page, base, "/api/classes"))["classes"]
        mine = next(c for c in classes if c["name"] == cast.class_name)
        badge = page.locator(f'.class-online[data-online-for="{mine["id"]}"]')
        await expect(badge).to_have_text("1 en ligne")
        others = page.locator('.class-online[data-online="0"]')
        await expect(others).to_have_count(len(classes) - 1)
        await check_accessibility(page)
        assert page.js_errors == []  # type: ignore[attr-defined]
        await context.close()
    finally:
        await tab.close()

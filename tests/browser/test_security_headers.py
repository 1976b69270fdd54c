"""The pages under their Content-Security-Policy (issue #13 item 13), in real Chromium: the
web client works with no inline script allowed (login, « Mon espace », a course document
in the editor, a board, the messages), the browser reports no violation, and a script
slipped into the page as markup does not run."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from tests.browser.test_home_page import (  # the same Chromium, the same helpers
    browser,  # noqa: F401 (a fixture)
    log_in,
    new_page,
)

pytestmark = pytest.mark.browser


async def test_pages_carry_the_headers(demo_server: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{demo_server}/") as r:
            csp = r.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split(
                "script-src", 1)[1].split(";", 1)[0]
            assert "frame-ancestors 'self'" in csp and "object-src 'none'" in csp
            assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert r.headers["Referrer-Policy"] == "same-origin"
            html = await r.text()
        assert "<script>" not in html and "onload=" not in html  # nothing inline to allow
        async with s.get(f"{demo_server}/api/config") as r:
            assert r.headers["X-Content-Type-Options"] == "nosniff"
        async with s.get(f"{demo_server}/static/app.js") as r:
            assert r.status == 200
            assert "sourceMappingURL" not in (await r.text())[-300:]
        async with s.get(f"{demo_server}/static/app.js.map") as r:
            assert r.status == 404


async def test_web_client_runs_under_the_policy(
    browser: Browser, demo_server: str, demo_accounts: list[dict[str, Any]],  # noqa: F811
) -> None:
    base = demo_server
    teacher = next(a for a in demo_accounts if a["role"] == "teacher"
                   and a["school"] == "Collège Charlemagne")
    ctx, page = await new_page(browser)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    await page.add_init_script(
        "document.addEventListener('securitypolicyviolation',"
        " e => (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI))")
    await log_in(page, base, teacher)
    await expect(page.get_by_role("banner").get_by_role("status")).to_have_text("En ligne")
    # a course document in the collaborative editor (websocket /yjs, tiptap, carets)
    await page.get_by_role("button", name="Nouveau cours").click()
    await page.wait_for_url("**/#/docs/*")
    await expect(page.locator(".doc-status")).to_have_text("À jour")
    await page.locator(".doc-content").click()
    await page.keyboard.type("Les fractions")
    await expect(page.locator(".doc-status")).to_have_text("À jour")
    # the messages
    await page.goto(f"{base}/#/messages")
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    # markup with an inline handler, as a stored XSS would be: it does not run
    ran = await page.evaluate("""async () => {
        document.body.insertAdjacentHTML('beforeend',
            '<img src="/nothing.png" onerror="window.__pwned = 1">');
        await new Promise(r => setTimeout(r, 300));
        return window.__pwned === 1;
    }""")
    assert ran is False
    reported = await page.evaluate("() => window.__csp || []")
    # the only violation is the one we planted
    assert all("script-src" in v for v in reported), reported
    assert len(reported) == 1, reported
    assert [v for v in violations if "onerror" not in v and "inline event" not in v] == [], \
        violations
    assert page.js_errors == []  # type: ignore[attr-defined]
    await ctx.close()

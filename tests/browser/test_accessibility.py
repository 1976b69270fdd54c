"""Accessibility (RGAA / WCAG 2.1 AA, docs/accessibility.md) in real headless Chromium against
one real server with the demo data, shared by the whole module (the CI machine is small).

- axe-core on every page in its main states: zero violations;
- keyboard only: log in, take and validate a roll, send a message, justify an absence;
- reflow: every page at 320 px wide (and the desktop at 200 % zoom) scrolls only vertically;
- live announcements: what a screen reader hears when an absence arrives or a roll changes.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from playwright.async_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    async_playwright,
    expect,
)

from realtime import keys
from realtime.app import create_app
from tests.attendance.conftest import Cast, recent_slot
from tests.browser.test_home_page import (
    AXE,
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    log_in,
)
from tests.chat.conftest import Clock, paris
from tests.conftest import login, make_settings

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

NARROW = {"width": 320, "height": 640}  # WCAG 1.4.10: 320 CSS px, i.e. 1280 px at 400 %
ZOOMED = {"width": 640, "height": 400}  # a 1280 × 800 screen at 200 %


class Site:
    """The module's server: its base URL and the demo people of one class."""

    def __init__(self, base: str, cast: Cast) -> None:
        self.base, self.cast = base, cast
        self.board_id = 0
        self.doc_id = 0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory, demo_db_template: Path,
               demo_accounts: list[dict[str, Any]]) -> AsyncIterator[Site]:
    tmp = tmp_path_factory.mktemp("a11y")
    db = tmp / "ent.sqlite3"
    shutil.copyfile(demo_db_template, db)
    app = create_app(make_settings(tmp, db_path=db))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    app[keys.CHAT].clock = Clock(paris(10))  # quiet hours never depend on when CI runs
    base = str(server.make_url("")).rstrip("/")
    s = Site(base, Cast(demo_accounts))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await login(http, base, s.cast.teacher)
        async with http.get(f"{base}/api/classes") as r:
            classes = (await r.json())["classes"]
        class_id = next(c["id"] for c in classes if c["name"] == s.cast.class_name)
        async with http.post(f"{base}/api/boards",
                             json={"title": "Fractions", "class_id": class_id}) as r:
            assert r.status == 201, await r.text()
            s.board_id = (await r.json())["id"]
        async with http.post(f"{base}/api/docs", json={"title": "La Révolution"}) as r:
            assert r.status in (200, 201), await r.text()
            s.doc_id = (await r.json())["id"]
    yield s
    await server.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


async def open_as(browser: Browser, site: Site, acct: dict[str, Any] | None,
                  viewport: dict[str, int] = DESKTOP, **kw: Any) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport=viewport, locale="fr-FR",
                                        timezone_id="Europe/Paris", **kw)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    if acct is not None:
        await log_in(page, site.base, acct)
    return context, page


async def axe(page: Page) -> list[str]:
    """axe-core's WCAG 2.0 / 2.1 A and AA violations on the page as it stands."""
    assert AXE.is_file(), f"{AXE} missing: run `npm ci` in web_client/"
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.add_script_tag(path=str(AXE))
    return await page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: 'tag',
               values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations
             .map(v => `${v.id}: ${v.help} — ${v.nodes.map(n => n.target).join(' ')}`)""")


async def overflow(page: Page) -> list[str]:
    """What sticks out sideways: the page's horizontal scroll, and the widest culprits."""
    return await page.evaluate(
        """() => {
          const doc = document.documentElement;
          if (doc.scrollWidth <= doc.clientWidth) return [];
          const wide = [...document.querySelectorAll('body *')]
            .filter((el) => el.getBoundingClientRect().right > doc.clientWidth + 0.5)
            .filter((el) => !el.closest('.visually-hidden, .skip-link'))
            .map((el) => `${el.tagName.toLowerCase()}.${el.className} → `
              + `${Math.round(el.getBoundingClientRect().right)} px`);
          return [`scrollWidth ${doc.scrollWidth} > clientWidth ${doc.clientWidth}`,
                  ...wide.slice(0, 8)];
        }""")


async def focused(page: Page) -> str:
    """The focused element, as a person would name it: its role-ish tag and its text."""
    return await page.evaluate(
        """() => { const el = document.activeElement;
                   return `${el.tagName.toLowerCase()} ${(el.getAttribute('aria-label')
                     || el.textContent || '').trim().replace(/\\s+/g, ' ')}`; }""")


async def tab_to(page: Page, target: Locator, most: int = 80) -> int:
    """Press Tab until `target` has the focus; how many presses it took."""
    for n in range(1, most + 1):
        await page.keyboard.press("Tab")
        if await target.evaluate("el => el === document.activeElement"):
            return n
    raise AssertionError(f"{target} never got the focus; it stayed on {await focused(page)}")


async def log_in_by_keyboard(page: Page, site: Site, acct: dict[str, Any]) -> None:
    await page.goto(f"{site.base}/#/login")
    await expect(page.get_by_label("Identifiant")).to_be_focused()
    await page.keyboard.type(acct["login"])
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Code personnel")).to_be_focused()
    await page.keyboard.type(acct["code"])
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Mon espace", level=1)).to_be_focused()


class Shared:
    """What one test leaves for the next (the module shares one server)."""

    slot: dict[str, Any]
    day: str


async def test_roll_by_keyboard_heard_by_parent_and_cpe(browser: Browser, site: Site) -> None:
    """Keyboard only: a teacher logs in, takes and validates a roll without losing focus;
    the parent's home and absences page say the absence as a sentence, the CPE's dashboard
    one line per change; the parent justifies it by keyboard on a 320 px phone."""
    cast = site.cast
    slot, day = await recent_slot(site.base, cast.teacher, cast.class_name)
    Shared.slot, Shared.day = slot, day
    student, mate = cast.student["name"], cast.classmate["name"]

    home_ctx, home = await open_as(browser, site, cast.guardians[0], NARROW, is_mobile=True,
                                   has_touch=True)
    absences_ctx, absences = await open_as(browser, site, cast.guardians[0], NARROW,
                                           is_mobile=True, has_touch=True)
    await absences.goto(f"{site.base}/#/absences")
    await expect(absences.get_by_text("Aucune notification non lue")).to_be_visible()
    cpe_ctx, cpe = await open_as(browser, site, cast.cpe)
    await cpe.goto(f"{site.base}/#/vie-scolaire?date={day}")
    row = cpe.locator(f'tr[data-slot-id="{slot["id"]}"]')
    await expect(row).to_have_attribute("data-state", "todo")
    # The summary is no live region: redrawn on every update, it would be read every time.
    summary = cpe.locator(".dash-summary")
    assert await summary.get_attribute("aria-live") is None
    assert await summary.get_attribute("role") is None
    badge = home.get_by_role("link", name="Absences et notifications")
    await expect(badge).to_have_accessible_name("Absences et notifications")

    ctx, teacher = await open_as(browser, site, None)
    await log_in_by_keyboard(teacher, site, cast.teacher)
    await teacher.goto(f"{site.base}/#/?date={day}")
    link = teacher.get_by_role("link", name=f"Faire l'appel : {slot['start']} {cast.class_name}")
    await expect(link.first).to_be_visible()
    await tab_to(teacher, link.first)
    await teacher.keyboard.press("Enter")
    await expect(teacher.get_by_role("heading", level=1)).to_contain_text(cast.class_name)
    await tab_to(teacher, teacher.get_by_role("button", name="Tous présents"))
    await teacher.keyboard.press("Enter")
    await expect(teacher.locator(".roll-counts")).to_contain_text("0 absent·es")
    rows = teacher.locator(".student-row")
    pupils = await rows.count()
    # One Tab stop per pupil: their présent / absent button; the rest is reached by arrows.
    stops = await teacher.locator(".roll-list").evaluate(
        """list => [...list.querySelectorAll('button, select, input, a[href]')]
             .filter(el => el.tabIndex >= 0 && !el.closest('.comment-form')).length""")
    assert stops == pupils
    first = rows.first.locator(".student-toggle")
    assert await tab_to(teacher, first) <= 2  # past « Valider l'appel », straight to the list
    await teacher.keyboard.press("Tab")
    await expect(rows.nth(1).locator(".student-toggle")).to_be_focused()  # the next pupil

    async def go_to(name: str) -> None:
        for _ in range(pupils):
            if name in await focused(teacher):
                return
            await teacher.keyboard.press("ArrowDown")
        raise AssertionError(f"{name} not reached with the arrows")

    await teacher.keyboard.press("Home")
    await expect(first).to_be_focused()
    await go_to(student)
    await teacher.keyboard.press("Space")
    toggle = rows.filter(has_text=student).locator(".student-toggle")
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await expect(toggle).to_be_focused()  # the list was redrawn; focus stayed on the pupil
    await expect(teacher.locator(".roll-message")).to_have_text(f"{student} : absent·e.")
    await teacher.keyboard.press("Home")
    await go_to(mate)
    mate_row = rows.filter(has_text=mate)
    await teacher.keyboard.press("ArrowRight")
    other = mate_row.get_by_label(f"Autre marque pour {mate}")
    await expect(other).to_be_focused()
    for _ in range(3):  # Présent·e, Absent·e, En retard: browsing marks nobody
        await teacher.keyboard.press("ArrowDown")
    await expect(mate_row.locator(".student-toggle")).to_have_attribute("data-state", "present")
    await teacher.keyboard.press("Enter")
    await expect(mate_row.locator(".student-toggle")).to_have_attribute("data-state", "late")
    await expect(other).to_be_focused()
    await teacher.keyboard.press("ArrowRight")
    await expect(mate_row.get_by_label(f"Minutes pour {mate}")).to_be_focused()
    await teacher.keyboard.press("ArrowRight")
    note = mate_row.get_by_role("button", name=f"Commentaire pour {mate}")
    await expect(note).to_be_focused()
    await teacher.keyboard.press("Enter")
    box = mate_row.get_by_label(f"Texte du commentaire pour {mate}")
    await expect(box).to_be_focused()
    await teacher.keyboard.type("Bus en retard")
    await teacher.keyboard.press("Enter")
    await expect(mate_row.locator(".student-comment")).to_have_text("« Bus en retard »")
    await expect(note).to_be_focused()
    await expect(teacher.locator(".roll-counts")).to_contain_text("1 absent·es, 1 en retard")
    assert await axe(teacher) == []
    # Back up to « Valider l'appel »: Shift+Tab from the pupil, not 83 Tabs.
    await teacher.keyboard.press("Home")
    await teacher.keyboard.press("Shift+Tab")
    await expect(teacher.get_by_role("button", name="Valider l'appel")).to_be_focused()
    await teacher.keyboard.press("Enter")
    status = teacher.locator(".roll-message")
    await expect(status).to_contain_text("Appel validé")
    await expect(status).to_be_focused()
    assert await status.get_attribute("role") == "status"

    # The parent's home: a badge, and the notice said as a sentence naming child and time.
    sentence = f"Nouvelle notification : {student} a été noté·e absent·e le "
    await expect(home.locator(".attendance-links .badge")).to_have_text("1")
    await expect(badge).to_have_accessible_name("Absences et notifications (1 non lue)")
    said = home.locator(".attendance-links [role=log]")
    await expect(said).to_contain_text(sentence)
    await expect(said).to_contain_text(f"de {slot['start']} à {slot['end']}")
    said = absences.locator(".absences-page [role=log]")
    await expect(said).to_contain_text(sentence)
    await expect(absences.get_by_text("1 notification non lue")).to_be_visible()
    assert await absences.locator(".absences-page [aria-live]").evaluate_all(
        "els => els.map(e => e.textContent)") != []

    # The CPE's dashboard: one line per change of that roll, no summary repeated.
    log = cpe.locator(".dash-changes")
    where = f"{cast.class_name}, {slot['start']} : "
    await expect(log).to_contain_text(f"{where}appel validé")
    lines = await log.locator("p").all_text_contents()
    assert all(line.startswith(where) or line.startswith("Absence à traiter") for line in lines)
    assert not any("appel(s) validé(s)" in line for line in lines), lines
    assert len(lines) == len(set(lines))
    assert await axe(cpe) == []

    # The parent justifies the absence, keyboard only, on the 320 px phone.
    notice = absences.locator(".notice-item").filter(has_text=student)
    reason = notice.get_by_role("combobox")
    await tab_to(absences, reason)
    await absences.keyboard.type("Convenance")  # the select's own type-ahead
    await expect(reason).to_have_value("convenance")
    await absences.keyboard.press("Tab")
    await absences.keyboard.type("Rendez-vous médical")
    await absences.keyboard.press("Tab")
    await expect(notice.get_by_role("button", name="Envoyer le motif")).to_be_focused()
    await absences.keyboard.press("Enter")
    await expect(absences.locator(".event-list li").first).to_contain_text("Motif à traiter")
    assert await overflow(absences) == [], await overflow(absences)
    assert await axe(absences) == []
    await expect(cpe.locator(".dash-changes")).to_contain_text(f"Absence à traiter : {student}")
    for page in (home, absences, cpe, teacher):
        assert page.js_errors == []  # type: ignore[attr-defined]
    for c in (home_ctx, absences_ctx, cpe_ctx, ctx):
        await c.close()

"""The web client in real headless Chromium against a real server seeded with the demo data.

Each test logs in through the French login form, checks what a person of that role sees on
« Mon espace », and takes a screenshot of the page (kept under docs/screenshots/ with
REALTIME_SCREENSHOTS=1). axe-core (an npm dev dependency of web_client/) checks the pages
against WCAG 2 A/AA, contrast included.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from realtime.chat.french import de

pytestmark = pytest.mark.browser
expect.set_options(timeout=10_000)  # a loaded CI machine may be slower than a laptop

ROOT = Path(__file__).resolve().parents[2]
# Every test takes its screenshots (a page that cannot render fails), but they replace the
# committed ones in docs/screenshots/ only when asked, so a test run leaves the checkout clean:
# REALTIME_SCREENSHOTS=1 scripts/dev.sh test tests/browser
SCREENSHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("REALTIME_SCREENSHOTS")
               else Path(tempfile.gettempdir()) / "realtime-screenshots")
AXE = ROOT / "web_client" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
PARIS = ZoneInfo("Europe/Paris")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
ROLE_LABELS = {
    "teacher": "Enseignant·e",
    "parent": "Responsable légal",
    "cpe": "CPE (vie scolaire)",
}


def french_date(day: dt.date) -> str:
    """As the page writes it: « lundi 30 novembre 2026 »."""
    return f"{WEEKDAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]} {day.year}"


def first(accounts: list[dict[str, Any]], role: str, **match: Any) -> dict[str, Any]:
    return next(
        a for a in accounts if a["role"] == role and all(a.get(k) == v for k, v in match.items())
    )


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


async def new_page(
    browser: Browser, viewport: dict[str, int] = DESKTOP, **kw: Any
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(
        viewport=viewport, locale="fr-FR", timezone_id="Europe/Paris", **kw
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    return context, page


async def api_json(page: Page, base: str, path: str) -> Any:
    """A GET with the page's own session cookie: what the server says the page should show."""
    response = await page.request.get(f"{base}{path}")
    assert response.ok, await response.text()
    return await response.json()


async def log_in(page: Page, base: str, acct: dict[str, Any]) -> None:
    await page.goto(f"{base}/")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Connexion à votre espace")
    await page.get_by_label("Identifiant").fill(acct["login"])
    await page.get_by_label("Code personnel").fill(acct["code"])
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page.get_by_role("heading", name="Mon espace", level=1)).to_be_visible()


async def expect_header(page: Page, base: str, acct: dict[str, Any]) -> None:
    header = page.get_by_role("banner")
    await expect(header).to_contain_text(acct["name"])
    await expect(header).to_contain_text(ROLE_LABELS[acct["role"]])
    school = (await api_json(page, base, "/api/me"))["school"]
    if school:
        await expect(header).to_contain_text(school["name"])
    await expect(header.get_by_role("button", name="Se déconnecter")).to_be_visible()
    # The live status: the websocket is authenticated by the HttpOnly session cookie.
    await expect(header.get_by_role("status")).to_have_text("En ligne")


async def check_accessibility(page: Page) -> None:
    """No axe-core WCAG 2 A/AA violation, and every control is a ≥ 48 px touch target."""
    assert AXE.is_file(), f"{AXE} missing: run `npm ci` in web_client/"
    # Evaluated by the DevTools protocol: an injected <script> would be inline script, which
    # the pages' Content-Security-Policy refuses (realtime/headers.py).
    await page.evaluate("(src) => { (0, eval)(src); }", AXE.read_text())
    violations = await page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: 'tag',
               values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations
             .map(v => `${v.id}: ${v.help} — ${v.nodes.map(n => n.target).join(' ')}`)"""
    )
    assert violations == []
    small = await page.evaluate(
        """() => [...document.querySelectorAll('button, input, select, a[href]')]
             .filter(el => el.offsetParent !== null && !el.classList.contains('skip-link'))
             .map(el => [el.textContent.trim() || el.id, el.getBoundingClientRect()])
             .filter(([, r]) => r.height < 48 || r.width < 48)
             .map(([name, r]) => `${name}: ${Math.round(r.width)}×${Math.round(r.height)}`)"""
    )
    assert small == []


async def weekday_with_courses(page: Page, base: str, start: dt.date) -> tuple[dt.date, list]:
    """The first day from `start` on which the caller has courses (the demo runs Mon–Fri)."""
    for offset in range(14):
        day = start + dt.timedelta(days=offset)
        slots = (await api_json(page, base, f"/api/timetable?date={day.isoformat()}"))["slots"]
        if slots:
            return day, slots
    raise AssertionError("no course in the next two weeks")


async def test_teacher_sees_the_day_timetable(
    browser: Browser, demo_server: str, demo_accounts: list[dict[str, Any]]
) -> None:
    base = demo_server
    teacher = first(demo_accounts, "teacher")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    # Find a school day with courses, then open the page with its clock set during the first
    # course, so "today" is that day and the current course is highlighted.
    probe_context, probe = await new_page(browser)
    await log_in(probe, base, teacher)
    day, slots = await weekday_with_courses(probe, base, dt.datetime.now(PARIS).date())
    await probe_context.close()
    slots.sort(key=lambda s: s["start"])
    h, m = map(int, slots[0]["start"].split(":"))
    during_first = dt.datetime.combine(day, dt.time(h, m), PARIS) + dt.timedelta(minutes=5)

    context, page = await new_page(browser)
    await page.clock.set_fixed_time(during_first)
    await page.goto(f"{base}/")
    await expect(page).to_have_url(f"{base}/#/login")
    await expect(page.get_by_label("Identifiant")).to_be_focused()
    await check_accessibility(page)
    await page.screenshot(path=SCREENSHOTS / "login.png")

    # Keyboard only: type the identifier, Tab to the code, Enter to submit.
    await page.keyboard.type(teacher["login"])
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Code personnel")).to_be_focused()
    await page.keyboard.type(teacher["code"])
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("heading", name="Mon espace", level=1)).to_be_visible()
    await expect_header(page, base, teacher)
    section = page.get_by_role("region", name="Emploi du temps du jour")
    await expect(section.get_by_role("heading", level=2)).to_have_text("Emploi du temps du jour")
    await expect(section).to_contain_text(french_date(day))
    rows = section.locator("tbody tr")
    await expect(rows).to_have_count(len(slots))
    for row, slot in zip(await rows.all(), slots, strict=True):
        for text in (
            slot["start"],
            slot["end"],
            slot["subject"],
            slot["class_name"],
            slot["room"],
            slot["teacher_name"],
        ):
            await expect(row).to_contain_text(text)
    assert {s["class_name"] for s in slots} <= set(teacher["classes"])
    current = section.locator('tbody tr[aria-current="time"]')
    await expect(current).to_have_count(1)
    await expect(current).to_contain_text(slots[0]["subject"])
    await expect(current).to_contain_text("En cours")
    await check_accessibility(page)
    await page.screenshot(path=SCREENSHOTS / "home-teacher.png", full_page=True)

    # The day buttons, with the mouse; the address remembers the day.
    next_day = day + dt.timedelta(days=1)
    await section.get_by_role("button", name="Jour suivant").click()
    await expect(section).to_contain_text(french_date(next_day))
    await expect(page).to_have_url(f"{base}/#/?date={next_day.isoformat()}")
    next_slots = (await api_json(page, base, f"/api/timetable?date={next_day}"))["slots"]
    if next_slots:
        await expect(rows).to_have_count(len(next_slots))
    else:
        await expect(section).to_contain_text("Aucun cours ce jour")
    await section.get_by_role("button", name="Jour précédent").click()
    await expect(section).to_contain_text(french_date(day))
    await expect(page).to_have_url(f"{base}/#/")  # back to today: nothing to remember
    await expect(rows).to_have_count(len(slots))

    # A day given in the address (#/?date=…) opens on that day; Saturdays are empty.
    saturday = day + dt.timedelta(days=5 - day.weekday())
    await page.goto(f"{base}/#/?date={saturday.isoformat()}")
    await expect(section).to_contain_text(french_date(saturday))
    await expect(section).to_contain_text("Aucun cours ce jour")
    assert page.js_errors == []  # type: ignore[attr-defined]

    # Logging out closes the session: back to the login page, /api/me answers 401.
    await page.get_by_role("button", name="Se déconnecter").click()
    await expect(page.get_by_label("Identifiant")).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text("déconnecté")
    assert (await page.request.get(f"{base}/api/me")).status == 401
    await context.close()

    # The same day on a phone: one block per course, nothing wider than the screen.
    context, page = await new_page(browser, PHONE, is_mobile=True, has_touch=True)
    await page.clock.set_fixed_time(during_first)
    await log_in(page, base, teacher)
    section = page.get_by_role("region", name="Emploi du temps du jour")
    await expect(section.locator("tbody tr")).to_have_count(len(slots))
    await expect(section.get_by_role("button", name="Jour suivant")).to_be_visible()
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await check_accessibility(page)
    await page.screenshot(path=SCREENSHOTS / "home-teacher-phone.png", full_page=True)
    await context.close()


async def test_wrong_code_shows_the_french_error(
    browser: Browser, demo_server: str, demo_accounts: list[dict[str, Any]]
) -> None:
    base = demo_server
    student = first(demo_accounts, "student")
    context, page = await new_page(browser)
    await page.goto(f"{base}/#/login")
    await page.get_by_label("Identifiant").fill(student["login"])
    code = page.get_by_label("Code personnel")
    alert = page.get_by_role("alert")

    async def try_code(wrong: str) -> tuple[int, str]:
        await code.fill(wrong)
        async with page.expect_response(f"{base}/api/login") as info:
            await page.get_by_role("button", name="Se connecter").click()
        response = await info.value
        return response.status, (await response.json())["error"]["message"]

    status, message = await try_code("pas-le-bon-code")
    assert status == 401
    await expect(alert).to_have_text(message)
    await expect(alert).to_contain_text("incorrect")
    await expect(code).to_be_focused()
    await expect(code).to_have_value("")
    await expect(page.get_by_role("heading", name="Mon espace")).to_have_count(0)

    # Too many failures: the server's message says how long to wait, and the page shows it.
    for attempt in range(10):
        status, message = await try_code(f"faux-{attempt}")
        if status == 429:
            break
    assert status == 429
    await expect(alert).to_have_text(message)
    assert any(ch.isdigit() for ch in message), message
    await context.close()


async def test_parent_sees_their_children(
    browser: Browser, demo_server: str, demo_accounts: list[dict[str, Any]]
) -> None:
    base = demo_server
    parent = max(
        (a for a in demo_accounts if a["role"] == "parent"), key=lambda a: len(a["children"])
    )
    names = {a["login"]: a["name"] for a in demo_accounts}
    context, page = await new_page(browser)
    today = dt.datetime.now(PARIS).date()
    monday = today + dt.timedelta(days=7 - today.weekday())
    await page.clock.set_fixed_time(dt.datetime.combine(monday, dt.time(9, 30), PARIS))
    await log_in(page, base, parent)
    await expect_header(page, base, parent)

    section = page.get_by_role("region", name="Mes enfants")
    cards = section.get_by_role("article")
    await expect(cards).to_have_count(len(parent["children"]))
    children = (await api_json(page, base, "/api/children"))["children"]
    assert sorted(c["login"] for c in children) == sorted(parent["children"])
    for child in children:
        card = cards.filter(has=page.get_by_role("heading", name=names[child["login"]]))
        await expect(card).to_contain_text(child["class_name"])
        await expect(card).to_contain_text(child["school_name"])

    # One child's day, on demand.
    child = children[0]
    card = cards.filter(has=page.get_by_role("heading", name=child["name"]))
    toggle = card.get_by_role("button", name="Voir l'emploi du temps du jour")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    day = card.get_by_role("region", name=f"Emploi du temps du jour {de(child['name'])}")
    await expect(day).to_contain_text(french_date(monday))
    query = f"/api/timetable?date={monday}&student_id={child['id']}"
    slots = (await api_json(page, base, query))["slots"]
    assert slots and all(s["class_name"] == child["class_name"] for s in slots)
    await expect(day.locator("tbody tr")).to_have_count(len(slots))
    await expect(day).to_contain_text(slots[0]["subject"])
    await check_accessibility(page)
    await page.screenshot(path=SCREENSHOTS / "home-parent.png", full_page=True)
    assert page.js_errors == []  # type: ignore[attr-defined]
    await context.close()


async def test_cpe_sees_the_school_classes(
    browser: Browser, demo_server: str, demo_accounts: list[dict[str, Any]]
) -> None:
    base = demo_server
    cpe = first(demo_accounts, "cpe")
    context, page = await new_page(browser)
    await log_in(page, base, cpe)
    await expect_header(page, base, cpe)

    classes = (await api_json(page, base, "/api/classes"))["classes"]
    assert classes
    section = page.get_by_role("region", name="Classes de l'établissement")
    buttons = section.get_by_role("button")
    await expect(buttons).to_have_count(len(classes))
    for c in classes:
        name = re.compile(rf"^{re.escape(c['name'])} {c['student_count']} élèves?$")
        await expect(section.get_by_role("button", name=name)).to_have_count(1)

    chosen = classes[0]
    await buttons.first.click()
    await expect(buttons.first).to_have_attribute("aria-pressed", "true")
    panel = page.get_by_role("region", name=f"Élèves de la classe {chosen['name']}")
    students = (await api_json(page, base, f"/api/classes/{chosen['id']}/students"))["students"]
    await expect(panel.get_by_role("listitem")).to_have_count(len(students))
    await expect(panel).to_contain_text(students[0]["name"])
    await check_accessibility(page)
    await page.screenshot(path=SCREENSHOTS / "home-cpe.png", full_page=True)
    assert page.js_errors == []  # type: ignore[attr-defined]
    await context.close()

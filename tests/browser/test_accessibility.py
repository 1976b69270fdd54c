"""Accessibility (RGAA / WCAG 2.1 AA, docs/accessibility.md) in real headless Chromium against
one real server with the demo data, shared by the whole module (the CI machine is small).

- axe-core on every page in its main states: zero violations;
- keyboard only: log in, take and validate a roll, send a message, justify an absence;
- reflow: every page at 320 px wide (and the desktop at 200 % zoom) scrolls only vertically;
- live announcements: what a screen reader hears when an absence arrives or a roll changes.
"""

from __future__ import annotations

import re
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
from tests import engines
from tests.attendance.conftest import Cast, recent_slot
from tests.browser.test_home_page import (
    AXE,
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    SCREENSHOTS,
    log_in,
)
from tests.chat.conftest import Clock, paris
from tests.conftest import login, make_settings
from tests.engines import clone_db

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

NARROW = {"width": 320, "height": 640}  # WCAG 1.4.10: 320 CSS px, i.e. 1280 px at 400 %
ZOOMED = {"width": 640, "height": 400}  # a 1280 × 800 screen at 200 %


class Site:
    """The module's server: its base URL and the demo people of one class."""

    def __init__(self, base: str, cast: Cast) -> None:
        self.base, self.cast = base, cast
        self.board_id = 0
        self.doc_id = 0
        self.slot: dict[str, Any] = {}  # a recent course of the cast's class, and its day
        self.day = ""
        self.thread = ""  # the messagerie thread the keyboard test starts, once it has run


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory, demo_db_template: Path,
               demo_accounts: list[dict[str, Any]]) -> AsyncIterator[Site]:
    tmp = tmp_path_factory.mktemp("a11y")
    db = tmp / "ent.sqlite3"
    if engines.POSTGRES:  # this module's database outlives each test: not recycled
        engines.schema_for(db, kept=True)
    clone_db(demo_db_template, db)
    app = create_app(make_settings(tmp, db_path=db))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    app[keys.CHAT].clock = Clock(paris(10))  # quiet hours never depend on when CI runs
    base = str(server.make_url("")).rstrip("/")
    s = Site(base, Cast(demo_accounts))
    s.slot, s.day = await recent_slot(base, s.cast.teacher, s.cast.class_name)
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
        # Evaluated by the DevTools protocol: an injected <script> would be inline script,
        # which the pages' Content-Security-Policy refuses (realtime/headers.py).
        await page.evaluate("(src) => { (0, eval)(src); }", AXE.read_text())
    return await page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: 'tag',
               values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations
             .map(v => `${v.id}: ${v.help} — ${v.nodes.map(n => n.target).join(' ')}`)""")


async def small_targets(page: Page) -> list[str]:
    """Controls smaller than 44 × 44 CSS px (RGAA 13.x / WCAG 2.5.5): fingers and whiteboards."""
    return await page.evaluate(
        """() => [...document.querySelectorAll('button, input, select, textarea, a[href], summary')]
             .filter((el) => el.offsetParent !== null
               && !el.closest('.skip-link, .skip-inline, .visually-hidden') // (their label is)
               && !(el.matches('a') && el.closest('p, li, td') && !el.classList.contains('btn')))
             // A box or a radio inside its label: the whole label is the target.
             .map((el) => [el, ((el.matches('input[type=checkbox], input[type=radio]')
                                 && el.closest('label')) || el).getBoundingClientRect()])
             .filter(([, r]) => r.width > 0 && (r.height < 44 || r.width < 44))
             .map(([el, r]) => `small: ${el.tagName.toLowerCase()}.${el.className} `
               + `"${(el.textContent || el.id).trim().slice(0, 30)}" `
               + `${Math.round(r.width)}×${Math.round(r.height)}`)""")


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


async def test_roll_by_keyboard_heard_by_parent_and_cpe(browser: Browser, site: Site) -> None:
    """Keyboard only: a teacher logs in, takes and validates a roll without losing focus;
    the parent's home and absences page say the absence as a sentence, the CPE's dashboard
    one line per change; the parent justifies it by keyboard on a 320 px phone."""
    cast = site.cast
    slot, day = site.slot, site.day
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
    # The CPE, by keyboard, opens « Remplacer » on another course not taken yet: the grid is
    # redrawn by every update that follows, and must leave the menu open and the focus in it.
    other_slot = await cpe.evaluate(
        """(mine) => [...document.querySelectorAll('tr[data-state="todo"]')]
             .find(tr => tr.querySelector('details.replace-menu')
                   && tr.dataset.slotId !== String(mine)).dataset.slotId""", slot["id"])
    other_row = cpe.locator(f'tr[data-slot-id="{other_slot}"]')
    await other_row.locator("summary").focus()
    await cpe.keyboard.press("Enter")
    await cpe.keyboard.press("Tab")
    replacement = other_row.get_by_role("combobox")
    await expect(replacement).to_be_focused()
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
    rows = teacher.locator(".student-row")
    await expect(rows.first).to_be_visible()
    await expect(teacher.locator('.student-toggle[data-state="none"]')).to_have_count(0)
    pupils = await rows.count()
    # One Tab stop per pupil: their présent / absent button; the rest is reached by arrows.
    stops = await teacher.locator(".roll-list").evaluate(
        """list => [...list.querySelectorAll('button, select, input, a[href]')]
             .filter(el => el.tabIndex >= 0 && !el.closest('.comment-form')).length""")
    assert stops == pupils
    first = rows.first.locator(".student-toggle")
    # From « Tous présents », past « Historique de l'appel » and « Valider l'appel »,
    # straight to the list.
    assert await tab_to(teacher, first) <= 3
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
    # Only that sentence is said: the totals line is no live region.
    assert await teacher.locator(".roll-list, .roll-counts").evaluate_all(
        "els => els.filter(e => e.closest('[aria-live], [role=status], [role=log]'))") == []
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
    # Its name is what it shows (« ✎ Commentaire »), then whose: WCAG 2.5.3 label in name.
    assert await note.get_attribute("aria-label") is None
    await expect(note.locator(".note-label")).to_have_text("Commentaire")
    await expect(note).to_have_accessible_name(f"Commentaire pour {mate}")
    await teacher.keyboard.press("Enter")
    box = mate_row.get_by_label(f"Texte du commentaire pour {mate}")
    await expect(box).to_be_focused()
    await teacher.keyboard.type("Bus en retard")
    await teacher.keyboard.press("Enter")
    await expect(mate_row.locator(".student-comment")).to_have_text("« Bus en retard »")
    await expect(note).to_be_focused()
    await expect(teacher.locator(".roll-counts")).to_contain_text("1 absent·e, 1 en retard")
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
    await expect(row).to_have_class(re.compile("just-changed"))  # seen, not only heard
    await expect(other_row.locator("details")).to_have_attribute("open", "")
    await expect(replacement).to_be_focused()
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
    comment = notice.get_by_label("Précision (facultatif)")
    await expect(comment).to_be_focused()
    await absences.keyboard.type("Rendez-vous")
    # Meanwhile, on another device, the notices are read: this page redraws its list, and
    # keeps the parent's place: focus, what was chosen, what was typed.
    other_ctx, other = await open_as(browser, site, cast.guardians[0], NARROW, is_mobile=True,
                                     has_touch=True)
    await other.goto(f"{site.base}/#/absences")
    await other.get_by_role("button", name="Tout marquer comme lu").click()
    await expect(absences.get_by_text("Aucune notification non lue")).to_be_visible()
    await expect(home.locator(".attendance-links .badge")).to_be_hidden()  # the home's too
    await expect(badge).to_have_accessible_name("Absences et notifications")
    await other_ctx.close()
    await expect(comment).to_be_focused()
    await expect(comment).to_have_value("Rendez-vous")
    await expect(reason).to_have_value("convenance")
    await absences.keyboard.type(" médical")
    await absences.keyboard.press("Tab")  # the optional supporting document, left empty
    await expect(notice.get_by_label("Justificatif (photo ou PDF, facultatif)")).to_be_focused()
    await absences.keyboard.press("Tab")
    send = notice.get_by_role("button", name="Envoyer le motif")
    await expect(send).to_be_focused()
    await absences.keyboard.press("Enter")
    await expect(absences.locator(".event-list li").first).to_contain_text("Motif à traiter")
    await expect(absences.locator(".absences-page [role=status].sent")).to_have_text(
        f"Motif envoyé ({student}) : Convenance personnelle. La vie scolaire va le traiter.")
    await expect(send).to_be_focused()  # the lists were redrawn; the parent is where they were
    stored = await (await absences.request.get(f"{site.base}/api/attendance/me")).json()
    event = next(e for c in stored["children"] if c["student"]["name"] == student
                 for e in c["events"] if e["date"] == day and e["start"] == slot["start"])
    assert (event["reason_label"], event["reason_comment"]) == (
        "Convenance personnelle", "Rendez-vous médical")
    assert await overflow(absences) == [], await overflow(absences)
    assert await axe(absences) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await absences.screenshot(path=SCREENSHOTS / "a11y-absences-320.png", full_page=True)
    await expect(cpe.locator(".dash-changes")).to_contain_text(f"Absence à traiter : {student}")
    for page in (home, absences, cpe, teacher):
        assert page.js_errors == []  # type: ignore[attr-defined]
    for c in (home_ctx, absences_ctx, cpe_ctx, ctx):
        await c.close()


async def test_board_and_course_editor_by_keyboard(browser: Browser, site: Site) -> None:
    """A rectangle, an arrow, a text and a pen line placed on the board with the keyboard
    alone, then the line erased; the course editor's writing area shows a focus ring."""
    ctx, page = await open_as(browser, site, site.cast.teacher, {"width": 1280, "height": 720})
    await page.goto(f"{site.base}/#/boards/{site.board_id}")
    await expect(page.locator(".board-page")).to_have_attribute("data-can-draw", "true")
    area = page.get_by_role("application")
    await expect(area).to_have_attribute("aria-roledescription", "surface de dessin")
    before = await page.evaluate("() => window.__board.items.size")

    async def pick(tool: str) -> None:
        await tab_to(page, page.get_by_role("button", name=tool, exact=True))
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("button", name=tool, exact=True)).to_have_attribute(
            "aria-pressed", "true")

    await pick("Rectangle")
    await tab_to(page, area)
    await expect(page.locator(".board-cursor")).to_be_visible()
    await page.keyboard.press("Enter")
    status = area.get_by_role("status")
    await expect(status).to_contain_text("Rectangle : premier coin posé")
    for key in ("Shift+ArrowRight", "Shift+ArrowRight", "Shift+ArrowDown"):
        await page.keyboard.press(key)
    await page.keyboard.press("Enter")
    await expect(status).to_have_text("Rectangle posé au tableau.")
    await page.wait_for_function(f"() => window.__board.items.size === {before + 1}")
    rect = await page.evaluate("() => [...window.__board.items.values()].at(-1)")
    assert rect["kind"] == "rect" and rect["box"]["w"] == 240 and rect["box"]["h"] == 120

    # Escape gives up a shape half placed.
    await pick("Flèche")
    await tab_to(page, area)
    await page.keyboard.press("Enter")
    await page.keyboard.press("Escape")
    await expect(status).to_have_text("Forme annulée.")
    await page.keyboard.press("Enter")
    await page.keyboard.press("Shift+ArrowLeft")
    await page.keyboard.press("Enter")
    await page.wait_for_function(f"() => window.__board.items.size === {before + 2}")

    await pick("Texte")
    await tab_to(page, area)
    await page.keyboard.press("ArrowUp")
    await page.keyboard.press("Enter")
    field = page.get_by_label("Texte à écrire au tableau (Entrée pour valider)")
    await expect(field).to_be_focused()
    await page.keyboard.type("Bonjour")
    await page.keyboard.press("Enter")
    await page.wait_for_function(f"() => window.__board.items.size === {before + 3}")
    await expect(area).to_be_focused()  # the keyboard comes back to the board
    # The pen: Entrée starts a line that follows the cursor, Entrée ends it.
    await pick("Stylo")
    await tab_to(page, area)
    for key in ("Shift+ArrowDown", "Shift+ArrowDown", "Shift+ArrowLeft", "Shift+ArrowLeft"):
        await page.keyboard.press(key)  # away from what is already there
    await page.keyboard.press("Enter")
    await expect(status).to_contain_text("Tracé commencé")
    for key in ("ArrowDown", "ArrowDown", "ArrowRight", "ArrowRight"):
        await page.keyboard.press(key)
    await page.keyboard.press("Enter")
    await expect(status).to_have_text("Tracé posé au tableau.")
    await page.wait_for_function(f"() => window.__board.items.size === {before + 4}")
    stroke = await page.evaluate("() => [...window.__board.items.values()].at(-1)")
    assert stroke["kind"] == "stroke" and len(stroke["points"]) == 5
    # The eraser takes away what lies under the cursor: the end of that line.
    await pick("Gomme")
    await tab_to(page, area)
    await page.keyboard.press("Enter")
    await expect(status).to_have_text("1 élément effacé.")
    await page.wait_for_function(f"() => window.__board.items.size === {before + 3}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "a11y-board-keyboard.png")
    text = await page.evaluate("() => [...window.__board.items.values()].at(-1)")
    assert text["kind"] == "text" and text["text"] == "Bonjour"
    # Fresh from the server: what the keyboard placed is stored.
    svg = await (await page.request.get(f"{site.base}/api/boards/{site.board_id}/export.svg")
                 ).text()
    assert "Bonjour" in svg
    assert await axe(page) == []

    # The course editor: the writing area shows where the keyboard is.
    await page.goto(f"{site.base}/#/docs/{site.doc_id}")
    editor = page.get_by_role("textbox", name="Contenu du cours")
    await expect(editor).to_be_visible()
    surface = page.locator(".doc-surface")
    assert await surface.evaluate("el => getComputedStyle(el).outlineStyle") == "none"
    await tab_to(page, editor)
    ring = await surface.evaluate(
        "el => [getComputedStyle(el).outlineStyle, parseFloat(getComputedStyle(el).outlineWidth)]")
    assert ring[0] == "solid" and ring[1] >= 2, ring
    assert await axe(page) == []
    assert page.js_errors == []  # type: ignore[attr-defined]
    await ctx.close()


async def test_message_sent_by_keyboard(browser: Browser, site: Site) -> None:
    cast = site.cast
    ctx, page = await open_as(browser, site, None, NARROW, is_mobile=True, has_touch=True)
    await log_in_by_keyboard(page, site, cast.guardians[0])
    await tab_to(page, page.get_by_role("link", name="Messagerie"))
    await page.keyboard.press("Enter")
    await tab_to(page, page.get_by_role("link", name="Nouveau message"))
    await page.keyboard.press("Enter")
    await tab_to(page, page.get_by_label("Filtrer les destinataires"))
    await page.keyboard.type(cast.teacher["name"].split()[-1])
    radio = page.get_by_role("radio", name=cast.teacher["name"])
    await tab_to(page, radio)
    await page.keyboard.press("Space")
    await expect(radio).to_be_checked()
    await tab_to(page, page.get_by_label("Message", exact=True))
    await page.keyboard.type("Bonjour, pouvez-vous me rappeler ?")
    await tab_to(page, page.get_by_role("button", name="Envoyer"))
    await page.keyboard.press("Enter")
    await expect(page.locator(".thread .msg-body").first).to_have_text(
        "Bonjour, pouvez-vous me rappeler ?")
    await expect(page).to_have_url(re.compile(r"#/messages/\d+$"))
    site.thread = page.url.split("#", 1)[1]
    assert await overflow(page) == []
    assert await axe(page) == []
    assert page.js_errors == []  # type: ignore[attr-defined]
    await ctx.close()


def page_states(site: Site) -> list[tuple[str, str, str | None]]:
    """Every page in its main states: (who, address, a text that says it is ready). Run after
    the keyboard tests, the roll is validated, the parent's notice is there with its reason
    given, the messagerie has a thread."""
    cast = site.cast
    day = site.day
    return [
        ("nobody", "/#/login", None),
        ("teacher", "/#/", "Emploi du temps du jour"),
        ("teacher", f"/#/?date={day}", "Appels du jour"),
        ("teacher", f"/#/appel?slot={site.slot['id']}&date={day}", "présent·es"),
        ("teacher", f"/#/boards/{site.board_id}", "En direct"),
        ("teacher", f"/#/docs/{site.doc_id}", "À jour"),
        ("teacher", "/#/messages", "Messagerie"),
        ("parent", "/#/", "Mes enfants"),
        ("parent", "/#/absences", "Historique"),
        ("parent", "/#/messages", "Messagerie"),
        ("parent", "/#/messages/new", "Destinataires"),
        *([("parent", f"/#{site.thread}", "Bonjour, pouvez-vous me rappeler ?"),
           ("teacher", f"/#{site.thread}", "Bonjour, pouvez-vous me rappeler ?")]
          if site.thread else []),
        ("cpe", "/#/", "Classes de l'établissement"),
        ("cpe", f"/#/vie-scolaire?date={day}", cast.class_name),
        ("student", "/#/", "Emploi du temps du jour"),
        ("student", "/#/absences", "Historique"),
    ]


async def visit_all(browser: Browser, site: Site, viewport: dict[str, int],
                    **kw: Any) -> dict[str, list[str]]:
    """Each page state in one context per person: axe's violations, and what overflows."""
    cast = site.cast
    people = {"nobody": None, "teacher": cast.teacher, "parent": cast.guardians[0],
              "cpe": cast.cpe, "student": cast.student}
    found: dict[str, list[str]] = {}
    contexts: dict[str, tuple[BrowserContext, Page]] = {}
    for who, address, ready in page_states(site):
        if who not in contexts:
            contexts[who] = await open_as(browser, site, people[who], viewport, **kw)
        page = contexts[who][1]
        await page.goto(site.base + address)
        if ready:
            await expect(page.locator("body")).to_contain_text(ready)
        await expect(page.locator("#app")).not_to_have_attribute("aria-busy", "true")
        problems = await axe(page) + await overflow(page) + await small_targets(page)
        if await page.title() == "ENT des collèges":
            problems.append("the page has no title of its own")
        if problems:
            found[f"{who} {address}"] = problems
    for context, page in contexts.values():
        assert page.js_errors == []  # type: ignore[attr-defined]
        await context.close()
    return found


async def test_every_page_passes_axe_and_reflows_at_320_px(browser: Browser, site: Site
                                                           ) -> None:
    """WCAG 1.4.10: at 320 CSS px (a phone, or 400 % zoom) nothing scrolls sideways; axe-core
    finds no WCAG 2.1 A/AA violation on any page state."""
    assert await visit_all(browser, site, NARROW, is_mobile=True, has_touch=True) == {}
    ctx, page = await open_as(browser, site, site.cast.cpe, NARROW, is_mobile=True,
                              has_touch=True)
    await page.goto(f"{site.base}/#/vie-scolaire?date={site.day}")
    cell = page.locator(".dash-grid tbody tr").first.locator("td, th").nth(4)
    await expect(cell).to_have_attribute("data-label", "État")  # each value says its column
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.get_by_role("heading", name="Appels", exact=True).scroll_into_view_if_needed()
    await page.screenshot(path=SCREENSHOTS / "a11y-vie-scolaire-320.png")
    await ctx.close()


async def test_every_page_at_200_percent_zoom(browser: Browser, site: Site) -> None:
    """A 1280 × 800 desktop at 200 %: 640 × 400 CSS px, a desktop browser (no touch)."""
    assert await visit_all(browser, site, ZOOMED, device_scale_factor=2) == {}


async def test_every_page_passes_axe_on_the_desktop_and_the_cpe_skips_the_table(
        browser: Browser, site: Site) -> None:
    assert await visit_all(browser, site, DESKTOP) == {}
    ctx, page = await open_as(browser, site, site.cast.cpe)
    await page.goto(f"{site.base}/#/vie-scolaire?date={site.day}")
    await expect(page.locator(".dash-grid tbody tr").first).to_be_visible()
    # Mon espace, the skip link of the page, the table's own: the third Tab stop at most.
    skip = page.get_by_role("link", name="Passer le tableau des appels")
    await page.locator("h1").focus()
    assert await tab_to(page, skip) == 1
    await expect(skip).to_be_visible()  # shown when it has the focus
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Permanence")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Salle")).to_be_focused()  # past the whole table
    await ctx.close()

"""The live classroom board (docs/boards.md) in real headless Chromium: a teacher on a TBI
(1920 × 1080) and a student on a tablet, both against one real server with the demo data.

The teacher creates a board from « Mon espace », draws with the mouse; the student sees the
stroke, may not draw or undo without the pen, gets the pen, draws, and the teacher sees it.
Then the student's network is cut: the page says « Reconnexion… », and once back it catches
up by itself with what the teacher drew meanwhile. Screenshots go to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.boards.test_socket import Cast, create_board
from tests.browser.test_home_page import (  # the same Chromium, the same helpers
    SCREENSHOTS,
    browser,  # noqa: F401 (a fixture)
    check_accessibility,
    first,
    log_in,
    new_page,
)

pytestmark = pytest.mark.browser

TBI = {"width": 1920, "height": 1080}
TABLET = {"width": 1180, "height": 820}


def student_of(accounts: list[dict[str, Any]], teacher: dict[str, Any]) -> tuple[dict, str]:
    """A student in one of the teacher's classes (same school), and that class's name."""
    for acct in accounts:
        if acct["role"] != "student" or acct["school"] != teacher["school"]:
            continue
        shared = set(acct["classes"]) & set(teacher["classes"])
        if shared:
            return acct, shared.pop()
    raise AssertionError("no student shares a class with the teacher")


def board(page: Page) -> Locator:
    return page.locator(".board-page")


async def item_count(page: Page) -> int:
    """What the page holds, through its test hook (window.__board)."""
    return await page.evaluate("() => window.__board.items.size")


async def draw_stroke(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A stroke with the mouse across the sheet, given as fractions of its width and height."""
    sheet = page.locator(".board-sheet")
    box = await sheet.bounding_box()
    assert box and box["width"] > 300, box
    x0, y0 = box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"]
    x1, y1 = box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"]
    await page.mouse.move(x0, y0)
    await page.mouse.down()
    steps = 24
    for i in range(1, steps + 1):
        t = i / steps
        # a gentle wave, so the stroke is not a straight line
        await page.mouse.move(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t + 30 * (t - t * t) * 4)
        await page.wait_for_timeout(8)
    await page.mouse.up()


async def at(page: Page, where: tuple[float, float]) -> tuple[float, float]:
    box = await page.locator(".board-sheet").bounding_box()
    assert box
    return box["x"] + where[0] * box["width"], box["y"] + where[1] * box["height"]


async def drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A shape: pressed at `start`, released at `end`."""
    await page.mouse.move(*await at(page, start))
    await page.mouse.down()
    await page.mouse.move(*await at(page, end), steps=8)
    await page.mouse.up()


async def click_at(page: Page, where: tuple[float, float]) -> None:
    await page.mouse.click(*await at(page, where))


async def expect_online(page: Page) -> None:
    await expect(board(page)).to_have_attribute("data-connection", "online")


async def test_teacher_and_student_share_a_live_board(
    browser: Browser,  # noqa: F811
    demo_server: str,
    demo_accounts: list[dict[str, Any]],
) -> None:
    base = demo_server
    teacher = first(demo_accounts, "teacher")
    student, class_name = student_of(demo_accounts, teacher)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    # ——— The teacher, on the interactive whiteboard, starts a board from « Mon espace ». ———
    t_context, t_page = await new_page(browser, TBI)
    await log_in(t_page, base, teacher)
    boards = t_page.get_by_role("region", name="Tableaux")
    group = boards.get_by_role("group", name=f"Classe {class_name}")
    await expect(group).to_contain_text("Aucun tableau pour cette classe.")
    async with t_page.expect_response(f"{base}/api/boards") as created:
        await group.get_by_role("button", name="Nouveau tableau").click()
    response = await created.value
    assert response.status == 201, await response.text()
    meta = await response.json()
    await expect(t_page).to_have_url(f"{base}/#/boards/{meta['id']}")
    await expect_online(t_page)
    await expect(t_page.get_by_role("heading", level=1)).to_have_text(meta["title"])
    await expect(board(t_page)).to_have_attribute("data-page-count", "1")
    await expect(board(t_page)).to_have_attribute("data-can-draw", "true")
    await expect(t_page.get_by_role("button", name="Stylo")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(
        t_page.get_by_role("link", name="Exporter en PDF", include_hidden=True)
    ).to_have_attribute("href", f"/api/boards/{meta['id']}/export.pdf")

    await draw_stroke(t_page, (0.15, 0.3), (0.55, 0.35))
    await expect(board(t_page)).to_have_attribute("data-item-count", "1")
    # The server has it too (its echo was not drawn twice: still one item).
    await t_page.wait_for_timeout(300)
    assert await item_count(t_page) == 1
    stroke = await t_page.evaluate("() => [...window.__board.items.values()][0]")
    assert stroke["kind"] == "stroke" and len(stroke["points"]) >= 10
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", stroke["id"]), stroke["id"]
    # The toolbar's export, clicked: the browser downloads the PDF of the board as drawn.
    await t_page.get_by_text("Exporter", exact=True).click()
    async with t_page.expect_download() as downloading:
        await t_page.get_by_role("link", name="Exporter en PDF").click()
    download = await downloading.value
    assert download.suggested_filename.endswith(".pdf")
    pdf = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert pdf.startswith(b"%PDF-") and b"/Type /Page" in pdf
    await t_page.get_by_text("Exporter", exact=True).click()  # closes the menu again

    # ——— A student of the class, on a tablet, opens the same board from « Mon espace ». ———
    s_context, s_page = await new_page(browser, TABLET, has_touch=True)
    await log_in(s_page, base, student)
    s_boards = s_page.get_by_role("region", name="Tableaux")
    await s_boards.get_by_role("link", name=f"Ouvrir le tableau {meta['title']}").click()
    await expect(s_page).to_have_url(f"{base}/#/boards/{meta['id']}")
    await expect_online(s_page)
    await expect(board(s_page)).to_have_attribute("data-item-count", "1")
    got = await s_page.evaluate("() => [...window.__board.items.values()][0]")
    assert got["id"] == stroke["id"] and len(got["points"]) == len(stroke["points"])

    # Without the pen: the drawing tools and undo are disabled, and the server says no.
    await expect(board(s_page)).to_have_attribute("data-can-draw", "false")
    await expect(s_page.get_by_role("button", name="Stylo")).to_be_disabled()
    await expect(s_page.get_by_role("button", name="Annuler")).to_be_disabled()
    await expect(s_page.locator(".pen-badge")).to_have_text("Vous n'avez pas le stylet")
    await check_accessibility(s_page)
    await s_page.screenshot(path=SCREENSHOTS / "board-student.png")
    ack = await s_page.evaluate("() => window.__board.undo()")
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden", ack
    await expect(s_page.locator(".board-message")).to_have_text(ack["error"]["message"])
    await draw_stroke(s_page, (0.2, 0.6), (0.5, 0.7))  # nothing happens
    await t_page.wait_for_timeout(200)
    assert await item_count(s_page) == 1

    # ——— The teacher hands the pen to everyone. ———
    await t_page.get_by_role("button", name="Donner le stylet").click()
    dialog = t_page.get_by_role("dialog", name="Donner le stylet")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("checkbox", name=student["name"])).to_be_visible()
    await dialog.get_by_role("radio", name="Toute la classe").check()
    await dialog.get_by_role("button", name="Valider").click()
    await expect(dialog).to_be_hidden()
    await expect(t_page.locator(".pen-badge")).to_have_text("Stylet : toute la classe")

    await expect(board(s_page)).to_have_attribute("data-can-draw", "true")
    await expect(s_page.locator(".pen-badge")).to_have_text("Vous avez le stylet")
    await expect(s_page.get_by_role("button", name="Stylo")).to_be_enabled()
    await draw_stroke(s_page, (0.2, 0.6), (0.5, 0.7))
    await expect(board(s_page)).to_have_attribute("data-item-count", "2")
    await expect(board(t_page)).to_have_attribute("data-item-count", "2")

    # A new Seyès page: the student, in follow mode, is taken there; shapes, text, highlighter.
    await t_page.locator(".page-bar .menu > summary").click()
    await t_page.get_by_role("button", name="Page Seyès").click()
    await expect(board(t_page)).to_have_attribute("data-page-count", "2")
    await expect(t_page.locator(".page-counter")).to_have_text("Page 2 sur 2")
    await expect(s_page.locator(".page-counter")).to_have_text("Page 2 sur 2")
    await t_page.get_by_role("button", name="Rectangle").click()
    await drag(t_page, (0.45, 0.2), (0.75, 0.45))
    await t_page.get_by_role("button", name="Ellipse").click()
    await drag(t_page, (0.55, 0.55), (0.8, 0.85))
    await t_page.get_by_role("button", name="Rouge").click()
    await t_page.get_by_role("button", name="Flèche").click()
    await drag(t_page, (0.3, 0.75), (0.52, 0.7))
    await t_page.get_by_role("button", name="Texte").click()
    await click_at(t_page, (0.2, 0.12))
    await t_page.get_by_role("textbox", name=re.compile("Texte à écrire")).fill(
        "Le théorème de Pythagore"
    )
    await t_page.keyboard.press("Enter")
    await t_page.get_by_role("button", name="Jaune").click()
    await t_page.get_by_role("button", name="Surligneur").click()
    await draw_stroke(t_page, (0.2, 0.19), (0.5, 0.19))
    await t_page.get_by_role("button", name="Bleu").click()
    await t_page.get_by_role("button", name="Stylo").click()
    await draw_stroke(t_page, (0.15, 0.5), (0.4, 0.55))
    await expect(board(t_page)).to_have_attribute("data-item-count", "8")
    await expect(board(s_page)).to_have_attribute("data-item-count", "8")
    kinds = await s_page.evaluate("() => [...window.__board.items.values()].map(i => i.kind)")
    expected = "stroke stroke rect ellipse arrow text highlighter stroke".split()
    assert kinds == expected, kinds
    await check_accessibility(t_page)
    await t_page.screenshot(path=SCREENSHOTS / "board-teacher.png")
    await s_page.screenshot(path=SCREENSHOTS / "board-student-pen.png")

    # The teacher goes back a page: the student follows.
    await t_page.get_by_role("button", name="Page précédente").click()
    await expect(s_page.locator(".page-counter")).to_have_text("Page 1 sur 2")

    # ——— The student's network is cut; the teacher goes on; the student catches up. ———
    await s_context.set_offline(True)
    await expect(board(s_page)).to_have_attribute("data-connection", "reconnecting")
    await expect(s_page.locator(".board-bar .live")).to_have_text(
        re.compile("reconnexion", re.IGNORECASE)
    )
    await draw_stroke(t_page, (0.3, 0.8), (0.7, 0.85))
    await expect(board(t_page)).to_have_attribute("data-item-count", "9")
    # Offline, the student still draws: shown at once, sent once back.
    await draw_stroke(s_page, (0.6, 0.3), (0.9, 0.4))
    await expect(board(s_page)).to_have_attribute("data-item-count", "9")
    await s_page.wait_for_timeout(300)
    assert await item_count(t_page) == 9  # really cut off, both ways
    await s_context.set_offline(False)
    await expect_online(s_page)
    await expect(board(s_page)).to_have_attribute("data-item-count", "10")
    await expect(board(t_page)).to_have_attribute("data-item-count", "10")
    # It joined again with `since` and got just the missed op, not the whole board.
    last_join = await s_page.evaluate("() => window.__board.conn.joins.at(-1)")
    assert last_join["since"] and not last_join["snapshot"] and last_join["ops"] >= 1, last_join
    items = "() => [...window.__board.items.values()].map(i => [i.id, i.points?.length ?? 0])"
    for _ in range(50):  # the last appends may still be in flight (one frame per server tick)
        mine, theirs = sorted(await s_page.evaluate(items)), sorted(await t_page.evaluate(items))
        if mine == theirs:
            break
        await s_page.wait_for_timeout(100)
    assert mine == theirs

    # ——— The pen to one chosen student, then to nobody. ———
    await t_page.get_by_role("button", name="Donner le stylet").click()
    await dialog.get_by_role("checkbox", name=student["name"]).check()
    await expect(dialog.get_by_role("radio", name="Élèves choisis")).to_be_checked()
    await dialog.get_by_role("button", name="Valider").click()
    await expect(t_page.locator(".pen-badge")).to_have_text(f"Stylet : {student['name']}")
    await expect(board(s_page)).to_have_attribute("data-can-draw", "true")
    await t_page.get_by_role("button", name="Donner le stylet").click()
    await dialog.get_by_role("radio", name="Personne").check()
    await dialog.get_by_role("button", name="Valider").click()
    await expect(board(s_page)).to_have_attribute("data-can-draw", "false")
    await expect(s_page.locator(".board-message")).to_have_text("Vous n'avez plus le stylet.")

    assert t_page.js_errors == []  # type: ignore[attr-defined]
    assert s_page.js_errors == []  # type: ignore[attr-defined]
    await s_context.close()
    await t_context.close()


async def test_a_stroke_over_5000_items_redraws_nothing_else(
    browser: Browser,  # noqa: F811
    demo_server: str,
    demo_accounts: list[dict[str, Any]],
) -> None:
    """Drawing over a full page only touches the upper canvas: no full redraw per move."""
    base = demo_server
    teacher = first(demo_accounts, "teacher")
    context, page = await new_page(browser, TBI)
    await log_in(page, base, teacher)
    await (
        page.get_by_role("region", name="Tableaux")
        .get_by_role("button", name="Nouveau tableau")
        .first.click()
    )
    await expect_online(page)
    # 5,000 strokes of 40 points, loaded as if they came in a snapshot.
    took = await page.evaluate(
        """() => {
          const b = window.__board;
          const items = [];
          for (let i = 0; i < 5000; i += 1) {
            const x0 = (i * 37) % 1800, y0 = (i * 53) % 1000;
            const points = Array.from({length: 40},
                                      (_, k) => [x0 + k * 3, y0 + Math.sin(k / 4) * 20]);
            items.push({id: `bench-${i}`, kind: 'stroke', page_id: b.model.pageId,
                        style: {color: '#1d4ed8', width: 3, opacity: 1}, points});
          }
          b.state.load({pages: b.pages, items});
          const t0 = performance.now();
          b.view.invalidate();
          b.view.frame();
          return performance.now() - t0;
        }"""
    )
    before = await page.evaluate("() => window.__board.view.redraws")
    frames = await page.evaluate(
        """() => new Promise((resolve) => {
          const times = [];
          let last = performance.now();
          const tick = (t) => { times.push(t - last); last = t;
            if (times.length < 60) requestAnimationFrame(tick); else resolve(times); };
          requestAnimationFrame(tick);
        })"""
    )
    await draw_stroke(page, (0.1, 0.1), (0.9, 0.9))
    await expect(board(page)).to_have_attribute("data-item-count", "5001")
    after = await page.evaluate("() => window.__board.view.redraws")
    assert after == before, "a stroke must not redraw the whole page"
    print(f"full redraw of 5,000 strokes: {took:.0f} ms; idle frame max {max(frames):.0f} ms")
    assert took < 1000
    assert page.js_errors == []  # type: ignore[attr-defined]
    await context.close()


# The « Questions » chat toggle against every other control of the board page, measured in the
# page: its rectangle must meet none of them, closed or open, and the open panel may cover the
# drawing area only — never the top bar, the toolbar or the page bar.
LAYOUTS = {
    "TBI": TBI,
    "portable": {"width": 1366, "height": 768},
    "tablette": {"width": 800, "height": 1280},
    "téléphone": {"width": 390, "height": 844},
}
CHAT_LAYOUT = """async () => {
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  const chat = document.querySelector('.board-chat');
  const toggle = chat.querySelector(':scope > summary');
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden'
      && el.checkVisibility({ visibilityProperty: true }); // not in a closed <details> either
  };
  const meets = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5
    && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const inside = (r) => r.left >= -0.5 && r.top >= -0.5 && r.right <= innerWidth + 0.5
    && r.bottom <= innerHeight + 0.5;
  const label = (el) => (el.getAttribute('aria-label') || el.title || el.textContent || '')
    .replace(/\\s+/g, ' ').trim().slice(0, 40) || el.className;
  const controls = [...document.querySelectorAll('.board-page :is(button, a[href], summary, '
    + 'input, select, .page-counter, .zoom-text, .pen-badge)')]
    .filter((el) => !chat.contains(el) && shown(el));
  const bars = [...document.querySelectorAll('.board-bar, .board-tools, .page-bar')]
    .filter((el) => shown(el) && !el.contains(chat));
  const box = toggle.getBoundingClientRect();
  const cx = (box.left + box.right) / 2;
  const cy = (box.top + box.bottom) / 2;
  const out = {
    open: chat.open,
    toggle_covers: controls.filter((el) => meets(box, el.getBoundingClientRect())).map(label),
    toggle_on_screen: inside(box),
    toggle_reachable: toggle.contains(document.elementFromPoint(cx, cy)),
    controls: controls.length,
  };
  if (chat.open) {
    // The panel: whatever the <details> shows besides its summary.
    const parts = [...chat.querySelectorAll(':scope > :not(summary)')].filter(shown)
      .map((el) => el.getBoundingClientRect());
    const under = (el) => parts.some((p) => meets(p, el.getBoundingClientRect()));
    out.panel_parts = parts.length;
    out.panel_covers = controls.filter(under).map(label);
    out.panel_covers_bars = bars.filter(under).map((el) => el.className);
    out.panel_on_screen = parts.every(inside);
  }
  return out;
}"""


async def check_chat_layout(page: Page, who: str, size: str) -> list[str]:
    """What is wrong with the « Questions » toggle and panel on this page as it stands."""
    got = await page.evaluate(CHAT_LAYOUT)
    where = f"{who} {size} ({'ouvert' if got['open'] else 'fermé'})"
    problems = []
    if got["controls"] < 8:
        problems.append(f"{where}: only {got['controls']} controls found")
    if got["toggle_covers"]:
        problems.append(f"{where}: « Questions » covers {got['toggle_covers']}")
    if not got["toggle_on_screen"] or not got["toggle_reachable"]:
        problems.append(f"{where}: « Questions » off screen or covered: {got}")
    if got["open"]:
        if not got["panel_parts"] or not got["panel_on_screen"]:
            problems.append(f"{where}: the panel is missing or off screen: {got}")
        if got["panel_covers"] or got["panel_covers_bars"]:
            problems.append(
                f"{where}: the open panel covers {got['panel_covers']} {got['panel_covers_bars']}"
            )
    return problems


async def test_the_questions_button_covers_no_control(
    browser: Browser,  # noqa: F811
    demo_server: str,
    demo_accounts: list[dict[str, Any]],
) -> None:
    """TBI, laptop, tablet and phone; the teacher and a pupil; the chat panel closed and open."""
    base = demo_server
    cast = Cast(demo_accounts)
    board_id = await create_board(base, cast)
    problems: list[str] = []
    pages = []
    for who, acct in (("enseignant·e", cast.teacher), ("élève", cast.alice)):
        context, page = await new_page(browser, TBI)
        await log_in(page, base, acct)
        await page.goto(f"{base}/#/boards/{board_id}")
        await expect_online(page)
        await expect(page.locator(".board-chat .thread")).to_be_attached()  # the chat joined
        pages.append((who, context, page))
    for who, _, page in pages:
        toggle = page.locator(".board-chat > summary")
        for size, viewport in LAYOUTS.items():
            await page.set_viewport_size(viewport)
            problems += await check_chat_layout(page, who, size)
            await toggle.focus()  # by keyboard: Enter opens it, Enter on it again closes it
            await page.keyboard.press("Enter")
            await expect(page.locator(".board-chat")).to_have_js_property("open", True)
            problems += await check_chat_layout(page, who, size)
            await toggle.focus()
            await page.keyboard.press("Enter")
            await expect(page.locator(".board-chat")).to_have_js_property("open", False)
    for _, context, page in pages:
        assert page.js_errors == []  # type: ignore[attr-defined]
        await context.close()
    assert not problems, "\n".join(problems)

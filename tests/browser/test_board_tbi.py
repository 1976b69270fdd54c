"""The teacher's TBI, complete (issue 18), in real headless Chromium against a real server:
a worksheet PDF drawn by reportlab imported as pages and written on, seen by a pupil on a
phone; select, move, resize, restyle, delete, edit a text, each undone; instruments; running
the session (lock, rename, pages, clear, end); « Reprendre le cours »; the layout at 1920 ×
1080, 1366 × 768 and on a phone. Screenshots go to docs/screenshots/ (REALTIME_SCREENSHOTS=1).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import math
import re
from typing import Any

import pytest
from PIL import Image
from playwright.async_api import Browser, Page, expect

from tests.boards.pdfs import phone_photo, worksheet_pdf
from tests.boards.test_import import upload
from tests.boards.test_socket import Cast, create_board
from tests.browser.test_board_page import (
    TBI,
    at,
    board,
    drag,
    draw_stroke,
    expect_online,
    item_count,
)
from tests.browser.test_home_page import (  # the same Chromium, the same helpers
    SCREENSHOTS,
    browser,  # noqa: F401 (a fixture)
    check_accessibility,
    log_in,
    new_page,
)

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}


async def open_board(browser: Browser, base: str, acct: dict[str, Any], board_id: int,  # noqa: F811
                     viewport: dict[str, int], **kw: Any) -> tuple[Any, Page]:
    context, page = await new_page(browser, viewport, **kw)
    await log_in(page, base, acct)
    await page.goto(f"{base}/#/boards/{board_id}")
    await expect_online(page)
    return context, page


async def session_action(page: Page, name: str) -> None:
    await page.locator(".session-menu > summary").click()
    await page.get_by_role("button", name=name).click()


async def eventually(get: Any, check: Any, wait_s: float = 10) -> Any:
    """`await get()` until `check(value)` holds (Playwright for Python has no expect.poll)."""
    value = None
    for _ in range(int(wait_s * 20)):
        value = await get()
        if check(value):
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"still {value!r}")


async def items(page: Page) -> list[dict[str, Any]]:
    return await page.evaluate("() => [...window.__board.items.values()]")


async def test_a_worksheet_pdf_becomes_pages_and_the_pupil_sees_the_writing(
    browser: Browser,  # noqa: F811
    demo_server: str,
    demo_accounts: list[dict[str, Any]],
) -> None:
    base = demo_server
    cast = Cast(demo_accounts)
    board_id = await create_board(base, cast, "Fractions — fiche d'exercices")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    t_context, teacher = await open_board(browser, base, cast.teacher, board_id, TBI)
    s_context, pupil = await open_board(browser, base, cast.alice, board_id, PHONE,
                                        has_touch=True, is_mobile=True)

    # The teacher imports a 3-page worksheet from « Séance » → « Importer… ».
    pdf = worksheet_pdf(3, "Fractions")
    async with teacher.expect_file_chooser() as chooser:
        await session_action(teacher, "Importer un PDF ou une image…")
    async with teacher.expect_response(f"{base}/api/boards/{board_id}/import") as answered:
        await (await chooser.value).set_files(
            files=[{"name": "fractions.pdf", "mimeType": "application/pdf", "buffer": pdf}])
    response = await answered.value
    assert response.status == 201, await response.text()
    imported = (await response.json())["pages"]
    assert len(imported) == 3
    # Both screens have the four pages; the progress bar said so; the teacher is on page 2.
    for page in (teacher, pupil):
        await expect(board(page)).to_have_attribute("data-page-count", "4")
    await expect(teacher.locator(".import-progress")).to_contain_text("3 pages importées")
    await expect(pupil.locator(".import-progress")).to_contain_text("3 pages importées")
    await expect(teacher.locator(".page-counter")).to_have_text("Page 2 sur 4")
    backgrounds = await pupil.evaluate(
        "() => window.__board.pages.map(p => p.background ?? 'blank')")
    assert backgrounds == ["blank", "image", "image", "image"]

    # The PDF's page 2 (the board's page 3): the teacher writes on it, the pupil follows.
    await teacher.get_by_role("button", name="Page suivante").click()
    await expect(teacher.locator(".page-counter")).to_have_text("Page 3 sur 4")
    await expect(pupil.locator(".page-counter")).to_have_text("Page 3 sur 4")
    await teacher.get_by_role("button", name="Rouge").click()
    await draw_stroke(teacher, (0.42, 0.3), (0.6, 0.32))
    await expect(board(pupil)).to_have_attribute("data-item-count", "1")
    got = (await items(pupil))[0]
    assert got["page_id"] == imported[1]["id"] and got["style"]["color"] == "#dc2626"
    await expect(board(pupil)).to_have_attribute("data-page-id", imported[1]["id"])
    # The background image really is drawn on the pupil's canvas (blue band of the sheet).
    blue = await pupil.evaluate("""() => {
      const c = document.querySelector('.board-base');
      const d = c.getContext('2d').getImageData(c.width / 2, 2, 1, 1).data;
      return [d[0], d[1], d[2]];
    }""")
    assert blue[2] > 150 and blue[0] < 100, blue
    await teacher.wait_for_timeout(300)  # the stroke baked onto the lower canvas
    await teacher.screenshot(path=SCREENSHOTS / "board-import-tbi.png")
    await pupil.screenshot(path=SCREENSHOTS / "board-import-phone.png")

    # A PDF dropped on the board is imported too; an image pasted goes on the page as an item.
    one = base64.b64encode(worksheet_pdf(1, "Dépôt")).decode()
    async with teacher.expect_response(f"{base}/api/boards/{board_id}/import") as dropped:
        await teacher.evaluate("""(b64) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], 'depot.pdf', { type: 'application/pdf' }));
          const sheet = document.querySelector('.board-sheet');
          const r = sheet.getBoundingClientRect();
          for (const type of ['dragover', 'drop']) {
            sheet.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true,
              dataTransfer: dt, clientX: r.left + 50, clientY: r.top + 50 }));
          }
        }""", one)
    assert (await dropped.value).status == 201
    await expect(board(pupil)).to_have_attribute("data-page-count", "5")
    photo = base64.b64encode(phone_photo(6)).decode()
    async with teacher.expect_response(re.compile(r".*/images$")) as pasted:
        await teacher.evaluate("""(b64) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], 'manuel.jpg', { type: 'image/jpeg' }));
          document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt,
            bubbles: true, cancelable: true }));
        }""", photo)
    assert (await pasted.value).status == 201
    await expect(board(pupil)).to_have_attribute("data-item-count", "2")
    image = next(i for i in await items(pupil) if i["kind"] == "image")
    # Turned as the phone held it: a portrait box (the photo is 800 × 400 with EXIF « 90° »).
    assert image["box"]["h"] > image["box"]["w"], image["box"]
    # It is selected at once, to be moved: the select tool is on, the handle drawn.
    await expect(board(teacher)).to_have_attribute("data-tool", "select")
    assert await teacher.evaluate("() => window.__board.selection.ids") == [image["id"]]
    # Moved, then resized by its handle: the pupil's copy follows.
    box = image["box"]
    centre = ((box["x"] + box["w"] / 2) / 1920, (box["y"] + box["h"] / 2) / 1080)
    await drag(teacher, centre, (centre[0] - 0.2, centre[1]))
    moved_x = f"() => window.__board.items.get({image['id']!r}).box.x"
    await eventually(lambda: pupil.evaluate(moved_x), lambda v: abs(v - (box["x"] - 384)) < 3)
    corner = ((box["x"] - 384 + box["w"] + 2) / 1920, (box["y"] + box["h"] + 2) / 1080)
    await drag(teacher, corner, (corner[0] + 0.05, corner[1] + 0.05))
    width = f"() => window.__board.items.get({image['id']!r}).box.w"
    await eventually(lambda: pupil.evaluate(width), lambda v: v > box["w"] * 1.1)

    # The image button inserts one too (a PNG chosen from the device).
    png = io.BytesIO()
    Image.new("RGB", (300, 200), (21, 128, 61)).save(png, "PNG")
    async with teacher.expect_file_chooser() as chooser:
        await teacher.get_by_role("button", name="Insérer une image").click()
    await (await chooser.value).set_files(
        files=[{"name": "figure.png", "mimeType": "image/png", "buffer": png.getvalue()}])
    await expect(board(pupil)).to_have_attribute("data-item-count", "3")

    # And a PDF pasted (Ctrl+V) is imported as pages.
    async with teacher.expect_response(f"{base}/api/boards/{board_id}/import") as pasted_pdf:
        await teacher.evaluate("""(b64) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], 'colle.pdf', { type: 'application/pdf' }));
          document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt,
            bubbles: true, cancelable: true }));
        }""", one)
    assert (await pasted_pdf.value).status == 201
    await expect(board(pupil)).to_have_attribute("data-page-count", "6")

    # The wrong worksheet? Its three pages go together, from « Pages » (asked first).
    assert [p["id"].rsplit("-", 1)[1] for p in imported] == ["1", "2", "3"]
    await teacher.get_by_role("button", name="Pages", exact=True).click()
    await teacher.get_by_role("button", name="Supprimer les 3 pages de cet import").click()
    await teacher.get_by_role("button", name="Supprimer les pages").click()
    await expect(board(pupil)).to_have_attribute("data-page-count", "3")
    left = await pupil.evaluate("() => window.__board.pages.map(p => p.id)")
    assert not set(left) & {p["id"] for p in imported}

    assert teacher.js_errors == [] and pupil.js_errors == []  # type: ignore[attr-defined]
    await s_context.close()
    await t_context.close()


async def test_select_move_resize_restyle_delete_and_undo(
    browser: Browser,  # noqa: F811
    demo_server: str,
    demo_accounts: list[dict[str, Any]],
) -> None:
    base = demo_server
    cast = Cast(demo_accounts)
    board_id = await create_board(base, cast)
    t_context, teacher = await open_board(browser, base, cast.teacher, board_id, TBI)
    s_context, pupil = await open_board(browser, base, cast.alice, board_id, TBI)
    await teacher.get_by_role("button", name="Rectangle").click()
    await drag(teacher, (0.2, 0.2), (0.35, 0.4))
    await teacher.get_by_role("button", name="Stylo").click()
    await draw_stroke(teacher, (0.6, 0.6), (0.8, 0.65))
    await teacher.get_by_role("button", name="Texte").click()
    await teacher.mouse.click(*await at(teacher, (0.5, 0.1)))
    await teacher.get_by_role("textbox", name=re.compile("Texte à écrire")).fill("Énoncé")
    await teacher.keyboard.press("Enter")
    await expect(board(pupil)).to_have_attribute("data-item-count", "3")
    rect, stroke, text = await items(teacher)
    box0 = rect["box"]

    # Click the rectangle's edge with « Sélection » and drag it: it moves, for the pupil too.
    await teacher.get_by_role("button", name="Sélection", exact=True).click()
    await drag(teacher, (0.2, 0.3), (0.3, 0.4))
    await teacher.wait_for_timeout(200)

    async def rect_box(page: Page) -> dict[str, float]:
        return await page.evaluate(f"() => window.__board.items.get({rect['id']!r}).box")

    moved = await rect_box(pupil)
    assert abs(moved["x"] - box0["x"] - 192) < 3 and abs(moved["y"] - box0["y"] - 108) < 3
    assert await rect_box(teacher) == moved
    await teacher.screenshot(path=SCREENSHOTS / "board-selection-tbi.png")
    await teacher.set_viewport_size(PHONE)  # the same selection on a phone's screen
    await teacher.wait_for_timeout(300)
    await teacher.screenshot(path=SCREENSHOTS / "board-selection-phone.png")
    await teacher.set_viewport_size(TBI)
    await teacher.wait_for_timeout(300)
    # The arrow keys nudge it (Maj: 10 units), each one an op.
    await teacher.keyboard.press("Shift+ArrowRight")
    await eventually(lambda: rect_box(pupil), lambda v: abs(v["x"] - moved["x"] - 10) < 0.01)
    await teacher.keyboard.press("Control+z")
    await eventually(lambda: rect_box(pupil), lambda v: v == moved)
    # Undo: back where it was, on both screens.
    await teacher.keyboard.press("Control+z")
    for page in (teacher, pupil):
        await eventually(lambda p=page: rect_box(p), lambda v: v == box0)

    # Resize with the corner handle: proportions kept, one undo takes it back.
    b = await rect_box(teacher)
    corner = ((b["x"] + b["w"] + 2) / 1920, (b["y"] + b["h"] + 2) / 1080)
    await drag(teacher, corner, (corner[0] + 0.1, corner[1] + 0.1))
    await teacher.wait_for_timeout(200)
    bigger = await rect_box(pupil)
    assert bigger["w"] > box0["w"] * 1.3
    assert abs(bigger["w"] / bigger["h"] - box0["w"] / box0["h"]) < 0.05  # proportions kept
    await teacher.get_by_role("button", name="Annuler").click()
    await eventually(lambda: rect_box(pupil), lambda v: v == box0)

    # Restyle the selection: green.
    await teacher.get_by_role("button", name="Vert").click()
    colour = f"() => window.__board.items.get({rect['id']!r}).style.color"
    await eventually(lambda: pupil.evaluate(colour), lambda v: v == "#15803d")

    # Lasso around the stroke and the rectangle: two selected; Suppr deletes both; undo.
    await teacher.keyboard.press("Escape")
    sheet = await teacher.locator(".board-sheet").bounding_box()
    assert sheet
    loop = [(0.12, 0.12), (0.9, 0.14), (0.92, 0.9), (0.12, 0.92), (0.1, 0.5)]
    await teacher.mouse.move(*await at(teacher, (0.1, 0.5)))
    await teacher.mouse.down()
    for point in loop:
        await teacher.mouse.move(*await at(teacher, point), steps=4)
    await teacher.mouse.up()
    selected = await teacher.evaluate("() => window.__board.selection.ids")
    assert sorted(selected) == sorted([rect["id"], stroke["id"]])
    # Both recoloured in one gesture: one op, and one undo takes both back.
    colours = f"""() => [{rect['id']!r}, {stroke['id']!r}]
      .map((id) => window.__board.items.get(id).style.color)"""
    was = await pupil.evaluate(colours)
    await teacher.get_by_role("button", name="Violet").click()
    await eventually(lambda: pupil.evaluate(colours), lambda v: v == ["#7e22ce", "#7e22ce"])
    await teacher.keyboard.press("Control+z")
    await eventually(lambda: pupil.evaluate(colours), lambda v: v == was)
    await teacher.keyboard.press("Delete")
    await expect(board(pupil)).to_have_attribute("data-item-count", "1")
    await teacher.keyboard.press("Control+z")
    await expect(board(pupil)).to_have_attribute("data-item-count", "3")

    # A text edited in place (double tap with « Sélection »), then undone.
    tx = (text["box"]["x"] + 10) / 1920, (text["box"]["y"] + 10) / 1080
    await teacher.mouse.click(*await at(teacher, tx))
    await teacher.mouse.click(*await at(teacher, tx))
    field = teacher.get_by_role("textbox", name=re.compile("Texte à écrire"))
    await expect(field).to_have_value("Énoncé")
    await field.fill("Énoncé corrigé")
    await field.press("Enter")
    words = f"() => window.__board.items.get({text['id']!r}).text"
    await eventually(lambda: pupil.evaluate(words), lambda v: v == "Énoncé corrigé")
    await teacher.keyboard.press("Control+z")
    await eventually(lambda: pupil.evaluate(words), lambda v: v == "Énoncé")

    # A pupil with the pen selects only their own items.
    await teacher.evaluate("() => window.__board.conn.control('grant', {pen: 'everyone'})")
    await expect(board(pupil)).to_have_attribute("data-can-draw", "true")
    await pupil.get_by_role("button", name="Sélection", exact=True).click()
    await pupil.mouse.click(*await at(pupil, (0.2, 0.3)))  # the teacher's rectangle
    assert await pupil.evaluate("() => window.__board.selection.ids") == []
    await pupil.get_by_role("button", name="Stylo").click()
    await draw_stroke(pupil, (0.3, 0.75), (0.5, 0.8))
    await pupil.get_by_role("button", name="Sélection", exact=True).click()
    await drag(pupil, (0.3, 0.75), (0.3, 0.55))
    mine = (await items(pupil))[-1]
    assert mine["author"] != rect.get("author")
    start_y = f"() => Math.round(window.__board.items.get({mine['id']!r}).points[0][1])"
    await eventually(lambda: teacher.evaluate(start_y), lambda v: v < 700)

    assert teacher.js_errors == [] and pupil.js_errors == []  # type: ignore[attr-defined]
    await s_context.close()
    await t_context.close()


async def test_running_the_session_from_the_page(
    browser: Browser,  # noqa: F811
    demo_server: str,
    demo_accounts: list[dict[str, Any]],
) -> None:
    base = demo_server
    cast = Cast(demo_accounts)
    board_id = await create_board(base, cast, "Géométrie")
    t_context, teacher = await open_board(browser, base, cast.teacher, board_id, TBI)
    s_context, pupil = await open_board(browser, base, cast.alice, board_id, PHONE,
                                        has_touch=True, is_mobile=True)

    # « Verrouiller » says when the board is locked.
    lock = teacher.locator("[data-role=lock]")
    await lock.click()
    await expect(lock).to_have_attribute("aria-pressed", "true")
    await expect(lock).to_contain_text("Verrouillé")
    await expect(pupil.locator(".board-meta")).to_contain_text("Verrouillé")
    await lock.click()
    await expect(lock).to_contain_text("Verrouiller")

    # Rename: the pupil's title follows.
    await session_action(teacher, "Renommer le tableau…")
    await teacher.get_by_role("textbox", name="Titre du tableau").fill("Géométrie — les angles")
    await teacher.get_by_role("button", name="Renommer", exact=True).click()
    await expect(pupil.get_by_role("heading", level=1)).to_have_text("Géométrie — les angles")

    # Instruments: the ruler and the protractor, seen by the pupil; a stroke along the ruler
    # is straight.
    await teacher.get_by_role("button", name="Règle").click()
    await teacher.get_by_role("button", name="Rapporteur").click()
    await expect(pupil.locator(".instrument-ruler")).to_be_attached()
    await expect(pupil.locator(".instrument-protractor")).to_be_attached()
    ruler = await teacher.evaluate(
        "() => window.__board.instruments.placed.find(i => i.kind === 'ruler')")
    # Turn it with its knob (finger or mouse): the pupil's turns too.
    knob = teacher.locator(".instrument-ruler .knob")
    kb = await knob.bounding_box()
    assert kb
    await teacher.mouse.move(kb["x"] + kb["width"] / 2, kb["y"] + kb["height"] / 2)
    await teacher.mouse.down()
    await teacher.mouse.move(kb["x"] + kb["width"] / 2, kb["y"] + kb["height"] / 2 - 120, steps=6)
    await teacher.mouse.up()
    ruler_angle = "() => window.__board.instruments.placed.find(i => i.kind === 'ruler').angle"
    angle = await teacher.evaluate(ruler_angle)
    assert 300 < angle < 359, angle
    await eventually(lambda: pupil.evaluate(ruler_angle), lambda v: v == angle)
    await teacher.get_by_role("button", name="Stylo").click()
    # Draw a wavy stroke starting just beside the turned ruler's edge (its body is on the
    # other side), going along it: every point lands on the edge.
    a = math.radians(angle)
    ux, uy, nx, ny = math.cos(a), math.sin(a), -math.sin(a), math.cos(a)
    x0, y0 = ruler["x"] + 100 * ux - 8 * nx, ruler["y"] + 100 * uy - 8 * ny
    x1, y1 = x0 + 500 * ux - 30 * nx, y0 + 500 * uy - 30 * ny
    await draw_stroke(teacher, (x0 / 1920, y0 / 1080), (x1 / 1920, y1 / 1080))
    line = (await items(teacher))[-1]["points"]
    off = [abs(-(px - ruler["x"]) * math.sin(a) + (py - ruler["y"]) * math.cos(a))
           for px, py in line]
    assert max(off) < 1.5, off  # straight along the ruler, waves or not
    await teacher.screenshot(path=SCREENSHOTS / "board-instruments-tbi.png")
    await pupil.screenshot(path=SCREENSHOTS / "board-instruments-phone.png")
    await teacher.get_by_role("button", name="Règle").click()  # put away
    await expect(pupil.locator(".instrument-ruler")).not_to_be_attached()
    await teacher.get_by_role("button", name="Rapporteur").click()

    # The compass: opened wider with the square handle on its pencil, then turned by its
    # knob: the pencil draws an arc, every point at the opening's distance from the needle.
    await teacher.get_by_role("button", name="Compas").click()
    await expect(pupil.locator(".instrument-compass")).to_be_attached()
    spread = await teacher.locator(".instrument-compass .spread").bounding_box()
    assert spread
    sx, sy = spread["x"] + spread["width"] / 2, spread["y"] + spread["height"] / 2
    await teacher.mouse.move(sx, sy)
    await teacher.mouse.down()
    await teacher.mouse.move(sx + 60, sy, steps=5)
    await teacher.mouse.up()
    compass = "() => window.__board.instruments.placed.find(i => i.kind === 'compass')"
    opened = await teacher.evaluate(compass)
    assert opened["size"] > 5 * 48 + 20, opened
    before = await item_count(teacher)
    kb = await teacher.locator(".instrument-compass .knob").bounding_box()
    assert kb
    cx, cy = await at(teacher, (opened["x"] / 1920, opened["y"] / 1080))
    kx, ky = kb["x"] + kb["width"] / 2, kb["y"] + kb["height"] / 2
    r = math.hypot(kx - cx, ky - cy)
    start = math.atan2(ky - cy, kx - cx)
    await teacher.mouse.move(kx, ky)
    await teacher.mouse.down()
    for k in range(1, 19):  # a quarter turn, clockwise on screen
        t = start + math.radians(5 * k)
        await teacher.mouse.move(cx + r * math.cos(t), cy + r * math.sin(t))
    await teacher.mouse.up()
    await expect(board(pupil)).to_have_attribute("data-item-count", str(before + 1))
    arc = (await items(pupil))[-1]["points"]
    radii = [math.hypot(x - opened["x"], y - opened["y"]) for x, y in arc]
    assert len(arc) > 60 and max(radii) - min(radii) < 1, (len(arc), min(radii), max(radii))
    assert abs(radii[0] - opened["size"]) < 1
    await teacher.screenshot(path=SCREENSHOTS / "board-compass-tbi.png")
    await teacher.get_by_role("button", name="Compas").click()

    # Pages: add two, reorder with thumbnails, delete one.
    for _ in range(2):
        await teacher.locator(".page-bar .menu > summary").click()
        await teacher.get_by_role("button", name="Page quadrillée").click()
    await expect(board(pupil)).to_have_attribute("data-page-count", "3")
    await teacher.get_by_role("button", name="Pages").click()
    dialog = teacher.get_by_role("dialog", name="Pages du tableau")
    await expect(dialog.locator(".page-thumb")).to_have_count(3)
    first = await teacher.evaluate("() => window.__board.pages[0].id")
    await dialog.get_by_role("button", name="Descendre la page 1").click()
    second = "() => window.__board.pages[1].id"
    await eventually(lambda: pupil.evaluate(second), lambda v: v == first)
    await check_accessibility(teacher)
    await teacher.screenshot(path=SCREENSHOTS / "board-pages-tbi.png")
    # The pupil's « Pages »: thumbnails to go to a page, nothing to move or delete.
    await pupil.get_by_role("button", name="Pages").click()
    p_dialog = pupil.get_by_role("dialog", name="Pages du tableau")
    await expect(p_dialog.locator(".page-thumb")).to_have_count(3)
    await expect(p_dialog.get_by_role("button", name=re.compile("Supprimer"))).to_have_count(0)
    await pupil.screenshot(path=SCREENSHOTS / "board-pages-phone.png")
    await p_dialog.get_by_role("button", name="Fermer").click()
    await dialog.get_by_role("button", name="Supprimer la page 3").click()
    await teacher.get_by_role("button", name="Supprimer", exact=True).click()
    await expect(board(pupil)).to_have_attribute("data-page-count", "2")
    # Go to the page with the ruler's stroke by its thumbnail (the panel closes).
    where = await teacher.evaluate("""() => window.__board.pages.findIndex(
      (p) => [...window.__board.items.values()].some((i) => i.page_id === p.id))""")
    await dialog.get_by_role("button", name=f"Aller à la page {where + 1}").click()
    await expect(dialog).to_be_hidden()
    await expect(teacher.locator(".page-counter")).to_have_text(f"Page {where + 1} sur 2")

    # Clear the page (asked first), then undo.
    n = await item_count(teacher)
    assert n >= 1
    await session_action(teacher, "Effacer la page")
    await teacher.get_by_role("button", name="Effacer la page").last.click()
    await expect(board(pupil)).to_have_attribute("data-item-count", "0")
    await teacher.keyboard.press("Control+z")
    await expect(board(pupil)).to_have_attribute("data-item-count", str(n))

    # End the session: asked first; the pupil sees « Terminé », read-only.
    await session_action(teacher, "Terminer la séance")
    await teacher.get_by_role("button", name="Terminer la séance").last.click()
    await expect(pupil.locator(".pen-badge")).to_have_text("Terminé · lecture seule")
    await expect(pupil.locator(".board-meta")).to_contain_text("Terminé")
    await expect(board(pupil)).to_have_attribute("data-can-draw", "false")
    await expect(board(teacher)).to_have_attribute("data-can-draw", "false")
    await expect(lock).to_be_disabled()
    await expect(teacher.get_by_role("button", name="Donner le stylet")).to_be_disabled()
    await expect(teacher.locator(".page-bar .menu")).to_be_hidden()
    await check_accessibility(pupil)
    await pupil.screenshot(path=SCREENSHOTS / "board-ended-phone.png")
    await teacher.screenshot(path=SCREENSHOTS / "board-ended-tbi.png")
    assert teacher.js_errors == [] and pupil.js_errors == []  # type: ignore[attr-defined]
    await s_context.close()
    await t_context.close()


async def test_resume_cards_show_real_dates_pages_and_thumbnails(
    browser: Browser,  # noqa: F811
    demo_server: str,
    demo_accounts: list[dict[str, Any]],
) -> None:
    base = demo_server
    cast = Cast(demo_accounts)
    older = await create_board(base, cast, "Cours de lundi")
    newer = await create_board(base, cast, "Cours d'aujourd'hui")
    status, _ = await upload(base, cast.teacher, newer, worksheet_pdf(2, "Fractions"))
    assert status == 201
    for viewport, name in ((TBI, "home-teacher-boards.png"), (PHONE, "home-boards-phone.png")):
        context, page = await new_page(browser, viewport)
        await log_in(page, base, cast.teacher)
        cards = page.locator(f".board-class:has-text('Classe {cast.class_name}') .board-row")
        await expect(cards.first).to_be_visible()
        ids = [int(x) for x in await cards.evaluate_all("els => els.map(e => e.dataset.boardId)")]
        assert ids.index(newer) < ids.index(older)  # newest first
        card = page.locator(f".board-row[data-board-id='{newer}']")
        await expect(card).to_contain_text(f"Classe {cast.class_name}")
        await expect(card).to_contain_text("3 pages")
        today = dt.datetime.now().astimezone().date()
        stamp = await card.locator("time").get_attribute("datetime")
        assert stamp and dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).date() in (
            today, today - dt.timedelta(days=1), today + dt.timedelta(days=1))
        assert "1970" not in stamp
        thumb = card.locator("img.board-thumb")
        await thumb.scroll_into_view_if_needed()  # loading="lazy": it loads once on screen
        await eventually(lambda t=thumb: t.evaluate("i => i.complete && i.naturalWidth"),
                         lambda v: v > 100)
        # The worksheet's first page, not the blank page 1: its blue band is in the picture.
        blue = await thumb.evaluate("""(img) => {
          const c = document.createElement('canvas');
          c.width = img.naturalWidth; c.height = img.naturalHeight;
          const g = c.getContext('2d');
          g.drawImage(img, 0, 0);
          const d = g.getImageData(c.width / 2, Math.round(c.height * 0.02), 1, 1).data;
          return [d[0], d[1], d[2]];
        }""")
        assert blue[2] > 150 and blue[0] < 100, blue
        await page.screenshot(path=SCREENSHOTS / name, full_page=True)
        assert page.js_errors == []  # type: ignore[attr-defined]
        await context.close()


LAYOUT = """() => {
  const bar = document.querySelector('.board-bar');
  const kids = [...bar.children].filter((el) => el.getBoundingClientRect().width > 0);
  const middles = kids.map((el) => {
    const r = el.getBoundingClientRect();
    return (r.top + r.bottom) / 2;
  });
  const spread = Math.max(...middles) - Math.min(...middles);
  const buttons = [...document.querySelectorAll('.board-tools button, .page-bar button, '
    + '.board-bar button, .board-bar summary, .page-bar summary')]
    .filter((b) => b.checkVisibility() && !b.closest('.menu-list'));
  const unreachable = [];
  for (const b of buttons) {
    // Only the tools may scroll (a row on a phone): the bars must fit as they are.
    if (b.closest('.board-tools')) b.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    const r = b.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    const named = b.getAttribute('title') || b.getAttribute('aria-label') || b.textContent.trim();
    if (!named) unreachable.push('unnamed ' + b.className);
    if (!b.contains(hit) || r.right > innerWidth + 1 || r.bottom > innerHeight + 1) {
      unreachable.push(named);
    }
  }
  return { rows: spread < 12 ? 1 : 2, spread,
           barHeight: bar.getBoundingClientRect().height, unreachable, count: buttons.length };
}"""


async def test_tbi_layout_laptop_and_phone(
    browser: Browser,  # noqa: F811
    demo_server: str,
    demo_accounts: list[dict[str, Any]],
) -> None:
    base = demo_server
    cast = Cast(demo_accounts)
    board_id = await create_board(base, cast, "Cours du 4 décembre – 5e B — Théorème de Pythagore")
    context, page = await open_board(browser, base, cast.teacher, board_id, TBI, has_touch=True)
    got = await page.evaluate(LAYOUT)
    assert got["rows"] == 1 and got["barHeight"] < 100, got  # the header does not wrap
    assert got["unreachable"] == [] and got["count"] > 30, got
    await check_accessibility(page)
    # A tool touched with a finger shows its name (no hover on a TBI).
    await page.get_by_role("button", name="Rapporteur").tap()
    await expect(page.locator(".touch-tip")).to_have_text("Rapporteur")
    # The protractor, dragged with a finger (real touch events), moves for the class.
    where = "() => window.__board.instruments.placed.find(i => i.kind === 'protractor')"
    # The instruments' code loads on first use (board/instruments-lazy.js): wait for it.
    await expect(page.locator(".instrument-protractor")).to_be_attached()
    before = await page.evaluate(where)
    body = await page.locator(".instrument-protractor .body").bounding_box()
    assert body
    x, y = body["x"] + body["width"] / 2, body["y"] + body["height"] * 0.6
    cdp = await context.new_cdp_session(page)
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchStart",
                                                "touchPoints": [{"x": x, "y": y}]})
    for k in range(1, 11):
        await cdp.send("Input.dispatchTouchEvent", {
            "type": "touchMove", "touchPoints": [{"x": x - 12 * k, "y": y + 6 * k}]})
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    after = await page.evaluate(where)
    scale = 1920 / (await page.locator(".board-sheet").bounding_box() or {"width": 1920})["width"]
    assert abs((before["x"] - after["x"]) - 120 * scale) < 4, (before, after)
    assert abs((after["y"] - before["y"]) - 60 * scale) < 4, (before, after)
    assert await item_count(page) == 0  # the finger moved the instrument, drew nothing
    for viewport in (LAPTOP, PHONE):
        await page.set_viewport_size(viewport)
        await page.wait_for_timeout(200)
        got = await page.evaluate(LAYOUT)
        assert got["unreachable"] == [], (viewport, got)
        if viewport == LAPTOP:
            assert got["rows"] == 1, got
            await page.screenshot(path=SCREENSHOTS / "board-laptop.png")
        else:
            await page.screenshot(path=SCREENSHOTS / "board-teacher-phone.png")
    assert page.js_errors == []  # type: ignore[attr-defined]
    await context.close()

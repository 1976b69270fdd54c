"""The messagerie and the board's chat panel in real headless Chromium, against a real server
whose chat clock stands at 10:00 in Paris (quiet hours never depend on when CI runs)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from tests.browser.test_home_page import (  # the same Chromium, the same helpers
    AXE,
    PHONE,
    SCREENSHOTS,
    browser,  # noqa: F401 (a fixture)
    log_in,
    new_page,
)
from tests.chat.conftest import (  # noqa: F401 (cast and chat_server are fixtures)
    Cast,
    ChatClient,
    ChatServer,
    cast,
    chat_server,
)
from tests.conftest import login, token_for, user_id

pytestmark = pytest.mark.browser
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


async def axe_violations(page: Page) -> list[str]:
    # Evaluated by the DevTools protocol: an injected <script> would be inline script, which
    # the pages' Content-Security-Policy refuses (realtime/headers.py).
    await page.evaluate("(src) => { (0, eval)(src); }", AXE.read_text())
    return await page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: 'tag',
               values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations
             .map(v => `${v.id}: ${v.help} — ${v.nodes.map(n => n.target).join(' ')}`)""")


async def test_parent_and_teacher_talk_through_the_messagerie(
        browser: Browser, chat_server: ChatServer, cast: Cast, tmp_path: Path  # noqa: F811
) -> None:
    base = chat_server.base
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context, parent = await new_page(browser)
    await log_in(parent, base, cast.parent)
    await parent.get_by_role("link", name="Messagerie").click()
    await expect(parent.get_by_role("heading", name="Messagerie", level=1)).to_be_visible()
    await parent.get_by_role("link", name="Nouveau message").click()
    # Only people the policy allows are offered: the child's teachers, the CPE, the office.
    picks = parent.locator(".dest-list")
    await expect(picks).to_contain_text(cast.teacher["name"])
    await expect(picks).to_contain_text(cast.cpe["name"])
    await expect(picks).not_to_contain_text(cast.other_parent["name"])
    await expect(picks).not_to_contain_text(cast.bob["name"])
    await parent.get_by_label("Filtrer les destinataires").fill(cast.teacher["name"].split()[0])
    await parent.get_by_role("radio", name=cast.teacher["name"]).check()
    await parent.get_by_label("Message", exact=True).fill("Bonjour, mon enfant sera absent jeudi.")
    doc = tmp_path / "certificat.pdf"
    doc.write_bytes(PDF)
    await parent.get_by_label("Pièces jointes", exact=False).set_input_files(str(doc))
    await expect(parent.locator(".compose-form .chip")).to_have_text("certificat.pdf")
    await parent.get_by_role("button", name="Envoyer").click()
    thread = parent.locator(".thread")
    await expect(thread.locator(".msg-body").first).to_have_text(
        "Bonjour, mon enfant sera absent jeudi.")
    await expect(thread.get_by_role("link", name="certificat.pdf", exact=False)).to_be_visible()
    assert await axe_violations(parent) == []
    await parent.screenshot(path=SCREENSHOTS / "messagerie-parent.png")

    # The teacher, on a phone: an unread badge at home and in the list, then the thread.
    tcontext, teacher = await new_page(browser, viewport=PHONE)
    await log_in(teacher, base, cast.teacher)
    await expect(teacher.locator(".messages-link .badge")).to_have_text("1")
    await teacher.get_by_role("link", name="Messagerie").click()
    row = teacher.locator(".conv").first
    await expect(row.locator(".badge")).to_have_text("1")
    await teacher.screenshot(path=SCREENSHOTS / "messagerie-phone-list.png")
    await row.click()
    await expect(teacher.locator(".msg-body").first).to_contain_text("absent jeudi")
    box = await teacher.get_by_label("Votre message").bounding_box()
    assert box is not None and box["width"] > 0.8 * PHONE["width"]  # the whole width to type
    await teacher.get_by_label("Votre message").fill("Bien noté, merci.")
    await teacher.get_by_role("button", name="Envoyer").click()
    # Live on the parent's open thread, with the teacher's name.
    await expect(thread.locator(".msg").last).to_contain_text("Bien noté, merci.")
    await expect(thread.locator(".msg").last).to_contain_text(cast.teacher["name"])
    await teacher.screenshot(path=SCREENSHOTS / "messagerie-phone-thread.png")
    # The parent sees that the teacher has the conversation open (presence): « en ligne ».
    here = thread.locator(".thread-people .is-online")
    await expect(here).to_have_count(1)
    await expect(here).to_contain_text(cast.teacher["name"])
    await expect(here.locator(".online-dot")).to_have_attribute(
        "title", "Consulte la conversation en ce moment")
    await parent.screenshot(path=SCREENSHOTS / "messagerie-en-ligne.png")
    assert parent.js_errors == [] and teacher.js_errors == []  # type: ignore[attr-defined]
    await tcontext.close()
    await expect(here).to_have_count(0)  # the teacher's page is gone: no longer online here
    await context.close()


async def test_information_asks_for_an_acknowledgement(
        browser: Browser, chat_server: ChatServer, cast: Cast  # noqa: F811
) -> None:
    base = chat_server.base
    staff = await ChatClient(base, await token_for(base, cast.staff)).connect()
    try:
        parent_id = await user_id(base, cast.parent)
        made = await staff.ok("create", {"kind": "information", "title": "Sortie scolaire",
                                         "members": [parent_id],
                                         "body": "Sortie au musée le 12 : autorisation requise."})
    finally:
        await staff.close()
    context, page = await new_page(browser)
    await log_in(page, base, cast.parent)
    await page.goto(f"{base}/#/messages/{made['conversation_id']}")
    await expect(page.locator(".msg-body")).to_contain_text("Sortie au musée")
    await expect(page.locator(".thread-closed")).to_contain_text("accusez-en réception")
    await page.get_by_role("button", name="Accuser réception").click()
    await expect(page.locator(".ack-done")).to_have_text("✓ Réception accusée")
    await page.screenshot(path=SCREENSHOTS / "messagerie-information.png")
    await context.close()


async def test_board_chat_panel(browser: Browser, chat_server: ChatServer,  # noqa: F811
                                cast: Cast) -> None:  # noqa: F811
    base = chat_server.base
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, cast.teacher)
        async with s.get(f"{base}/api/classes") as r:
            class_id = next(c["id"] for c in (await r.json())["classes"]
                            if c["name"] == cast.class_name)
        async with s.post(f"{base}/api/boards", json={"title": "Fractions",
                                                      "class_id": class_id}) as r:
            board_id = (await r.json())["id"]
    scontext, student = await new_page(browser)
    await log_in(student, base, cast.alice)
    await student.goto(f"{base}/#/boards/{board_id}")
    await student.get_by_text("Questions", exact=True).click()
    await student.get_by_label("Votre question").fill("Comment simplifier 6/8 ?")
    await student.get_by_role("button", name="Envoyer").click()
    await expect(student.locator(".board-chat .msg-body")).to_have_text("Comment simplifier 6/8 ?")
    tcontext, teacher = await new_page(browser)
    await log_in(teacher, base, cast.teacher)
    await teacher.goto(f"{base}/#/boards/{board_id}")
    await teacher.get_by_text("Questions", exact=True).click()
    panel = teacher.locator(".board-chat")
    await expect(panel.locator(".msg")).to_contain_text(cast.alice["name"])
    await panel.get_by_role("button", name="Fermer les questions").click()
    await expect(student.locator(".board-chat .thread-closed")).to_have_text(
        "Conversation fermée.")
    await teacher.screenshot(path=SCREENSHOTS / "board-chat.png")
    assert student.js_errors == [] and teacher.js_errors == []  # type: ignore[attr-defined]
    await scontext.close()
    await tcontext.close()




async def report_a_message(base: str, cast: Cast) -> int:  # noqa: F811
    """The teacher writes « Texte déplacé » to a group; Alice reports it (« Pas correct »)."""
    teacher = await ChatClient(base, await token_for(base, cast.teacher)).connect()
    alice = await ChatClient(base, await token_for(base, cast.alice)).connect()
    try:
        ids = [await user_id(base, a) for a in (cast.alice, cast.bob)]
        conv = (await teacher.ok("create", {"kind": "group", "title": "Classe", "members": ids,
                                            "body": "Texte déplacé"}))["conversation_id"]
        msg = (await alice.ok("history", {"conversation_id": conv}))["messages"][0]["id"]
        await alice.ok("report", {"message_id": msg, "reason": "Pas correct"})
    finally:
        await teacher.close()
        await alice.close()
    return int(msg)


async def open_reports(browser: Browser, base: str, cast: Cast  # noqa: F811
                       ) -> tuple[BrowserContext, Page, Locator]:
    """The CPE's messagerie open on « Messages signalés »: (context, page, its corner)."""
    context, cpe = await new_page(browser)
    await log_in(cpe, base, cast.cpe)
    await cpe.goto(f"{base}/#/messages")
    await cpe.get_by_text("Messages signalés").click()
    return context, cpe, cpe.locator(".school-corner")


async def test_school_team_corner(browser: Browser, chat_server: ChatServer,  # noqa: F811
                                  cast: Cast) -> None:  # noqa: F811
    base = chat_server.base
    # A pupil reports a message in a group; the CPE finds it in « Messages signalés ».
    await report_a_message(base, cast)
    context, _cpe, corner = await open_reports(browser, base, cast)
    await expect(corner).to_contain_text("Texte déplacé")
    await expect(corner).to_contain_text("Motif : Pas correct")
    await context.close()
    # The administration changes the school's hours; the API answers with the new rules.
    context, staff = await new_page(browser)
    await log_in(staff, base, cast.staff)
    await staff.goto(f"{base}/#/messages")
    await staff.get_by_text("Règles de la messagerie").click()
    await staff.get_by_label("Fin des échanges").fill("18:30")
    await staff.get_by_role("button", name="Enregistrer").click()
    await expect(staff.locator(".chat-notice")).to_have_text("Règles enregistrées.")
    school_id = (await (await staff.request.get(f"{base}/api/me")).json())["user"]["school_id"]
    rules = await (await staff.request.get(f"{base}/api/chat/settings/{school_id}")).json()
    assert rules["day_end_min"] == 18 * 60 + 30 and rules["day_start_min"] == 7 * 60
    await staff.screenshot(path=SCREENSHOTS / "messagerie-staff-rules.png")
    await context.close()


async def test_cpe_marks_a_report_handled_then_reopens_it(
        browser: Browser, chat_server: ChatServer, cast: Cast) -> None:  # noqa: F811
    base = chat_server.base
    msg = await report_a_message(base, cast)
    context, cpe, corner = await open_reports(browser, base, cast)
    await expect(corner.locator(".report-open")).to_contain_text("Texte déplacé")
    await expect(corner.get_by_role("heading", name="Traités")).to_have_count(0)
    first = await corner.locator(".report-open").get_attribute("data-report-id")
    await corner.get_by_label("Note (facultative)").fill("Élève averti, parents prévenus")
    # Another report arrives while the CPE writes: the list follows, the note stays.
    bob = await ChatClient(base, await token_for(base, cast.bob)).connect()
    try:
        await bob.ok("report", {"message_id": msg, "reason": "Propos déplacés"})
    finally:
        await bob.close()
    await expect(corner.locator(".report-open")).to_have_count(2)
    note = corner.locator(f"#report-note-{first}")
    await expect(note).to_have_value("Élève averti, parents prévenus")
    await corner.locator(f'.report-open[data-report-id="{first}"]').get_by_role(
        "button", name="Marquer comme traité").click()
    await expect(corner.get_by_role("heading", name="Traités")).to_be_visible()
    # The message is handled: both of its reports move to « Traités ».
    done = corner.locator(".report-handled")
    await expect(done).to_have_count(2)
    await expect(done.first).to_contain_text(f"Traité par {cast.cpe['name']} le ")
    await expect(done.first).to_contain_text("Note : Élève averti, parents prévenus")
    await expect(corner.locator(".report-open")).to_have_count(0)
    assert await axe_violations(cpe) == []
    await cpe.screenshot(path=SCREENSHOTS / "messagerie-cpe-report-handled.png")
    # Reopened through the API by another device: the open corner follows live.
    token = await token_for(base, cast.cpe)
    async with aiohttp.ClientSession() as s, s.post(
            f"{base}/api/chat/reports/{first}/handle", json={"handled": False},
            headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200
    await expect(corner.locator(".report-open")).to_have_count(2)
    await expect(corner.get_by_role("heading", name="Traités")).to_have_count(0)
    # And « Rouvrir » in the page does the same after handling again.
    await corner.get_by_role("button", name="Marquer comme traité").first.click()
    await expect(done).to_have_count(2)
    await corner.get_by_role("button", name="Rouvrir").first.click()
    await expect(corner.locator(".report-open")).to_have_count(2)
    await expect(cpe.locator(".chat-notice")).to_have_text("Signalement rouvert.")
    assert cpe.js_errors == []  # type: ignore[attr-defined]
    await context.close()

"""« Lu » under one's messages, acknowledgements by name, class distribution lists, the quiet
hours' own refusal, a report's outcome for its reporter and the phone layout — in real
headless Chromium against a real server (chat clock at 10:00 in Paris unless moved)."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from tests.browser.test_home_page import (  # the same Chromium, the same helpers
    PHONE,
    SCREENSHOTS,
    browser,  # noqa: F401 (a fixture)
    log_in,
    new_page,
)
from tests.browser.test_messages_page import axe_violations
from tests.chat.conftest import (  # noqa: F401 (cast and chat_server are fixtures)
    Cast,
    ChatClient,
    ChatServer,
    cast,
    chat_server,
    hurtful_message,
    paris,
)
from tests.conftest import token_for, user_id

pytestmark = pytest.mark.browser


async def test_lu_appears_live_under_my_messages(
        browser: Browser, chat_server: ChatServer, cast: Cast  # noqa: F811
) -> None:
    base = chat_server.base
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    ids = [await user_id(base, a) for a in (cast.alice, cast.bob)]
    # The teacher opens a group for Alice and Bob in the messagerie…
    context, teacher = await new_page(browser)
    await log_in(teacher, base, cast.teacher)
    setup = await ChatClient(base, await token_for(base, cast.teacher)).connect()
    try:
        conv = (await setup.ok("create", {"kind": "group", "title": "Exposé sur les volcans",
                                          "members": ids, "body": "Qui présente lundi ?"}))[
            "conversation_id"]
    finally:
        await setup.close()
    await teacher.goto(f"{base}/#/messages/{conv}")
    status = teacher.locator(".msg-mine .msg-status").first
    await expect(status.locator(".read-state")).to_have_text("✓ Envoyé, pas encore lu")
    # …Alice reads it on her phone: « Lu par Alice » appears on the teacher's screen, live.
    acontext, alice = await new_page(browser, viewport=PHONE)
    await log_in(alice, base, cast.alice)
    # At home on the phone, the unread badge sits inside the « Messagerie » button.
    badge = alice.locator(".messages-link .badge")
    await expect(badge).to_have_text("1")
    # Both boxes read in one go: the home page may still move (a line above it appearing)
    # between two separate reads.
    link_box, badge_box = await alice.locator(".messages-link").evaluate(
        """el => [el, el.querySelector('.badge')].map((e) => {
             const r = e.getBoundingClientRect();
             return {x: r.x, y: r.y, width: r.width, height: r.height};
           })""")
    assert link_box["y"] <= badge_box["y"] and (
        badge_box["y"] + badge_box["height"] <= link_box["y"] + link_box["height"])
    assert badge_box["x"] + badge_box["width"] <= link_box["x"] + link_box["width"]
    await alice.screenshot(path=SCREENSHOTS / "home-student-phone-badge.png",
                           clip={"x": 0, "y": 0, "width": PHONE["width"], "height": 300})
    await alice.goto(f"{base}/#/messages/{conv}")
    await expect(alice.locator(".msg-body").first).to_have_text("Qui présente lundi ?")
    await expect(status.locator(".read-state")).to_have_text(
        f"✓✓ Lu par {cast.alice['name']} (1/2)")
    await status.get_by_text("Qui l’a lu ?").click()
    rows = status.locator(".receipts-list li")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text(f"{cast.alice['name']} — lu le ")
    await expect(rows.nth(1)).to_have_text(f"{cast.bob['name']} — pas encore lu")
    # Bob too, then everyone has read it (the open list refreshes itself).
    bob = await ChatClient(base, await token_for(base, cast.bob)).connect()
    try:
        head = (await bob.ok("history", {"conversation_id": conv}))["head"]
        await bob.ok("read", {"conversation_id": conv, "seq": head})
    finally:
        await bob.close()
    await expect(status.locator(".read-state")).to_have_text("✓✓ Lu par tous")
    await expect(status.locator(".receipts-list")).to_contain_text(f"{cast.bob['name']} — lu le ")
    await expect(status.locator(".receipts-list")).not_to_contain_text("pas encore lu")
    assert await axe_violations(teacher) == []
    await teacher.screenshot(path=SCREENSHOTS / "messagerie-lu.png")
    # The phone: the composer's buttons stay on screen, beside each other.
    send = alice.get_by_role("button", name="Envoyer")
    box = await send.bounding_box()
    attach = await alice.locator(".composer .attach").bounding_box()
    assert box is not None and attach is not None
    assert box["y"] + box["height"] <= PHONE["height"] and abs(box["y"] - attach["y"]) < 4
    await alice.screenshot(path=SCREENSHOTS / "messagerie-phone-composer.png")
    assert teacher.js_errors == [] and alice.js_errors == []  # type: ignore[attr-defined]
    await acontext.close()
    await context.close()


async def test_teacher_writes_to_the_parents_of_a_class_and_sees_who_acknowledged(
        browser: Browser, chat_server: ChatServer, cast: Cast  # noqa: F811
) -> None:
    base = chat_server.base
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context, teacher = await new_page(browser)
    await log_in(teacher, base, cast.teacher)
    await teacher.goto(f"{base}/#/messages/new")
    label = f"Parents des élèves de {cast.class_name}"
    await teacher.get_by_role("checkbox", name=label).check()
    await expect(teacher.get_by_label("Type")).to_have_value("information")
    # A role reads « · CPE (vie scolaire) », never « (CPE (vie scolaire)) ».
    people = teacher.locator(".dest-list")
    await expect(people).to_contain_text(f"{cast.cpe['name']} · CPE (vie scolaire)")
    await expect(people).not_to_contain_text("((")
    await teacher.get_by_label("Message", exact=True).fill(
        "Réunion parents-professeurs jeudi 18 h.")
    await teacher.screenshot(path=SCREENSHOTS / "messagerie-liste-diffusion.png", full_page=True)
    await teacher.get_by_role("button", name="Envoyer").click()
    await expect(teacher.locator(".thread-title")).to_have_text(label)
    await expect(teacher.locator(".ack-count")).to_contain_text("Accusés de réception : 0/")
    parent = await ChatClient(base, await token_for(base, cast.parent)).connect()
    try:
        conv = next(c for c in parent.received["welcome"][0]["conversations"]
                    if c["title"] == label)
        msg = (await parent.ok("history", {"conversation_id": conv["id"]}))["messages"][0]
        await parent.ok("ack", {"message_id": msg["id"]})
    finally:
        await parent.close()
    await expect(teacher.locator(".ack-count")).to_contain_text(f"— {cast.parent['name']}")
    await teacher.get_by_text("Qui a lu, qui a accusé réception ?").click()
    await expect(teacher.locator(".receipts-list")).to_contain_text(
        f"{cast.parent['name']} — lu le ")
    await expect(teacher.locator(".receipts-list")).to_contain_text("réception accusée le ")
    await teacher.screenshot(path=SCREENSHOTS / "messagerie-accuses.png")
    assert teacher.js_errors == []  # type: ignore[attr-defined]
    await context.close()


async def test_quiet_hours_and_a_reports_outcome_on_a_phone(
        browser: Browser, chat_server: ChatServer, cast: Cast  # noqa: F811
) -> None:
    base = chat_server.base
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # After 20:00 the parent is told why nobody is offered, and when it opens again.
    chat_server.clock.set(paris(21, 30))
    context, parent = await new_page(browser, viewport=PHONE)
    await log_in(parent, base, cast.parent)
    await parent.goto(f"{base}/#/messages/new")
    await expect(parent.locator(".quiet-note")).to_have_text(
        "Les familles et les élèves écrivent à l'établissement de 7 h à 20 h. Vous pourrez"
        " écrire demain à partir de 7 h ; une conversation déjà ouverte reste possible.")
    await parent.screenshot(path=SCREENSHOTS / "messagerie-heures-echange.png")
    # In the daytime, the same form on the phone: each box beside its name, nothing wider
    # than the screen.
    chat_server.clock.set(paris(10))
    await parent.goto(f"{base}/#/messages")
    await parent.goto(f"{base}/#/messages/new")
    pick = parent.get_by_role("radio", name=cast.teacher["name"])
    await expect(pick).to_be_visible()
    radio = await pick.bounding_box()
    name = await parent.locator(".dest-list label", has_text=cast.teacher["name"]).bounding_box()
    assert radio is not None and name is not None
    assert radio["width"] < 40 and radio["y"] >= name["y"] and (
        radio["y"] + radio["height"] <= name["y"] + name["height"])
    assert await parent.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await parent.screenshot(path=SCREENSHOTS / "messagerie-phone-compose.png")
    await context.close()

    # A pupil reports a message; the CPE handles it; the pupil's page says so, live.
    msg_id, teacher, alice_sock, bob = await hurtful_message(chat_server, _connect(base), cast)
    acontext, alice = await new_page(browser, viewport=PHONE)
    await log_in(alice, base, cast.alice)
    await alice.goto(f"{base}/#/messages")
    await expect(alice.locator(".conv").first).to_be_visible()
    await alice_sock.ok("report", {"message_id": msg_id, "reason": "Insulte"})
    cpe_token = await token_for(base, cast.cpe)
    async with aiohttp.ClientSession() as s:
        headers = {"Authorization": f"Bearer {cpe_token}"}
        async with s.get(f"{base}/api/chat/reports", headers=headers) as r:
            report_id = (await r.json())["reports"][0]["id"]
        async with s.post(f"{base}/api/chat/reports/{report_id}/handle", json={},
                          headers=headers) as r:
            assert r.status == 200
    outcome = alice.locator(".outcome")
    await expect(outcome).to_contain_text("La vie scolaire a traité votre signalement du message")
    await alice.screenshot(path=SCREENSHOTS / "messagerie-signalement-traite.png")
    await outcome.get_by_role("button", name="Compris").click()
    await expect(outcome).to_have_count(0)
    await alice.reload()  # seen: it does not come back
    await expect(alice.locator(".conv").first).to_be_visible()
    await expect(alice.locator(".outcome")).to_have_count(0)
    # The list on a phone: the unread badge sits at the end of the title's line.
    row = alice.locator(".conv").first
    title = await row.locator(".conv-title").bounding_box()
    badge = await row.locator(".badge").bounding_box()
    assert title is not None and badge is not None
    assert abs((badge["y"] + badge["height"] / 2) - (title["y"] + title["height"] / 2)) < 6
    assert badge["x"] + badge["width"] <= PHONE["width"]
    await alice.screenshot(path=SCREENSHOTS / "messagerie-phone-list-groupe.png")
    for client in (teacher, alice_sock, bob):
        await client.close()
    assert alice.js_errors == []  # type: ignore[attr-defined]
    await acontext.close()


def _connect(base: str):  # type: ignore[no-untyped-def]
    async def connect(acct):  # type: ignore[no-untyped-def]
        return await ChatClient(base, await token_for(base, acct)).connect()
    return connect

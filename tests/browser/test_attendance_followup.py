"""Issue 19 in real headless Chromium against a real server with the demo data and the
server's attendance clock set (no sleeping): a forgotten roll reaches the CPE's dashboard
and the teacher's page; a parent proposes a reason with a photo of the certificate on a
phone and the CPE accepts it; a correction after validation needs a reason and shows in the
roll's history; the parent's feed keeps older unread notices after a reconnection.
Screenshots go to docs/screenshots/ (REALTIME_SCREENSHOTS=1)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from realtime import keys
from tests.attendance.conftest import (  # noqa: F401 (att_app is a fixture)
    PARIS,
    Cast,
    att_app,
    recent_slot,
)
from tests.browser.test_home_page import (  # the same Chromium, the same helpers
    PHONE,
    SCREENSHOTS,
    browser,  # noqa: F401 (a fixture)
    check_accessibility,
    log_in,
    new_page,
)

pytestmark = pytest.mark.browser
# A PNG's first bytes, then padding: what a phone's photo starts with.
PHOTO = b"\x89PNG\r\n\x1a\n" + bytes(2048)


def at(day: str, hm: str) -> float:
    h, m = map(int, hm.split(":"))
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(h, m), PARIS).timestamp()


async def test_forgotten_roll_reaches_the_cpe_and_the_teacher(
        browser: Browser, att_app: Any, demo_accounts: list[dict[str, Any]]) -> None:  # noqa: F811
    base, app = await att_app()
    cast = Cast(demo_accounts)
    slot, day = await recent_slot(base, cast.teacher, cast.class_name)
    hub = app[keys.ATTENDANCE]
    hub.ctx.clock = lambda: at(day, slot["start"]) + 5 * 60  # 5 minutes in: nothing yet
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    cpe_ctx, cpe = await new_page(browser)
    await log_in(cpe, base, cast.cpe)
    await cpe.goto(f"{base}/#/vie-scolaire?date={day}")
    watch = cpe.get_by_role("region", name="Appels en retard ou non validés")
    row = cpe.locator(f'tr[data-slot-id="{slot["id"]}"]')
    await expect(row).to_have_attribute("data-state", "todo")
    await expect(watch.locator(f'[data-slot-id="{slot["id"]}"]')).to_have_count(0)

    teacher_ctx, teacher = await new_page(browser, PHONE, is_mobile=True, has_touch=True)
    await log_in(teacher, base, cast.teacher)
    await teacher.goto(f"{base}/#/?date={day}")
    await expect(teacher.get_by_role("heading", name="Appels du jour")).to_be_visible()
    await expect(teacher.locator('.roll-reminders[data-live="true"]')).to_have_count(1)

    # Ten minutes after the start, the minute's background work runs: the roll is late.
    hub.ctx.clock = lambda: at(day, slot["start"]) + 10 * 60
    await hub.dashboard.send_reminders()
    late = watch.locator(f'[data-slot-id="{slot["id"]}"]')
    await expect(late).to_contain_text("non commencé")
    await expect(late).to_contain_text(cast.teacher["name"])
    await expect(row.locator(".overdue-badge")).to_have_text("En retard")
    # (The day's earlier rolls, never validated, are reminded too: « non validé ».)
    reminder = teacher.locator('.roll-reminders .alert[data-kind="not_started"]').filter(
        has_text=f"L'appel de {slot['start']}")
    await expect(reminder).to_contain_text("n'est pas encore fait")
    await expect(reminder).not_to_contain_text("salle Salle")

    # The teacher opens it but leaves it « en cours »: a second reminder, and the CPE's
    # list says so, live.
    await reminder.get_by_role("link", name="Faire l'appel").tap()
    await expect(teacher.locator(".roll-meta")).to_contain_text("En cours")
    await expect(late).to_have_count(0)  # opened: no longer « non commencé »
    hub.ctx.clock = lambda: at(day, slot["start"]) + 20 * 60
    await hub.dashboard.send_reminders()
    await expect(late).to_contain_text("en cours, non validé")
    await check_accessibility(cpe)
    await watch.screenshot(path=SCREENSHOTS / "vie-scolaire-appel-oublie.png")
    for page in (cpe, teacher):
        assert page.js_errors == []  # type: ignore[attr-defined]
    for ctx in (cpe_ctx, teacher_ctx):
        await ctx.close()


async def test_parent_certificate_accepted_by_the_cpe(
        browser: Browser, att_app: Any, demo_accounts: list[dict[str, Any]]) -> None:  # noqa: F811
    base, app = await att_app()
    cast = Cast(demo_accounts)
    slot, day = await recent_slot(base, cast.teacher, cast.class_name)
    app[keys.ATTENDANCE].ctx.clock = lambda: at(day, slot["start"]) + 15 * 60
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    # An earlier absence the parent has not read yet, then the parent's phone follows the
    # feed (it keeps its position), then goes away.
    teacher_ctx, teacher = await new_page(browser)
    await log_in(teacher, base, cast.teacher)

    async def take_roll(absent: bool) -> None:
        await teacher.goto(f"{base}/#/appel?slot={slot['id']}&date={day}")
        await teacher.get_by_role("button", name="Tous présents").click()
        await expect(teacher.locator(".roll-counts")).not_to_contain_text("sans marque")
        if absent:
            toggle = teacher.locator(".student-row").filter(
                has_text=cast.student["name"]).locator(".student-toggle")
            await toggle.click()
            await expect(teacher.locator(".roll-counts")).to_contain_text("1 absent·e,")
        await teacher.get_by_role("button", name="Valider l'appel").click()
        await expect(teacher.locator(".roll-message")).to_contain_text(
            "Appel validé", timeout=15_000)

    parent_ctx, parent = await new_page(browser, PHONE, is_mobile=True, has_touch=True)
    await log_in(parent, base, cast.guardians[0])
    await parent.goto(f"{base}/#/absences")
    await expect(parent.get_by_text("Aucune notification non lue")).to_be_visible()
    await parent.goto(f"{base}/#/")  # away: the page's position is kept on the phone
    await take_roll(absent=True)

    cpe_ctx, cpe = await new_page(browser)
    await log_in(cpe, base, cast.cpe)
    await cpe.goto(f"{base}/#/vie-scolaire?date={day}")
    pending = cpe.locator(".pending").filter(has_text=cast.student["name"])
    await expect(pending).to_contain_text("Sans motif")

    # Back on the phone: the notice is there and counted; a reason and a photo are sent.
    await parent.goto(f"{base}/#/absences")
    notice = parent.locator(".notice-item").filter(has_text=cast.student["name"]).first
    await expect(notice).to_contain_text("absent")
    await expect(parent.get_by_text("1 notification non lue")).to_be_visible()
    await expect(parent.locator(".event-list li").first).to_contain_text("Sans motif")
    await notice.get_by_role("combobox").select_option("maladie")
    await notice.get_by_label("Justificatif (photo ou PDF, facultatif)").set_input_files(
        files=[{"name": "certificat.png", "mimeType": "image/png", "buffer": PHOTO}])
    precision = notice.get_by_label("Précision (facultatif)")
    await precision.fill("Fièvre, vu le médecin")
    await precision.press("Enter")  # sends the form, as the button does
    event = parent.locator(".event-list li").first
    await expect(event).to_contain_text("Motif à traiter")
    await expect(event).to_contain_text("justificatif joint : certificat.png")
    wide = await parent.evaluate(
        """() => [...document.querySelectorAll('body *')]
             .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth)
             .map(el => el.tagName + '.' + el.className + ' ' + Math.round(
               el.getBoundingClientRect().right))""")
    assert wide == [], "\n".join(wide)  # no horizontal overflow on a phone
    await parent.screenshot(path=SCREENSHOTS / "parent-justificatif-phone.png", full_page=True)

    # The CPE's « Absences à traiter » shows the proposal live, with the certificate.
    await expect(pending).to_contain_text(f"{cast.guardians[0]['name']} propose « Maladie de "
                                          "l'enfant » : « Fièvre, vu le médecin »")
    doc = pending.get_by_role("link", name="Justificatif : certificat.png")
    href = await doc.get_attribute("href")
    got = await cpe.request.get(f"{base}{href}")
    assert got.status == 200 and await got.body() == PHOTO
    await pending.get_by_label(f"Commentaire de la décision pour {cast.student['name']}").fill(
        "Certificat reçu")
    await check_accessibility(cpe)
    await cpe.get_by_role("region", name="Absences à traiter").screenshot(
        path=SCREENSHOTS / "vie-scolaire-justificatif.png")
    await pending.get_by_role("button", name="Accepter").click()
    await expect(pending).to_have_count(0)

    # The parent hears of the decision, with the CPE's comment; the record says accepted.
    decision = parent.locator(".notice-item").filter(has_text="Motif accepté")
    await expect(decision).to_contain_text("Certificat reçu")
    await expect(parent.locator(".event-list li").first).to_contain_text(
        "Motif accepté par la vie scolaire")
    await check_accessibility(parent)
    for page in (teacher, parent, cpe):
        assert page.js_errors == []  # type: ignore[attr-defined]
    for ctx in (teacher_ctx, parent_ctx, cpe_ctx):
        await ctx.close()


async def test_a_correction_shows_in_the_history(
        browser: Browser, att_app: Any, demo_accounts: list[dict[str, Any]]) -> None:  # noqa: F811
    base, app = await att_app()
    cast = Cast(demo_accounts)
    slot, day = await recent_slot(base, cast.teacher, cast.class_name)
    app[keys.ATTENDANCE].ctx.clock = lambda: at(day, slot["start"]) + 15 * 60
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    teacher_ctx, teacher = await new_page(browser)
    await log_in(teacher, base, cast.teacher)
    await teacher.goto(f"{base}/#/appel?slot={slot['id']}&date={day}")
    await teacher.get_by_role("button", name="Tous présents").click()
    await expect(teacher.locator(".roll-counts")).not_to_contain_text("sans marque")
    row = teacher.locator(".student-row").filter(has_text=cast.student["name"])
    await row.locator(".student-toggle").click()
    await expect(row.locator(".student-toggle")).to_have_attribute("data-state", "absent")
    await teacher.get_by_role("button", name="Valider l'appel").click()
    await expect(teacher.locator(".roll-meta")).to_contain_text("Validé")

    # The pupil arrives with a note: a correction needs its reason first.
    reason = teacher.get_by_label("Motif de la correction (obligatoire)")
    await expect(reason).to_be_visible()
    await row.get_by_label(f"Autre marque pour {cast.student['name']}").select_option("late")
    await expect(teacher.get_by_role("alert")).to_contain_text("Indiquez le motif")
    await expect(row.locator(".student-toggle")).to_have_attribute("data-state", "absent")
    await reason.fill("Arrivé à 8 h 25 avec un mot du bus")
    await row.get_by_label(f"Autre marque pour {cast.student['name']}").select_option("late")
    await expect(row.locator(".student-toggle")).to_have_attribute("data-state", "late")

    await teacher.get_by_role("button", name="Historique de l'appel").click()
    history = teacher.get_by_role("region", name="Historique de l'appel")
    line = history.locator("li.with-reason").filter(has_text=cast.student["name"])
    await expect(line).to_contain_text("Absent·e → En retard")
    await expect(line).to_contain_text("motif : « Arrivé à 8 h 25 avec un mot du bus »")
    await expect(line).to_contain_text(cast.teacher["name"])
    await expect(history.locator('li[data-action="all_present"]')).to_contain_text(
        "élèves marqués présents")  # « Tous présents »: one line, not one per pupil
    await expect(history.locator('li[data-action="validate"]')).to_have_count(1)
    await check_accessibility(teacher)
    await teacher.screenshot(path=SCREENSHOTS / "roll-historique.png", full_page=True)

    # The CPE sees the same history.
    cpe_ctx, cpe = await new_page(browser)
    await log_in(cpe, base, cast.cpe)
    await cpe.goto(f"{base}/#/appel?slot={slot['id']}&date={day}")
    await cpe.get_by_role("button", name="Historique de l'appel").click()
    await expect(cpe.get_by_role("region", name="Historique de l'appel").locator(
        "li.with-reason")).to_contain_text("mot du bus")
    for page in (teacher, cpe):
        assert page.js_errors == []  # type: ignore[attr-defined]
    for ctx in (teacher_ctx, cpe_ctx):
        await ctx.close()

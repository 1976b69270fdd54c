"""The roll call in real headless Chromium against a real server with the demo data: a
teacher takes the roll on a phone (one tap per student), the parent's open page receives the
absence live and gives a reason from the notice, the CPE's dashboard follows, and the TBI
layout of the roll page is kept. Screenshots go to docs/screenshots/."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests.attendance.conftest import Cast, recent_slot
from tests.browser.test_home_page import (  # the same Chromium, the same helpers
    PHONE,
    SCREENSHOTS,
    browser,  # noqa: F401 (a fixture)
    check_accessibility,
    log_in,
    new_page,
)

pytestmark = pytest.mark.browser
TBI = {"width": 1920, "height": 1080}


async def test_roll_to_parent_to_cpe(browser: Browser, demo_server: str,  # noqa: F811
                                     demo_accounts: list[dict[str, Any]]) -> None:
    base = demo_server
    cast = Cast(demo_accounts)
    slot, day = await recent_slot(base, cast.teacher, cast.class_name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    # The parent's space is open before the roll is taken.
    parent_ctx, parent = await new_page(browser)
    await log_in(parent, base, cast.guardians[0])
    await parent.get_by_role("link", name="Absences et notifications").click()
    await expect(parent.get_by_role("heading", name="Absences de mes enfants")).to_be_visible()
    await expect(parent.get_by_text("Aucune notification non lue")).to_be_visible()

    # The CPE's dashboard, on the same day.
    cpe_ctx, cpe = await new_page(browser)
    await log_in(cpe, base, cast.cpe)
    await cpe.get_by_role("link", name="Tableau de bord des appels").click()
    await expect(cpe.get_by_role("heading", name="Vie scolaire — appels du jour")).to_be_visible()
    await cpe.goto(f"{base}/#/vie-scolaire?date={day}")
    row = cpe.locator(f'tr[data-slot-id="{slot["id"]}"]')
    await expect(row).to_contain_text(cast.class_name)
    await expect(row).to_have_attribute("data-state", "todo")

    # The teacher, on a phone: from Mon espace to the roll of that day.
    teacher_ctx, teacher = await new_page(browser, PHONE, is_mobile=True, has_touch=True)
    await log_in(teacher, base, cast.teacher)
    await teacher.goto(f"{base}/#/?date={day}")
    await teacher.get_by_role("link", name=f"Faire l'appel : {slot['start']} {cast.class_name}"
                              ).first.click()
    await expect(teacher.get_by_role("heading", level=1)).to_contain_text(cast.class_name)
    rows = teacher.locator(".student-row")
    await expect(rows.first).to_be_visible()
    await teacher.get_by_role("button", name="Tous présents").click()
    await expect(teacher.locator(".roll-counts")).to_contain_text("0 absent·e,")
    student_button = teacher.locator(".student-row").filter(
        has_text=cast.student["name"]).locator(".student-toggle")
    await student_button.tap()
    await expect(student_button).to_have_attribute("aria-pressed", "true")
    mate = teacher.locator(".student-row").filter(has_text=cast.classmate["name"])
    await mate.get_by_label(f"Autre marque pour {cast.classmate['name']}").select_option("late")
    await expect(mate.locator(".student-toggle")).to_have_attribute("data-state", "late")
    minutes = mate.get_by_label(f"Minutes pour {cast.classmate['name']}")
    await minutes.fill("12")
    await minutes.press("Enter")
    await minutes.blur()
    await expect(mate.locator(".student-toggle")).to_contain_text("En retard (12 min)")
    await expect(teacher.locator(".roll-counts")).to_contain_text("1 absent·e, 1 en retard")
    third = (teacher.locator(".student-row").filter(has_not_text=cast.student["name"])
             .filter(has_not_text=cast.classmate["name"]).first)
    await third.get_by_role("combobox").select_option("exempted_stays")
    await expect(third.locator(".student-toggle")).to_contain_text("Dispensé·e (reste en cours)")
    await expect(row).to_have_attribute("data-state", "in_progress")  # the CPE sees it live

    # A comment on the late pupil's mark, typed on the phone; the mark stays « en retard ».
    await mate.get_by_role("button", name=f"Commentaire pour {cast.classmate['name']}").tap()
    box = mate.get_by_label(f"Texte du commentaire pour {cast.classmate['name']}")
    await expect(box).to_be_focused()
    await box.fill("Arrivé avec un mot de l'infirmerie")
    await mate.get_by_role("button", name="Enregistrer").tap()
    await expect(mate.locator(".student-comment")).to_have_text(
        "« Arrivé avec un mot de l'infirmerie »")
    await expect(mate.locator(".student-toggle")).to_contain_text("En retard (12 min)")
    await expect(teacher.get_by_role("status").filter(has_text="Commentaire enregistré")
                 ).to_be_visible()
    overflow = await teacher.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    await check_accessibility(teacher)
    await teacher.screenshot(path=SCREENSHOTS / "roll-phone.png", full_page=True)
    await teacher.get_by_role("button", name="Valider l'appel").click()
    await expect(teacher.get_by_role("status").filter(has_text="Appel validé")).to_be_visible()
    await expect(teacher.locator(".roll-meta")).to_contain_text("Validé")

    # The parent's page received the absence, live; the reason is given from the notice.
    notice = parent.locator(".notice-item").filter(has_text=cast.student["name"])
    await expect(notice).to_contain_text("absent")
    await expect(parent.get_by_text("1 notification non lue")).to_be_visible()
    wide = await parent.evaluate(
        """() => [...document.querySelectorAll('body *')]
             .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth)
             .map(el => el.tagName + '.' + el.className + ' ' + Math.round(
               el.getBoundingClientRect().right))""")
    assert wide == []
    await check_accessibility(parent)
    await parent.screenshot(path=SCREENSHOTS / "parent-absences.png", full_page=True)
    # The other guardian taps the Web Push notification: the page opens on that notice,
    # its reason list focused (the service worker opens the payload's url).
    other_ctx, other = await new_page(browser, PHONE, is_mobile=True, has_touch=True)
    await log_in(other, base, cast.guardians[1])
    feed = await (await other.request.get(f"{base}/api/attendance/notices")).json()
    pushed = next(n for n in feed["snapshot"] if n["kind"] == "absence"
                  and n["student_name"] == cast.student["name"])
    await other.goto(f"{base}/#/absences?notice={pushed['id']}")
    pointed = other.locator(f'.notice-item[data-notice-id="{pushed["id"]}"]')
    await expect(pointed).to_have_class(re.compile("pointed"))
    await expect(pointed.get_by_role("combobox")).to_be_focused()
    await other_ctx.close()
    await notice.get_by_role("combobox").select_option("convenance")
    await notice.get_by_role("button", name="Envoyer le motif").click()
    await expect(parent.locator(".event-list li").first).to_contain_text("Motif à traiter")

    # The CPE's grid is up to date, and the absence waits to be handled there.
    await expect(row).to_have_attribute("data-state", "done")
    await expect(row.locator("td").nth(4)).to_have_text("1")
    pending = cpe.locator(".pending").filter(has_text=cast.student["name"])
    await expect(pending).to_contain_text("Motif à traiter")
    await check_accessibility(cpe)
    await cpe.screenshot(path=SCREENSHOTS / "vie-scolaire.png", full_page=True)
    await pending.get_by_role("button", name="Accepter").click()
    await expect(pending).to_have_count(0)

    # The CPE names a replacement for a course of that day whose roll is not taken.
    other_slot = await cpe.evaluate(
        """(name) => [...document.querySelectorAll('tr[data-state="todo"]')]
             .find(tr => tr.querySelector('details.replace-menu')
                   && tr.cells[3].firstChild.textContent !== name).dataset.slotId""",
        cast.other_teacher["name"])
    other = cpe.locator(f'tr[data-slot-id="{other_slot}"]')
    await other.get_by_text("Remplacer").click()
    await other.get_by_role("combobox").select_option(label=cast.other_teacher["name"])
    await other.get_by_role("button", name="Nommer").click()
    await expect(other).to_contain_text(f"{cast.other_teacher['name']} (remplace")

    # The CPE adds a reason to the school's list.
    reasons = cpe.get_by_role("region", name="Motifs d'absence")
    await expect(reasons.locator(".reason-row")).to_have_count(10)
    await expect(reasons.get_by_label("Justificatif").first).to_be_disabled()  # legal
    await reasons.get_by_label("Nouveau motif").fill("Sortie scolaire")
    await reasons.get_by_role("button", name="Ajouter").click()
    await reasons.locator('.reason-row[data-code="sortie_scolaire"]').get_by_label(
        "Justificatif").check()
    await reasons.get_by_role("button", name="Enregistrer les motifs").click()
    await expect(reasons.get_by_role("status")).to_have_text("Liste des motifs enregistrée.")
    school = (await (await cpe.request.get(f"{base}/api/me")).json())["user"]["school_id"]
    saved = await (await cpe.request.get(f"{base}/api/attendance/schools/{school}/reasons")
                   ).json()
    assert saved["reasons"][-1] == {"code": "sortie_scolaire", "label": "Sortie scolaire",
                                    "justifying": True, "legal": False, "active": True}
    await check_accessibility(cpe)
    for page in (teacher, parent, cpe):
        assert page.js_errors == []  # type: ignore[attr-defined]

    # The same roll on the TBI: big targets, several columns.
    tbi_ctx, tbi = await new_page(browser, TBI)
    await log_in(tbi, base, cast.teacher)
    await tbi.goto(f"{base}/#/appel?slot={slot['id']}&date={day}")
    await expect(tbi.locator(".roll-meta")).to_contain_text("Validé")
    await expect(tbi.get_by_role("button", name="Valider l'appel")).to_be_hidden()
    late = tbi.locator(".student-row").filter(has_text=cast.classmate["name"])
    await expect(late.locator(".student-toggle")).to_contain_text("En retard (12 min)")
    await expect(late.locator(".student-comment")).to_contain_text("mot de l'infirmerie")

    # The stored truth, fetched fresh from the API: the comment is on the late mark.
    class_id = next(c["id"] for c in (await (await tbi.request.get(f"{base}/api/classes"))
                                      .json())["classes"] if c["name"] == cast.class_name)
    stored = await (await tbi.request.get(
        f"{base}/api/attendance/classes/{class_id}/rolls?from={day}&to={day}")).json()
    roll = next(r for r in stored["rolls"] if r["start"] == slot["start"])
    marks = {m["student_name"]: m for m in roll["marks"]}
    assert (marks[cast.classmate["name"]]["state"], marks[cast.classmate["name"]]["minutes"],
            marks[cast.classmate["name"]]["comment"]) == (
        "late", 12, "Arrivé avec un mot de l'infirmerie")
    assert marks[cast.student["name"]]["comment"] == ""
    # A comment is corrected on the TBI after validation, with its reason: the audit trail
    # keeps it.
    await tbi.get_by_label("Motif de la correction (obligatoire)").fill("Précision du mot")
    await late.get_by_role("button", name=f"Commentaire pour {cast.classmate['name']}").click()
    await late.get_by_label(f"Texte du commentaire pour {cast.classmate['name']}").fill(
        "Mot de l'infirmerie vu par la vie scolaire")
    await late.get_by_label(f"Texte du commentaire pour {cast.classmate['name']}").press("Enter")
    await expect(late.locator(".student-comment")).to_contain_text("vu par la vie scolaire")
    fresh = await (await tbi.request.get(f"{base}/api/attendance/rolls/{roll['id']}")).json()
    assert fresh["corrections"][-1]["before"]["comment"] == "Arrivé avec un mot de l'infirmerie"
    assert fresh["corrections"][-1]["after"]["comment"] == (
        "Mot de l'infirmerie vu par la vie scolaire")
    assert fresh["corrections"][-1]["after"]["state"] == "late"
    assert fresh["corrections"][-1]["reason"] == "Précision du mot"
    await check_accessibility(tbi)
    await tbi.screenshot(path=SCREENSHOTS / "roll-tbi.png")
    for ctx in (parent_ctx, cpe_ctx, teacher_ctx, tbi_ctx):
        await ctx.close()


async def test_study_hall_from_the_dashboard_on_a_tbi(
        browser: Browser, demo_server: str,  # noqa: F811
        demo_accounts: list[dict[str, Any]]) -> None:
    """The CPE opens a permanence from the dashboard on the TBI, adds two pupils who came in
    and a comment, validates; the stored roll says the same."""
    base = demo_server
    cast = Cast(demo_accounts)
    _slot, day = await recent_slot(base, cast.teacher, cast.class_name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    ctx, cpe = await new_page(browser, TBI)
    await log_in(cpe, base, cast.cpe)
    await cpe.goto(f"{base}/#/vie-scolaire?date={day}")
    hall = cpe.get_by_role("region", name="Permanence")
    await hall.get_by_label("Salle").fill("Salle 104")
    await hall.get_by_label("Début").fill("13:00")
    await hall.get_by_label("Fin").fill("14:00")
    await hall.get_by_role("button", name="Ouvrir la permanence").click()
    await expect(cpe.get_by_role("heading", level=1)).to_contain_text("Permanence")
    await expect(cpe.locator(".roll-meta")).to_contain_text("13:00 – 14:00")
    adder = cpe.locator(".hall-add")
    for pupil in (cast.student, cast.classmate):
        await adder.get_by_label("Classe").select_option(label=cast.class_name)
        await adder.get_by_label("Élève").select_option(label=pupil["name"])
        await adder.get_by_role("button", name="Ajouter").click()
        await expect(cpe.locator(".student-row").filter(has_text=pupil["name"])
                     .locator(".student-toggle")).to_have_attribute("data-state", "present")
    await expect(cpe.locator(".roll-counts")).to_contain_text("2 présent·es")
    row = cpe.locator(".student-row").filter(has_text=cast.student["name"])
    await row.get_by_role("button", name=f"Commentaire pour {cast.student['name']}").click()
    await row.get_by_label(f"Texte du commentaire pour {cast.student['name']}").fill(
        "Envoyé par le professeur de sport")
    await row.get_by_role("button", name="Enregistrer").click()
    await expect(row.locator(".student-comment")).to_contain_text("professeur de sport")
    await check_accessibility(cpe)
    await cpe.screenshot(path=SCREENSHOTS / "study-hall-tbi.png")
    await cpe.get_by_role("button", name="Valider l'appel").click()
    await expect(cpe.locator(".roll-meta")).to_contain_text("Validé")

    hall_id = int(cpe.url.split("permanence=")[1].split("&")[0])
    await cpe.goto(f"{base}/#/vie-scolaire?date={day}")
    link = cpe.get_by_role("link", name="Permanence (Salle 104)")
    await expect(link).to_have_attribute("href", f"#/appel?permanence={hall_id}&date={day}")
    grid_row = cpe.locator("tr").filter(has=link)
    await expect(grid_row).to_have_attribute("data-state", "done")
    roll_id = await grid_row.get_attribute("data-roll-id")
    # Fresh from the API: the stored roll of the study hall.
    fresh = await (await cpe.request.get(f"{base}/api/attendance/rolls/{roll_id}")).json()
    assert fresh["roll"]["kind"] == "study_hall" and fresh["roll"]["state"] == "done"
    assert {s["name"]: (s["mark"]["state"], s["mark"]["comment"]) for s in fresh["students"]
            } == {cast.student["name"]: ("present", "Envoyé par le professeur de sport"),
                  cast.classmate["name"]: ("present", "")}
    assert cpe.js_errors == []  # type: ignore[attr-defined]
    await ctx.close()


async def test_service_worker_is_served_at_the_root(browser: Browser,  # noqa: F811
                                                    demo_server: str,
                                                    demo_accounts: list[dict[str, Any]]
                                                    ) -> None:
    context, page = await new_page(browser)
    cast = Cast(demo_accounts)
    await log_in(page, demo_server, cast.guardians[0])
    await page.goto(f"{demo_server}/#/absences")
    scope = await page.evaluate(
        "async () => (await navigator.serviceWorker.register('/sw.js', {scope: '/'})).scope")
    assert scope == f"{demo_server}/"
    key = await page.evaluate("async () => (await (await fetch('/api/push/key')).json())")
    assert len(key["public_key"]) > 80
    await context.close()

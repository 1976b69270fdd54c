"""Course documents (docs/coursedocs.md) in real headless Chromium: two teachers co-edit one
course through the Tiptap + y-websocket page, see each other's text, names and carets, keep a
version and go back to it. Screenshots go to docs/screenshots/."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.test_home_page import (  # the same Chromium, the same helpers
    SCREENSHOTS,
    browser,  # noqa: F401 (a fixture)
    check_accessibility,
    log_in,
    new_page,
)

pytestmark = pytest.mark.browser


def colleagues(accounts: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    teachers = [a for a in accounts if a["role"] == "teacher"
                and a["school"] == "Collège Charlemagne"]
    return teachers[0], teachers[1]


def content(page: Page) -> Any:
    return page.locator(".doc-content")


async def test_two_teachers_co_edit_a_course(
    browser: Browser, demo_server: str, demo_accounts: list[dict[str, Any]],  # noqa: F811
) -> None:
    base = demo_server
    owner, colleague = colleagues(demo_accounts)
    ctx_a, a = await new_page(browser)
    ctx_b, b = await new_page(browser)
    await log_in(a, base, owner)
    await log_in(b, base, colleague)

    # The owner starts a course from « Mon espace ».
    await a.get_by_role("button", name="Nouveau cours").click()
    await a.wait_for_url("**/#/docs/*")
    await expect(a.locator(".doc-status")).to_have_text("À jour")
    doc_id = int(a.url.rsplit("/", 1)[1])
    me_b = await (await b.request.get(f"{base}/api/me")).json()
    shared = await a.request.put(f"{base}/api/docs/{doc_id}/access",
                                 data={"editors": [me_b["user"]["id"]]})
    assert shared.ok, await shared.text()

    await content(a).click()
    await a.get_by_role("button", name="Titre 1").click()
    await a.keyboard.type("La Révolution française")
    await a.keyboard.press("Enter")
    await a.keyboard.type("En 1789, les États généraux se réunissent à Versailles.")

    # The colleague finds it on « Mon espace » and opens it.
    await b.reload()
    await b.get_by_role("link", name="Nouveau cours du").first.click()
    await expect(content(b).locator("h1")).to_have_text("La Révolution française")
    await expect(content(b)).to_contain_text("États généraux")
    await content(b).locator("p").last.click()
    await b.keyboard.press("End")
    await b.keyboard.press("Enter")
    await b.get_by_role("button", name="Gras").click()
    await b.keyboard.type("Le serment du Jeu de paume")
    await expect(content(a)).to_contain_text("Le serment du Jeu de paume")
    await expect(content(a).locator("strong")).to_contain_text("serment du Jeu de paume")
    await b.get_by_role("button", name="Liste à puces").click()
    await expect(content(a).locator("ul li")).to_have_count(1)

    # Who is here, with their name and colour; the other's caret carries their name.
    people = a.get_by_role("list", name="Personnes présentes")
    await expect(people).to_contain_text(colleague["name"])
    await expect(people).to_contain_text(f"{owner['name']} (vous)")
    await expect(a.locator(".collaboration-carets__label")).to_have_text(colleague["name"])
    # And who has the course open, from the presence store (what other ENT services read).
    openers = a.get_by_role("list", name="Cours ouvert par")
    await expect(openers).to_contain_text(colleague["name"])
    await expect(openers).to_contain_text(f"{owner['name']} (vous)")
    await expect(openers.locator("li")).to_have_count(2)
    await expect(openers).to_contain_text("depuis")

    # A version, an unlucky edit, and back: both pages follow.
    await a.get_by_label("Nom de la version").fill("Première version")
    await a.get_by_role("button", name="Enregistrer une version").click()
    await expect(a.locator(".versions-list")).to_contain_text("Première version")
    await b.keyboard.press("Enter")
    await b.keyboard.type("Paragraphe à effacer")
    await expect(content(a)).to_contain_text("Paragraphe à effacer")
    await a.evaluate("window.scrollTo(0, 0)")
    await a.screenshot(path=str(SCREENSHOTS / "coursedoc-co-editing.png"))
    await a.get_by_role("button", name="Aperçu de « Première version »").click()
    preview = a.locator(".version-preview")
    await expect(preview).to_contain_text("Le serment du Jeu de paume")
    await expect(preview).not_to_contain_text("Paragraphe à effacer")
    a.once("dialog", lambda d: d.accept())
    await a.get_by_role("button", name="Revenir à cette version").click()
    await expect(content(a)).not_to_contain_text("Paragraphe à effacer")
    await expect(content(b)).not_to_contain_text("Paragraphe à effacer")
    await expect(content(b)).to_contain_text("Le serment du Jeu de paume")
    await check_accessibility(a)
    assert a.js_errors == [] and b.js_errors == []  # type: ignore[attr-defined]

    # Shared read-only with one of the owner's classes: a pupil reads it, cannot write.
    student = next(x for x in demo_accounts if x["role"] == "student"
                   and x["school"] == owner["school"] and x["classes"][0] in owner["classes"])
    # The owner renames the course and shares it from the page.
    await a.get_by_label("Titre du cours").fill("La Révolution française – 1789")
    await a.get_by_role("button", name="Renommer").click()
    await expect(a.locator(".page-title")).to_have_text("La Révolution française – 1789")
    await a.get_by_label(f"Classe {student['classes'][0]}").select_option("read")
    await a.get_by_role("button", name="Enregistrer le partage").click()
    await expect(a.locator(".doc-share")).to_contain_text("Cours partagé avec 1 classe(s).")
    access = await (await a.request.get(f"{base}/api/docs/{doc_id}")).json()
    assert [e["id"] for e in access["editors"]] == [me_b["user"]["id"]]  # kept
    assert [c["mode"] for c in access["classes"]] == ["read"]
    ctx_s, s = await new_page(browser)
    await log_in(s, base, student)
    await expect(s.get_by_role("heading", name="Cours partagés")).to_be_visible()
    await s.get_by_role("link", name="La Révolution française – 1789").click()
    await expect(content(s)).to_contain_text("Le serment du Jeu de paume")
    await expect(s.get_by_text("Lecture seule")).to_be_visible()
    await expect(s.get_by_role("toolbar")).to_have_count(0)
    await expect(content(s)).to_have_attribute("contenteditable", "false")
    await s.screenshot(path=str(SCREENSHOTS / "coursedoc-student-read-only.png"))
    await check_accessibility(s)
    await ctx_s.close()
    await ctx_a.close()
    await ctx_b.close()

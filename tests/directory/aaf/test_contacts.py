"""Guardians' phones and e-mails from the feed: the school team's, through the real HTTP API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import StartServer, make_settings
from tests.directory.aaf.files import imported

PEOPLE = ("karim.haddad", "denis.moreau", "valerie.leroy", "claire.bernard", "omar.faure",
          "sophie.martin", "lea.martin", "emma.girard")


@pytest.fixture
async def aaf(start_server: StartServer, tmp_path: Path) -> tuple[str, dict[str, str]]:
    settings = make_settings(tmp_path)
    codes = await imported(settings, tmp_path / "snap1", PEOPLE)
    return await start_server(settings), codes


async def as_(base: str, login: str, code: str, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.post(f"{base}/api/login", json={"login": login, "code": code}) as r:
            assert r.status == 200, await r.text()
        async with s.get(f"{base}{path}") as r:
            return r.status, await r.json()


async def pupil_ids(base: str, codes: dict[str, str]) -> dict[str, int]:
    status, body = await as_(base, "karim.haddad", codes["karim.haddad"], "/api/classes")
    assert status == 200
    out = {}
    for c in body["classes"]:
        _, students = await as_(base, "karim.haddad", codes["karim.haddad"],
                                f"/api/classes/{c['id']}/students")
        out.update({s["login"]: s["id"] for s in students["students"]})
    return out


async def test_school_team_and_form_tutor_read_contacts_others_do_not(
        aaf: tuple[str, dict[str, str]]) -> None:
    base, codes = aaf
    ids = await pupil_ids(base, codes)
    lea, hugo = ids["lea.martin"], ids["hugo.martin"]
    path = f"/api/students/{lea}/guardians"

    for who in ("karim.haddad", "denis.moreau", "valerie.leroy", "claire.bernard"):
        status, body = await as_(base, who, codes[who], path)  # CPE, office, head, tutor of 6A
        assert status == 200, (who, body)
        assert body["student"]["class_name"] == "6A"
        by_name = {g["name"]: g for g in body["guardians"]}
        assert set(by_name) == {"Sophie MARTIN", "Marc MARTIN"}
        assert by_name["Sophie MARTIN"]["mobile_phone"] == "06 11 22 33 44"
        assert by_name["Sophie MARTIN"]["email"] == "sophie@exemple.fr"
        assert by_name["Marc MARTIN"]["work_phone"] == "04 92 00 00 02"

    # Omar teaches Hugo's class (3A) but is not its form tutor: he lists Hugo's class, not
    # the family's phones.
    status, _ = await as_(base, "omar.faure", codes["omar.faure"], "/api/classes")
    assert status == 200
    status, body = await as_(base, "omar.faure", codes["omar.faure"],
                             f"/api/students/{hugo}/guardians")
    assert status == 404 and body["error"]["code"] == "not_found"
    for who in ("sophie.martin", "lea.martin", "emma.girard"):  # parent, pupil, other school
        status, body = await as_(base, who, codes[who], path)
        assert status == 404, who
        assert body["error"]["message"] == "Élève introuvable."

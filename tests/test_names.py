"""Titles, names and file names lose control characters and bidi overrides (issue #13 item
14): « Cours‮fdp.exe » must not reach another pupil's screen or a download's filename*."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest

from realtime.text import clean_filename, clean_text
from tests.boards.test_socket import Cast, create_board
from tests.conftest import login

EVIL = "Cours\u202egpj.exe\u0007\u2066 de\tmaths\u200b"


def test_clean_text_strips_controls_and_bidi() -> None:
    assert clean_text(EVIL) == "Coursgpj.exe de maths"
    assert clean_text("e\u0301lève 👩\u200d🏫") == "élève 👩\u200d🏫"  # NFC, ZWJ kept
    assert clean_filename("..\\..\\ré\u202esum\u00e9.pdf") == "résumé.pdf"
    assert clean_filename("\u202e\u0000") == "fichier"


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def test_board_title_and_export_filename(demo_server: str, cast: Cast) -> None:
    board = await create_board(demo_server, cast, EVIL)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, demo_server, cast.alice)
        async with s.get(f"{demo_server}/api/boards/{board}") as r:
            assert (await r.json())["title"] == "Coursgpj.exe de maths"
        async with s.get(f"{demo_server}/api/boards/{board}/export.svg") as r:
            assert r.status == 200
            disposition = r.headers["Content-Disposition"]
    name = unquote(disposition.split("filename*=UTF-8''", 1)[1])
    assert name == "Coursgpj.exe de maths.svg"
    assert "%E2%80%AE" not in disposition and "\u202e" not in disposition


async def test_course_document_title(demo_server: str, cast: Cast) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, demo_server, cast.teacher)
        async with s.post(f"{demo_server}/api/docs", json={"title": EVIL}) as r:
            assert r.status == 201
            assert (await r.json())["title"] == "Coursgpj.exe de maths"
        async with s.post(f"{demo_server}/api/docs", json={"title": "\u202e\u2066"}) as r:
            assert r.status == 400  # nothing left: refused as empty

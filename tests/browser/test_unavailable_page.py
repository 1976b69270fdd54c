"""A page whose live connection is refused because the server cannot check the session (its
database restarting: `connect_error` with the code `unavailable`) tries again by itself and
comes online, in real Chromium. A refusal for any other reason stays final (Socket.IO never
retries a refused connection on its own). The real outage is tested with real node processes
in tests/multinode/test_postgres_restart.py; here the server's session check fails twice."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, expect

import realtime.sio
from realtime.db import Unavailable
from tests.browser.test_home_page import (  # the same Chromium, the same helpers
    browser,  # noqa: F401 (a fixture)
    log_in,
    new_page,
)

pytestmark = pytest.mark.browser


async def test_a_connection_refused_as_unavailable_is_tried_again(
    browser: Browser, demo_app: tuple[str, web.Application],  # noqa: F811
    demo_accounts: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, _app = demo_app
    real = realtime.sio.authenticate
    refused: list[str] = []

    async def database_away_twice(app: web.Application, environ: dict[str, Any],
                                  auth: Any) -> Any:
        if len(refused) < 2:
            refused.append(environ.get("PATH_INFO", ""))
            raise Unavailable("the database is restarting")
        return await real(app, environ, auth)

    monkeypatch.setattr(realtime.sio, "authenticate", database_away_twice)
    teacher = next(a for a in demo_accounts if a["role"] == "teacher")
    ctx, page = await new_page(browser)
    await log_in(page, base, teacher)
    await expect(page.get_by_role("banner").get_by_role("status")).to_have_text(
        "En ligne", timeout=20_000)
    assert len(refused) == 2  # refused twice, tried again each time
    assert page.js_errors == []  # type: ignore[attr-defined]
    await ctx.close()

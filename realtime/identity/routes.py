"""`/api/login`, `/api/logout`, `/api/me`."""

from __future__ import annotations

import socketio
from aiohttp import web

from realtime import keys
from realtime.api import (
    COOKIE_NAME,
    client_address,
    current_principal,
    json_response,
    read_json,
    token_of,
)
from realtime.directory import store as directory
from realtime.identity.devices import DEVICE_COOKIE, DEVICE_TTL_S
from realtime.identity.sso import logout_redirect, set_session_cookie
from realtime.validation import Payload


class LoginBody(Payload):
    login: str
    code: str


async def login(request: web.Request) -> web.Response:
    body = await read_json(request, LoginBody)
    settings = request.app[keys.SETTINGS]
    identity = request.app[keys.IDENTITY]
    cookie = request.cookies.get(DEVICE_COOKIE)
    token, user = await identity.login(
        body.login, body.code, client_address(request),
        device=identity.devices.trusted(cookie, body.login.strip()),
    )
    response = json_response({"token": token, "user": user.public()})
    set_session_cookie(response, token, settings)
    # This browser is now one of the account's own devices (docs/security.md).
    response.set_cookie(
        DEVICE_COOKIE,
        identity.devices.remember(cookie, body.login.strip()),
        max_age=DEVICE_TTL_S,
        path="/api/login",
        httponly=True,
        samesite="Strict",
        secure=settings.cookie_secure,
    )
    return response


async def logout(request: web.Request) -> web.Response:
    """`redirect`, when present: the ENT's logout, for a session opened through it."""
    identity = request.app[keys.IDENTITY]
    token = token_of(request)
    provider = await identity.session_provider(token)
    await identity.logout(token)
    body: dict[str, object] = {"ok": True}
    redirect = await logout_redirect(request, provider)
    if redirect:
        body["redirect"] = redirect
    response = json_response(body)
    response.del_cookie(COOKIE_NAME, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    p = await current_principal(request)
    school = (
        await directory.school(request.app[keys.DB], p.school_id)
        if p.school_id is not None
        else None
    )
    db = request.app[keys.DB]
    teachings = []
    for class_id, subject in await directory.teachings_of(db, p.id):
        c = await directory.school_class(db, class_id)
        teachings.append({"class_id": class_id, "class_name": c.name if c else "",
                          "subject": subject})
    return json_response(
        {
            "user": p.user.public(),
            "school": school,
            "class_ids": sorted(p.class_ids),
            "child_ids": sorted(p.child_ids),
            "teachings": teachings,
        }
    )


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/me", me)

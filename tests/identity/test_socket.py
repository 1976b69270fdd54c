"""A Socket.IO connection authenticates with auth={"token"} or the cookie, else is refused."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import socketio

from tests.conftest import account, login


async def _connect(base: str, **kwargs: Any) -> tuple[socketio.AsyncClient, asyncio.Future]:
    client = socketio.AsyncClient(reconnection=False)
    session: asyncio.Future = asyncio.get_running_loop().create_future()

    @client.on("session")
    async def on_session(data: dict[str, Any]) -> None:
        if not session.done():
            session.set_result(data)

    await client.connect(base, transports=["websocket"], wait_timeout=5, **kwargs)
    return client, session


@pytest.mark.parametrize("auth", [None, {}, {"token": "forged"}, {"token": 12}])
async def test_refused_without_valid_token(demo_server: str, auth: Any) -> None:
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []

    @client.on("connect_error")
    async def on_error(data: Any) -> None:
        errors.append(data)

    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(demo_server, transports=["websocket"], auth=auth, wait_timeout=5)
    assert not client.connected
    assert errors and errors[0]["data"] == {"code": "unauthorized"}
    assert "identifiez-vous" in errors[0]["message"]


async def test_token_in_auth(demo_server: str, http: aiohttp.ClientSession,
                             demo_accounts: list[dict[str, Any]]) -> None:
    student = account(demo_accounts, "student")
    token = await login(http, demo_server, student)
    client, session = await _connect(demo_server, auth={"token": token})
    try:
        data = await asyncio.wait_for(session, 5)
        assert data["user"]["login"] == student["login"]
    finally:
        await client.disconnect()


async def test_session_cookie(demo_server: str, http: aiohttp.ClientSession,
                              demo_accounts: list[dict[str, Any]]) -> None:
    parent = account(demo_accounts, "parent")
    token = await login(http, demo_server, parent)
    client, session = await _connect(demo_server, headers={"Cookie": f"ent_session={token}"})
    try:
        assert (await asyncio.wait_for(session, 5))["user"]["role"] == "parent"
    finally:
        await client.disconnect()


async def test_revoked_token_is_refused(demo_server: str, http: aiohttp.ClientSession,
                                        demo_accounts: list[dict[str, Any]]) -> None:
    token = await login(http, demo_server, account(demo_accounts, "cpe"))
    async with http.post(f"{demo_server}/api/logout",
                         headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(demo_server, transports=["websocket"], auth={"token": token},
                             wait_timeout=5)


async def test_socket_auth_through_the_redis_manager(
    redis_demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]]
) -> None:
    """With REDIS_URL, emits travel through AsyncRedisManager; the session still arrives."""
    teacher = account(demo_accounts, "teacher")
    token = await login(http, redis_demo_server, teacher)
    client, session = await _connect(redis_demo_server, auth={"token": token})
    try:
        assert (await asyncio.wait_for(session, 5))["user"]["login"] == teacher["login"]
    finally:
        await client.disconnect()

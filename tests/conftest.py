"""Shared fixtures: real servers on free ports, real SQLite files, the real local Redis."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from realtime.app import create_app
from realtime.db import Database
from realtime.demo.plan import DemoPlan, build_plan
from realtime.demo.seed import accounts, seed
from realtime.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/0"
ROOT = Path(__file__).resolve().parent.parent
# Cheap Argon2 parameters: the tests hash over a thousand demo codes.
TEST_KDF = (1, 1024, 1)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base = Settings(
        db_path=tmp_path / "ent.sqlite3",
        secret="test-secret-" + "x" * 32,
        kdf_time_cost=TEST_KDF[0],
        kdf_memory_kib=TEST_KDF[1],
        kdf_parallelism=TEST_KDF[2],
        log_json=False,
        static_dir=ROOT / "web_client" / "dist",
    )
    return base.with_(**overrides)


@pytest.fixture(scope="session")
def demo_plan() -> DemoPlan:
    return build_plan()


@pytest.fixture(scope="session")
def demo_accounts(demo_plan: DemoPlan) -> list[dict[str, Any]]:
    return accounts(demo_plan)


@pytest.fixture(scope="session")
def demo_db_template(tmp_path_factory: pytest.TempPathFactory, demo_plan: DemoPlan) -> Path:
    """The demo seeded once per test session; each test gets its own copy."""
    path = tmp_path_factory.mktemp("demo") / "template.sqlite3"

    async def build() -> None:
        db = await Database.open(path)
        await seed(db, demo_plan, TEST_KDF)
        await db.close()

    asyncio.run(build())
    return path


@pytest.fixture
def demo_db_path(tmp_path: Path, demo_db_template: Path) -> Path:
    target = tmp_path / "ent.sqlite3"
    shutil.copyfile(demo_db_template, target)
    return target


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def redis_prefix() -> str:
    return f"test-{secrets.token_hex(6)}"


@pytest_asyncio.fixture
async def redis_cleanup(redis_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # CI must fail, not skip, when Redis is missing
        pytest.fail(f"Redis is not answering on {REDIS_URL}: {exc}")
    yield client
    keys = [k async for k in client.scan_iter(match=f"{redis_prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


StartServer = Callable[..., Any]


@pytest_asyncio.fixture
async def start_server(aiohttp_server: Any) -> StartServer:
    """Start a real server (real port) for the given settings; returns its base URL."""

    async def start(settings: Settings) -> str:
        server = await aiohttp_server(create_app(settings))
        return str(server.make_url("")).rstrip("/")

    return start


@pytest_asyncio.fixture
async def demo_server(start_server: StartServer, tmp_path: Path, demo_db_path: Path) -> str:
    return await start_server(make_settings(tmp_path, db_path=demo_db_path))


@pytest_asyncio.fixture
async def redis_demo_server(
    start_server: StartServer, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
    redis_cleanup: aioredis.Redis,
) -> str:
    return await start_server(
        make_settings(tmp_path, db_path=demo_db_path, redis_url=REDIS_URL,
                      redis_prefix=redis_prefix)
    )


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def account(demo_accounts: list[dict[str, Any]], role: str, school: str | None = None,
            **match: Any) -> dict[str, Any]:
    """The first demo account with that role (and school, and matching fields)."""
    for a in demo_accounts:
        if a["role"] != role or (school and a["school"] != school):
            continue
        if all(a.get(k) == v for k, v in match.items()):
            return a
    raise LookupError(f"no demo account {role} {school} {match}")


async def login(session: aiohttp.ClientSession, base: str, acct: dict[str, Any]) -> str:
    async with session.post(
        f"{base}/api/login", json={"login": acct["login"], "code": acct["code"]}
    ) as r:
        body = await r.json()
        assert r.status == 200, body
        return body["token"]

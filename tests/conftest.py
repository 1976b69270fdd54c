"""Shared fixtures: real servers on free ports, real SQLite files (or, with
`REALTIME_TEST_DB=postgres`, their schemas on the real PostgreSQL: tests/engines.py), the real
local Redis."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
import socketio
from aiohttp import web

from realtime.app import create_app
from realtime.demo.plan import DemoPlan, build_plan
from realtime.demo.seed import accounts, seed
from realtime.settings import Settings
from tests import engines
from tests.engines import clone_db, open_test_db

# Database 15 and a random key prefix per test: the tests never touch what a developer keeps in
# database 0 (the server's default), and they only delete their own prefix's keys.
REDIS_URL = "redis://127.0.0.1:6379/15"
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
        # The suite takes rolls of recent school days found on the real calendar (whatever
        # day it runs): a teacher may here, and the CPE's window reaches back as far. The
        # day's-courses-only rule is tested with the defaults (tests/attendance).
        attendance_teacher_past_days=150,
        attendance_correction_days=150,
    )
    base = base.with_(**overrides)
    if engines.POSTGRES and base.database_url is None:
        base = base.with_(database_url=engines.db_url(base.db_path))
    return base


def pytest_configure(config: pytest.Config) -> None:
    if engines.POSTGRES:
        engines.start_run()


def pytest_unconfigure(config: pytest.Config) -> None:
    engines.end_run()


@pytest.fixture(autouse=True)
def _test_schemas() -> Any:
    """PostgreSQL mode: the schemas a test used go back to the pool once everything else of
    the test has been torn down (first set up, so last torn down)."""
    yield
    engines.release_test_schemas()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The SQLite pass leaves out what only PostgreSQL has (deselected: CI refuses skips)."""
    if engines.POSTGRES:
        return
    # The multi-node tests run real nodes on PostgreSQL whichever the pass: once is enough.
    kept = [i for i in items if i.get_closest_marker("postgres_only") is None
            and i.get_closest_marker("multinode") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


def pytest_report_header(config: pytest.Config) -> str:
    return f"database engine: {engines.ENGINE}"


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

    if engines.POSTGRES:
        engines.schema_for(path, kept=True)  # the template outlives every test

    async def build() -> None:
        db = await open_test_db(path)
        await seed(db, demo_plan, TEST_KDF)
        await db.close()

    asyncio.run(build())
    return path


@pytest.fixture
def demo_db_path(tmp_path: Path, demo_db_template: Path) -> Path:
    target = tmp_path / "ent.sqlite3"
    clone_db(demo_db_template, target)
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


async def two_nodes(start_server: StartServer, tmp_path: Path, db_path: Path,
                    redis_prefix: str, **overrides: Any) -> tuple[str, str]:
    """Two servers on one SQLite file and one Redis prefix, as two nodes of one ENT: their
    base URLs."""
    cfg = {"db_path": db_path, "redis_url": REDIS_URL, "redis_prefix": redis_prefix,
           **overrides}
    a = await start_server(make_settings(tmp_path / "a", **cfg))
    b = await start_server(make_settings(tmp_path / "b", **cfg))
    return a, b


@pytest_asyncio.fixture
async def demo_server(start_server: StartServer, tmp_path: Path, demo_db_path: Path) -> str:
    return await start_server(make_settings(tmp_path, db_path=demo_db_path))


@pytest.fixture
def asked_demo_server(request: pytest.FixtureRequest) -> str | None:
    """The test's `demo_server` if it asks for one, else None (nothing started): for a
    client fixture that starts the demo server only when a client needs it."""
    if "demo_server" not in request.fixturenames:
        return None
    return str(request.getfixturevalue("demo_server"))


@pytest_asyncio.fixture
async def demo_app(aiohttp_server: Any, tmp_path: Path,
                   demo_db_path: Path) -> tuple[str, web.Application]:
    """The demo server's base URL and its app, to reach a service's clock or counters."""
    app = create_app(make_settings(tmp_path, db_path=demo_db_path))
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), app


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


async def token_for(base: str, acct: dict[str, Any]) -> str:
    """Log in on a throw-away session and return the bearer token."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        return await login(s, base, acct)


async def get_json(base: str, acct: dict[str, Any], path: str) -> tuple[int, Any]:
    """GET `path` as that account (logged in on a throw-away session): status and body."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, acct)
        async with s.get(f"{base}{path}") as r:
            return r.status, await r.json()


async def user_id(base: str, acct: dict[str, Any]) -> int:
    """The account's user id, as /api/me tells it."""
    _status, me = await get_json(base, acct, "/api/me")
    return int(me["user"]["id"])


async def wait_until(changed: asyncio.Event, predicate: Callable[[], Any],
                     wait_s: float) -> None:
    """Wait until `predicate()` holds, re-checking each time `changed` is set (no polling)."""
    async def loop() -> None:
        while not predicate():
            changed.clear()
            await changed.wait()
    await asyncio.wait_for(loop(), wait_s)


class LiveClient:
    """A real socketio.AsyncClient on one namespace that records the events it is told to.

    Subclasses name their namespace and events; tests wait on `wait_for(predicate)`, which
    wakes on every recorded event (never a fixed sleep)."""

    NS = "/"
    EVENTS: tuple[str, ...] = ()

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[Any]] = {name: [] for name in self.EVENTS}
        self._changed = asyncio.Event()
        for name in self.EVENTS:
            self.sio.on(name, self._recorder(name), namespace=self.NS)

    def _recorder(self, name: str) -> Any:
        async def record(data: Any) -> None:
            self.received[name].append(data)
            self._changed.set()
        return record

    def changed(self) -> None:
        """Wake the waiters (for subclasses that handle an event themselves)."""
        self._changed.set()

    async def connect(self) -> Any:
        await self.sio.connect(self.base, namespaces=[self.NS], transports=["websocket"],
                               auth={"token": self.token}, wait_timeout=5)
        return self

    async def call(self, event: str, data: Any = None) -> dict[str, Any]:
        return await self.sio.call(event, data, namespace=self.NS, timeout=10)

    async def wait_for(self, predicate: Callable[[], Any], wait_s: float = 5) -> None:
        await wait_until(self._changed, predicate, wait_s)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


@asynccontextmanager
async def live_clients(cls: type[LiveClient], default_base: str) -> AsyncIterator[Any]:
    """A factory `await make(account, base=None, token=None)` of connected clients of `cls`,
    all closed on exit: the body of every feature's client fixture."""
    made: list[LiveClient] = []

    async def make(acct: dict[str, Any], base: str | None = None,
                   token: str | None = None) -> Any:
        base = base or default_base
        client = await cls(base, token or await token_for(base, acct)).connect()
        made.append(client)
        return client

    try:
        yield make
    finally:
        for c in made:
            await c.close()


class ConcurrencyWatch:
    """Wraps a function that runs in threads (a snapshot check, a merge) to count how many
    calls run at the same time (`most`) and in all (`calls`); `hold_s` widens the window in
    which a second call could start, so that a missing lock shows."""

    def __init__(self, real: Callable[..., Any], hold_s: float) -> None:
        self.real, self.hold_s = real, hold_s
        self.active = self.most = self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        with self._lock:
            self.active += 1
            self.calls += 1
            self.most = max(self.most, self.active)
        try:
            time.sleep(self.hold_s)
            return self.real(*args)
        finally:
            with self._lock:
                self.active -= 1

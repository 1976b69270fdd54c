"""Real servers, real SQLite files and real Socket.IO clients for the chat tests.

The server's chat clock is today's real time moved to 10:00 in Paris (it still advances),
so quiet hours never depend on when the suite runs; a test may move it further.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from aiohttp import web

from realtime import keys
from realtime.app import create_app
from realtime.chat.service import ChatService
from tests.conftest import LiveClient, live_clients, make_settings, user_id

NS = "/chat"
PARIS = ZoneInfo("Europe/Paris")
CHARLEMAGNE = "Collège Charlemagne"
GOBAIN = "Collège de Saint-Gobain"


def paris(hour: int, minute: int = 0) -> float:
    """Today at hour:minute in Paris, as a timestamp."""
    today = dt.datetime.now(PARIS).date()
    return dt.datetime(today.year, today.month, today.day, hour, minute, tzinfo=PARIS).timestamp()


class Clock:
    """A clock for the server: starts at `start`, advances in real time, can be moved."""

    def __init__(self, start: float) -> None:
        self.offset = start - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset

    def set(self, ts: float) -> None:
        self.offset = ts - time.time()

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class ChatServer:
    def __init__(self, base: str, app: web.Application, clock: Clock) -> None:
        self.base, self.app, self.clock = base, app, clock

    @property
    def service(self) -> ChatService:
        return self.app[keys.CHAT]


class ChatClient(LiveClient):
    """A real socketio.AsyncClient on /chat that records what the server sends."""

    NS = NS
    EVENTS = ("welcome", "event", "receipt", "typing", "conversation", "acked", "report",
              "report_handled", "muted", "report_outcome")

    @property
    def me(self) -> dict[str, Any]:
        return self.received["welcome"][0]["me"]

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.received["event"]

    async def connect(self) -> ChatClient:
        await super().connect()
        await self.wait_for(lambda: self.received["welcome"])
        return self

    async def ok(self, event: str, data: Any = None) -> dict[str, Any]:
        answer = await self.call(event, data)
        assert answer["ok"], answer
        return answer

    async def wait_event(self, conv_id: int, seq: int) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((e for e in self.events if e["conversation_id"] == conv_id
                         and e["seq"] == seq), None)
        await self.wait_for(find)
        found = find()
        assert found is not None
        return found


@pytest_asyncio.fixture
async def chat_server(aiohttp_server: Any, tmp_path: Path, demo_db_path: Path) -> ChatServer:
    clock = Clock(paris(10))
    app = create_app(make_settings(tmp_path, db_path=demo_db_path))
    server = await aiohttp_server(app)
    app[keys.CHAT].clock = clock
    return ChatServer(str(server.make_url("")).rstrip("/"), app, clock)


Connect = Callable[..., Any]


@pytest_asyncio.fixture
async def chat_client(chat_server: ChatServer) -> AsyncIterator[Connect]:
    """Factory: `await chat_client(account, token=None)` → a connected ChatClient (a device)."""
    async with live_clients(ChatClient, chat_server.base) as make:
        async def connect(acct: dict[str, Any], token: str | None = None) -> ChatClient:
            return await make(acct, token=token)
        yield connect



class Cast:
    """People of one class of the demo, and outsiders."""

    def __init__(self, accounts: list[dict[str, Any]]) -> None:
        def first(role: str, school: str = CHARLEMAGNE, **f: Any) -> dict[str, Any]:
            return next(a for a in accounts if a["role"] == role and a["school"] == school
                        and all(a.get(k) == v for k, v in f.items()))
        self.teacher = first("teacher")
        self.class_name = self.teacher["classes"][0]
        pupils = [a for a in accounts if a["role"] == "student" and a["school"] == CHARLEMAGNE
                  and a["classes"] == [self.class_name]]
        self.alice, self.bob = pupils[0], pupils[1]
        self.parent = next(a for a in accounts if a["role"] == "parent"
                           and self.alice["login"] in a["children"])
        self.other_parent = next(a for a in accounts if a["role"] == "parent"
                                 and self.bob["login"] in a["children"])
        self.other_teacher = next(
            a for a in accounts if a["role"] == "teacher" and a["school"] == CHARLEMAGNE
            and self.class_name not in a["classes"])
        self.cpe = first("cpe")
        self.staff = first("staff")
        self.far_teacher = first("teacher", GOBAIN)
        self.far_cpe = first("cpe", GOBAIN)
        self.admin = next(a for a in accounts if a["role"] == "admin")


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def hurtful_message(server: ChatServer, chat_client: Connect, cast: Cast
                          ) -> tuple[int, Any, Any, Any]:
    """A teacher's group with Alice and Bob, where Bob writes « Message blessant »: its id,
    and the teacher's, Alice's and Bob's sockets."""
    teacher = await chat_client(cast.teacher)
    ids = [await user_id(server.base, a) for a in (cast.alice, cast.bob)]
    conv = (await teacher.ok("create", {"kind": "group", "title": "Groupe", "members": ids,
                                        "body": "Bienvenue"}))["conversation_id"]
    bob = await chat_client(cast.bob)
    alice = await chat_client(cast.alice)
    sent = await bob.ok("send", {"conversation_id": conv, "body": "Message blessant"})
    msg_id = (await alice.wait_event(conv, sent["seq"]))["message"]["id"]
    return int(msg_id), teacher, alice, bob

"""The demo's conversations: written once, visible to their participants only."""

from __future__ import annotations

from pathlib import Path

from realtime import keys
from realtime.demo.chat import seed_chat
from realtime.demo.plan import DemoPlan
from realtime.identity.store import user_by_id
from tests.chat.conftest import ChatServer
from tests.engines import open_test_db


async def test_demo_conversations_are_written_once(demo_db_path: Path,
                                                   demo_plan: DemoPlan) -> None:
    db = await open_test_db(demo_db_path)
    try:
        rows = await db.fetchall("SELECT kind, last_seq FROM chat_conversations ORDER BY id")
        assert [r["kind"] for r in rows] == ["direct", "information", "group"] * 2
        assert [r["last_seq"] for r in rows][:3] == [2, 1, 1]
        assert await seed_chat(db, demo_plan) == 0
        assert len(await db.fetchall("SELECT id FROM chat_conversations")) == 6
    finally:
        await db.close()


async def test_demo_parent_sees_the_answer(chat_server: ChatServer) -> None:
    db = chat_server.app[keys.DB]
    row = await db.fetchone("SELECT id, creator_id FROM chat_conversations WHERE kind = 'direct'"
                            " ORDER BY id LIMIT 1")
    assert row is not None
    identity = chat_server.app[keys.IDENTITY]
    parent = await user_by_id(db, row["creator_id"])
    assert parent is not None
    mine = await chat_server.service.summaries(await identity.principal_for(parent))
    direct = next(c for c in mine if c["id"] == row["id"])
    assert direct["unread"] == 1 and direct["last"]["body"].startswith("Bonjour, exercices")
    info = next(c for c in mine if c["kind"] == "information")
    assert not info["can_post"] and info["unread"] == 1
    other = await db.fetchone("SELECT id FROM users WHERE role = 'parent' AND id NOT IN"
                              " (SELECT user_id FROM chat_participants) LIMIT 1")
    stranger = await user_by_id(db, other["id"])
    assert stranger is not None
    assert await chat_server.service.summaries(await identity.principal_for(stranger)) == []

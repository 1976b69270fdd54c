"""Two server processes' worth of apps on one SQLite file and one Redis: co-editors connected
to different nodes see each other's text and presence live, and the stored truth agrees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from realtime.coursedocs import protocol as wire
from realtime.coursedocs.relay import Relay
from tests.conftest import two_nodes
from tests.coursedocs.conftest import new_doc, teacher_token, until
from tests.coursedocs.test_socket import paragraph, stored_text

pytestmark = pytest.mark.redis


async def test_co_editors_on_two_nodes(
    start_server: Any, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
    redis_cleanup: aioredis.Redis, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]], yclient: Any,
) -> None:
    a, b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix)
    token = await teacher_token(http, a, demo_accounts)
    doc = await new_doc(http, a, token)
    on_a = await yclient(a, doc["id"], token)
    on_b = await yclient(b, doc["id"], token)
    for i in range(10):
        paragraph(on_a, f"Nœud A, ligne {i}")
        paragraph(on_b, f"Nœud B, ligne {i}")
    await until(lambda: on_a.text() == on_b.text() and on_a.text().count("ligne") == 20)
    # Presence crosses nodes too, and leaves with its connection.
    state = json.dumps({"user": {"name": "Célia sur B"}})
    await on_b.send(wire.awareness_message(wire.encode_awareness(
        [wire.AwarenessEntry(31337, 1, state)])))
    await until(lambda: any(e.client_id == 31337 for e in on_a.awareness))
    late = await yclient(a, doc["id"], token)  # a newcomer on A hears about B's people
    await until(lambda: any(e.client_id == 31337 for e in late.awareness))
    await on_b.close()
    await until(lambda: any(e.client_id == 31337 and e.removed for e in on_a.awareness))
    assert late.text() == on_a.text()
    assert await stored_text(demo_db_path, doc["id"]) == on_a.text()


async def test_an_update_the_relay_never_brought_arrives_from_sqlite(
    start_server: Any, tmp_path: Path, demo_db_path: Path, redis_prefix: str,
    redis_cleanup: aioredis.Redis, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]], yclient: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pub/sub is at-most-once, and a node killed between its commit and its publish never
    relays: the other node's open document finds the stored update on its next recheck and
    its clients get it — and a later edit that builds on it is not left pending."""
    a, b = await two_nodes(start_server, tmp_path, demo_db_path, redis_prefix,
                           docs_recheck_s=0.2)
    token = await teacher_token(http, a, demo_accounts)
    doc = await new_doc(http, a, token)
    on_a = await yclient(a, doc["id"], token)
    on_b = await yclient(b, doc["id"], token)
    paragraph(on_a, "Avant la coupure")
    await until(lambda: "Avant la coupure" in on_b.text())

    real_publish = Relay.publish
    dropped: list[bytes] = []

    async def lossy(self: Relay, doc_id: int, kind: bytes, payload: bytes) -> None:
        if b"perdu" in payload:  # this one never reaches Redis
            dropped.append(payload)
            return
        await real_publish(self, doc_id, kind, payload)

    monkeypatch.setattr(Relay, "publish", lossy)
    paragraph(on_a, "Message perdu en route : « élève », « café »")
    await until(lambda: bool(dropped))
    paragraph(on_a, "Et la suite, qui en dépend")
    await until(lambda: on_b.text() == on_a.text())
    assert "Message perdu en route : « élève », « café »" in on_b.text()
    assert on_b.text().count("Et la suite") == 1
    assert await stored_text(demo_db_path, doc["id"]) == on_a.text()

"""`GET /metrics` on a real server: real actions move the counters; outsiders are refused."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from realtime.metrics import MULTIPROC_ENV, prepare_multiprocess
from tests.attendance.conftest import Cast as AttendanceCast
from tests.attendance.conftest import att_client  # noqa: F401 (fixture)
from tests.attendance.test_socket import student_id, take_roll
from tests.boards.conftest import board_client, stroke  # noqa: F401 (fixture)
from tests.boards.test_socket import Cast, create_board
from tests.chat.conftest import ChatClient
from tests.conftest import make_settings, token_for, user_id

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


async def scrape(base: str, headers: dict[str, str] | None = None) -> Samples:
    async with aiohttp.ClientSession() as s, s.get(f"{base}/metrics", headers=headers) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("text/plain")
        text = await r.text()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_real_actions_move_the_counters(demo_server: str, board_client: Any,  # noqa: F811
                                              cast: Cast) -> None:
    before = await scrape(demo_server)
    # Boards: two members, a few ops → frames (one per tick) and deliveries.
    board = await create_board(demo_server, cast)
    teacher, alice = await board_client(cast.teacher), await board_client(cast.alice)
    for c in (teacher, alice):
        assert (await c.call("join", {"board_id": board}))["ok"]
    for i in range(3):
        assert (await teacher.call("op", {"board_id": board, "op": stroke(f"s{i}")}))["ok"]
    # Chat: a message sent (a reliable event), and a refused one.
    chat = await ChatClient(demo_server, await token_for(demo_server, cast.teacher)).connect()
    try:
        pupil = await user_id(demo_server, cast.alice)
        made = await chat.ok("create", {"kind": "group", "title": "Mesures", "members": [pupil],
                                        "body": "Bonjour"})
        await chat.ok("send", {"conversation_id": made["conversation_id"], "body": "Suite"})
        bad = await chat.call("send", {"conversation_id": "x"})
        assert bad["error"]["code"] == "invalid"
        after = await scrape(demo_server)
        connected_chat = value(after, "realtime_connected_sockets", namespace="/chat")
    finally:
        await chat.close()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("realtime_events_total", namespace="/boards", event="op") == 3
    assert moved("realtime_ack_seconds_count", namespace="/boards", event="op") == 3
    assert moved("realtime_events_total", namespace="/chat", event="send") == 2
    assert moved("realtime_ack_seconds_count", namespace="/chat", event="send") == 1
    assert moved("realtime_event_errors_total", namespace="/chat", event="send",
                 code="invalid") == 1
    assert value(after, "realtime_connected_sockets", namespace="/boards") == 2
    assert connected_chat == 1
    assert moved("realtime_board_fanout_frames_total") >= 1
    # Every frame reached both members (the teacher's own ops come back to it too).
    assert moved("realtime_board_fanout_deliveries_total") == \
        2 * moved("realtime_board_fanout_frames_total")
    assert moved("realtime_db_write_seconds_count", kind="transaction") >= 1
    assert moved("realtime_db_write_batch_size_count") >= 1
    assert moved("realtime_db_write_batch_size_sum") >= 3  # the three ops, at least
    assert value(after, "realtime_presence_entries") >= 2  # the two board members
    # The acks of the calls above went straight to their websockets (their writers idle).
    assert moved("realtime_sio_direct_packets_total") >= 3 + 4
    assert ("realtime_yjs_gaps_total", ()) in after  # exposed, nothing to catch up here
    assert ("realtime_sqlite_wal_restarts_total", ()) in after


async def test_event_loop_lag_is_sampled(demo_server: str) -> None:
    async def sampled() -> Samples:
        while True:
            samples = await scrape(demo_server)
            if value(samples, "realtime_event_loop_lag_seconds_count") >= 1:
                return samples
            await asyncio.sleep(0.2)
    samples = await asyncio.wait_for(sampled(), 10)
    assert value(samples, "realtime_event_loop_lag_seconds_bucket", le="+Inf") >= 1


async def test_metrics_refused_through_a_proxy_without_token(demo_server: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{demo_server}/metrics",
                         headers={"X-Forwarded-For": "203.0.113.7"}) as r:
            assert r.status == 403
            body = await r.json()
    assert body["error"]["code"] == "forbidden" and "jeton" in body["error"]["message"]


async def test_metrics_token_lets_a_remote_scraper_in(start_server: Any, tmp_path: Path,
                                                      demo_db_path: Path) -> None:
    base = await start_server(make_settings(tmp_path, db_path=demo_db_path,
                                            metrics_token="s3cret-scrape"))
    remote = {"X-Forwarded-For": "203.0.113.7"}
    samples = await scrape(base, {**remote, "Authorization": "Bearer s3cret-scrape"})
    assert ("realtime_event_loop_lag_seconds_count", ()) in samples
    async with aiohttp.ClientSession() as s:
        for auth in ("Bearer wrong", "s3cret-scrape", ""):
            async with s.get(f"{base}/metrics", headers={**remote, "Authorization": auth}) as r:
                assert r.status == 403, auth


async def test_attendance_mark_latency_is_observed(demo_server: str, att_client: Any,  # noqa: F811
                                                   demo_accounts: list[dict[str, Any]]) -> None:
    cast = AttendanceCast(demo_accounts)
    before = await scrape(demo_server)
    teacher = await att_client(cast.teacher)
    opened = await take_roll(demo_server, cast, teacher)
    rid = opened["roll"]["id"]
    pupil = student_id(opened, cast.student)
    ack = await teacher.call("mark", {"roll_id": rid, "marks": [
        {"student_id": pupil, "state": "absent"}]})
    assert ack["ok"], ack
    after = await scrape(demo_server)
    labels = {"namespace": "/attendance", "event": "mark"}
    assert value(after, "realtime_ack_seconds_count", **labels) - \
        value(before, "realtime_ack_seconds_count", **labels) == 1
    assert value(after, "realtime_ack_seconds_bucket", le="+Inf", **labels) >= 1


def test_workers_directory_is_emptied_of_old_values_only(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve --workers` starts from empty values, without touching anything else there."""
    # setenv records the variable's absence, so it is removed again after the test
    # (delenv of an absent variable records nothing, and the later tests saw it).
    monkeypatch.setenv(MULTIPROC_ENV, "")
    for name in ("counter_41.db", "gauge_livesum_41.db", "histogram_42.db", "ent.db",
                 "ent.sqlite3"):
        (tmp_path / name).write_bytes(b"x")
    prepare_multiprocess(tmp_path)
    assert os.environ[MULTIPROC_ENV] == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ent.db", "ent.sqlite3"]

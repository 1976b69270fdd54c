"""`serve --workers N` as an operator runs it: refused without Redis, N processes on one port,
a killed worker's clients (board followers, chat devices) resume exactly on another, SIGTERM
stops them all gracefully."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.boards.test_socket import Cast, create_board
from tests.chat.conftest import Cast as ChatCast
from tests.chat.conftest import ChatClient
from tests.conftest import REDIS_URL, ROOT, login, token_for, user_id
from tests.scale.clients import Follower, stroke
from tests.scale.conftest import HEARTBEAT_S, PRESENCE_TIMEOUT_S, Cluster


async def wait_roster(base: str, acct: dict[str, Any], scope: str, n: int) -> list[Any]:
    """The scope's roster once it has n users (read from the presence store, over REST)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, acct)
        users: list[Any] = []
        for _ in range(100):
            async with s.get(f"{base}/api/presence/{scope}") as r:
                users = (await r.json())["users"]
            if len(users) == n:
                return users
            await asyncio.sleep(0.1)
    raise AssertionError(f"{scope}: {users}")


@pytest.fixture
def cast(demo_accounts: list[dict[str, Any]]) -> Cast:
    return Cast(demo_accounts)


def test_several_workers_without_redis_are_refused(cluster: Cluster) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "realtime", "serve", "--workers", "2", "--port", "1"],
        cwd=ROOT, env=cluster.env(None), capture_output=True, text=True, timeout=60,
        check=False)
    assert proc.returncode == 2
    assert "REDIS_URL" in proc.stderr and "--workers 2" in proc.stderr
    assert "Traceback" not in proc.stderr


async def test_a_killed_worker_clients_resume_on_another(cluster: Cluster, cast: Cast,
                                                         demo_accounts: list[dict[str, Any]]
                                                         ) -> None:
    node = await cluster.node(workers=2)
    assert len(await node.answering_pids()) == 2  # the kernel spreads connections
    board = await create_board(node.url, cast)
    pupils = [x for x in demo_accounts if x["role"] == "student"
              and x["classes"] == [cast.class_name] and x["school"] == cast.alice["school"]][:8]
    teacher = await Follower(await token_for(node.url, cast.teacher), board).connect(node.url)
    followers = [await Follower(await token_for(node.url, p), board).connect(node.url)
                 for p in pupils]
    everyone = [teacher, *followers]
    try:
        acked = [(await teacher.call("op", {"op": stroke(f"s{i}")}))["seq"] for i in range(10)]
        assert acked == list(range(1, 11))
        # Kill a worker that holds some of the clients (whichever that is, there is one).
        victims: list[Follower] = []
        for pid in sorted(node.worker_pids()):
            os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(1.0)
            victims = [f for f in everyone if f.disconnected.is_set()]
            if victims:
                break
            await node.wait_ready()  # the supervisor started it again; try the other
        assert victims, "no client was on either worker"
        survivors = [f for f in everyone if f not in victims]
        for f in victims:  # the same address: the surviving or the restarted worker
            await f.connect(node.url)
        assert teacher.sio is not None and teacher.sio.connected
        more = [(await teacher.call("op", {"op": stroke(f"m{i}")}))["seq"] for i in range(5)]
        assert more == list(range(11, 16))
        for f in everyone:
            await f.wait_for(lambda f=f: f.seq == 15)
            assert [s for _e, s in f.applied] == list(range(1, 16)), f.joins
            assert f.duplicates == 0 and f.gaps == 0
        for f in victims:
            assert f.joins[-1]["since"] is not None and not f.joins[-1]["snapshot"]
        assert survivors or victims
        await node.wait_ready()
        assert len(node.worker_pids()) == 2  # the dead worker was replaced
        # Presence: the dead worker's devices expired, the reconnected ones count — everyone
        # still follows the board, each on one device.
        await asyncio.sleep(PRESENCE_TIMEOUT_S + 2 * HEARTBEAT_S)
        roster = await wait_roster(node.url, cast.teacher, f"board:{board}", len(everyone))
        assert all(u["devices"] == 1 for u in roster), roster
    finally:
        for f in everyone:
            await f.close()


async def test_sigterm_stops_every_worker(cluster: Cluster, cast: Cast) -> None:
    node = await cluster.node(workers=2)
    pids = node.worker_pids()
    assert len(pids) == 2
    board = await create_board(node.url, cast)
    follower = await Follower(await token_for(node.url, cast.alice), board).connect(node.url)
    told: list[Any] = []
    assert follower.sio is not None
    follower.sio.on("server_shutdown", told.append, namespace="/boards")
    node.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(node.proc.wait, 30) == 0
    await asyncio.wait_for(follower.disconnected.wait(), 5)
    assert told and "redémarre" in told[0]["message"]
    assert all(_gone(pid) for pid in pids)
    assert "all workers stopped" in node.log_text()


def _gone(pid: int) -> bool:
    """No such process, or one that exited and awaits reaping."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_workers_that_cannot_start_are_not_restarted_forever(cluster: Cluster,
                                                                   tmp_path: Path) -> None:
    broken = tmp_path / "not-a-database"
    broken.mkdir()  # a directory where the SQLite file should be: every worker fails
    # (The supervisor is what is tested, on either engine: the workers are given SQLite,
    # which fails at once; a PostgreSQL that refuses them takes its connect timeout.)
    node = cluster.spawn(REDIS_URL, workers=2, REALTIME_DB=str(broken), DATABASE_URL="")
    code = await asyncio.to_thread(node.proc.wait, 90)
    assert code == 1
    log = node.log_text()
    assert "s'arrêtent dès leur démarrage" in log and "worker died" in log


async def test_a_worker_failing_at_start_beside_a_serving_one_is_retried(
        cluster: Cluster) -> None:
    """A worker that dies again and again right after its start while the other serves (a
    PostgreSQL restarting, say, refuses its start-up): the node is not given up, the worker
    is started again later and later, and it is back once it can start."""
    node = await cluster.node(workers=2)
    ready = "ENT temps réel prêt"

    async def until(predicate: Any, what: str, wait_s: float = 30) -> Any:
        for _ in range(int(wait_s / 0.02)):
            found = predicate()
            if found:
                return found
            assert node.proc.poll() is None, f"the node exited:\n{node.log_text()[-3000:]}"
            await asyncio.sleep(0.02)
        raise AssertionError(f"{what}:\n{node.log_text()[-3000:]}")

    await until(lambda: node.log_text().count(ready) == 2, "both workers ready")
    survivor, victim = sorted(node.worker_pids())
    killed = {victim}
    os.kill(victim, signal.SIGKILL)
    for _ in range(3):  # three deaths at start-up in a row: the old supervisor gave up here
        new = await until(lambda: node.worker_pids() - {survivor} - killed, "a new worker")
        pid = new.pop()
        os.kill(pid, signal.SIGKILL)  # before it could start
        killed.add(pid)
    # The node goes on serving, and the worker comes back and starts.
    await until(lambda: node.log_text().count(ready) == 3, "the worker started again")
    pids = node.worker_pids()
    assert survivor in pids and len(pids) == 2 and not pids & killed
    log = node.log_text()
    assert log.count("worker died, starting it again") == 4 and "giving up" not in log
    async with aiohttp.ClientSession() as s, s.get(f"{node.url}/healthz") as r:
        assert r.status == 200


async def test_a_killed_worker_chat_devices_catch_up_exactly(
    cluster: Cluster, demo_accounts: list[dict[str, Any]]
) -> None:
    """Chat, like boards: the devices a killed worker held reconnect to the same address and
    `sync` from the last seq they had; with what comes live afterwards, each has every
    message once, in order."""
    node = await cluster.node(workers=2)
    assert len(await node.answering_pids()) == 2
    cast = ChatCast(demo_accounts)
    teacher = await ChatClient(node.url, await token_for(node.url, cast.teacher)).connect()
    alice_token = await token_for(node.url, cast.alice)
    devices = [await ChatClient(node.url, alice_token).connect() for _ in range(6)]
    everyone = [teacher, *devices]
    try:
        members = [await user_id(node.url, x) for x in (cast.alice, cast.bob)]
        conv = (await teacher.ok("create", {"kind": "group", "title": "Classe verte",
                                            "members": members, "body": "départ à 8 h"}
                                 ))["conversation_id"]
        for i in range(2, 6):
            await teacher.ok("send", {"conversation_id": conv, "body": f"consigne {i} é"})
        for d in devices:
            await d.wait_event(conv, 5)

        victims: list[ChatClient] = []
        for pid in sorted(node.worker_pids()):
            os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(1.0)
            victims = [c for c in everyone if not c.sio.connected]
            if victims:
                break
            await node.wait_ready()
        assert victims, "no client was on either worker"
        await node.wait_ready()
        if teacher in victims:  # the teacher's device was there too: it comes back first
            teacher = await ChatClient(node.url, teacher.token).connect()
            everyone.append(teacher)
        for i in range(6, 9):  # sent while the victims are away
            await teacher.ok("send", {"conversation_id": conv, "body": f"consigne {i} é"})

        seqs: dict[int, list[int]] = {}
        for n, d in enumerate(devices):
            had = [e["seq"] for e in d.events if e["conversation_id"] == conv]
            if d in victims:
                back = await ChatClient(node.url, alice_token).connect()
                everyone.append(back)
                devices[n] = back
                caught = await back.ok("sync", {"conversation_id": conv, "since": max(had)})
                assert "reset" not in caught
                had += [e["seq"] for e in caught["events"]]
            seqs[n] = had
        await teacher.ok("send", {"conversation_id": conv, "body": "retour à 17 h"})
        for n, d in enumerate(devices):
            event = await d.wait_event(conv, 9)
            assert event["message"]["body"] == "retour à 17 h"
            live_after = [e["seq"] for e in d.events if e["conversation_id"] == conv
                          and e["seq"] not in seqs[n]]
            assert sorted(seqs[n] + live_after) == list(range(1, 10)), (n, seqs[n], live_after)
            assert len(set(seqs[n] + live_after)) == 9  # nothing twice
    finally:
        for c in everyone:
            await c.close()

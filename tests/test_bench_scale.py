"""bench/scale.py's per-core arithmetic, and bench/stream_ops.py run small against the real
Redis: the figures docs/performance.md records come from these."""

from __future__ import annotations

import argparse
import asyncio
import math
import subprocess
import time
from pathlib import Path

import pytest

from bench import stream_ops
from bench.boards import (
    BoardPlan,
    Result,
    Server,
    client_specs,
    pids_cpu_s,
    pids_rss_mib,
    proc_rss_mib,
    spread_urls,
)
from bench.scale import (
    System,
    is_redis_process,
    local_redis_pid,
    node_cpus,
    nodes_name,
    parse_args,
    per_core,
    server_cpu,
    server_cpus,
    system_name,
    systems_of,
    table,
    us_per_delivery,
    verdict,
)
from tests import engines


def result(system: str, deliveries: float, cpu: float, boards: int = 16,
           db_cpu: float = math.nan) -> Result:
    return Result(system=system, boards=boards, followers=30, seconds=10, ops_in=480,
                  deliveries_out=deliveries, p50=2.0, p99=5.0, server_cpu=cpu,
                  server_rss=100, missing=0, errors={}, client_cpu=[10, 10], late_sends=0,
                  ack_p99=5.0, machine_busy=100, steal=0, db_cpu=db_cpu)


def test_cpu_per_delivery_and_per_core() -> None:
    r = result("x", deliveries=15_000, cpu=45)  # 45 % of a core for 15,000/s
    assert us_per_delivery(r) == pytest.approx(30.0)
    assert per_core(r) == pytest.approx(33_333.3, rel=1e-4)
    assert math.isnan(per_core(result("x", deliveries=0, cpu=45)))
    assert math.isnan(us_per_delivery(result("x", deliveries=100, cpu=math.nan)))


def test_verdict_gives_the_issues_ratios_as_medians_of_rounds() -> None:
    sqlite, one, two = system_name(0), system_name(1), system_name(2)
    rows = [  # two rounds: per core 40k / 36k / 64k, then 40k / 40k / 60k
        result(sqlite, 15_000, 37.5), result(one, 15_000, 41.667), result(two, 15_000, 23.4375),
        result(sqlite, 15_000, 37.5), result(one, 15_000, 37.5), result(two, 15_000, 25.0),
    ]
    text = verdict(rows, [1, 2], [""])
    # one worker ÷ the single process: 0.90 and 1.00 → median 0.95
    assert "Redis, 1 worker / SQLite, 1 process: 0.95×" in text
    # two workers ÷ one: 64/36 = 1.78 and 60/40 = 1.50 → median 1.64
    assert "Redis, 2 workers / 1 worker: 1.64×" in text


def test_verdict_compares_placement_and_equal_load_per_process() -> None:
    one, two, spread = system_name(1), system_name(2), system_name(2, spread=True)
    assert spread == "Redis, 2 workers, spread"
    rows = [  # per core: 1 worker 30k at 6 boards, 40k at 12; 2 workers 36k, spread 24k
        result(one, 15_000, 50, boards=6), result(one, 15_000, 37.5, boards=12),
        result(two, 15_000, 41.667, boards=12), result(spread, 15_000, 62.5, boards=12),
    ]
    text = verdict(rows, [1, 2], [""], spread=True)
    assert "12 boards, Redis, 2 workers / 1 worker: 0.90×" in text
    assert "12 boards, Redis, 2 workers, spread / 1 worker: 0.60×" in text
    assert "12 boards, Redis, 2 workers / Redis, 2 workers, spread: 1.50×" in text
    # 2 workers at 12 boards (6 each) against 1 worker at 6: 36k / 30k
    assert "equal load per process, Redis, 2 workers at 12 boards / 1 worker at 6: 1.20×" in text


def test_worker_cpus_give_w_workers_w_cores() -> None:
    args = parse_args(["--workers", "1,2,4", "--worker-cpus", "0-3", "--client-cpus", "4-15"])
    assert [server_cpus(args, w) for w in (0, 1, 2, 4)] == [{0}, {0}, {0, 1}, {0, 1, 2, 3}]
    assert server_cpus(parse_args(["--server-cpus", "2,3"]), 4) == {2, 3}
    assert server_cpus(parse_args([]), 2) is None
    with pytest.raises(SystemExit):
        parse_args(["--workers", "1,4", "--worker-cpus", "0-1"])


PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def test_database_url_gives_sqlite_and_one_then_two_nodes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    plain = parse_args([])
    assert (plain.database_url, plain.worker_counts, plain.node_counts) == (None, [1, 2], [])
    assert [s.name() for s in systems_of(plain)] == [
        "SQLite, 1 process", "Redis, 1 worker", "Redis, 2 workers"]

    args = parse_args(["--database-url", PG])
    assert (args.worker_counts, args.node_counts) == ([], [1, 2])
    assert [s.name() for s in systems_of(args)] == [
        "SQLite, 1 process", "PostgreSQL, 1 node", "PostgreSQL, 2 nodes"]
    assert systems_of(args)[1:] == [System(nodes=1), System(nodes=2)]
    # An explicit --workers still runs the Redis worker systems beside the nodes.
    both = parse_args(["--database-url", PG, "--workers", "2", "--nodes", "2,3",
                       "--no-sqlite"])
    assert [s.name() for s in systems_of(both)] == [
        "Redis, 2 workers", "PostgreSQL, 2 nodes", "PostgreSQL, 3 nodes"]

    monkeypatch.setenv("DATABASE_URL", PG)  # the default, as bench/boards.py's
    assert parse_args(["--nodes", "2"]).node_counts == [2]
    assert parse_args([]).database_url == PG


@pytest.mark.parametrize("argv", [
    ["--nodes", "1,2"],  # nodes without PostgreSQL
    ["--database-url", "mysql://root@127.0.0.1/ent"],
    ["--database-url", PG, "--nodes", "0,2"],
    ["--database-url", PG, "--nodes", "one"],
    ["--database-url", PG, "--nodes", ","],
    ["--database-url", PG, "--compare", "/tmp/base"],
    ["--no-sqlite", "--workers", ""],  # nothing left to run
    ["--database-url", PG, "--worker-cpus", "0"],  # 2 nodes, 1 CPU
])
def test_node_options_refused(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_nodes_are_pinned_one_per_cpu_or_all_together() -> None:
    args = parse_args(["--database-url", PG, "--worker-cpus", "0-1"])
    assert [node_cpus(args, i) for i in (0, 1)] == [{0}, {1}]
    together = parse_args(["--database-url", PG, "--server-cpus", "1"])
    assert [node_cpus(together, i) for i in (0, 1)] == [{1}, {1}]
    assert node_cpus(parse_args(["--database-url", PG]), 1) is None


def test_postgresql_cpu_is_the_nodes_and_their_backends() -> None:
    two = result(nodes_name(2), 15_000, cpu=30, db_cpu=15)  # nodes' trees summed: 30 %
    assert nodes_name(1) == "PostgreSQL, 1 node" and two.system == "PostgreSQL, 2 nodes"
    assert server_cpu(two) == 45
    assert us_per_delivery(two) == pytest.approx(30.0)  # 45 % of a core for 15,000/s
    # Backends not measured (PostgreSQL elsewhere): the nodes' CPU alone.
    assert server_cpu(result(nodes_name(1), 15_000, cpu=30)) == 30
    out = table([result(system_name(0), 15_000, 37.5), two], 1).splitlines()
    assert "| of which PG backends % |" in out[0]
    assert out[2].split("|")[8:10] == [" 38 ", " "]  # SQLite: no backends
    assert out[3].split("|")[8:11] == [" 45 ", " 15 ", " 30.0 "]
    assert "PG backends" not in table([result(system_name(0), 15_000, 37.5)], 1)


def test_redis_cpu_is_shown_beside_the_server_cpu_not_in_it() -> None:
    one = result(system_name(1), 15_000, cpu=30)
    one.redis_cpu = 12
    assert server_cpu(one) == 30 and us_per_delivery(one) == pytest.approx(20.0)
    out = table([result(system_name(0), 15_000, 37.5), one], 1).splitlines()
    assert "| server CPU % | + Redis % | µs CPU / delivery |" in out[0]
    assert out[2].split("|")[8:10] == [" 38 ", " "]  # SQLite: no Redis
    assert out[3].split("|")[8:11] == [" 30 ", " 12 ", " 20.0 "]
    assert "Redis %" not in table([result(system_name(0), 15_000, 37.5)], 1)


def test_the_local_redis_server_is_found_for_its_cpu() -> None:
    pid = asyncio.run(local_redis_pid())  # the real Redis the suite runs beside (127.0.0.1:6379)
    local = [int(d.name) for d in Path("/proc").iterdir()
             if d.name.isdigit() and is_redis_process(int(d.name))]
    # Found when it runs on this machine; None (not measured) when it runs elsewhere, e.g.
    # in a container whose pids are not this machine's.
    assert pid in local if local else pid is None
    assert not is_redis_process(2**22 + 7)


def test_verdict_compares_one_node_to_sqlite_and_two_nodes_to_one() -> None:
    sqlite, one, two = system_name(0), nodes_name(1), nodes_name(2)
    rows = [  # two rounds, per core: SQLite 40k, 1 node 20k then 25k, 2 nodes 18k then 25k
        result(sqlite, 15_000, 37.5), result(one, 15_000, 50, db_cpu=25),
        result(two, 15_000, 60, db_cpu=23.333),
        result(sqlite, 15_000, 37.5), result(one, 15_000, 40, db_cpu=20),
        result(two, 15_000, 40, db_cpu=20),
    ]
    text = verdict(rows, [], [""], node_counts=[1, 2])
    # 1 node ÷ SQLite: 0.50 and 0.625 → median 0.56 (the backends' CPU counted)
    assert "16 boards, PostgreSQL, 1 node / SQLite, 1 process: 0.56×" in text
    # 2 nodes ÷ 1 node: 0.90 and 1.00 → median 0.95
    assert "16 boards, PostgreSQL, 2 nodes / 1 node: 0.95× (rounds 0.90, 1.00" in text
    assert "worker" not in text  # no Redis worker system was run


def test_verdict_compares_two_nodes_to_one_at_equal_load_per_node() -> None:
    rows = [result(nodes_name(1), 15_000, 50, boards=4),
            result(nodes_name(2), 15_000, 37.5, boards=8)]  # per core 30k, 40k
    text = verdict(rows, [], [""], node_counts=[1, 2])
    assert ("equal load per process, PostgreSQL, 2 nodes at 8 boards / 1 node at 4: 1.33×"
            in text)


def test_verdict_compares_a_checkout_run_in_the_same_rounds() -> None:
    rows = [result(system_name(1), 15_000, 40), result(system_name(1, "base"), 15_000, 50)]
    text = verdict(rows, [1], ["", "base"])
    assert "Redis, 1 worker, this code / base: 1.25×" in text


NODE1, NODE2 = "http://127.0.0.1:8001", "http://127.0.0.1:8002"


def test_followers_are_spread_over_the_nodes_round_robin() -> None:
    assert spread_urls([NODE1, NODE2], 5) == [NODE1, NODE2, NODE1, NODE2, NODE1]
    assert spread_urls([NODE1], 3) == [NODE1] * 3
    assert spread_urls([], 3) == []  # no nodes given: every client on the measured server


def test_client_specs_send_each_client_to_its_node() -> None:
    """The teacher on the first node, its followers on the nodes in turn, whichever client
    process runs them; a plan without URLs (bench/boards.py's own) on the server's URL."""
    args = argparse.Namespace(procs=2, rate=30, stroke_ops=30, warmup=4, client="lean")
    spread = BoardPlan(7, "t", ["f0", "f1", "f2"], NODE1, spread_urls([NODE1, NODE2], 3))
    plain = BoardPlan(8, "t2", ["g0", "g1"])
    specs = client_specs("http://server", [spread, plain], args)
    teachers = [t for s in specs for t in s["teachers"]]
    followers = sorted(f for s in specs for f in s["followers"])
    assert sorted(teachers) == [(0, 7, "t", NODE1), (1, 8, "t2", "http://server")]
    assert followers == [(0, 7, "f0", NODE1), (0, 7, "f1", NODE2), (0, 7, "f2", NODE1),
                         (1, 8, "g0", "http://server"), (1, 8, "g1", "http://server")]
    assert [len(s["followers"]) for s in specs] == [3, 2]  # still spread over the processes


def test_a_servers_other_nodes_are_measured_and_read_with_it(tmp_path: Path) -> None:
    sleepers = [subprocess.Popen(["sleep", "30"]) for _ in range(2)]
    try:
        deadline = time.monotonic() + 10  # both asleep: exec'd and loaded, their RSS steady
        while time.monotonic() < deadline and not all(
                Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "S"
                for p in sleepers):
            time.sleep(0.01)
        first = Server("PostgreSQL, 2 nodes", sleepers[0], "http://a", tmp_path / "a.log")
        other = Server("node 2", sleepers[1], "http://b", tmp_path / "b.log")
        first.log.write_text("ok\nWARNING slow\n")  # type: ignore[union-attr]
        other.log.write_text("ERROR lost\n")  # type: ignore[union-attr]
        first.nodes = [other]
        assert first.pids() == [sleepers[0].pid, sleepers[1].pid]
        rss = [proc_rss_mib(p.pid) for p in sleepers]
        assert min(rss) > 0
        assert pids_rss_mib(first.pids()) == pytest.approx(sum(rss))
        assert pids_cpu_s(first.pids()) >= 0
        assert first.log_problems() == ["WARNING slow", "node 2: ERROR lost"]
    finally:
        for p in sleepers:
            p.kill()
            p.wait()
    elsewhere = Server("remote", None, "http://c", None)  # started elsewhere: not measured
    assert elsewhere.pids() == []
    assert math.isnan(pids_cpu_s([])) and math.isnan(pids_rss_mib([]))


def tables(out: str) -> list[list[list[str]]]:
    """The markdown tables printed, as rows of cells (header and rule left out)."""
    found: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in out.splitlines():
        if line.startswith("|---"):
            current = []
            found.append(current)
        elif line.startswith("|") and current is not None:
            current.append([c.strip() for c in line.strip("|").split("|")])
        else:
            current = None
    return found


def check_stream_ops(out: str, stores: list[str]) -> None:
    paced, flooded = tables(out)
    assert [(r[0], r[1]) for r in paced] == [(s, c) for c in ("1", "8") for s in stores]
    for row in paced:  # CPU per append, per op received, p50, p99: all measured
        assert float(row[2].split()[0]) > 0 and float(row[3].split()[0]) > 0
        assert 0 < float(row[4]) <= float(row[5])
    assert [r[0] for r in flooded] == stores
    for row in flooded:
        assert float(row[1]) > 0 and 0 < float(row[2]) <= float(row[3])


@pytest.mark.redis
def test_stream_ops_runs_and_every_figure_is_measured(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    """Small enough for the suite: every row printed, every figure a positive number, and
    the Redis receiver saw no gap (every op it was sent arrived by pub/sub, in order)."""
    monkeypatch.delenv("DATABASE_URL", raising=False)  # a developer's shell may export it
    stream_ops.main(["--ops", "160", "--rate", "4000", "--flight", "16"])
    check_stream_ops(capsys.readouterr().out, ["SQLite", "Redis"])


@pytest.mark.redis
@pytest.mark.postgres_only
def test_stream_ops_on_postgresql_prints_the_ratios(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With a PostgreSQL database the same store runs there too, its backends' CPU is
    read, and the PostgreSQL / SQLite ratios come from the same run."""
    url = engines.db_url(tmp_path / "bench.sqlite3").split("?")[0]  # the run's database
    stream_ops.main(["--ops", "160", "--rate", "4000", "--flight", "16",
                     "--database-url", url])
    out = capsys.readouterr().out
    check_stream_ops(out, ["SQLite", "PostgreSQL", "Redis"])
    assert "in PostgreSQL's backends" in out
    ratios = [line for line in out.splitlines() if line.startswith("PostgreSQL / SQLite")]
    assert len(ratios) == 4
    assert all(float(line.rsplit(" ", 1)[1].rstrip("×")) > 0 for line in ratios)


@pytest.mark.redis
async def test_stream_ops_receiver_follows_every_op_in_order() -> None:
    payloads = stream_ops.events(64)
    got = await asyncio.wait_for(stream_ops.run_redis(payloads, 8, 4000), 60)
    assert got["gaps"] == 0 and got["append"] > 0 and got["receive"] > 0

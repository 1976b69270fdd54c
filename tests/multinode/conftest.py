"""Fixtures of the multi-node tests: real node processes on the real PostgreSQL and Redis.

These tests always run on PostgreSQL (several machines share nothing else), whatever
`REALTIME_TEST_DB` says: the demo is seeded once per run by `python -m realtime demo` into a
template database, the nodes use a copy of it (`CREATE DATABASE … TEMPLATE`) and a Redis
prefix of their own in database 15, all dropped after. `pair` is the two nodes, A (one
process) and B (`--workers 2`), started on first use and again before a test if a test
killed one. The modules share them: starting two nodes costs seconds, and each test works
on boards, conversations and rolls of its own.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import REDIS_URL
from tests.engines import ADMIN_URL
from tests.multinode.harness import Node, Nodes, create_database, drop_database, seed_demo


@dataclass
class Template:
    name: str
    accounts: list[dict[str, Any]]


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    """The demo, written by the operators' command into a database used as a template."""
    name = f"ent_mn_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        url = create_database(ADMIN_URL, name)
    except Exception as exc:  # CI must fail, not skip
        raise AssertionError(f"PostgreSQL is not answering on {ADMIN_URL}: {exc}") from exc
    try:
        yield Template(name, seed_demo(url, tmp_path_factory.mktemp("seed")))
    finally:
        drop_database(ADMIN_URL, name)


@pytest.fixture(scope="session")
def demo_accounts(demo_template: Template) -> list[dict[str, Any]]:
    """The accounts `demo --out` wrote (the same plan as the rest of the suite's)."""
    return demo_template.accounts


@pytest.fixture(scope="session")
def database(demo_template: Template) -> Iterator[str]:
    """A copy of the demo database that the shared nodes use: its URL."""
    name = f"{demo_template.name}_nodes"
    url = create_database(ADMIN_URL, name, template=demo_template.name)
    try:
        yield url
    finally:
        drop_database(ADMIN_URL, name)


@contextlib.contextmanager
def own_prefix() -> Iterator[str]:
    """A Redis key prefix of our own in database 15, its keys deleted after."""
    prefix = f"mn-{secrets.token_hex(5)}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:  # CI must fail, not skip
        raise AssertionError(f"Redis is not answering on {REDIS_URL}: {exc}") from exc
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@contextlib.contextmanager
def running(tmp: Path, database_url: str) -> Iterator[Nodes]:
    """The nodes of one ENT on that database (started by `pair`), killed at the end."""
    with own_prefix() as prefix:
        cluster = Nodes(tmp, database_url, REDIS_URL, prefix)
        try:
            yield cluster
        finally:
            cluster.stop_all()


@pytest.fixture(scope="session")
def nodes(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[Nodes]:
    """The nodes the modules share (a module that needs nodes of its own, on another
    database, overrides this fixture: tests/multinode/test_postgres_restart.py)."""
    with running(tmp_path_factory.mktemp("nodes"), database) as cluster:
        yield cluster


@pytest.fixture
def pair(nodes: Nodes) -> tuple[Node, Node]:
    """Node A (one process) and node B (`--workers 2`), both ready."""
    if not nodes.nodes:
        nodes.start(1, 2)
    for node in nodes.nodes[:2]:
        if not node.running:
            node.start()
        node.wait_ready()
    return nodes.nodes[0], nodes.nodes[1]


@pytest.fixture(autouse=True)
def node_logs(nodes: Nodes) -> Iterator[None]:
    """The nodes' logs, printed after each test (pytest shows them when it fails)."""
    yield
    for node in nodes.nodes:
        print(f"===== node {node.name} ({node.url}) =====\n{node.log_text()[-6000:]}")

"""Accounts and sessions written by two nodes at once (two `Database`s on one database):
a login and a disabling never cross, and an account created twice at once is refused with
`conflict` (never an internal error)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from realtime.db import Database
from realtime.errors import AppError
from realtime.identity import accounts, store
from realtime.identity.codes import CodeHasher
from realtime.identity.model import Role, User
from realtime.identity.service import IdentityService
from realtime.identity.tokens import TokenSigner
from realtime.ratelimit import MemoryRateLimiter
from tests.conftest import TEST_KDF, make_settings
from tests.engines import open_test_db
from tests.interleave import until_waiting

CODE = "code-de-test-1"


class GatedHasher(CodeHasher):
    """Hashes and verifies codes as usual; once `stop()` was called, the next request
    first waits there for `go()`: stopped between its checks and its transaction (where
    hashing sits in every path that creates an account or a session)."""

    def __init__(self) -> None:
        super().__init__(*TEST_KDF)
        self.stopped = asyncio.Event()
        self._go = asyncio.Event()
        self._go.set()

    def stop(self) -> None:
        self._go.clear()

    def go(self) -> None:
        self._go.set()

    async def _gate(self) -> None:
        if not self._go.is_set():
            self.stopped.set()
            await self._go.wait()

    async def hash_async(self, code: str) -> str:
        await self._gate()
        return await super().hash_async(code)

    async def verify_async(self, code_hash: str | None, code: str) -> bool:
        await self._gate()
        return await super().verify_async(code_hash, code)


def node(db: Database, hasher: CodeHasher | None = None) -> IdentityService:
    return IdentityService(db, hasher or CodeHasher(*TEST_KDF), TokenSigner("s" * 40, 3600),
                           MemoryRateLimiter(100, 60), MemoryRateLimiter(100, 60))


@pytest.fixture
async def dbs(tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    a = await open_test_db(tmp_path / "ent.sqlite3")
    b = await open_test_db(tmp_path / "ent.sqlite3")
    yield a, b
    await a.close()
    await b.close()


async def _account(service: IdentityService) -> User:
    return await service.add_user(login="lea.martin", role=Role.ADMIN, name="Léa Martin",
                                  school_id=None, code=CODE)


async def test_a_login_under_way_and_a_disabling_on_another_node(
        tmp_path: Path, dbs: tuple[Database, Database]) -> None:
    """Node A opens a session (its transaction not yet committed) while node B disables the
    account: B waits for A's commit and ends that session too. Re-enabled later, the account
    does not get it back."""
    a, b = dbs
    node_a, node_b = node(a), node(b)
    user = await _account(node_a)
    async with a.transaction() as conn:
        session = await node_a._open_session(conn, user)
        disabling = asyncio.create_task(node_b.disable_user(user.login))
        await until_waiting(tmp_path / "ent.sqlite3", disabling)
    await disabling
    stored = await store.session_by_id(b, session.id)
    assert stored is not None and stored.revoked_at is not None
    await node_b.enable_user(user.login)
    assert await node_a.authenticate(node_a.signer.sign(session.id)) is None


async def test_a_disabling_under_way_and_a_login_on_another_node(
        tmp_path: Path, dbs: tuple[Database, Database]) -> None:
    """Node A has checked the account (enabled) and the right code when node B disables it
    (not yet committed): A's session transaction waits for B's commit, reads the account
    disabled and refuses; no session is born."""
    a, b = dbs
    hasher = GatedHasher()
    node_a = node(a, hasher)
    user = await _account(node_a)
    hasher.stop()
    login = asyncio.create_task(node_a.login(user.login, CODE, "192.0.2.1"))
    await hasher.stopped.wait()  # the account was read enabled
    async with b.transaction() as conn:
        await store.set_disabled(conn, user.id, True)
        await store.revoke_user_sessions(conn, user.id, 1.0)
        hasher.go()
        await until_waiting(tmp_path / "ent.sqlite3", login)
    with pytest.raises(AppError) as refused:
        await login
    assert refused.value.code == "forbidden"
    row = await a.fetchone("SELECT COUNT(*) AS n FROM sessions WHERE user_id = ?", (user.id,))
    assert row["n"] == 0


async def test_one_login_added_on_two_nodes_at_once_is_a_conflict(
        dbs: tuple[Database, Database]) -> None:
    """Two administrators add « lea.martin » and « Lea.Martin » (one login: case does not
    count) at the same moment on two nodes: each checked that the login was free, node A
    committed first; node B is told `conflict`."""
    a, b = dbs
    hasher = GatedHasher()
    hasher.stop()
    adding = asyncio.create_task(_account(node(b, hasher)))
    await hasher.stopped.wait()  # node B found the login free
    async with a.transaction() as conn:
        await store.insert_user(conn, login="Lea.Martin", role=Role.ADMIN, name="Léa",
                                school_id=None, code_hash="x")
    hasher.go()
    with pytest.raises(AppError) as refused:
        await adding
    assert refused.value.code == "conflict"
    assert refused.value.message == "L'identifiant « lea.martin » existe déjà."
    rows = await b.fetchall("SELECT login FROM users")
    assert [r["login"] for r in rows] == ["Lea.Martin"]


@pytest.mark.parametrize("column", ["login", "external_id"])
async def test_a_csv_import_meeting_an_account_created_meanwhile_is_refused_whole(
        tmp_path: Path, dbs: tuple[Database, Database], column: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The CSV import checks every row, then writes them all: an account created on another
    node in between (same login, or same ENT id) refuses the whole file with `conflict`,
    naming the line; nothing of the file is written."""
    a, b = dbs
    hasher = GatedHasher()
    monkeypatch.setattr(accounts, "_hasher", lambda settings: hasher)
    rows = [accounts.AccountRow(login="paul.durand", role="admin", name="Paul Durand",
                                line=2),
            accounts.AccountRow(login="lea.martin", role="admin", name="Léa Martin",
                                external_id="ACA-77", line=3)]
    clash = {"login": "lea.martin", "external_id": "ACA-77"}
    hasher.stop()
    importing = asyncio.create_task(accounts.import_rows(b, make_settings(tmp_path), rows))
    await hasher.stopped.wait()  # every row checked
    async with a.transaction() as conn:
        await store.insert_user(
            conn, login="lea.martin" if column == "login" else "autre", role=Role.ADMIN,
            name="Léa", school_id=None, code_hash="x",
            external_id="ACA-77" if column == "external_id" else None)
    hasher.go()
    with pytest.raises(AppError) as refused:
        await importing
    assert refused.value.code == "conflict"
    assert refused.value.message.startswith("Import refusé, rien n'a été modifié.")
    assert f"ligne 3 : l'identifiant{' ENT' if column == 'external_id' else ''}" \
           f" « {clash[column]} » existe déjà" in refused.value.message
    assert await b.fetchone("SELECT 1 FROM users WHERE login = 'paul.durand'") is None

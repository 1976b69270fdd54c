"""Users and sessions in SQLite. Functions take and return domain types."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiosqlite

from realtime.db import Database
from realtime.identity.model import FeedAccount, Role, Session, User

_USER_COLS = "id, login, role, name, school_id, disabled, external_id"


def _user(row: aiosqlite.Row) -> User:
    return User(
        id=row["id"],
        login=row["login"],
        role=Role(row["role"]),
        name=row["name"],
        school_id=row["school_id"],
        disabled=bool(row["disabled"]),
        external_id=row["external_id"],
    )


async def user_by_login(db: Database, login: str) -> tuple[User, str] | None:
    """The user and their code hash."""
    row = await db.fetchone(f"SELECT {_USER_COLS}, code_hash FROM users WHERE login = ?", (login,))
    return (_user(row), row["code_hash"]) if row else None


async def user_by_external_id(db: Database, external_id: str) -> User | None:
    """The account the ENT's directory knows by this key (AAF ENTPersonJointure)."""
    row = await db.fetchone(
        f"SELECT {_USER_COLS} FROM users WHERE external_id = ?", (external_id,)
    )
    return _user(row) if row else None


async def user_by_id(db: Database, user_id: int) -> User | None:
    row = await db.fetchone(f"SELECT {_USER_COLS} FROM users WHERE id = ?", (user_id,))
    return _user(row) if row else None


async def users_by_ids(db: Database, ids: list[int]) -> list[User]:
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = await db.fetchall(
        f"SELECT {_USER_COLS} FROM users WHERE id IN ({marks}) ORDER BY name, id", ids
    )
    return [_user(r) for r in rows]


async def code_hashes(db: Database) -> dict[str, str]:
    """Every account's code hash by login (the demo seeder rehashes only what changed)."""
    rows = await db.fetchall("SELECT login, code_hash FROM users")
    return {r["login"]: r["code_hash"] for r in rows}


async def ids_by_login(db: Database) -> dict[str, int]:
    return {r["login"]: r["id"] for r in await db.fetchall("SELECT id, login FROM users")}


async def user_id_by_login(conn: aiosqlite.Connection, login: str) -> int | None:
    cur = await conn.execute("SELECT id FROM users WHERE login = ?", (login,))
    row = await cur.fetchone()
    return int(row[0]) if row else None


async def insert_user(
    conn: aiosqlite.Connection,
    *,
    login: str,
    role: Role,
    name: str,
    school_id: int | None,
    code_hash: str,
    external_id: str | None = None,
    source: str | None = None,
) -> User:
    cur = await conn.execute(
        "INSERT INTO users (login, role, name, school_id, code_hash, external_id, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (login, role.value, name, school_id, code_hash, external_id, source),
    )
    row = await cur.fetchone()
    assert row is not None
    return User(id=int(row[0]), login=login, role=role, name=name, school_id=school_id,
                external_id=external_id)


async def update_user(
    conn: aiosqlite.Connection, user_id: int, *, role: Role, name: str, school_id: int | None
) -> None:
    await conn.execute(
        "UPDATE users SET role = ?, name = ?, school_id = ? WHERE id = ?",
        (role.value, name, school_id, user_id),
    )


async def set_code_hash(conn: aiosqlite.Connection, user_id: int, code_hash: str) -> None:
    await conn.execute("UPDATE users SET code_hash = ? WHERE id = ?", (code_hash, user_id))


async def set_disabled(conn: aiosqlite.Connection, user_id: int, disabled: bool) -> None:
    await conn.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), user_id))


async def insert_session(conn: aiosqlite.Connection, session: Session) -> None:
    await conn.execute(
        "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        (session.id, session.user_id, session.created_at, session.expires_at),
    )


async def session_by_id(db: Database, session_id: str) -> Session | None:
    row = await db.fetchone(
        "SELECT id, user_id, created_at, expires_at, revoked_at FROM sessions WHERE id = ?",
        (session_id,),
    )
    if not row:
        return None
    return Session(
        id=row["id"],
        user_id=row["user_id"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


async def revoke_session(conn: aiosqlite.Connection, session_id: str, now: float) -> None:
    await conn.execute(
        "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (now, session_id),
    )


async def revoke_user_sessions(conn: aiosqlite.Connection, user_id: int, now: float) -> None:
    await conn.execute(
        "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
        (now, user_id),
    )


async def purge_sessions(conn: aiosqlite.Connection, now: float) -> None:
    """Expired and revoked sessions older than a day carry no information worth keeping."""
    await conn.execute(
        "DELETE FROM sessions WHERE expires_at < ? OR (revoked_at IS NOT NULL AND revoked_at < ?)",
        (now - 86400, now - 86400),
    )


# --- the directory feed (AAF import) -------------------------------------------------------

# `fetch(sql, params)` returns rows: `Database.fetchall`, or a reader on the connection of a
# transaction under way (the dry run holds the database's lock throughout).
Fetch = Callable[[str, tuple[Any, ...]], Awaitable[list[Any]]]


async def feed_accounts(fetch: Fetch) -> dict[str, FeedAccount]:
    """Every account that carries an external id, by that id."""
    rows = await fetch(
        f"SELECT {_USER_COLS}, source, feed_disabled FROM users"
        " WHERE external_id IS NOT NULL", ())
    return {r["external_id"]: FeedAccount(user=_user(r), source=r["source"],
                                          feed_disabled=bool(r["feed_disabled"])) for r in rows}


async def taken_logins(fetch: Fetch) -> set[str]:
    """Every login in use, case-folded (logins are unique regardless of case)."""
    return {r["login"].casefold() for r in await fetch("SELECT login FROM users", ())}


async def disable_feed_user(conn: aiosqlite.Connection, user_id: int, now: float) -> None:
    """The feed no longer names this account: it can no longer sign in and every session it
    holds is revoked (open sockets are cut by the session revocation's own mechanism)."""
    await conn.execute(
        "UPDATE users SET disabled = 1, disabled_at = ?, feed_disabled = 1 WHERE id = ?",
        (now, user_id),
    )
    await revoke_user_sessions(conn, user_id, now)


async def delete_user(conn: aiosqlite.Connection, user_id: int) -> None:
    """Gone with everything that is theirs (the schema cascades)."""
    await conn.execute("DELETE FROM users WHERE id = ?", (user_id,))


async def insert_feed_users(conn: aiosqlite.Connection, source: str, code_hash: str,
                            rows: list[tuple[str, Role, str, int | None, str]]) -> dict[str, int]:
    """Create accounts in bulk: (login, role, name, school id, external id) each. Returns
    external id → user id."""
    await conn.executemany(
        "INSERT INTO users (login, role, name, school_id, code_hash, external_id, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(login, role.value, name, school_id, code_hash, ext, source)
         for login, role, name, school_id, ext in rows])
    out: dict[str, int] = {}
    keys = [r[4] for r in rows]
    for i in range(0, len(keys), 500):
        part = keys[i:i + 500]
        cur = await conn.execute(
            f"SELECT id, external_id FROM users WHERE external_id IN ({','.join('?' * len(part))})",
            part)
        out.update({r[1]: r[0] for r in await cur.fetchall()})
    return out


async def update_feed_users(conn: aiosqlite.Connection, source: str,
                            rows: list[tuple[int, Role, str, int | None]]) -> None:
    """(id, role, name, school id) each; the accounts become the feed's."""
    await conn.executemany(
        "UPDATE users SET role = ?, name = ?, school_id = ?, source = ? WHERE id = ?",
        [(role.value, name, school_id, source, uid) for uid, role, name, school_id in rows])


async def enable_users(conn: aiosqlite.Connection, ids: list[int]) -> None:
    await conn.executemany(
        "UPDATE users SET disabled = 0, disabled_at = NULL, feed_disabled = 0 WHERE id = ?",
        [(i,) for i in ids])
# --- sign-ins through the ENT (migration 0015) -----------------------------------------------


async def user_is_disabled(conn: aiosqlite.Connection, user_id: int) -> bool:
    """Read inside the transaction that opens a session, so an account disabled a moment
    before cannot slip a session in between the check and the insert."""
    cur = await conn.execute("SELECT disabled FROM users WHERE id = ?", (user_id,))
    row = await cur.fetchone()
    return row is None or bool(row[0])


async def sso_index_used(db: Database, provider: str, index_hash: str) -> bool:
    row = await db.fetchone(
        "SELECT 1 FROM sso_logins WHERE provider = ? AND index_hash = ?", (provider, index_hash)
    )
    return row is not None


async def insert_sso_login(conn: aiosqlite.Connection, provider: str, index_hash: str,
                           session_id: str, now: float) -> bool:
    """False when that ticket (or nonce) already opened a session: a replay."""
    cur = await conn.execute(
        "INSERT INTO sso_logins (provider, index_hash, session_id, created_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (provider, index_hash, session_id, now),
    )
    return cur.rowcount == 1


async def sessions_by_sso_index(db: Database, provider: str, index_hash: str) -> list[str]:
    rows = await db.fetchall(
        "SELECT session_id FROM sso_logins WHERE provider = ? AND index_hash = ?",
        (provider, index_hash),
    )
    return [r["session_id"] for r in rows]


async def sso_provider_of(db: Database, session_id: str) -> str | None:
    """'cas' or 'oidc' for a session opened through the ENT, None for a personal code."""
    row = await db.fetchone(
        "SELECT provider FROM sso_logins WHERE session_id = ?", (session_id,)
    )
    return row["provider"] if row else None


async def insert_saml_request(conn: aiosqlite.Connection, request_id: str, next_path: str,
                              now: float, max_age_s: float, max_pending: int) -> bool:
    """Remember a request sent to the SAML IdP; forget those too old to be answered. False
    (nothing written) past `max_pending` waiting requests: a flood of /auth/saml/login
    cannot grow the table without bound."""
    await conn.execute("DELETE FROM saml_requests WHERE created_at < ?", (now - max_age_s,))
    cur = await conn.execute("SELECT COUNT(*) FROM saml_requests")
    row = await cur.fetchone()
    if row is not None and row[0] >= max_pending:
        return False
    await conn.execute(
        "INSERT INTO saml_requests (id, next_path, created_at) VALUES (?, ?, ?)",
        (request_id, next_path, now),
    )
    return True


async def take_saml_request(conn: aiosqlite.Connection, request_id: str, now: float,
                            max_age_s: float) -> str | None:
    """The `next` of a pending request, consumed: a second answer to it finds nothing."""
    # One statement: of two nodes answering the same request at once, one gets the row.
    cur = await conn.execute(
        "DELETE FROM saml_requests WHERE id = ? RETURNING next_path, created_at", (request_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    return row[0] if row[1] >= now - max_age_s else None

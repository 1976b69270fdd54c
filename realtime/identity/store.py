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
        f"SELECT {_USER_COLS} FROM users WHERE id IN ({marks}) ORDER BY name", ids
    )
    return [_user(r) for r in rows]


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
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (login, role.value, name, school_id, code_hash, external_id, source),
    )
    return User(id=cur.lastrowid or 0, login=login, role=role, name=name, school_id=school_id,
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

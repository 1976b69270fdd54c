"""Users and sessions in SQLite. Functions take and return domain types."""

from __future__ import annotations

import aiosqlite

from realtime.db import Database
from realtime.identity.model import Role, Session, User

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
) -> User:
    cur = await conn.execute(
        "INSERT INTO users (login, role, name, school_id, code_hash, external_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (login, role.value, name, school_id, code_hash, external_id),
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

"""Secrets a node generates when the environment sets none, the same on every node.

The session signing secret (REALTIME_SECRET) and the Web Push VAPID private key
(REALTIME_VAPID_PRIVATE_KEY) are best set by the operator. Without them:

- on SQLite (one machine), the first process to start writes one into a file beside the
  database (`secret.key`, `vapid_private.pem`, mode 0600) and every worker and restart reads
  it, as before;
- on PostgreSQL (several nodes sharing the database, not a disk), the first node to start
  inserts one into `shared_secrets` (migration 0016; `ON CONFLICT DO NOTHING`) and every node
  reads the row that won. A file per node would give each node its own secret: a token
  signed by node A would be refused by node B, and a browser subscribed with node A's VAPID
  key could not be pushed to by node B.

`adopt_local_state` carries a SQLite node's files (secrets and attachments) into PostgreSQL
for `db copy`, so that a pilot moving over keeps its sessions, push subscriptions and files.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from realtime.db import Database
from realtime.files import DatabaseFiles
from realtime.private import private_dir
from realtime.settings import Settings

log = logging.getLogger(__name__)

SESSION_SECRET = "session_secret"
VAPID_PRIVATE_KEY = "vapid_private_key"
# Where a SQLite node keeps each one, beside its database.
FILES = {SESSION_SECRET: "secret.key", VAPID_PRIVATE_KEY: "vapid_private.pem"}


def data_dir(settings: Settings) -> Path:
    """This node's directory: beside the SQLite database (REALTIME_DB)."""
    return settings.db_path.parent


async def shared_secret(db: Database, data: Path, name: str, make: Callable[[], str],
                        now: Callable[[], float] = time.time) -> str:
    """The secret `name`, made by `make()` the first time: a row every node reads on
    PostgreSQL, a file in `data` on SQLite."""
    if db.engine == "postgres":
        return await _in_database(db, name, make, now)
    return await asyncio.to_thread(_in_file, data / FILES[name], make)


async def _in_database(db: Database, name: str, make: Callable[[], str],
                       now: Callable[[], float]) -> str:
    row = await db.fetchone("SELECT value FROM shared_secrets WHERE name = ?", (name,))
    if row is not None:
        return str(row["value"])
    value = make()
    async with db.transaction() as conn:
        # Two nodes starting together: the second INSERT waits for the first's commit,
        # then does nothing; the SELECT (a new snapshot, READ COMMITTED) reads the winner.
        cur = await conn.execute(
            "INSERT INTO shared_secrets (name, value, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO NOTHING", (name, value, now()))
        won = cur.rowcount == 1
        cur = await conn.execute("SELECT value FROM shared_secrets WHERE name = ?", (name,))
        row = await cur.fetchone()
    if won:
        log.info("shared secret generated", extra={"secret": name})
    assert row is not None
    return str(row["value"])


def _in_file(path: Path, make: Callable[[], str]) -> str:
    private_dir(path.parent)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    # Written whole under a name of its own, then linked into place: a worker starting at
    # the same moment finds either no file or the whole secret, never an empty one.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(make())
    try:
        os.link(tmp, path)
    except FileExistsError:  # another worker won the race: use its secret
        pass
    else:
        log.info("secret generated", extra={"path": str(path)})
    finally:
        os.unlink(tmp)
    return path.read_text().strip()


async def session_secret(settings: Settings, db: Database) -> str:
    """The secret that signs session tokens (and device and SSO flow cookies):
    REALTIME_SECRET when set, else the one every node shares (above)."""
    if settings.secret:
        return settings.secret
    return await shared_secret(db, data_dir(settings), SESSION_SECRET,
                               lambda: secrets.token_urlsafe(48))


async def adopt_local_state(db: Database, data: Path) -> dict[str, int]:
    """Copy what a SQLite node kept in `data` (beside its database file) into the
    PostgreSQL database `db`: the generated secrets, unless the database already has its own,
    and the chat attachments' bytes under their keys. What `db copy` runs after the tables,
    so tokens, push subscriptions and attachments survive the move. Counts of what came."""
    now = time.time()
    adopted = 0
    for name, filename in FILES.items():
        path = data / filename
        if not path.is_file():
            continue
        value = (await asyncio.to_thread(path.read_text)).strip()
        async with db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO shared_secrets (name, value, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO NOTHING", (name, value, now))
            adopted += max(cur.rowcount, 0)
    from realtime.chat.files import DIR as CHAT_FILES  # the one feature with files

    files = await DatabaseFiles(db).adopt(data / CHAT_FILES)
    return {"secrets": adopted, "files": files}

"""Chat storage (SQLite or PostgreSQL): conversations, their event stream, messages, files'
metadata.

A conversation's `last_seq` is its stream head: every change takes the next seq in the same
transaction as the change itself, so no seq exists without its change, and none is skipped.

Search is where the engines differ. SQLite keeps the FTS5 table `chat_fts`, written here and
by the trigger `chat_message_stream`; PostgreSQL has no such table: a GIN index over the
messages' bodies (migrations/postgres/0005_chat.sql) follows every write by itself, so the
statements on `chat_fts` run on SQLite only, and `search` has one query per engine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import aiosqlite

from realtime.chat.model import Attachment, Conversation, Message, Participant
from realtime.db import Database
from realtime.policy import ChatRules

_RULE_COLS = ("parents_to_teachers", "parents_to_cpe", "parents_to_staff",
              "students_to_teachers", "students_to_cpe", "quiet_hours", "day_start_min",
              "day_end_min")


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _postgres(db_or_conn: object) -> bool:
    """Whether this database (or a transaction's connection) is PostgreSQL: `Database.engine`
    and the transaction's `engine` say "sqlite" or "postgres" (SQLite when absent)."""
    return getattr(db_or_conn, "engine", "sqlite") == "postgres"


def _conv(r: aiosqlite.Row) -> Conversation:
    return Conversation(id=r["id"], school_id=r["school_id"], kind=r["kind"], title=r["title"],
                        creator_id=r["creator_id"], board_id=r["board_id"],
                        open=bool(r["open"]), created_at=r["created_at"],
                        last_seq=r["last_seq"], last_at=r["last_at"],
                        purged_seq=r["purged_seq"])


def _attachment(r: aiosqlite.Row) -> Attachment:
    return Attachment(id=r["id"], owner_id=r["owner_id"], message_id=r["message_id"],
                      name=r["name"], mime=r["mime"], size=r["size"],
                      storage_key=r["storage_key"], created_at=r["created_at"])


def _message(r: aiosqlite.Row, files: tuple[Attachment, ...] = ()) -> Message:
    return Message(id=r["id"], conversation_id=r["conversation_id"], seq=r["seq"],
                   author_id=r["author_id"], body=r["body"], created_at=r["created_at"],
                   edited_at=r["edited_at"], deleted_at=r["deleted_at"],
                   deleted_by=r["deleted_by"], recalled_at=r["recalled_at"],
                   attachments=files)


# --- school settings ------------------------------------------------------------------------

async def rules_of(db: Database, school_id: int) -> ChatRules:
    r = await db.fetchone("SELECT * FROM chat_school_settings WHERE school_id = ?", (school_id,))
    if r is None:
        return ChatRules()
    return ChatRules(**{c: (r[c] if c.endswith("_min") else bool(r[c])) for c in _RULE_COLS})


async def set_rules(db: Database, school_id: int, rules: ChatRules) -> None:
    values = [int(getattr(rules, c)) for c in _RULE_COLS]
    async with db.transaction() as conn:
        await conn.execute(
            f"INSERT INTO chat_school_settings (school_id, {', '.join(_RULE_COLS)})"
            f" VALUES (?, {_marks(len(_RULE_COLS))}) ON CONFLICT (school_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in _RULE_COLS), [school_id, *values])


# --- conversations --------------------------------------------------------------------------

async def create(conn: aiosqlite.Connection, *, school_id: int, kind: str, title: str,
                 creator_id: int, members: Iterable[int], now: float,
                 board_id: int | None = None) -> int:
    cur = await conn.execute(
        "INSERT INTO chat_conversations (school_id, kind, title, creator_id, board_id,"
        " created_at, last_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (school_id, kind, title, creator_id, board_id, now, now))
    row = await cur.fetchone()
    assert row is not None
    await add_members(conn, int(row[0]), members, now)
    return int(row[0])


async def add_members(conn: aiosqlite.Connection, conv_id: int, members: Iterable[int],
                      now: float) -> None:
    await conn.executemany(
        "INSERT INTO chat_participants (conversation_id, user_id, added_at)"
        " VALUES (?, ?, ?) ON CONFLICT DO NOTHING", [(conv_id, uid, now) for uid in members])


async def get(db: Database, conv_id: int) -> Conversation | None:
    r = await db.fetchone("SELECT * FROM chat_conversations WHERE id = ?", (conv_id,))
    return _conv(r) if r else None


async def get_with_members(db: Database, conv_id: int) -> tuple[Conversation, list[int]] | None:
    """A conversation and its participants (in order of arrival) in one query: one row per
    participant (a conversation without any gives one row, its member NULL)."""
    rows = await db.fetchall(
        "SELECT c.*, p.user_id AS member FROM chat_conversations c"
        " LEFT JOIN chat_participants p ON p.conversation_id = c.id"
        " WHERE c.id = ? ORDER BY p.added_at, p.user_id", (conv_id,))
    if not rows:
        return None
    return _conv(rows[0]), [r["member"] for r in rows if r["member"] is not None]


async def of_board(db: Database, board_id: int) -> Conversation | None:
    r = await db.fetchone("SELECT * FROM chat_conversations WHERE board_id = ?", (board_id,))
    return _conv(r) if r else None


async def participants(db: Database, conv_id: int) -> list[Participant]:
    rows = await db.fetchall(
        "SELECT user_id, read_seq, muted FROM chat_participants WHERE conversation_id = ?"
        " ORDER BY added_at, user_id", (conv_id,))
    return [Participant(user_id=r["user_id"], read_seq=r["read_seq"], muted=bool(r["muted"]))
            for r in rows]


async def set_open(conn: aiosqlite.Connection, conv_id: int, open_: bool) -> None:
    await conn.execute("UPDATE chat_conversations SET open = ? WHERE id = ?",
                       (int(open_), conv_id))


async def of_user(db: Database, user_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """A person's conversations, latest first, with their unread count (others' messages
    after what they read, deleted ones excepted)."""
    rows = await db.fetchall(
        "SELECT c.*, p.read_seq, p.muted, (SELECT COUNT(*) FROM chat_messages m"
        "  WHERE m.conversation_id = c.id AND m.seq > p.read_seq AND m.author_id != ?"
        "  AND m.deleted_at IS NULL AND m.recalled_at IS NULL) AS unread"
        " FROM chat_participants p JOIN chat_conversations c ON c.id = p.conversation_id"
        " WHERE p.user_id = ? ORDER BY c.last_at DESC, c.id DESC LIMIT ?",
        (user_id, user_id, limit))
    return [{"conversation": _conv(r), "read_seq": r["read_seq"], "muted": bool(r["muted"]),
             "unread": r["unread"]} for r in rows]


async def members_of(db: Database, conv_ids: list[int]) -> dict[int, list[int]]:
    if not conv_ids:
        return {}
    rows = await db.fetchall(
        f"SELECT conversation_id, user_id FROM chat_participants WHERE conversation_id IN"
        f" ({_marks(len(conv_ids))}) ORDER BY added_at, user_id", conv_ids)
    out: dict[int, list[int]] = {c: [] for c in conv_ids}
    for r in rows:
        out[r["conversation_id"]].append(r["user_id"])
    return out


async def last_messages(db: Database, conv_ids: list[int]) -> dict[int, Message]:
    if not conv_ids:
        return {}
    rows = await db.fetchall(
        f"SELECT m.* FROM chat_messages m JOIN (SELECT conversation_id, MAX(seq) AS s"
        f" FROM chat_messages WHERE conversation_id IN ({_marks(len(conv_ids))})"
        f" GROUP BY conversation_id) l ON l.conversation_id = m.conversation_id AND l.s = m.seq",
        conv_ids)
    return {r["conversation_id"]: _message(r) for r in rows}


async def mark_read(conn: aiosqlite.Connection, conv_id: int, user_id: int, seq: int,
                    now: float) -> int:
    """Raise the read mark to `seq` (never lower); returns the mark now. A raise is also
    written down with its time, so each message can say when each reader first reached it."""
    cur = await conn.execute(
        "UPDATE chat_participants SET read_seq = CASE WHEN read_seq < ? THEN ? ELSE read_seq"
        " END WHERE conversation_id = ? AND user_id = ? RETURNING read_seq",
        (seq, seq, conv_id, user_id))
    row = await cur.fetchone()
    mark = int(row[0]) if row else 0
    if row and mark == seq:
        await conn.execute("INSERT INTO chat_read_marks (conversation_id, user_id, seq, at)"
                           " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                           (conv_id, user_id, seq, now))
    return mark


async def read_times(db: Database, conv_id: int, seq: int) -> dict[int, float]:
    """When each participant first read up to `seq` or beyond (those who did)."""
    rows = await db.fetchall(
        "SELECT user_id, MIN(at) AS at FROM chat_read_marks WHERE conversation_id = ?"
        " AND seq >= ? GROUP BY user_id", (conv_id, seq))
    return {r["user_id"]: r["at"] for r in rows}


async def mark_own(conn: aiosqlite.Connection, conv_id: int, user_id: int, seq: int) -> None:
    """One's own new message is read by oneself (no answer needed: one round trip)."""
    await conn.execute("UPDATE chat_participants SET read_seq = ? WHERE conversation_id = ?"
                       " AND user_id = ? AND read_seq < ?", (seq, conv_id, user_id, seq))


async def set_muted(conn: aiosqlite.Connection, conv_id: int, user_id: int, muted: bool) -> None:
    await conn.execute("UPDATE chat_participants SET muted = ? WHERE conversation_id = ?"
                       " AND user_id = ?", (int(muted), conv_id, user_id))


# --- the stream -----------------------------------------------------------------------------

async def append_event(conn: aiosqlite.Connection, conv_id: int, kind: str, now: float, *,
                       message_id: int | None = None, data: dict[str, Any] | None = None
                       ) -> int:
    cur = await conn.execute(
        "UPDATE chat_conversations SET last_seq = last_seq + 1, last_at = ? WHERE id = ?"
        " RETURNING last_seq", (now, conv_id))
    row = await cur.fetchone()
    assert row is not None
    seq = int(row[0])
    await conn.execute(
        "INSERT INTO chat_events (conversation_id, seq, kind, message_id, data, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (conv_id, seq, kind, message_id, json.dumps(data or {}), now))
    return seq


async def events_after(db: Database, conv_id: int, after: int, limit: int
                       ) -> list[dict[str, Any]]:
    rows = await db.fetchall(
        "SELECT seq, kind, message_id, data, at FROM chat_events WHERE conversation_id = ?"
        " AND seq > ? ORDER BY seq LIMIT ?", (conv_id, after, limit))
    return [{"seq": r["seq"], "kind": r["kind"], "message_id": r["message_id"],
             "data": json.loads(r["data"]), "at": r["at"]} for r in rows]


# --- messages -------------------------------------------------------------------------------

async def insert_message(conn: aiosqlite.Connection, conv_id: int, author_id: int, body: str,
                         now: float, attachment_ids: list[int]) -> tuple[int, int]:
    """(message id, seq). The trigger `chat_message_stream` moves the conversation's head to
    this seq and writes the stream event (and on SQLite the search row) in the same statement.
    On PostgreSQL the trigger takes the seq itself under the conversation's row lock, so two
    nodes writing at once get consecutive seqs: RETURNING gives the seq stored."""
    cur = await conn.execute(
        "INSERT INTO chat_messages (conversation_id, seq, author_id, body, created_at)"
        " VALUES (?, (SELECT last_seq + 1 FROM chat_conversations WHERE id = ?), ?, ?, ?)"
        " RETURNING id, seq", (conv_id, conv_id, author_id, body, now))
    row = await cur.fetchone()
    assert row is not None
    msg_id, seq = int(row[0]), int(row[1])
    if attachment_ids:
        await conn.execute(
            f"UPDATE chat_attachments SET message_id = ? WHERE id IN"
            f" ({_marks(len(attachment_ids))}) AND message_id IS NULL AND owner_id = ?",
            [msg_id, *attachment_ids, author_id])
    return msg_id, seq


async def edit_message(conn: aiosqlite.Connection, msg: Message, body: str, now: float) -> int:
    await conn.execute("UPDATE chat_messages SET body = ?, edited_at = ? WHERE id = ?",
                       (body, now, msg.id))
    if not _postgres(conn):
        await conn.execute("DELETE FROM chat_fts WHERE rowid = ?", (msg.id,))
        await conn.execute("INSERT INTO chat_fts (rowid, body) VALUES (?, ?)", (msg.id, body))
    return await append_event(conn, msg.conversation_id, "edited", now, message_id=msg.id)


async def remove_message(conn: aiosqlite.Connection, msg: Message, by: int, now: float,
                         recall: bool) -> tuple[int, list[str]]:
    """Delete (or recall) a message: its text, files and acknowledgements are erased, its
    place stays. Returns the seq and the storage keys of files to unlink after commit."""
    column = "recalled_at" if recall else "deleted_at"
    await conn.execute(
        f"UPDATE chat_messages SET body = '', {column} = ?, deleted_by = ? WHERE id = ?",
        (now, by, msg.id))
    if not _postgres(conn):
        await conn.execute("DELETE FROM chat_fts WHERE rowid = ?", (msg.id,))
    await conn.execute("DELETE FROM chat_acks WHERE message_id = ?", (msg.id,))
    cur = await conn.execute(
        "DELETE FROM chat_attachments WHERE message_id = ? RETURNING storage_key", (msg.id,))
    keys = [r[0] for r in await cur.fetchall()]
    seq = await append_event(conn, msg.conversation_id, "recalled" if recall else "deleted",
                             now, message_id=msg.id)
    return seq, keys


async def _with_files(db: Database, rows: list[aiosqlite.Row]) -> list[Message]:
    ids = [r["id"] for r in rows]
    files: dict[int, list[Attachment]] = {}
    if ids:
        for r in await db.fetchall(
                f"SELECT * FROM chat_attachments WHERE message_id IN ({_marks(len(ids))})"
                " ORDER BY id", ids):
            files.setdefault(r["message_id"], []).append(_attachment(r))
    return [_message(r, tuple(files.get(r["id"], ()))) for r in rows]


async def message(db: Database, msg_id: int) -> Message | None:
    r = await db.fetchone("SELECT * FROM chat_messages WHERE id = ?", (msg_id,))
    return (await _with_files(db, [r]))[0] if r else None


async def messages(db: Database, ids: list[int]) -> dict[int, Message]:
    if not ids:
        return {}
    rows = await db.fetchall(
        f"SELECT * FROM chat_messages WHERE id IN ({_marks(len(ids))})", ids)
    return {m.id: m for m in await _with_files(db, rows)}


async def history(db: Database, conv_id: int, before: int | None, limit: int) -> list[Message]:
    """Messages before seq `before` (None: the latest), oldest first."""
    rows = await db.fetchall(
        "SELECT * FROM chat_messages WHERE conversation_id = ? AND seq < ?"
        " ORDER BY seq DESC LIMIT ?", (conv_id, before if before is not None else 2**62, limit))
    return await _with_files(db, list(reversed(rows)))


# The document a message is searched as on PostgreSQL: the very expression of the index
# chat_messages_search (migrations/postgres/0005_chat.sql), or the index is not used.
PG_SEARCH_DOCUMENT = ("(to_tsvector('fr_unaccent'::regconfig, m.body)"
                      " || to_tsvector('simple_unaccent'::regconfig, m.body))")
# One search word: its French stem or itself (unaccented), as a prefix.
_PG_SEARCH_WORD = "(to_tsquery('fr_unaccent', ?) || to_tsquery('simple_unaccent', ?))"
_FTS_TERM = re.compile(r'"((?:[^"]|"")*)"\*')


def pg_search_query(user_id: int, match: str, limit: int) -> tuple[str, list[Any]]:
    """The PostgreSQL search: `match` is `model.fts_query`'s FTS5 expression (each word a
    quoted prefix term, all required); each word becomes a tsquery prefix term `'word':*`,
    its French stem or the word itself, and the words are joined with `&&`. No operator of
    the user's reaches to_tsquery: every word is a quoted lexeme."""
    words = [w.replace('""', '"') for w in _FTS_TERM.findall(match)]
    terms: list[str] = []
    for w in words:
        lexeme = "'" + w.replace("\\", "\\\\").replace("'", "''") + "':*"
        terms += [lexeme, lexeme]
    sql = ("SELECT m.* FROM chat_messages m"
           " JOIN chat_participants p ON p.conversation_id = m.conversation_id AND p.user_id = ?"
           f" WHERE {PG_SEARCH_DOCUMENT} @@ ({' && '.join([_PG_SEARCH_WORD] * len(words))})"
           " AND m.deleted_at IS NULL AND m.recalled_at IS NULL"
           " ORDER BY m.created_at DESC, m.id DESC LIMIT ?")
    return sql, [user_id, *terms, limit]


async def search(db: Database, user_id: int, match: str, limit: int) -> list[Message]:
    """The `limit` most recent messages of `user_id`'s conversations that match `match`
    (`model.fts_query`), on either engine."""
    if _postgres(db):
        if not _FTS_TERM.search(match):
            return []
        sql, params = pg_search_query(user_id, match, limit)
        rows = await db.fetchall(sql, params)
    else:
        rows = await db.fetchall(
            "SELECT m.* FROM chat_fts f JOIN chat_messages m ON m.id = f.rowid"
            " JOIN chat_participants p ON p.conversation_id = m.conversation_id"
            " AND p.user_id = ? WHERE chat_fts MATCH ? AND m.deleted_at IS NULL"
            " AND m.recalled_at IS NULL ORDER BY m.created_at DESC, m.id DESC LIMIT ?",
            (user_id, match, limit))
    return await _with_files(db, rows)


# --- acknowledgements and reports -----------------------------------------------------------

async def ack(conn: aiosqlite.Connection, msg_id: int, user_id: int, now: float) -> bool:
    cur = await conn.execute("INSERT INTO chat_acks (message_id, user_id, at)"
                             " VALUES (?, ?, ?) ON CONFLICT DO NOTHING", (msg_id, user_id, now))
    return cur.rowcount == 1


async def acks_of(db: Database, msg_ids: list[int]) -> dict[int, dict[int, float]]:
    if not msg_ids:
        return {}
    rows = await db.fetchall(
        f"SELECT message_id, user_id, at FROM chat_acks WHERE message_id IN"
        f" ({_marks(len(msg_ids))})", msg_ids)
    out: dict[int, dict[int, float]] = {m: {} for m in msg_ids}
    for r in rows:
        out[r["message_id"]][r["user_id"]] = r["at"]
    return out


async def report(conn: aiosqlite.Connection, msg_id: int, reporter_id: int, school_id: int,
                 reason: str, now: float) -> int | None:
    cur = await conn.execute(
        "INSERT INTO chat_reports (message_id, reporter_id, school_id, reason,"
        " created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
        (msg_id, reporter_id, school_id, reason, now))
    row = await cur.fetchone()
    return int(row[0]) if row else None


_REPORT_SELECT = (
    "SELECT r.id, r.message_id, r.reporter_id, r.school_id, r.reason, r.created_at,"
    " r.handled_at, r.handled_by, r.note, r.reporter_told_at, m.conversation_id,"
    " m.author_id, m.body,"
    " m.deleted_at, m.recalled_at FROM chat_reports r"
    " JOIN chat_messages m ON m.id = r.message_id")


async def reports_of_school(db: Database, school_id: int, limit: int = 100
                            ) -> list[dict[str, Any]]:
    """Open reports first, then handled ones; newest first within each."""
    rows = await db.fetchall(
        f"{_REPORT_SELECT} WHERE r.school_id = ?"
        " ORDER BY r.handled_at IS NOT NULL, r.created_at DESC, r.id DESC LIMIT ?",
        (school_id, limit))
    return [dict(r) for r in rows]


async def report_by_id(db: Database, report_id: int) -> dict[str, Any] | None:
    r = await db.fetchone(f"{_REPORT_SELECT} WHERE r.id = ?", (report_id,))
    return dict(r) if r else None


async def set_handled(conn: aiosqlite.Connection, msg_id: int, school_id: int,
                      by: int | None, note: str | None, at: float | None) -> list[int]:
    """Mark the open reports of this message in this school (or, with `at` None, reopen the
    handled ones). Only rows whose state changes are touched: a report handled earlier keeps
    who handled it and the note; returns the ids changed."""
    open_ = "IS NULL" if at is not None else "IS NOT NULL"  # a state that changes
    cur = await conn.execute(
        "UPDATE chat_reports SET handled_at = ?, handled_by = ?, note = ?,"
        " reporter_told_at = NULL WHERE message_id = ? AND school_id = ?"
        f" AND handled_at {open_} RETURNING id",
        (at, by, note, msg_id, school_id))
    return sorted(int(r[0]) for r in await cur.fetchall())


async def reports_by_ids(db: Database, ids: list[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    rows = await db.fetchall(f"{_REPORT_SELECT} WHERE r.id IN ({_marks(len(ids))})", ids)
    return [dict(r) for r in rows]


async def untold_outcomes(db: Database, reporter_id: int, limit: int = 50
                          ) -> list[dict[str, Any]]:
    """Reports of this person handled by the vie scolaire that they have not seen yet."""
    rows = await db.fetchall(
        f"{_REPORT_SELECT} WHERE r.reporter_id = ? AND r.handled_at IS NOT NULL"
        " AND r.reporter_told_at IS NULL ORDER BY r.handled_at, r.id LIMIT ?",
        (reporter_id, limit))
    return [dict(r) for r in rows]


async def reports_of_reporter(db: Database, reporter_id: int, limit: int = 100
                              ) -> list[dict[str, Any]]:
    rows = await db.fetchall(f"{_REPORT_SELECT} WHERE r.reporter_id = ?"
                             " ORDER BY r.created_at DESC, r.id DESC LIMIT ?",
                             (reporter_id, limit))
    return [dict(r) for r in rows]


async def mark_told(conn: aiosqlite.Connection, reporter_id: int, ids: list[int],
                    now: float) -> int:
    if not ids:
        return 0
    cur = await conn.execute(
        f"UPDATE chat_reports SET reporter_told_at = ? WHERE reporter_id = ? AND id IN"
        f" ({_marks(len(ids))}) AND handled_at IS NOT NULL AND reporter_told_at IS NULL",
        [now, reporter_id, *ids])
    return max(cur.rowcount, 0)


# --- attachments ----------------------------------------------------------------------------

async def add_attachment(db: Database, *, owner_id: int, name: str, mime: str, size: int,
                         storage_key: str, now: float) -> Attachment:
    async with db.transaction() as conn:
        cur = await conn.execute(
            "INSERT INTO chat_attachments (owner_id, name, mime, size, storage_key, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
            (owner_id, name, mime, size, storage_key, now))
        row = await cur.fetchone()
    assert row is not None
    return _attachment(row)


async def attachment(db: Database, att_id: int) -> Attachment | None:
    r = await db.fetchone("SELECT * FROM chat_attachments WHERE id = ?", (att_id,))
    return _attachment(r) if r else None


async def pending_attachments(db: Database, owner_id: int, ids: list[int]) -> list[Attachment]:
    if not ids:
        return []
    rows = await db.fetchall(
        f"SELECT * FROM chat_attachments WHERE owner_id = ? AND message_id IS NULL AND id IN"
        f" ({_marks(len(ids))})", [owner_id, *ids])
    return [_attachment(r) for r in rows]


async def stale_attachments(db: Database, before: float) -> list[Attachment]:
    rows = await db.fetchall("SELECT * FROM chat_attachments WHERE message_id IS NULL AND"
                             " created_at < ?", (before,))
    return [_attachment(r) for r in rows]


async def delete_attachments(db: Database, ids: list[int]) -> None:
    if ids:
        async with db.transaction() as conn:
            await conn.execute(f"DELETE FROM chat_attachments WHERE id IN ({_marks(len(ids))})",
                               ids)


# --- retention ------------------------------------------------------------------------------

_OPEN_REPORT = ("EXISTS (SELECT 1 FROM chat_reports r WHERE r.message_id = {m}"
                " AND r.handled_at IS NULL)")


async def _ids(conn: aiosqlite.Connection, sql: str, args: Iterable[Any]) -> list[int]:
    cur = await conn.execute(sql, list(args))
    return [int(r[0]) for r in await cur.fetchall()]


async def _delete_in(conn: aiosqlite.Connection, sql: str, ids: list[int]) -> int:
    """`sql` holds one `{ids}`; run it over `ids` in chunks (SQLite's variable limit)."""
    n = 0
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        cur = await conn.execute(sql.format(ids=_marks(len(part))), part)
        n += max(cur.rowcount, 0)
    return n


async def purge_before(conn: aiosqlite.Connection, cutoff: float
                       ) -> tuple[dict[str, int], list[str]]:
    """Retention: erase messages written before `cutoff` with their files, acknowledgements,
    reports and search rows, and the conversations with nothing left after it.

    A message under a report the vie scolaire has not handled yet is kept (and so its
    conversation): the CPE must be able to read what was reported before deciding. Returns
    counts per table and the storage keys of files to unlink once committed."""
    keep = _OPEN_REPORT.format(m="m.id")
    msg_ids = await _ids(conn, f"SELECT m.id FROM chat_messages m WHERE m.created_at < ?"
                               f" AND NOT {keep}", [cutoff])
    cur = await conn.execute(
        "SELECT storage_key FROM chat_attachments WHERE message_id IN (SELECT m.id FROM"
        f" chat_messages m WHERE m.created_at < ? AND NOT {keep})", (cutoff,))
    keys = [r[0] for r in await cur.fetchall()]
    out = {"chat_attachments": len(keys)}
    out["chat_messages"] = len(msg_ids)
    if not _postgres(conn):
        await _delete_in(conn, "DELETE FROM chat_fts WHERE rowid IN ({ids})", msg_ids)
    out["chat_acks"] = await _delete_in(
        conn, "DELETE FROM chat_acks WHERE message_id IN ({ids})", msg_ids)
    out["chat_reports"] = await _delete_in(
        conn, "DELETE FROM chat_reports WHERE message_id IN ({ids})", msg_ids)
    await _delete_in(conn, "DELETE FROM chat_attachments WHERE message_id IN ({ids})", msg_ids)
    # The stream: every event before the cutoff whose message (if any) is gone goes too; a
    # client resuming from before the highest of them is told to reload (purged_seq).
    await conn.execute(
        "UPDATE chat_conversations SET purged_seq = (SELECT CASE WHEN MAX(e.seq) >"
        " chat_conversations.purged_seq THEN MAX(e.seq) ELSE chat_conversations.purged_seq END"
        " FROM chat_events e WHERE e.conversation_id = chat_conversations.id AND e.at < ?)"
        " WHERE id IN (SELECT conversation_id FROM chat_events WHERE at < ?)", (cutoff, cutoff))
    await _delete_in(conn, "DELETE FROM chat_messages WHERE id IN ({ids})", msg_ids)
    await conn.execute("DELETE FROM chat_read_marks WHERE at < ?", (cutoff,))
    cur = await conn.execute(
        "DELETE FROM chat_events WHERE at < ? AND (message_id IS NULL OR message_id NOT IN"
        " (SELECT id FROM chat_messages))", (cutoff,))
    out["chat_events"] = max(cur.rowcount, 0)
    # Conversations (not a board session's: those go with their board) silent since the
    # cutoff and now without messages.
    cur = await conn.execute(
        "DELETE FROM chat_conversations WHERE kind != 'live' AND last_at < ? AND NOT EXISTS"
        " (SELECT 1 FROM chat_messages m WHERE m.conversation_id = chat_conversations.id)",
        (cutoff,))
    out["chat_conversations"] = max(cur.rowcount, 0)
    # Search rows of messages removed along with something else (a board's session chat).
    if not _postgres(conn):
        await conn.execute(
            "DELETE FROM chat_fts WHERE rowid NOT IN (SELECT id FROM chat_messages)")
    return out, keys


async def direct_between(db: Database, a: int, b: int, school_id: int) -> int | None:
    """The open direct conversation of `a` and `b` in this school, if any."""
    row = await db.fetchone(
        "SELECT c.id FROM chat_conversations c"
        " JOIN chat_participants x ON x.conversation_id = c.id AND x.user_id = ?"
        " JOIN chat_participants y ON y.conversation_id = c.id AND y.user_id = ?"
        " WHERE c.kind = 'direct' AND c.school_id = ? AND c.open = 1 ORDER BY c.id LIMIT 1",
        (a, b, school_id))
    return int(row["id"]) if row else None


async def open_live(conn: aiosqlite.Connection, school_id: int, title: str, owner_id: int,
                    board_id: int, now: float) -> None:
    """The chat of a board session (nothing if it exists already)."""
    await conn.execute(
        "INSERT INTO chat_conversations (school_id, kind, title, creator_id,"
        " board_id, created_at, last_at) VALUES (?, 'live', ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (school_id, title, owner_id, board_id, now, now))


async def school_has_conversations(db: Database, school_id: int) -> bool:
    return await db.fetchone("SELECT 1 FROM chat_conversations WHERE school_id = ?",
                             (school_id,)) is not None

"""Purging the details of old absences (data of minors), per the retention setting.

Past the cutoff, a roll keeps only its header and counts (slot, date, state, how many were
absent or late: statistics without names); its marks, corrections, history, absence events
(with the guardians' proposals, their supporting documents and the CPE's decisions, which
go with them), the guardians' notices about it, advance declarations, reminders and the
access log entries go.
"""

from __future__ import annotations

import datetime as dt

import aiosqlite

from realtime.attendance.absences import retention_cutoff
from realtime.db import Database


async def purge(db: Database, today: dt.date, years: int) -> dict[str, int]:
    async with db.transaction(lock="retention") as conn:  # as realtime/retention.py's
        return await purge_in(conn, today, years)


async def purge_in(conn: aiosqlite.Connection, today: dt.date, years: int) -> dict[str, int]:
    """The purge inside the caller's transaction (the retention job's, which may roll it
    back for a dry run)."""
    cutoff = retention_cutoff(today, years).isoformat()
    out: dict[str, int] = {}
    old = "SELECT id FROM rolls WHERE date < ?"
    for table, sql in (
        ("notifications", "DELETE FROM notifications WHERE date < ?"),
        ("absence_events", f"DELETE FROM absence_events WHERE roll_id IN ({old})"),
        ("roll_corrections", f"DELETE FROM roll_corrections WHERE roll_id IN ({old})"),
        ("roll_history", f"DELETE FROM roll_history WHERE roll_id IN ({old})"),
        ("absence_declarations", "DELETE FROM absence_declarations WHERE date_to < ?"),
        ("roll_alerts", "DELETE FROM roll_alerts WHERE date < ?"),
        ("marks", f"DELETE FROM marks WHERE roll_id IN ({old})"),
        ("roll_reminders", "DELETE FROM roll_reminders WHERE date < ?"),
    ):
        cur = await conn.execute(sql, (cutoff,))
        out[table] = cur.rowcount
    cutoff_ts = dt.datetime.combine(dt.date.fromisoformat(cutoff), dt.time()).timestamp()
    cur = await conn.execute("DELETE FROM attendance_access_log WHERE at < ?", (cutoff_ts,))
    out["attendance_access_log"] = cur.rowcount
    cur = await conn.execute(
        "UPDATE rolls SET roster = '[]', purged = 1 WHERE date < ? AND purged = 0",
        (cutoff,))
    out["rolls"] = cur.rowcount
    return out

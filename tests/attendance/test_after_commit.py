"""A roll validated in a transaction that rolls back tells no guardian and no screen; the
same validation committed does (the positive control: every channel was live)."""

from __future__ import annotations

from typing import Any

from realtime import keys
from tests.attendance.conftest import AttendanceClient, Cast
from tests.attendance.test_socket import student_id, take_roll
from tests.conftest import live_clients
from tests.rollback import rolled_back


async def test_a_rolled_back_validation_notifies_nobody(att_app: Any, cast: Cast) -> None:
    base, app = await att_app()
    async with live_clients(AttendanceClient, base) as make:
        teacher = await make(cast.teacher)
        colleague = await make(cast.teacher)  # the same roll open on the TBI
        guardian = await make(cast.guardians[0])
        assert (await guardian.call("follow_feed", {}))["ok"]
        opened = await take_roll(base, cast, teacher)
        rid = opened["roll"]["id"]
        assert (await colleague.call("view_roll", {"roll_id": rid}))["ok"]
        sid = student_id(opened, cast.student)
        assert (await teacher.call("all_present", {"roll_id": rid}))["ok"]
        assert (await teacher.call("mark", {"roll_id": rid, "marks": [
            {"student_id": sid, "state": "absent"}]}))["ok"]
        await colleague.wait_for(lambda: len(colleague.events["roll_state"]) >= 2)
        seen = len(colleague.events["roll_state"])

        with rolled_back(app[keys.DB]) as aborted:
            lost = await teacher.call("validate", {"roll_id": rid})
            changed = await teacher.call("mark", {"roll_id": rid, "marks": [
                {"student_id": sid, "state": "late", "minutes": 5}]})
        assert aborted == [1, 1]
        assert lost["ok"] is False and changed["ok"] is False

        done = await teacher.call("validate", {"roll_id": rid})
        assert done["ok"] and done["state"] == "done" and done["notified"] >= 1
        await guardian.wait_for(lambda: guardian.events["notice"])  # positive control
        [notice] = guardian.events["notice"]
        assert notice["student_id"] == sid and "absent" in notice["body"] and notice["seq"] == 1
        await colleague.wait_for(lambda: len(colleague.events["roll_state"]) > seen)
        states = [e["state"] for e in colleague.events["roll_state"][seen:]]
        assert states == ["done"]  # nothing from the rolled-back validation
        assert all(m["state"] != "late" for e in colleague.events["marks"] for m in e["marks"])

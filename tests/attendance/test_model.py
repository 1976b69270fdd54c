"""The roll, its marks, corrections, justification and half-days: pure, no loop, no DB."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from realtime.attendance.absences import (
    DEFAULT_REASONS,
    LEGAL_REASONS,
    AbsenceEvent,
    AbsenceKind,
    Justification,
    Reason,
    count_half_days,
    decide,
    give_reason,
    retention_cutoff,
    school_year_end,
    validate_reasons,
)
from realtime.attendance.model import (
    MarkInput,
    MarkState,
    Roll,
    RollKind,
    RollState,
    mark,
    mark_all_present,
    name_replacement,
    open_roll,
    overdue,
    validate,
)
from realtime.errors import Refusal

T = 50  # the teacher
CPE = 400
GUARDIAN = 300


def course(roster: range = range(1, 26)) -> Roll:
    return Roll(id=1, school_id=1, kind=RollKind.COURSE, date="2026-11-30", start="08:00",
                end="09:00", teacher_id=T, class_id=10, slot_id=7, roster=frozenset(roster))


def study_hall() -> Roll:
    return Roll(id=2, school_id=1, kind=RollKind.STUDY_HALL, date="2026-11-30", start="10:15",
                end="11:15", teacher_id=401, study_hall_id=3)


def test_open_is_idempotent() -> None:
    roll = open_roll(course(), T, 100.0)
    assert roll.state is RollState.IN_PROGRESS and roll.opened_by == T and roll.version == 1
    assert open_roll(roll, T, 200.0) is roll


def test_all_present_then_exceptions_then_validate() -> None:
    roll = open_roll(course(), T, 1.0)
    roll, changes = mark_all_present(roll, T, 2.0)
    assert len(changes) == 25 and roll.counts()["present"] == 25 and not roll.unmarked()
    roll, changes = mark(roll, [MarkInput(3, MarkState.ABSENT),
                                MarkInput(4, MarkState.LATE, minutes=12),
                                MarkInput(5, MarkState.EXEMPTED, must_attend=True,
                                          comment="Certificat EPS")], T, 3.0)
    assert [c.student_id for c in changes] == [3, 4, 5]
    assert all(c.before is not None and c.before.state is MarkState.PRESENT for c in changes)
    assert not any(c.correction for c in changes)
    counts = roll.counts()
    assert (counts["present"], counts["absent"], counts["late"], counts["exempted"]) == (
        22, 1, 1, 1)
    done, notify = validate(roll, T, 4.0)
    assert done.state is RollState.DONE and done.validated_by == T and done.validated_at == 4.0
    assert [(m.student_id, m.state) for m in notify] == [(3, MarkState.ABSENT),
                                                         (4, MarkState.LATE)]
    assert notify[1].minutes == 12
    # Validating again is a retry: same roll, nothing more to tell anyone.
    assert validate(done, T, 5.0) == (done, [])


def test_all_present_keeps_marks_already_given() -> None:
    roll, _ = mark(course(), [MarkInput(1, MarkState.ABSENT)], T, 1.0)
    assert roll.state is RollState.IN_PROGRESS  # marking opens the roll
    roll, changes = mark_all_present(roll, T, 2.0)
    assert len(changes) == 24 and roll.marks[1].state is MarkState.ABSENT


def test_duplicate_marks_change_nothing() -> None:
    roll, first = mark(course(), [MarkInput(1, MarkState.LATE, minutes=5)], T, 1.0)
    again, changes = mark(roll, [MarkInput(1, MarkState.LATE, minutes=5)], T, 9.0)
    assert changes == [] and again is roll and again.version == roll.version
    assert len(first) == 1


def test_validation_needs_every_student_marked() -> None:
    roll, _ = mark(course(), [MarkInput(1, MarkState.PRESENT)], T, 1.0)
    with pytest.raises(Refusal) as err:
        validate(roll, T, 2.0)
    assert err.value.code == "conflict" and "24 élève(s) sans marque" in err.value.message


@pytest.mark.parametrize(("inp", "code"), [
    (MarkInput(99, MarkState.PRESENT), "not_found"),  # not in the class
    (MarkInput(1, MarkState.LATE), "invalid"),  # late without minutes
    (MarkInput(1, MarkState.LATE, minutes=0), "invalid"),
    (MarkInput(1, MarkState.LATE, minutes=600), "invalid"),
    (MarkInput(1, MarkState.ABSENT, minutes=5), "invalid"),
    (MarkInput(1, MarkState.PRESENT, must_attend=True), "invalid"),
    (MarkInput(1, MarkState.PRESENT, comment="x" * 301), "invalid"),
])
def test_bad_marks_are_refused_whole(inp: MarkInput, code: str) -> None:
    roll = course()
    with pytest.raises(Refusal) as err:
        mark(roll, [MarkInput(2, MarkState.ABSENT), inp], T, 1.0)
    assert err.value.code == code and err.value.message
    assert roll.marks == {}  # nothing applied: all or nothing


def test_batch_limits() -> None:
    with pytest.raises(Refusal) as err:
        mark(course(range(1, 100)), [MarkInput(i, MarkState.PRESENT) for i in range(1, 62)],
             T, 1.0)
    assert err.value.code == "too_large"
    with pytest.raises(Refusal):
        mark(course(), [MarkInput(1, MarkState.PRESENT), MarkInput(1, MarkState.ABSENT)], T, 1.)


def test_corrections_of_a_done_roll_keep_before_and_after() -> None:
    roll, _ = mark_all_present(course(range(1, 4)), T, 1.0)
    roll, _ = mark(roll, [MarkInput(2, MarkState.ABSENT)], T, 2.0)
    done, _ = validate(roll, T, 3.0)
    with pytest.raises(Refusal, match="motif de la correction"):  # a reason is required
        mark(done, [MarkInput(2, MarkState.LATE, minutes=20, comment="Bus")], CPE, 4.0)
    fixed, changes = mark(done, [MarkInput(2, MarkState.LATE, minutes=20, comment="Bus")],
                          CPE, 4.0, reason="  arrivé avec un mot  du bus ")
    assert fixed.state is RollState.DONE
    [c] = changes
    assert c.reason == "arrivé avec un mot du bus"
    assert c.correction and c.before is not None and c.before.state is MarkState.ABSENT
    assert c.after.state is MarkState.LATE and c.after.by == CPE and c.after.at == 4.0
    assert fixed.marks[2].comment == "Bus"


def test_study_hall_adds_present_students() -> None:
    roll = open_roll(study_hall(), 401, 1.0)
    assert roll.roster == frozenset()
    roll, changes = mark(roll, [MarkInput(7, MarkState.PRESENT), MarkInput(8, MarkState.LATE,
                                                                           minutes=3)], 401, 2.)
    assert roll.roster == {7, 8} and len(changes) == 2
    with pytest.raises(Refusal):
        mark(roll, [MarkInput(9, MarkState.ABSENT)], 401, 3.0)
    done, notify = validate(roll, 401, 4.0)
    assert done.state is RollState.DONE and [m.student_id for m in notify] == [8]


def test_replacement_and_overdue() -> None:
    roll = name_replacement(course(), 51)
    assert roll.replacement_id == 51 and name_replacement(roll, 51) is roll
    assert not overdue(RollState.TODO, "08:00", "08:09")
    assert overdue(RollState.TODO, "08:00", "08:10")
    assert not overdue(RollState.IN_PROGRESS, "08:00", "08:30")


def event(**kw: object) -> AbsenceEvent:
    base = {"id": 1, "school_id": 1, "student_id": 3, "roll_id": 1, "date": "2026-11-30",
            "start": "08:00", "end": "09:00", "kind": AbsenceKind.ABSENT}
    return AbsenceEvent(**{**base, **kw})  # type: ignore[arg-type]


REASONS = {r.code: r for r in DEFAULT_REASONS}


def test_a_guardians_reason_is_a_proposal_the_cpe_decides() -> None:
    # Even a justifying reason waits for the CPE (issue 19): a proposal, not a decision.
    e = give_reason(event(), REASONS["maladie"], " fièvre ", GUARDIAN, 10.0)
    assert e.justification is Justification.GIVEN and e.reason_comment == "fièvre"
    assert e.given_by == GUARDIAN and e.pending
    refused = decide(e, False, CPE, 12.0, comment="Certificat illisible")
    assert refused.justification is Justification.REFUSED and refused.decided_by == CPE
    assert refused.reason_comment == "fièvre"  # the CPE's comment never replaces the parent's
    again = give_reason(refused, REASONS["maladie"], "certificat joint", GUARDIAN, 13.0)
    assert again.justification is Justification.GIVEN  # a new proposal after a refusal
    accepted = decide(again, True, CPE, 14.0)
    assert accepted.justification is Justification.ACCEPTED and not accepted.pending
    with pytest.raises(Refusal):  # settled: no more proposals
        give_reason(accepted, REASONS["autre"], "", GUARDIAN, 15.0)


def test_other_reason_waits_for_the_cpe() -> None:
    e = give_reason(event(), REASONS["convenance"], "", GUARDIAN, 10.0)
    assert e.justification is Justification.GIVEN and e.pending
    e2 = give_reason(e, REASONS["panne_reveil"], "désolé", GUARDIAN, 11.0)  # may change it
    assert e2.reason_code == "panne_reveil"
    accepted = decide(e2, True, CPE, 12.0, reason=REASONS["rendez_vous_medical"])
    assert accepted.justification is Justification.ACCEPTED
    assert accepted.reason_code == "rendez_vous_medical"


def test_cannot_accept_without_reason_nor_touch_cancelled() -> None:
    with pytest.raises(Refusal):
        decide(event(), True, CPE, 1.0)
    assert decide(event(), False, CPE, 1.0).justification is Justification.REFUSED
    with pytest.raises(Refusal):
        give_reason(event(cancelled=True), REASONS["maladie"], "", GUARDIAN, 1.0)
    with pytest.raises(Refusal):
        give_reason(event(), msgspec.structs.replace(REASONS["autre"], active=False), "",
                    GUARDIAN, 1.0)


def test_reason_lists_keep_the_legal_ones() -> None:
    ours = [*DEFAULT_REASONS, Reason("sortie", "Sortie scolaire", True)]
    checked = validate_reasons(ours)
    assert [r.code for r in checked if r.legal] == [r.code for r in LEGAL_REASONS]
    without = [r for r in ours if r.code != "maladie"]
    with pytest.raises(Refusal):
        validate_reasons(without)
    unflagged = [msgspec.structs.replace(r, justifying=False) if r.code == "maladie" else r
                 for r in ours]
    with pytest.raises(Refusal):
        validate_reasons(unflagged)
    with pytest.raises(Refusal):
        validate_reasons([*ours, Reason("sortie", "Doublon", False)])
    with pytest.raises(Refusal):
        validate_reasons([*ours, Reason("pas bon!", "x", False)])


def test_half_days() -> None:
    accepted = {"justification": Justification.ACCEPTED, "reason_code": "maladie"}
    events = [
        event(id=1, start="08:00", **accepted),
        event(id=2, start="09:00"),  # same morning, not justified: the morning is not
        event(id=3, start="14:30", **accepted),  # afternoon, justified
        event(id=4, date="2026-12-01", start="10:15", kind=AbsenceKind.LATE),  # not absence
        event(id=5, date="2026-12-01", start="13:30", cancelled=True),  # corrected away
        event(id=6, date="2026-12-02", start="11:15",
              justification=Justification.ACCEPTED, reason_code="convenance"),
    ]
    assert count_half_days(events, REASONS) == {"total": 3, "justified": 1,
                                                "unjustified": 2}


def test_retention_keeps_the_school_year_after_next() -> None:
    assert school_year_end(dt.date(2025, 9, 1)) == dt.date(2026, 8, 31)
    assert school_year_end(dt.date(2026, 8, 31)) == dt.date(2026, 8, 31)
    # A 2025-26 absence is kept through 2026-27 and 2027-28 …
    assert retention_cutoff(dt.date(2028, 8, 31), 2) == dt.date(2025, 9, 1)
    # … and purged once 2028-29 begins.
    assert retention_cutoff(dt.date(2028, 9, 1), 2) == dt.date(2026, 9, 1)
    assert retention_cutoff(dt.date(2028, 9, 1), 0) == dt.date(2028, 9, 1)


def test_new_study_hall_checks_room_and_hours() -> None:
    from realtime.attendance.model import StudyHall, new_study_hall

    hall = new_study_hall(1, 7, "  Salle   104 ", 3, "13:00", "14:00")
    assert hall == StudyHall(id=0, school_id=1, supervisor_id=7, room="Salle 104", weekday=3,
                             start="13:00", end="14:00")
    for room, weekday, start, end in (("", 3, "13:00", "14:00"), ("x" * 61, 3, "13:00", "14:00"),
                                      ("S", 0, "13:00", "14:00"), ("S", 3, "14:00", "13:00"),
                                      ("S", 3, "13:00", "13:00"), ("S", 3, "24:00", "25:00"),
                                      ("S", 3, "9:00", "10:00"), ("S", 3, "13:60", "14:00")):
        with pytest.raises(Refusal) as err:
            new_study_hall(1, 7, room, weekday, start, end)
        assert err.value.code == "invalid" and err.value.message

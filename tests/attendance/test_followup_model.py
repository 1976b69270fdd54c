"""Issue 19, pure parts: where a roll stands against the clock, the school calendar (zone
from the UAI, public and school holidays, closures from CSV and iCalendar), counts per
pupil, the monthly threshold, CSV cells, French phrasing. No loop, no DB."""

from __future__ import annotations

import datetime as dt

import pytest

from realtime.attendance.absences import (
    DEFAULT_REASONS,
    AbsenceEvent,
    AbsenceKind,
    Justification,
    months_over_threshold,
    pupil_counts,
)
from realtime.attendance.calendar import (
    Closure,
    SchoolCalendar,
    parse_closures,
    zone_of_uai,
)
from realtime.attendance.model import (
    MarkInput,
    MarkState,
    Roll,
    RollAlert,
    RollKind,
    RollState,
    mark,
    roll_alert,
    validate,
)
from realtime.attendance.notices import of_name, room_phrase
from realtime.attendance.records import csv_text
from realtime.errors import Refusal
from realtime.text import csv_cell as cell

REASONS = {r.code: r for r in DEFAULT_REASONS}


@pytest.mark.parametrize(("state", "now", "expected"), [
    (RollState.TODO, "08:09", None),
    (RollState.TODO, "08:10", RollAlert.NOT_STARTED),
    (RollState.IN_PROGRESS, "08:10", None),  # opened: no « not started » reminder
    (RollState.IN_PROGRESS, "08:19", None),
    (RollState.IN_PROGRESS, "08:20", RollAlert.IN_PROGRESS),  # left « en cours »
    (RollState.IN_PROGRESS, "09:00", RollAlert.UNFINISHED),  # the slot is over
    (RollState.TODO, "09:30", RollAlert.UNFINISHED),
    (RollState.DONE, "09:30", None),
])
def test_roll_alert_against_the_clock(state: RollState, now: str,
                                      expected: RollAlert | None) -> None:
    assert roll_alert(state, "08:00", "09:00", now, 10, 20) is expected


def test_zone_follows_the_uai_departement() -> None:
    assert zone_of_uai("0020032Z") == "B"  # Aisne: académie d'Amiens
    assert zone_of_uai("0750654D") == "C"  # Paris
    assert zone_of_uai("0690001A") == "A"  # Rhône: Lyon
    assert zone_of_uai("9720001X") is None  # Martinique: no metropolitan zone


def test_calendar_knows_holidays_and_closures() -> None:
    cal = SchoolCalendar(zone="B", closures=(Closure("2027-05-07", "2027-05-07", "Pont"),))
    assert cal.closed(dt.date(2026, 11, 11)) == "Armistice"  # a Wednesday, public holiday
    assert cal.closed(dt.date(2026, 12, 21)) == "Vacances de Noël"
    assert cal.closed(dt.date(2026, 12, 4)) is None  # an ordinary Friday
    assert cal.closed(dt.date(2027, 5, 7)) == "Pont"
    # Zone B's winter holidays are not zone C's.
    feb = [dt.date(2027, 2, d) for d in range(1, 29)]
    assert {d for d in feb if SchoolCalendar("B").closed(d)} != {
        d for d in feb if SchoolCalendar("C").closed(d)}


def test_closures_from_csv_and_ical() -> None:
    csv_file = "debut;fin;libelle\n2027-05-07;;Pont de l'Ascension\n14/06/2027;15/06/2027;Brevet\n"
    got = parse_closures(("\ufeff" + csv_file).encode("utf-8"), "fermetures.csv")
    assert [(c.start, c.end, c.label) for c in got] == [
        ("2027-05-07", "2027-05-07", "Pont de l'Ascension"),
        ("2027-06-14", "2027-06-15", "Brevet")]
    ics = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//FR\r\nBEGIN:VEVENT\r\n"
           b"UID:1\r\nDTSTART;VALUE=DATE:20270614\r\nDTEND;VALUE=DATE:20270616\r\n"
           b"SUMMARY:Brevet blanc\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    [c] = parse_closures(ics, "cal.ics")
    assert (c.start, c.end, c.label) == ("2027-06-14", "2027-06-15", "Brevet blanc")  # DTEND excl.
    for bad in (b"2027-13-01;;X\n", b"2027-06-02;2027-06-01;X\n", b"2027-06-01;;\n", b""):
        with pytest.raises(Refusal):
            parse_closures(bad, "x.csv")


def _ev(i: int, date: str, start: str, kind: AbsenceKind = AbsenceKind.ABSENT,
        justification: Justification = Justification.NONE, code: str | None = None,
        minutes: int | None = None) -> AbsenceEvent:
    return AbsenceEvent(id=i, school_id=1, student_id=3, roll_id=i, date=date, start=start,
                        end="09:00", kind=kind, justification=justification, reason_code=code,
                        minutes=minutes)


def test_four_unjustified_half_days_in_a_month_are_flagged() -> None:
    events = [_ev(1, "2026-11-02", "08:00"), _ev(2, "2026-11-02", "09:00"),  # one half-day
              _ev(3, "2026-11-02", "14:00"), _ev(4, "2026-11-05", "08:00"),
              _ev(5, "2026-11-09", "08:00", justification=Justification.ACCEPTED,
                  code="maladie"),  # justified: not counted
              _ev(6, "2026-12-01", "08:00")]  # another month
    assert months_over_threshold(events, REASONS, 4) == {}
    events.append(_ev(7, "2026-11-20", "15:00"))
    assert months_over_threshold(events, REASONS, 4) == {"2026-11": [
        ("2026-11-02", "matin"), ("2026-11-02", "après-midi"), ("2026-11-05", "matin"),
        ("2026-11-20", "après-midi")]}


def test_pupil_counts_include_early_departures() -> None:
    counts = pupil_counts([
        _ev(1, "2026-11-02", "08:00"), _ev(2, "2026-11-03", "08:00", AbsenceKind.LATE,
                                            minutes=12),
        _ev(3, "2026-11-03", "10:00", AbsenceKind.LEFT_EARLY, minutes=20)], REASONS)
    assert counts == {"total": 1, "justified": 0, "unjustified": 1, "absences": 1,
                      "late": 1, "late_minutes": 12, "left_early": 1, "pending": 3}


def test_left_early_is_told_to_guardians() -> None:
    roll = Roll(id=1, school_id=1, kind=RollKind.COURSE, date="2026-11-30", start="08:00",
                end="09:00", teacher_id=5, class_id=1, slot_id=1, roster=frozenset({1, 2}))
    roll, _ = mark(roll, [MarkInput(1, MarkState.PRESENT),
                          MarkInput(2, MarkState.LEFT_EARLY, minutes=15)], 5, 1.0)
    _, notify = validate(roll, 5, 2.0)
    assert [m.student_id for m in notify] == [2]


def test_past_day_entries_need_a_reason() -> None:
    roll = Roll(id=1, school_id=1, kind=RollKind.COURSE, date="2026-11-30", start="08:00",
                end="09:00", teacher_id=5, class_id=1, slot_id=1, roster=frozenset({1}))
    with pytest.raises(Refusal, match="jour passé"):
        mark(roll, [MarkInput(1, MarkState.ABSENT)], 400, 1.0, late_entry=True)
    _, [c] = mark(roll, [MarkInput(1, MarkState.ABSENT)], 400, 1.0, "appel papier",
                  late_entry=True)
    assert c.correction and c.reason == "appel papier"


@pytest.mark.parametrize("text", ["=1+1", "+33 6", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cells_never_start_a_formula(text: str) -> None:
    assert cell(text) == "'" + text
    assert csv_text(("a",), [[text]]).splitlines()[1].startswith("'") or \
        csv_text(("a",), [[text]]).splitlines()[1].startswith("\"'")
    assert cell(3) == 3 and cell("Alice") == "Alice"


def test_french_phrasing() -> None:
    assert of_name("Alice Martin") == "d'Alice Martin" and of_name("Paul") == "de Paul"
    assert of_name("Hugo") == "d'Hugo" and of_name("Émile") == "d'Émile"
    assert room_phrase("Salle 126") == "salle 126" and room_phrase("B12") == "salle B12"

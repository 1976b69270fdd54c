"""A roll call (appel) and its marks: pure data and pure transitions. No I/O.

Every transition takes the roll, who acts and `now`, and returns the new roll with what
changed (`Change`s, each with its before → after), or raises `Refusal` with a French
message. A change to a roll already validated is a correction: it keeps its audit trail and
the service turns it into a correction notice for the guardians.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from realtime.errors import Refusal

COMMENT_MAX = 300
LATE_MAX_MINUTES = 240
MARKS_PER_CALL = 60


class RollState(StrEnum):
    TODO = "todo"  # à faire
    IN_PROGRESS = "in_progress"  # en cours
    DONE = "done"  # validé


class RollKind(StrEnum):
    COURSE = "course"  # a course slot of one class: the roster is the class
    STUDY_HALL = "study_hall"  # permanence: the roster is whoever is marked present


class MarkState(StrEnum):
    PRESENT = "present"
    ABSENT = "absent"
    LATE = "late"  # retard, with minutes
    LEFT_EARLY = "left_early"  # départ anticipé
    EXEMPTED = "exempted"  # dispensé, maybe still required to attend


MARK_LABELS_FR = {
    MarkState.PRESENT: "présent·e",
    MarkState.ABSENT: "absent·e",
    MarkState.LATE: "en retard",
    MarkState.LEFT_EARLY: "parti·e avant la fin",
    MarkState.EXEMPTED: "dispensé·e",
}
# What a guardian is told about at once, and what becomes an absence event (a departure
# before the end is counted and told like an absence or a lateness).
NOTIFIED = frozenset({MarkState.ABSENT, MarkState.LATE, MarkState.LEFT_EARLY})
REASON_MAX = 300


class RollAlert(StrEnum):
    """What the CPE's grid flags and the teacher is reminded of."""

    NOT_STARTED = "not_started"  # not opened `overdue_min` after the start
    IN_PROGRESS = "in_progress"  # opened, not validated `unvalidated_min` after the start
    UNFINISHED = "unfinished"  # not validated at the end of the slot


ALERT_LABELS_FR = {
    RollAlert.NOT_STARTED: "non commencé",
    RollAlert.IN_PROGRESS: "en cours, non validé",
    RollAlert.UNFINISHED: "non validé à la fin du cours",
}



class Mark(msgspec.Struct, frozen=True):
    student_id: int
    state: MarkState
    minutes: int | None = None  # late: minutes late; left early: minutes before the end
    must_attend: bool = False  # exempted (dispensé) but must stay in class
    comment: str = ""
    by: int = 0
    at: float = 0.0

    def same_as(self, other: Mark | None) -> bool:
        """Equal in what the mark says (not who wrote it when): a duplicate is a no-op."""
        return other is not None and (self.state, self.minutes, self.must_attend,
                                      self.comment) == (other.state, other.minutes,
                                                        other.must_attend, other.comment)


class Change(msgspec.Struct, frozen=True):
    """One student's mark before → after; `correction` when the roll was already done (or
    is a past day's, entered late), with the reason given for it."""

    student_id: int
    before: Mark | None
    after: Mark
    correction: bool
    reason: str = ""


class Roll(msgspec.Struct, frozen=True):
    id: int
    school_id: int
    kind: RollKind
    date: str  # ISO date, local to the school
    start: str  # "HH:MM"
    end: str
    teacher_id: int  # the slot's teacher, or the study hall's supervisor
    class_id: int | None = None
    slot_id: int | None = None
    study_hall_id: int | None = None
    replacement_id: int | None = None
    state: RollState = RollState.TODO
    roster: frozenset[int] = frozenset()
    marks: dict[int, Mark] = msgspec.field(default_factory=dict)
    opened_by: int | None = None
    opened_at: float | None = None
    validated_by: int | None = None
    validated_at: float | None = None
    version: int = 0

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in MarkState}
        for m in self.marks.values():
            out[m.state.value] += 1
        out["unmarked"] = len(self.roster - self.marks.keys())
        return out

    def unmarked(self) -> frozenset[int]:
        return frozenset(self.roster - self.marks.keys())


class RollHeader(msgspec.Struct, frozen=True):
    """A stored roll without its marks: what the day's grid and the histories list, read
    from the counts kept on the roll so a school's day needs no join over its marks."""

    id: int
    school_id: int
    kind: RollKind
    date: str
    start: str
    end: str
    subject: str
    teacher_id: int
    state: RollState
    class_id: int | None = None
    slot_id: int | None = None
    study_hall_id: int | None = None
    replacement_id: int | None = None
    absent: int = 0
    late: int = 0
    validated_at: float | None = None


class Correction(msgspec.Struct, frozen=True):
    """One line of a done roll's audit trail: who changed which mark, when, before → after,
    and why."""

    student_id: int
    before: Mark | None
    after: Mark
    by: int
    at: float
    reason: str = ""


class HistoryEntry(msgspec.Struct, frozen=True):
    """One step of a roll: opened, a mark set, validated, a replacement named; who, when,
    what before → after, why (a correction's reason)."""

    at: float
    by: int
    action: str  # open | mark | validate | replace
    student_id: int | None = None
    before: Mark | None = None
    after: Mark | None = None
    reason: str = ""


class StudyHall(msgspec.Struct, frozen=True):
    """A weekly permanence: a room, a supervisor, a weekday and hours."""

    id: int
    school_id: int
    supervisor_id: int
    room: str
    weekday: int  # ISO: 1 = Monday
    start: str
    end: str


ROOM_MAX = 60


def _minutes_of(hm: str) -> int | None:
    parts = hm.split(":")
    if len(parts) != 2 or not all(x.isdigit() and len(x) == 2 for x in parts):
        return None
    h, m = int(parts[0]), int(parts[1])
    return h * 60 + m if h < 24 and m < 60 else None


def new_study_hall(school_id: int, supervisor_id: int, room: str, weekday: int, start: str,
                   end: str) -> StudyHall:
    """A study hall as the vie scolaire describes it (id 0: not stored yet), or a
    `Refusal` saying in French what is wrong."""
    room = " ".join(room.split())
    if not room or len(room) > ROOM_MAX:
        raise Refusal("invalid", f"Indiquez la salle ({ROOM_MAX} caractères au plus).")
    if not 1 <= weekday <= 7:
        raise Refusal("invalid", "Jour de la semaine invalide.")
    a, b = _minutes_of(start), _minutes_of(end)
    if a is None or b is None:
        raise Refusal("invalid", "Heures invalides : attendu HH:MM.")
    if b <= a:
        raise Refusal("invalid", "L'heure de fin doit suivre l'heure de début.")
    return StudyHall(id=0, school_id=school_id, supervisor_id=supervisor_id, room=room,
                     weekday=weekday, start=start, end=end)


class MarkInput(msgspec.Struct, frozen=True):
    """What a caller asks for one student (already shape-checked by the transport)."""

    student_id: int
    state: MarkState
    minutes: int | None = None
    must_attend: bool = False
    comment: str = ""


def _bump(roll: Roll, **changes: object) -> Roll:
    return msgspec.structs.replace(roll, version=roll.version + 1, **changes)


def open_roll(roll: Roll, actor: int, now: float) -> Roll:
    """To do → in progress. Opening again (another device, a reload) changes nothing."""
    if roll.state is not RollState.TODO:
        return roll
    return _bump(roll, state=RollState.IN_PROGRESS, opened_by=actor, opened_at=now)


def _checked(roll: Roll, m: MarkInput, actor: int, now: float) -> Mark:
    comment = m.comment.strip()
    if len(comment) > COMMENT_MAX:
        raise Refusal("invalid", f"Commentaire trop long ({COMMENT_MAX} caractères au plus).")
    minutes = m.minutes
    if m.state in (MarkState.LATE, MarkState.LEFT_EARLY):
        if minutes is None or not 1 <= minutes <= LATE_MAX_MINUTES:
            raise Refusal("invalid", f"Indiquez le nombre de minutes (1 à {LATE_MAX_MINUTES}).")
    elif minutes is not None:
        raise Refusal("invalid", "Les minutes ne concernent qu'un retard ou un départ.")
    if m.must_attend and m.state is not MarkState.EXEMPTED:
        raise Refusal("invalid", "« Doit rester en cours » ne concerne qu'une dispense.")
    if roll.kind is RollKind.STUDY_HALL and m.state in (MarkState.ABSENT, MarkState.EXEMPTED):
        raise Refusal("invalid", "En permanence, on n'inscrit que les élèves présents.")
    if roll.kind is RollKind.COURSE and m.student_id not in roll.roster:
        raise Refusal("not_found", "Cet élève n'est pas dans la classe.")
    return Mark(student_id=m.student_id, state=m.state, minutes=minutes,
                must_attend=m.must_attend, comment=comment, by=actor, at=now)


def checked_reason(reason: str | None, needed: bool, what: str) -> str:
    """The reason of a correction: required when `needed`, bounded, trimmed."""
    text = " ".join((reason or "").split())
    if needed and not text:
        raise Refusal("invalid", f"Indiquez le motif {what}.")
    if len(text) > REASON_MAX:
        raise Refusal("invalid", f"Motif trop long ({REASON_MAX} caractères au plus).")
    return text


def mark(roll: Roll, inputs: list[MarkInput], actor: int, now: float,
         reason: str | None = None, late_entry: bool = False) -> tuple[Roll, list[Change]]:
    """Set marks (all or nothing). A mark equal to the current one is skipped, so a
    duplicate (a retry, a double tap) changes nothing. On a study-hall roll, marking a
    student present adds them to the roster. Changing a validated roll (a correction), or
    a past day's roll (`late_entry`), needs a reason, kept with each change."""
    if not inputs:
        return roll, []
    if len(inputs) > MARKS_PER_CALL:
        raise Refusal("too_large", f"{MARKS_PER_CALL} élèves au plus par envoi.")
    if len({m.student_id for m in inputs}) != len(inputs):
        raise Refusal("invalid", "Un même élève figure deux fois dans l'envoi.")
    marks = dict(roll.marks)
    roster = set(roll.roster)
    changes: list[Change] = []
    correction = roll.state is RollState.DONE or late_entry
    for m in inputs:
        new = _checked(roll, m, actor, now)
        before = marks.get(m.student_id)
        if new.same_as(before):
            continue
        marks[m.student_id] = new
        roster.add(m.student_id)
        changes.append(Change(m.student_id, before, new, correction))
    if changes and correction:
        why = checked_reason(reason, True, "de la correction" if roll.state is RollState.DONE
                             else "de cette saisie d'un jour passé")
        changes = [msgspec.structs.replace(c, reason=why) for c in changes]
    if not changes:
        return roll, []
    state = RollState.IN_PROGRESS if roll.state is RollState.TODO else roll.state
    opened = ({"opened_by": actor, "opened_at": now} if roll.state is RollState.TODO else {})
    return _bump(roll, marks=marks, roster=frozenset(roster), state=state, **opened), changes


def mark_all_present(roll: Roll, actor: int, now: float, reason: str | None = None,
                     late_entry: bool = False) -> tuple[Roll, list[Change]]:
    """« Tous présents »: every student not yet marked is present; the teacher then marks
    the exceptions. Marks already given are kept."""
    todo = sorted(roll.unmarked())
    changes: list[Change] = []
    for i in range(0, len(todo), MARKS_PER_CALL):
        roll, done = mark(roll, [MarkInput(s, MarkState.PRESENT) for s in
                                 todo[i:i + MARKS_PER_CALL]], actor, now, reason, late_entry)
        changes.extend(done)
    return roll, changes


def validate(roll: Roll, actor: int, now: float) -> tuple[Roll, list[Mark]]:
    """In progress → done; returns the marks guardians must hear of (absent, late).
    Validating a done roll again is a no-op (a retry), with nothing to notify."""
    if roll.state is RollState.DONE:
        return roll, []
    missing = roll.unmarked()
    if missing:
        raise Refusal("conflict", f"{len(missing)} élève(s) sans marque : utilisez « Tous "
                                    "présents » puis marquez les exceptions.")
    if roll.kind is RollKind.COURSE and not roll.roster:
        raise Refusal("conflict", "La classe n'a aucun élève.")
    done = _bump(roll, state=RollState.DONE, validated_by=actor, validated_at=now,
                 opened_by=roll.opened_by or actor, opened_at=roll.opened_at or now)
    notify = [m for _, m in sorted(done.marks.items()) if m.state in NOTIFIED]
    return done, notify


def name_replacement(roll: Roll, teacher_id: int | None) -> Roll:
    """The CPE names who takes the roll instead of the slot's teacher (None: nobody)."""
    if roll.replacement_id == teacher_id:
        return roll
    return _bump(roll, replacement_id=teacher_id)


def minutes_since_start(roll_start: str, now_hm: str) -> int:
    """Minutes from "HH:MM" to "HH:MM" the same day (negative before the start)."""
    h0, m0 = map(int, roll_start.split(":"))
    h1, m1 = map(int, now_hm.split(":"))
    return (h1 * 60 + m1) - (h0 * 60 + m0)


def overdue(state: RollState, start: str, now_hm: str, grace_min: int = 10) -> bool:
    """Not taken `grace_min` minutes after the start: highlighted, and the teacher reminded."""
    return state is RollState.TODO and minutes_since_start(start, now_hm) >= grace_min


def roll_alert(state: RollState, start: str, end: str, now_hm: str, overdue_min: int,
               unvalidated_min: int) -> RollAlert | None:
    """Where a roll of today stands against the clock: not started `overdue_min` after the
    start, still « en cours » `unvalidated_min` after it, not validated at the end."""
    if state is RollState.DONE:
        return None
    if now_hm >= end:
        return RollAlert.UNFINISHED
    since = minutes_since_start(start, now_hm)
    if state is RollState.TODO and since >= overdue_min:
        return RollAlert.NOT_STARTED
    if state is RollState.IN_PROGRESS and since >= unvalidated_min:
        return RollAlert.IN_PROGRESS
    return None

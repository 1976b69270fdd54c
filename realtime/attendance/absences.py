"""Absence events, their justification, reasons and half-day counting. Pure: no I/O.

An absence event is born when a roll is validated with a student absent, late or gone
before the end. Its justification goes none → given (a guardian proposed a reason) →
accepted or refused (the CPE decides, always: a guardian's reason is a proposal). After a
refusal a guardian may propose again (a certificate found later); an accepted one is settled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import StrEnum

import msgspec

from realtime.attendance.model import COMMENT_MAX
from realtime.errors import Refusal

REASON_CODE_MAX = 40
REASON_LABEL_MAX = 80
REASONS_MAX = 40
NOON = "12:30"  # a course starting before this is in the morning half-day


class Justification(StrEnum):
    NONE = "none"  # aucun motif
    GIVEN = "given"  # motif donné par un responsable, à traiter
    ACCEPTED = "accepted"  # recevable
    REFUSED = "refused"  # non recevable


JUSTIFICATION_LABELS_FR = {
    Justification.NONE: "Sans motif",
    Justification.GIVEN: "Motif à traiter",
    Justification.ACCEPTED: "Motif accepté",
    Justification.REFUSED: "Motif refusé",
}


class AbsenceKind(StrEnum):
    ABSENT = "absent"
    LATE = "late"
    LEFT_EARLY = "left_early"  # départ anticipé


KIND_LABELS_FR = {AbsenceKind.ABSENT: "absence", AbsenceKind.LATE: "retard",
                  AbsenceKind.LEFT_EARLY: "départ anticipé"}


class Reason(msgspec.Struct, frozen=True):
    code: str
    label: str
    justifying: bool
    legal: bool = False  # from the Code de l'éducation (art. L131-8): cannot be removed
    active: bool = True


# The legitimate reasons of article L131-8 of the Code de l'éducation, pre-filled in every
# school's list, then the usual others; each school may add, rename, flag or retire its own.
LEGAL_REASONS = (
    Reason("maladie", "Maladie de l'enfant", True, True),
    Reason("maladie_famille", "Maladie transmissible ou contagieuse d'un membre de la famille",
           True, True),
    Reason("reunion_famille", "Réunion solennelle de famille", True, True),
    Reason("transports", "Difficulté accidentelle des transports", True, True),
    Reason("deplacement_famille", "Absence temporaire des responsables que l'enfant suit",
           True, True),
)
DEFAULT_REASONS = (
    *LEGAL_REASONS,
    Reason("rendez_vous_medical", "Rendez-vous médical", True),
    Reason("convocation", "Convocation officielle (examen, justice, JDC…)", True),
    Reason("convenance", "Convenance personnelle", False),
    Reason("panne_reveil", "Panne de réveil", False),
    Reason("autre", "Autre motif", False),
)


class AbsenceEvent(msgspec.Struct, frozen=True):
    id: int
    school_id: int
    student_id: int
    roll_id: int
    date: str
    start: str
    end: str
    kind: AbsenceKind
    minutes: int | None = None
    cancelled: bool = False  # the mark was corrected away
    justification: Justification = Justification.NONE
    reason_code: str | None = None
    reason_comment: str = ""
    given_by: int | None = None
    given_at: float | None = None
    decided_by: int | None = None
    decided_at: float | None = None

    @property
    def pending(self) -> bool:
        """On the CPE's list of absences to handle."""
        return not self.cancelled and self.justification in (Justification.NONE,
                                                             Justification.GIVEN)


def validate_reasons(reasons: Iterable[Reason]) -> list[Reason]:
    """A school's list as edited by its CPE: codes unique, legal reasons kept and justifying."""
    out = list(reasons)
    if not 1 <= len(out) <= REASONS_MAX:
        raise Refusal("invalid", f"La liste compte de 1 à {REASONS_MAX} motifs.")
    codes = [r.code for r in out]
    if len(set(codes)) != len(codes):
        raise Refusal("invalid", "Deux motifs ont le même code.")
    for r in out:
        if not r.code or len(r.code) > REASON_CODE_MAX or not r.code.replace("_", "").isalnum():
            raise Refusal("invalid", f"Code de motif invalide : « {r.code} ».")
        if not r.label.strip() or len(r.label) > REASON_LABEL_MAX:
            raise Refusal("invalid", f"Libellé de motif invalide pour « {r.code} ».")
    by_code = {r.code: r for r in out}
    for legal in LEGAL_REASONS:
        kept = by_code.get(legal.code)
        if kept is None or not kept.active or not kept.justifying:
            raise Refusal("invalid", f"Le motif légal « {legal.label} » doit rester actif "
                                       "et justificatif.")
    return [msgspec.structs.replace(r, legal=r.code in {x.code for x in LEGAL_REASONS})
            for r in out]


def give_reason(event: AbsenceEvent, reason: Reason, comment: str, guardian_id: int,
                now: float) -> AbsenceEvent:
    """A guardian proposes a reason: the event waits for the CPE's decision. The proposal
    itself is kept apart (each guardian's, none overwriting another)."""
    if event.cancelled:
        raise Refusal("conflict", "Cette absence a été annulée par une correction de l'appel.")
    if event.justification is Justification.ACCEPTED:
        raise Refusal("conflict", "La vie scolaire a déjà accepté un motif pour cette absence.")
    if not reason.active:
        raise Refusal("invalid", "Ce motif n'est plus proposé par l'établissement.")
    comment = comment.strip()
    if len(comment) > COMMENT_MAX:
        raise Refusal("invalid", f"Commentaire trop long ({COMMENT_MAX} caractères au plus).")
    return msgspec.structs.replace(
        event, reason_code=reason.code, reason_comment=comment, given_by=guardian_id,
        given_at=now, justification=Justification.GIVEN, decided_by=None, decided_at=None)


def decide(event: AbsenceEvent, accept: bool, cpe_id: int, now: float,
           reason: Reason | None = None, comment: str | None = None) -> AbsenceEvent:
    """The CPE accepts or refuses, possibly setting the reason (a paper note brought in).
    The CPE's comment goes with the decision (kept apart): the guardian's text stays."""
    if event.cancelled:
        raise Refusal("conflict", "Cette absence a été annulée par une correction de l'appel.")
    code = reason.code if reason is not None else event.reason_code
    if accept and code is None:
        raise Refusal("invalid", "Choisissez un motif avant d'accepter.")
    if comment is not None and len(comment.strip()) > COMMENT_MAX:
        raise Refusal("invalid", f"Commentaire trop long ({COMMENT_MAX} caractères au plus).")
    return msgspec.structs.replace(
        event, reason_code=code,
        justification=Justification.ACCEPTED if accept else Justification.REFUSED,
        decided_by=cpe_id, decided_at=now)


def half_day(date: str, start: str) -> tuple[str, str]:
    """(date, "matin" | "après-midi"): the unit absences are counted in."""
    return date, "matin" if start < NOON else "après-midi"


def _halves(events: Iterable[AbsenceEvent], reasons: dict[str, Reason]
            ) -> dict[tuple[str, str], bool]:
    """(date, half) → justified, for every half-day with at least one absence."""
    halves: dict[tuple[str, str], bool] = {}
    for e in events:
        if e.cancelled or e.kind is not AbsenceKind.ABSENT:
            continue
        reason = reasons.get(e.reason_code or "")
        ok = e.justification is Justification.ACCEPTED and reason is not None and (
            reason.justifying)
        key = half_day(e.date, e.start)
        halves[key] = halves.get(key, True) and ok
    return halves


def count_half_days(events: Iterable[AbsenceEvent], reasons: dict[str, Reason]
                    ) -> dict[str, int]:
    """Half-days absent: a half-day with at least one absence counts once; it is justified
    when every absence in it is accepted with a justifying reason. Lateness is not absence."""
    halves = _halves(events, reasons)
    justified = sum(1 for v in halves.values() if v)
    return {"total": len(halves), "justified": justified,
            "unjustified": len(halves) - justified}


def pupil_counts(events: Iterable[AbsenceEvent], reasons: dict[str, Reason]
                 ) -> dict[str, int]:
    """What staff count for a pupil over a period: half-days (justified or not), absences,
    lateness (and their minutes), early departures, and what still waits for a decision."""
    events = [e for e in events if not e.cancelled]
    out = count_half_days(events, reasons)
    out["absences"] = sum(1 for e in events if e.kind is AbsenceKind.ABSENT)
    out["late"] = sum(1 for e in events if e.kind is AbsenceKind.LATE)
    out["late_minutes"] = sum(e.minutes or 0 for e in events if e.kind is AbsenceKind.LATE)
    out["left_early"] = sum(1 for e in events if e.kind is AbsenceKind.LEFT_EARLY)
    out["pending"] = sum(1 for e in events if e.pending)
    return out


def months_over_threshold(events: Iterable[AbsenceEvent], reasons: dict[str, Reason],
                          threshold: int) -> dict[str, list[tuple[str, str]]]:
    """Months ("AAAA-MM") in which a pupil has at least `threshold` unjustified half-days
    (4: the school must report to the DASEN, art. L131-8), with those half-days in order."""
    by_month: dict[str, list[tuple[str, str]]] = {}
    for (date, half), ok in sorted(_halves(events, reasons).items(),
                                   key=lambda kv: (kv[0][0], kv[0][1] != "matin")):
        if not ok:
            by_month.setdefault(date[:7], []).append((date, half))
    return {m: hs for m, hs in by_month.items() if len(hs) >= threshold}


def school_year_end(day: dt.date) -> dt.date:
    """31 August closing the school year `day` belongs to (it starts on 1 September)."""
    return dt.date(day.year if day.month < 9 else day.year + 1, 8, 31)


def retention_cutoff(today: dt.date, years: int) -> dt.date:
    """Details of days before the returned date are purged.

    A record is kept until the end of the school year `years` after its own: with the
    default 2, a 2025-26 absence is kept until 31 August 2028 (the end of the school year
    after next), then purged.
    """
    current_end = school_year_end(today)
    # Kept while today <= 31 August of (its year's end + years): the oldest school year
    # still kept is the one ending `years` years before the current one ends.
    return dt.date(current_end.year - years - 1, 9, 1)

"""What a guardian is told, in French: built from a mark or a correction. Pure."""

from __future__ import annotations

import datetime as dt
from typing import Any

from realtime.attendance.model import MARK_LABELS_FR, Change, Mark, MarkState
from realtime.directory.model import WEEKDAYS_FR

MONTHS_FR = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
             "septembre", "octobre", "novembre", "décembre")


_VOWELS = frozenset("AEIOUYÂÀÉÈÊËÎÏÔÖÛÙÜHaeiouyâàéèêëîïôöûùüh")


def of_name(name: str) -> str:
    """« de Paul », « d'Alice », « d'Hugo »: the elision French writes before a vowel."""
    return f"d'{name}" if name[:1] in _VOWELS else f"de {name}"


def room_phrase(room: str) -> str:
    """« salle 126 » from "Salle 126", « salle B12 » from "B12": never « salle Salle 126 »."""
    room = room.strip()
    if room[:5].lower() == "salle":
        return "salle" + room[5:]
    return f"salle {room}"


def french_day(date: str) -> str:
    d = dt.date.fromisoformat(date)
    return f"{WEEKDAYS_FR[d.weekday()]} {d.day} {MONTHS_FR[d.month - 1]}"


def _what(m: Mark) -> str:
    if m.state is MarkState.LATE:
        return f"en retard de {m.minutes} min"
    if m.state is MarkState.LEFT_EARLY:
        return f"parti·e {m.minutes} min avant la fin"
    return MARK_LABELS_FR[m.state]


def notice(kind: str, *, student_id: int, student_name: str, date: str, start: str, end: str,
           subject: str, mark: Mark, before: Mark | None = None, event_id: int | None = None
           ) -> dict[str, Any]:
    """One notice: `absence`, `late` or `correction`, with a sentence a parent reads."""
    when = f"le {french_day(date)} de {start} à {end}" + (f" ({subject})" if subject else "")
    if kind == "correction":
        title = f"Correction de l'appel — {student_name}"
        was = f" (au lieu de « {_what(before)} »)" if before is not None else ""
        body = f"{student_name} est finalement noté·e {_what(mark)}{was} {when}."
    elif kind == "late":
        title = f"Retard — {student_name}"
        body = f"{student_name} est arrivé·e en retard de {mark.minutes} min {when}."
    elif kind == "left_early":
        title = f"Départ anticipé — {student_name}"
        body = f"{student_name} est parti·e {mark.minutes} min avant la fin du cours {when}."
    else:
        title = f"Absence — {student_name}"
        body = f"{student_name} a été noté·e absent·e {when}."
    return {
        "kind": kind, "student_id": student_id, "student_name": student_name, "date": date,
        "start": start, "end": end, "subject": subject, "state": mark.state.value,
        "minutes": mark.minutes, "event_id": event_id, "title": title, "body": body,
        # The parent may give a reason while an absence or lateness stands.
        "can_justify": event_id is not None and mark.state in (
            MarkState.ABSENT, MarkState.LATE, MarkState.LEFT_EARLY),
    }


def notice_kind(change: Change) -> str | None:
    """A correction is told when it touches what guardians were told or should be."""
    told = {MarkState.ABSENT, MarkState.LATE, MarkState.LEFT_EARLY}
    before = change.before.state if change.before else None
    if not change.correction:
        return None
    if before in told or change.after.state in told:
        return "correction"
    return None


def decision_notice(*, student_id: int, student_name: str, date: str, start: str, end: str,
                    kind: str, accepted: bool, reason_label: str | None, event_id: int,
                    comment: str = "") -> dict[str, Any]:
    """The CPE accepted or refused the reason of an absence or lateness."""
    what = {"late": "le retard", "left_early": "le départ anticipé"}.get(kind, "l'absence")
    verdict = "accepté" if accepted else "refusé"
    reason = f" « {reason_label} »" if reason_label else ""
    return {
        "kind": "decision", "student_id": student_id, "student_name": student_name,
        "date": date, "start": start, "end": end, "subject": "", "state": verdict,
        "minutes": None, "event_id": event_id,
        "title": f"Motif {verdict} — {student_name}",
        "body": f"La vie scolaire a {verdict} le motif{reason} pour {what} "
                f"{of_name(student_name)} le {french_day(date)} de {start} à {end}."
                + (f" Commentaire : « {comment} »." if comment else ""),
        "can_justify": False,
    }

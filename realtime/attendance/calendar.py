"""The school calendar: which days have no classes, and why. Pure (no I/O).

Public holidays and the school holidays of the three zones come from the `holidays`
package (the official calendar of the ministry, kept up to date there, labels in French);
the zone follows the académie of the UAI's département (Aisne, 02: académie d'Amiens, zone B)
unless the school's record names another; the collège's own closures (a bridge day, exam
days…) are imported by the CPE or the administration from CSV or iCalendar. No reminder
and no « en retard » on a day without classes.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from collections.abc import Iterable

import holidays
import msgspec

from realtime.errors import Refusal

CLOSURES_MAX = 400
LABEL_MAX = 120

# Académies by zone (arrêté fixant le calendrier scolaire), as départements.
_ZONES = {
    "A": "25 39 70 90 24 33 40 47 64 03 15 43 63 21 58 71 89 07 26 38 73 74 19 23 87 01 42 69"
         " 16 17 79 86",
    "B": "04 05 13 84 02 60 80 59 62 54 55 57 88 44 49 53 72 85 06 83 14 27 50 61 76 18 28 36"
         " 37 41 45 08 10 51 52 22 29 35 56 67 68",
    "C": "77 93 94 11 30 34 48 66 75 09 12 31 32 46 65 81 82 78 91 92 95",
}
ZONE_OF_DEPARTEMENT = {d: z for z, ds in _ZONES.items() for d in ds.split()}
ALSACE_MOSELLE = frozenset({"57", "67", "68"})  # their own public holidays


def departement_of_uai(uai: str) -> str | None:
    """'0020032Z' → '02'. Metropolitan départements are written 0DD in a UAI."""
    head = uai[:3]
    if len(head) == 3 and head.isdigit() and head[0] == "0":
        return head[1:]
    return None


def zone_of_uai(uai: str) -> str | None:
    dep = departement_of_uai(uai)
    return ZONE_OF_DEPARTEMENT.get(dep) if dep else None


class Closure(msgspec.Struct, frozen=True):
    """Days without classes decided by the collège, `start` to `end` inclusive."""

    start: str
    end: str
    label: str
    id: int = 0


@functools.lru_cache(maxsize=64)
def _official(zone: str | None, subdivision: str | None, year: int) -> dict[dt.date, str]:
    public = holidays.France(years=year, subdiv=subdivision, language="fr")
    out = {d: str(name) for d, name in public.items()}
    if zone is not None:
        school = holidays.France(years=year, subdiv=f"Zone {zone}", categories=("school",),
                                 language="fr")
        for d, name in school.items():
            out.setdefault(d, str(name))
    return out


class SchoolCalendar(msgspec.Struct, frozen=True):
    zone: str | None
    subdivision: str | None = None
    closures: tuple[Closure, ...] = ()

    def closed(self, day: dt.date) -> str | None:
        """Why `day` has no classes (« Armistice 1918 », « Vacances de Noël », a closure's
        label), or None on a school day. Weekends are the timetable's business."""
        iso = day.isoformat()
        for c in self.closures:
            if c.start <= iso <= c.end:
                return c.label
        name = _official(self.zone, self.subdivision, day.year).get(day)
        return name.split(";")[0].strip() if name else None

    def days_off(self, start: dt.date, end: dt.date) -> list[tuple[str, str]]:
        """(date, why) for every weekday without classes in the range (for the CPE's view)."""
        out = []
        day = start
        while day <= end:
            if day.isoweekday() <= 5:
                why = self.closed(day)
                if why:
                    out.append((day.isoformat(), why))
            day += dt.timedelta(days=1)
        return out


def _date(raw: str, line: int) -> dt.date:
    raw = raw.strip()
    try:
        if "/" in raw:
            d, m, y = raw.split("/")
            return dt.date(int(y), int(m), int(d))
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise Refusal("invalid", f"Ligne {line} : date invalide « {raw} » (attendu "
                                   "AAAA-MM-JJ ou JJ/MM/AAAA).") from exc


def _closure(start: dt.date, end: dt.date, label: str, line: int) -> Closure:
    label = " ".join(label.split())
    if not label or len(label) > LABEL_MAX:
        raise Refusal("invalid", f"Ligne {line} : indiquez un libellé ({LABEL_MAX} "
                                   "caractères au plus).")
    if end < start:
        raise Refusal("invalid", f"Ligne {line} : la fin précède le début.")
    if (end - start).days > 120:
        raise Refusal("invalid", f"Ligne {line} : fermeture de plus de 120 jours.")
    return Closure(start.isoformat(), end.isoformat(), label)


def _bounded(items: list[Closure]) -> list[Closure]:
    if not items:
        raise Refusal("invalid", "Aucune fermeture trouvée dans le fichier.")
    if len(items) > CLOSURES_MAX:
        raise Refusal("too_large", f"{CLOSURES_MAX} fermetures au plus par import.")
    return items


def parse_csv(text: str) -> list[Closure]:
    """`debut;fin;libelle` (or commas), one closure a line, a header line allowed; dates
    AAAA-MM-JJ or JJ/MM/AAAA, `fin` empty for a single day."""
    text = text.lstrip("\ufeff")
    sample = text[:2048]
    delimiter = ";" if sample.count(";") >= sample.count(",") else ","
    out: list[Closure] = []
    for n, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), start=1):
        if not row or not any(c.strip() for c in row):
            continue
        if n == 1 and row[0].strip().lower() in ("debut", "début", "start", "date"):
            continue
        if len(row) < 2:
            raise Refusal("invalid", f"Ligne {n} : attendu debut;fin;libelle.")
        label = row[2] if len(row) >= 3 else row[1]
        start = _date(row[0], n)
        end = _date(row[1], n) if len(row) >= 3 and row[1].strip() else start
        out.append(_closure(start, end, label, n))
        if len(out) > CLOSURES_MAX:
            break
    return _bounded(out)


def parse_ical(data: bytes) -> list[Closure]:
    """The VEVENTs of an iCalendar file (RFC 5545): all-day events end the day before DTEND
    (exclusive there), timed events cover their days."""
    import icalendar

    try:
        cal = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise Refusal("invalid", "Fichier iCalendar illisible.") from exc
    out: list[Closure] = []
    for n, ev in enumerate(cal.walk("VEVENT"), start=1):
        if ev.get("DTSTART") is None:
            raise Refusal("invalid", f"Événement {n} : pas de date de début.")
        start = ev.decoded("DTSTART")
        end = ev.decoded("DTEND") if ev.get("DTEND") is not None else start
        all_day = not isinstance(start, dt.datetime)
        start_d = start.date() if isinstance(start, dt.datetime) else start
        end_d = end.date() if isinstance(end, dt.datetime) else end
        if all_day and end_d > start_d:
            end_d -= dt.timedelta(days=1)
        out.append(_closure(start_d, end_d, str(ev.get("SUMMARY", "Fermeture")), n))
        if len(out) > CLOSURES_MAX:
            break
    return _bounded(out)


def parse_closures(data: bytes, filename: str = "") -> list[Closure]:
    """CSV or iCalendar, told apart by content (BEGIN:VCALENDAR) rather than the name."""
    head = data[:64].lstrip(b"\xef\xbb\xbf \r\n\t").upper()
    if head.startswith(b"BEGIN:VCALENDAR") or filename.lower().endswith(".ics"):
        return parse_ical(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")  # a spreadsheet's export
    return parse_csv(text)


def merged(items: Iterable[Closure]) -> tuple[Closure, ...]:
    return tuple(sorted(items, key=lambda c: (c.start, c.end, c.label)))

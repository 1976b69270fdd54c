"""Directory data and the pure rules about it (UAI codes, class levels, week days)."""

from __future__ import annotations

import datetime as dt
import re

import msgspec

UAI_RE = re.compile(r"^\d{7}[A-Z]$")
CLASS_NAME_RE = re.compile(r"^(6e|5e|4e|3e) [A-Z]$")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
LEVELS = ("6e", "5e", "4e", "3e")
WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


class School(msgspec.Struct, frozen=True):
    id: int
    uai: str
    name: str
    town: str


class SchoolClass(msgspec.Struct, frozen=True):
    id: int
    school_id: int
    name: str
    level: str


class Student(msgspec.Struct, frozen=True):
    id: int
    login: str
    name: str
    class_id: int
    school_id: int


class Placement(msgspec.Struct, frozen=True):
    """Where a pupil is enrolled: their class and its school."""

    student_id: int
    class_id: int
    school_id: int


class CourseSlot(msgspec.Struct, frozen=True):
    id: int
    school_id: int
    class_id: int
    teacher_id: int
    subject: str
    room: str
    weekday: int  # ISO 8601: 1 = lundi … 7 = dimanche
    start: str  # "HH:MM", local time of the school
    end: str

    def covers(self, at: dt.datetime) -> bool:
        """Is this slot under way at `at` (a local datetime)?"""
        hm = at.strftime("%H:%M")
        return at.isoweekday() == self.weekday and self.start <= hm < self.end


class Relations(msgspec.Struct, frozen=True):
    """What links a user to classes and children: the raw material of policy."""

    class_ids: frozenset[int] = frozenset()
    child_ids: frozenset[int] = frozenset()
    child_class_ids: frozenset[int] = frozenset()
    child_school_ids: frozenset[int] = frozenset()


def valid_uai(uai: str) -> bool:
    """The UAI's shape: seven digits and a letter (see `uai_check_ok` for the letter)."""
    return bool(UAI_RE.match(uai))


# The UAI's key letter is the seven-digit number modulo 23 in this alphabet (no I, O, Q),
# as the Éducation nationale's « Répertoire national des établissements » computes it.
_UAI_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def uai_check_letter(digits: str) -> str:
    """The key letter of a UAI's seven leading characters ("0020032" → "Z")."""
    if len(digits) != 7 or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"UAI : sept chiffres attendus, pas {digits!r}")
    return _UAI_LETTERS[int(digits) % 23]


def uai_check_ok(uai: str) -> bool:
    """A well-formed UAI whose key letter matches its digits."""
    return valid_uai(uai) and uai[:7].isdigit() and uai_check_letter(uai[:7]) == uai[7]


def level_of(class_name: str) -> str:
    """"4e B" → "4e"; a name that is not a collège class is refused.

    For classes named by hand (demo, CSV). A class from the académie's feed keeps the code
    the school gave it (« 6A », « 601 », « 3EME1 »: the « structure$code » key) and takes its
    level from its pupils' MEF (realtime/directory/aaf/model.py); nothing else in the server
    reads a class's name, which is only shown."""
    if not CLASS_NAME_RE.match(class_name):
        raise ValueError(f"nom de classe invalide : {class_name!r} (attendu : « 6e A » … « 3e Z »)")
    return class_name[:2]


def valid_slot_times(start: str, end: str) -> bool:
    return bool(TIME_RE.match(start) and TIME_RE.match(end) and start < end)


def parse_date(raw: str | None, today: dt.date) -> dt.date:
    if not raw:
        return today
    return dt.date.fromisoformat(raw)

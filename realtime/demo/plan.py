"""Builds the demo's people, classes and week timetable from a seed. Pure: no I/O.

The same seed always gives the same plan (names, logins, codes, slots), which is what makes
`python -m realtime demo` deterministic and lets tests and docs name real demo accounts.
"""

from __future__ import annotations

import math
import random
import unicodedata
from dataclasses import dataclass, field

from realtime.demo.names import (
    ADULT_FIRST_NAMES_F,
    ADULT_FIRST_NAMES_M,
    FIRST_NAMES_F,
    FIRST_NAMES_M,
    SURNAMES,
)

SEED = 2026
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"

# (start, end) of the hour slots of a collège day; Wednesday has only the morning.
DAY_SLOTS = (
    ("08:00", "09:00"), ("09:00", "10:00"), ("10:15", "11:15"), ("11:15", "12:15"),
    ("13:30", "14:30"), ("14:30", "15:30"), ("15:45", "16:45"),
)
WEEK = {1: 7, 2: 7, 3: 4, 4: 7, 5: 7}  # ISO weekday → number of slots that day

# Weekly hours per subject and level ("grille horaire" simplified to whole hours).
HOURS = {
    "6e": {"Français": 5, "Mathématiques": 4, "Anglais": 4, "Histoire-géographie": 3,
           "SVT": 2, "Technologie": 2, "Arts plastiques": 1, "Éducation musicale": 1, "EPS": 4},
    "5e": {"Français": 4, "Mathématiques": 4, "Anglais": 3, "LV2": 2, "Histoire-géographie": 3,
           "SVT": 2, "Physique-chimie": 1, "Technologie": 1, "Arts plastiques": 1,
           "Éducation musicale": 1, "EPS": 3},
    "4e": {"Français": 4, "Mathématiques": 4, "Anglais": 3, "LV2": 2, "Histoire-géographie": 3,
           "SVT": 2, "Physique-chimie": 1, "Technologie": 1, "Arts plastiques": 1,
           "Éducation musicale": 1, "EPS": 3},
    "3e": {"Français": 4, "Mathématiques": 4, "Anglais": 3, "LV2": 2, "Histoire-géographie": 3,
           "SVT": 1, "Physique-chimie": 2, "Technologie": 1, "Arts plastiques": 1,
           "Éducation musicale": 1, "EPS": 3},
}
SPECIAL_ROOMS = {
    "SVT": ("Labo SVT 1", "Labo SVT 2"),
    "Physique-chimie": ("Labo PC",),
    "Technologie": ("Salle techno",),
    "Arts plastiques": ("Salle d'arts plastiques",),
    "Éducation musicale": ("Salle de musique",),
    "EPS": ("Gymnase", "Plateau sportif"),
}


@dataclass
class Person:
    login: str
    code: str
    role: str
    name: str
    school_uai: str | None
    classes: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Slot:
    class_name: str
    subject: str
    teacher_login: str
    room: str
    weekday: int
    start: str
    end: str


@dataclass(frozen=True)
class StudyHall:
    """A permanence hour: students without a course go there; its supervisor takes the roll."""

    room: str
    supervisor_login: str
    weekday: int
    start: str
    end: str


@dataclass
class SchoolPlan:
    uai: str
    name: str
    town: str
    classes: list[str]
    slots: list[Slot] = field(default_factory=list)
    study_halls: list[StudyHall] = field(default_factory=list)


@dataclass
class DemoPlan:
    schools: list[SchoolPlan]
    people: list[Person]


SCHOOLS = (
    # uai, name, town, classes per level, max teaching hours per teacher
    ("0020032Z", "Collège Charlemagne", "Laon", 3, 18),
    ("0021490J", "Collège de Saint-Gobain", "Saint-Gobain", 2, 14),
)


def ascii_slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "-".join(plain.lower().replace("'", " ").split())


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.logins: set[str] = set()
        self.people: list[Person] = []

    def code(self) -> str:
        return "".join(self.rng.choice(CODE_ALPHABET) for _ in range(10))

    def login(self, first: str, last: str) -> str:
        base = f"{ascii_slug(first)}.{ascii_slug(last)}"
        login, n = base, 1
        while login in self.logins:
            n += 1
            login = f"{base}{n}"
        self.logins.add(login)
        return login

    def person(self, role: str, first: str, last: str, uai: str | None) -> Person:
        p = Person(self.login(first, last), self.code(), role, f"{first} {last}", uai)
        self.people.append(p)
        return p

    def adult(self, role: str, uai: str | None, last: str | None = None) -> Person:
        first = self.rng.choice(self.rng.choice((ADULT_FIRST_NAMES_F, ADULT_FIRST_NAMES_M)))
        return self.person(role, first, last or self.rng.choice(SURNAMES), uai)


def _classes(per_level: int) -> list[str]:
    return [f"{level} {chr(ord('A') + i)}" for level in HOURS for i in range(per_level)]


def _subject_of(class_name: str, subject: str) -> str:
    if subject != "LV2":
        return subject
    return "Allemand" if class_name.endswith("B") else "Espagnol"


def _school(b: _Builder, uai: str, name: str, town: str, per_level: int, max_hours: int
            ) -> SchoolPlan:
    plan = SchoolPlan(uai, name, town, _classes(per_level))
    rng = b.rng

    # Teaching needs per subject, then teachers enough to cover them.
    needs: dict[str, list[tuple[str, int]]] = {}
    for cname in plan.classes:
        for subject, hours in HOURS[cname[:2]].items():
            needs.setdefault(_subject_of(cname, subject), []).append((cname, hours))
    teacher_of: dict[tuple[str, str], Person] = {}
    for subject, demand in needs.items():
        total = sum(h for _, h in demand)
        teachers = [b.adult("teacher", uai) for _ in range(max(1, math.ceil(total / max_hours)))]
        load = dict.fromkeys(range(len(teachers)), 0)
        for cname, hours in demand:  # classes kept together by level, least-loaded first
            i = min(load, key=lambda k: (load[k], k))
            load[i] += hours
            t = teachers[i]
            teacher_of[(cname, subject)] = t
            if cname not in t.classes:
                t.classes.append(cname)
            if subject not in t.subjects:
                t.subjects.append(subject)

    # Greedy week timetable: class, teacher and special room each in one place at a time.
    busy: set[tuple[str, int, int]] = set()  # (who or room, weekday, slot index)
    positions = [(d, i) for d, n in WEEK.items() for i in range(n)]
    for ci, cname in enumerate(plan.classes):
        home_room = f"Salle {100 + 10 * (4 - int(cname[0]) // 2) + ci}"
        hours = [
            (_subject_of(cname, s), h)
            for s, h in sorted(HOURS[cname[:2]].items(), key=lambda kv: -kv[1])
        ]
        for subject, n in hours:
            teacher = teacher_of[(cname, subject)]
            days_used: set[int] = set()
            for _ in range(n):
                order = positions[:]
                rng.shuffle(order)
                # Prefer a day without this subject yet, then any free position.
                order.sort(key=lambda pos: pos[0] in days_used)
                for day, idx in order:
                    if (cname, day, idx) in busy or (teacher.login, day, idx) in busy:
                        continue
                    rooms = SPECIAL_ROOMS.get(subject, (home_room,))
                    room = next((r for r in rooms if (r, day, idx) not in busy), None)
                    if room is None:
                        continue
                    for key in (cname, teacher.login, room):
                        busy.add((key, day, idx))
                    days_used.add(day)
                    start, end = DAY_SLOTS[idx]
                    plan.slots.append(Slot(cname, subject, teacher.login, room, day, start, end))
                    break
    plan.slots.sort(key=lambda s: (s.class_name, s.weekday, s.start))

    # Students and their guardians; some families have two children at the collège.
    families: list[tuple[str, list[Person]]] = []
    for cname in plan.classes:
        for _ in range(rng.randint(24, 27)):
            if families and rng.random() < 0.12:
                surname, guardians = rng.choice(families)
                if any(cname in c.classes for g in guardians for c in _children(b, g)):
                    surname, guardians = _new_family(b, uai)
                    families.append((surname, guardians))
            else:
                surname, guardians = _new_family(b, uai)
                families.append((surname, guardians))
            first = rng.choice(rng.choice((FIRST_NAMES_F, FIRST_NAMES_M)))
            student = b.person("student", first, surname, uai)
            student.classes.append(cname)
            for g in guardians:
                g.children.append(student.login)

    cpe = b.person("cpe", rng.choice(ADULT_FIRST_NAMES_F), rng.choice(SURNAMES), uai)
    # The permanence room is open every hour of the week, under the vie scolaire (no draw
    # from the generator: the rest of the plan stays as it was).
    plan.study_halls = [StudyHall("Salle de permanence", cpe.login, day, *DAY_SLOTS[i])
                        for day, n in WEEK.items() for i in range(n)]
    b.adult("staff", uai)  # secrétariat
    b.adult("staff", uai)  # direction
    return plan


def _children(b: _Builder, guardian: Person) -> list[Person]:
    by_login = {p.login: p for p in b.people if p.role == "student"}
    return [by_login[c] for c in guardian.children if c in by_login]


def _new_family(b: _Builder, uai: str) -> tuple[str, list[Person]]:
    surname = b.rng.choice(SURNAMES)
    guardians = [b.adult("parent", uai, surname)]
    if b.rng.random() < 0.8:
        other = surname if b.rng.random() < 0.7 else b.rng.choice(SURNAMES)
        guardians.append(b.adult("parent", uai, other))
    return surname, guardians


def build_plan(seed: int = SEED) -> DemoPlan:
    b = _Builder(seed)
    schools = [_school(b, *spec) for spec in SCHOOLS]
    b.person("admin", "Administrateur", "ENT", None)
    for p in b.people:
        p.classes.sort()
    return DemoPlan(schools, b.people)

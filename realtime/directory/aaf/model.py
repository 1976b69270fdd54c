"""A full AAF snapshot in memory, compactly, and the pure rules that read it.

Only what the directory keeps is taken from each record (a pupil is a few short strings), so
a 50 MB pupils file costs a few megabytes here. References between files are checked here:
a record that points to an unknown school or class is skipped with its reason.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import msgspec

from realtime.directory.aaf.reader import Record
from realtime.directory.model import uai_check_ok
from realtime.identity.model import Role

LEVELS = ("6e", "5e", "4e", "3e")
# « 6EME », « 5E », « 4ème SEGPA », « 3 PREPA-METIERS »; a class code « 6A », « 601 ».
_LEVEL_LABEL = re.compile(r"^\s*([3-6])\s*(?:E|EME|ÈME|EM)?(?![0-9A-Z])", re.I)
_LEVEL_CODE = re.compile(r"^\s*([3-6])")
# MEF codes of the collège's four years (BCN nomenclature: 1001 6e, 1011 5e, 1021 4e, 1031 3e).
_MEF_PREFIX = {"1001": "6e", "1011": "5e", "1021": "4e", "1031": "3e"}
NAME_MAX = 120


class SchoolRec(msgspec.Struct):
    key: str  # ENTStructureJointure
    uai: str
    name: str
    town: str
    classes: dict[str, str] = {}  # declared in ENTStructureClasses: code → label
    groups: dict[str, str] = {}  # ENTStructureGroupes: code → label


class PupilRec(msgspec.Struct):
    key: str
    name: str
    first: str
    last: str
    school: str
    class_code: str
    mef_level: str | None
    groups: list[str]
    guardians: list[str]  # keys of the legal representatives (field 4 = 1)


class RelativeRec(msgspec.Struct):
    key: str
    name: str
    first: str
    last: str
    home_phone: str
    work_phone: str
    mobile_phone: str
    email: str


class StaffRec(msgspec.Struct):
    key: str
    name: str
    first: str
    last: str
    school: str
    role: Role
    classes: list[tuple[str, str]]  # (class code, subject code) in the person's school
    groups: list[tuple[str, str]]
    tutor_of: list[str]


class Skip(msgspec.Struct, frozen=True):
    what: str
    reason: str


def level_of_label(label: str) -> str | None:
    """The collège level a MEF or class label names (« 6EME » → « 6e »), if any."""
    m = _LEVEL_LABEL.match(label or "")
    return f"{m.group(1)}e" if m else None


def level_of_mef(code: str, label: str) -> str | None:
    return level_of_label(label) or _MEF_PREFIX.get((code or "")[:4])


def level_of_class(code: str, label: str) -> str | None:
    """A class's level from its label or code when no pupil's MEF tells it."""
    found = level_of_label(label) or level_of_label(code)
    if found:
        return found
    m = _LEVEL_CODE.match(code or "")
    return f"{m.group(1)}e" if m else None


def slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")


def base_login(first: str, last: str) -> str:
    """prénom.nom, ASCII, lower case (« Zoé L'Hermite » → « zoe.l-hermite »)."""
    parts = [p for p in (slug(first)[:30], slug(last)[:30]) if p]
    return ".".join(parts) or "compte"


def unique_login(base: str, taken: set[str], tried: dict[str, int] | None = None) -> str:
    """`base`, or `base2`, `base3`… the first free one (case-insensitive); marks it taken.
    `tried` remembers, per base, the last number tried, so that a thousand homonyms cost a
    thousand steps and not half a million."""
    n = tried.get(base.casefold(), 1) if tried is not None else 1
    login = base if n == 1 else f"{base}{n}"
    while login.casefold() in taken:
        n += 1
        login = f"{base}{n}"
    taken.add(login.casefold())
    if tried is not None:
        tried[base.casefold()] = n
    return login


def staff_role(r: Record, school: str) -> Role:
    """Direction and secretariat are staff, the CPE is the vie scolaire, teachers are the
    ones with a teaching function ($ENS$, $DOC$) or in front of pupils."""
    functions = [f.split("$") for f in r.all("ENTPersonFonctions")]
    mine = [f for f in functions if len(f) > 1 and f[0] == school] or functions
    codes = {f[1].upper() for f in mine if len(f) > 1}
    labels = " ".join("$".join(f[2:]).upper() for f in mine)
    if "DIR" in codes:
        return Role.STAFF
    if "EDU" in codes and ("CONSEILLER PRINCIPAL" in labels or re.search(r"\bC\.?P\.?E\b",
                                                                         labels)):
        return Role.CPE
    if codes & {"ENS", "DOC"}:
        return Role.TEACHER
    if codes:
        return Role.STAFF
    if "O" in (r.first("PersEducNatPresenceDevantEleves").upper(),
               r.first("ENTPersonCategorieEnseignant").upper()):
        return Role.TEACHER
    return Role.STAFF


def _ref(value: str, n: int) -> list[str] | None:
    """« structure$code[$…] » split into n fields, or None if malformed."""
    parts = value.split("$")
    if len(parts) < n or not all(parts[:n]):
        return None
    return parts


def _display(first: str, last: str) -> str:
    return " ".join(x for x in (first, last) if x)[:NAME_MAX]


class Snapshot:
    """What the files say, checked for references, before anything is written."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix.rstrip("-") + "-" if prefix else ""
        self.schools: dict[str, SchoolRec] = {}
        self.broken_schools: set[str] = set()  # named by the feed but unusable
        self.subjects: dict[str, str] = {}
        self.mefs: dict[str, str | None] = {}
        self.pupils: dict[str, PupilRec] = {}
        self.relatives: dict[str, RelativeRec] = {}
        self.staff: dict[str, StaffRec] = {}
        self.skipped: list[Skip] = []
        self.read: Counter[str] = Counter()
        self._pupil_classes: dict[tuple[str, str], Counter[str]] = {}

    def key(self, raw: str) -> str:
        return self.prefix + raw

    def skip(self, what: str, reason: str) -> None:
        self.skipped.append(Skip(what, reason))

    def add(self, kind: str, r: Record) -> None:
        self.read[kind] += 1
        getattr(self, "_" + kind.lower())(r)

    # --- each kind -----------------------------------------------------------------------

    def _etabeducnat(self, r: Record) -> None:
        raw = r.first("ENTStructureJointure") or r.id
        uai = (r.first("ENTStructureUAI") or r.first("ENTEtablissementUAI")).upper()
        what = f"établissement {raw or '?'} ({uai or 'sans UAI'})"
        if not raw:
            return self.skip(what, "identifiant (ENTStructureJointure) manquant")
        key = self.key(raw)
        if not uai_check_ok(uai):
            self.broken_schools.add(key)
            return self.skip(what, f"UAI invalide « {uai} »")
        twin = next((k for k, v in self.schools.items() if v.uai == uai and k != key), None)
        if twin is not None:
            self.broken_schools.add(key)
            return self.skip(what, f"UAI déjà porté par l'établissement {twin}")
        name = r.first("ENTStructureNomCourant").replace("$", " ").strip() or uai
        classes = {}
        for v in r.all("ENTStructureClasses"):
            code, _, label = v.partition("$")
            if code.strip():
                classes[code.strip()] = label.strip() or code.strip()
        groups = {}
        for v in r.all("ENTStructureGroupes"):
            code, _, label = v.partition("$")
            if code.strip():
                groups[code.strip()] = label.strip() or code.strip()
        self.schools[key] = SchoolRec(key=key, uai=uai, name=name[:NAME_MAX],
                                      town=r.first("l")[:NAME_MAX], classes=classes,
                                      groups=groups)

    def _matiereeducnat(self, r: Record) -> None:
        code = r.first("ENTMatJointure") or r.id
        if code:
            self.subjects[code] = r.first("ENTLibelleMatiere") or code

    def _mefeducnat(self, r: Record) -> None:
        code = r.first("ENTMefJointure") or r.first("ENTMEFJointure") or r.id
        if code:
            label = r.first("ENTLibelleMef") or r.first("ENTLibelleMEF")
            self.mefs[code] = level_of_mef(code, label) or level_of_label(
                r.first("ENTNivFormation")) or _MEF_PREFIX.get(r.first("ENTMEFSTAT11")[:4])

    def _person(self, r: Record) -> tuple[str, str, str, str] | None:
        raw = r.id or r.first("ENTPersonJointure")
        first, last = r.first("givenName"), r.first("sn")
        if not raw:
            self.skip(f"fiche « {_display(first, last) or '?'} »", "identifiant manquant")
            return None
        if not (first or last):
            self.skip(f"fiche {raw}", "nom et prénom manquants")
            return None
        return self.key(raw), _display(first, last), first, last

    def _eleve(self, r: Record) -> None:
        person = self._person(r)
        if person is None:
            return
        key, name, first, last = person
        what = f"élève {key} ({name})"
        refs = [p for p in (_ref(v, 2) for v in r.all("ENTEleveClasses")) if p]
        school = self.key(refs[0][0]) if refs else self.key(
            r.first("ENTPersonStructRattach") or r.first("ENTEleveStructRattachId"))
        if school in self.broken_schools:
            return self.skip(what, "établissement ignoré (fiche établissement invalide)")
        if school not in self.schools:
            return self.skip(what, f"établissement inconnu « {school} »")
        if not refs:
            return self.skip(what, "aucune classe (ENTEleveClasses)")
        code = refs[0][1].strip()
        declared = self.schools[school].classes
        if declared and code not in declared:
            return self.skip(what, f"classe inconnue « {refs[0][0]}${code} »")
        mef = r.first("ENTEleveMEF")
        level = self.mefs.get(mef) or level_of_label(r.first("ENTEleveLibelleMEF"))
        groups = []
        for ref in (_ref(v, 2) for v in r.all("ENTEleveGroupes")):
            if ref and self.key(ref[0]) == school:
                groups.append(ref[1].strip())
        guardians = []
        for v in r.all("ENTElevePersRelEleve"):
            fields = v.split("$")
            if len(fields) == 6 and fields[0] and fields[3] == "1":
                gkey = self.key(fields[0])
                if gkey != key and gkey not in guardians:
                    guardians.append(gkey)
        self.pupils[key] = PupilRec(key=key, name=name, first=first, last=last, school=school,
                                    class_code=code, mef_level=level, groups=groups,
                                    guardians=guardians)
        votes = self._pupil_classes.setdefault((school, code), Counter())
        if level:
            votes[level] += 1

    def _persreleleve(self, r: Record) -> None:
        person = self._person(r)
        if person is None:
            return
        key, name, first, last = person
        self.relatives[key] = RelativeRec(
            key=key, name=name, first=first, last=last,
            home_phone=r.first("homePhone")[:40], work_phone=r.first("telephoneNumber")[:40],
            mobile_phone=(r.first("mobile") or r.first("ENTPersonMobileSMS"))[:40],
            email=r.first("mail")[:200],
        )

    def _perseducnat(self, r: Record) -> None:
        person = self._person(r)
        if person is None:
            return
        key, name, first, last = person
        what = f"personnel {key} ({name})"
        candidates = [r.first("ENTPersonStructRattach")] + [
            f.split("$")[0] for f in r.all("ENTPersonFonctions")]
        school_raw = next((c for c in candidates if c and self.key(c) in self.schools), None)
        if school_raw is None:
            if any(c and self.key(c) in self.broken_schools for c in candidates):
                return self.skip(what, "établissement ignoré (fiche établissement invalide)")
            return self.skip(what, "établissement inconnu "
                             f"« {self.key(r.first('ENTPersonStructRattach'))} »")
        school = self.key(school_raw)
        role = staff_role(r, school_raw)
        classes: list[tuple[str, str]] = []
        groups: list[tuple[str, str]] = []
        tutor_of: list[str] = []
        if role is Role.TEACHER:
            for attr, out, kind in (("ENTAuxEnsClassesMatieres", classes, "classe"),
                                    ("ENTAuxEnsGroupesMatieres", groups, "groupe")):
                for v in r.all(attr):
                    ref = _ref(v, 2)
                    if ref is None:
                        continue
                    subject = ref[2].strip() if len(ref) > 2 else ""
                    if self.key(ref[0]) != school:
                        self.skip(what, f"{kind} « {v} » d'un autre établissement ignorée")
                    elif (ref[1].strip(), subject) not in out:
                        out.append((ref[1].strip(), subject))
            for v in r.all("ENTAuxEnsClassesPrincipal"):
                ref = _ref(v, 2)
                if ref and self.key(ref[0]) == school and ref[1].strip() not in tutor_of:
                    tutor_of.append(ref[1].strip())
        self.staff[key] = StaffRec(key=key, name=name, first=first, last=last, school=school,
                                   role=role, classes=classes, groups=groups, tutor_of=tutor_of)

    # --- after reading ------------------------------------------------------------------

    def class_levels(self, school: str) -> dict[str, str | None]:
        """Every class of a school (declared, or named by its pupils) with its level: the
        level most of its pupils' MEF say, else what its label or code says."""
        rec = self.schools[school]
        codes = dict(rec.classes)
        for (s, code) in self._pupil_classes:
            if s == school:
                codes.setdefault(code, code)
        out: dict[str, str | None] = {}
        for code, label in codes.items():
            votes = self._pupil_classes.get((school, code))
            out[code] = votes.most_common(1)[0][0] if votes else level_of_class(code, label)
        return out

    def subject_name(self, code: str) -> str:
        return self.subjects.get(code, code)

"""The pure rules of the AAF import: levels, logins, roles."""

from __future__ import annotations

from realtime.directory.aaf.model import (
    base_login,
    level_of_class,
    level_of_mef,
    staff_role,
    unique_login,
)
from realtime.directory.aaf.reader import Record
from realtime.identity.model import Role


def test_levels_from_mef_and_class_names() -> None:
    assert level_of_mef("10010012110", "6EME") == "6e"
    assert level_of_mef("1031000F11A", "3EME BILANGUE ITALIEN-ANGLAIS") == "3e"
    assert level_of_mef("10210001110", "") == "4e"  # the BCN code alone
    assert level_of_mef("16410002110", "5EME SEGPA") == "5e"
    assert level_of_mef("24002227110", "1CAP2 CUISINE") is None
    assert [level_of_class(c, c) for c in ("6A", "601", "3EME1", "5e B", "ULIS", "2NDE1")] == [
        "6e", "6e", "3e", "5e", None, None]


def test_logins_are_ascii_and_deduplicated_cheaply() -> None:
    assert base_login("Zoé", "L'Hermite") == "zoe.l-hermite"
    assert base_login("Jean-Éric", "N'GUYEN  DA SILVA") == "jean-eric.n-guyen-da-silva"
    assert base_login("", "") == "compte"
    taken, tried = {"lea.martin"}, {}
    assert [unique_login("lea.martin", taken, tried) for _ in range(3)] == [
        "lea.martin2", "lea.martin3", "lea.martin4"]
    assert unique_login("LEA.MARTIN", taken) == "LEA.MARTIN5"  # case-insensitive
    assert unique_login("x", set(), None) == "x"


def staff(functions: list[str], presence: str = "N", categorie: str = "N") -> Role:
    r = Record("PersEducNat", "1", {"ENTPersonFonctions": functions,
                                    "PersEducNatPresenceDevantEleves": [presence],
                                    "ENTPersonCategorieEnseignant": [categorie]})
    return staff_role(r, "43")


def test_roles_from_functions_and_presence() -> None:
    assert staff(["43$ENS$ENSEIGNEMENT$L1300$MATHEMATIQUES"]) is Role.TEACHER
    assert staff(["43$DOC$DOCUMENTATION$L0080$DOCUMENTATION"]) is Role.TEACHER
    # The 2024 public sample: a head's deputy flagged « catégorie enseignant ».
    assert staff(["43$DIR$PRESTATIONS$D0011$ENTRETIEN"], categorie="O") is Role.STAFF
    assert staff(["43$EDU$EDUCATION$E0030$CONSEILLER PRINCIPAL D'EDUCATION"]) is Role.CPE
    assert staff(["43$EDU$EDUCATION$E0040$ASSISTANT D'EDUCATION"]) is Role.STAFF
    assert staff(["43$ADF$ADMINISTRATION$A0010$SECRETARIAT"]) is Role.STAFF
    assert staff([], presence="O") is Role.TEACHER
    assert staff([]) is Role.STAFF
    # Another school's function does not decide here when this school has one.
    assert staff(["50$DIR$DIRECTION$D1$CHEF", "43$ENS$ENSEIGNEMENT$L1$LETTRES"]) is Role.TEACHER

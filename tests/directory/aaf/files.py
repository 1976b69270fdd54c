"""The project's own AAF fixtures: two full snapshots of two collèges, consistent across
files (every reference points to a record that exists, except the broken ones on purpose).

Snapshot 1: two schools (Jean Moulin declares its classes, Les Tilleuls does not), pupils in
two chunks (`_0000`, `_0001`), siblings sharing guardians, a non-legal relative, a missing
relative, a pupil pointing to an unknown class, teachers / CPE / direction / secretariat, a
form tutor, a group, an unknown class in a teacher's assignments. The files are written the
way real exports are: ISO-8859-15 declared over UTF-8 bytes, HTML entities (`&eacute;`),
attributes nobody reads, a DOCTYPE naming a DTD that is not there.

Snapshot 2 (the next night): Léa moved from 6A to 6B, a new teacher, Chloé's father is no
longer her legal representative (and in no file), Nathan left Les Tilleuls (and his mother with
him), a third school with an invalid UAI and its pupil, a pupil record without identifier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

JEAN_MOULIN, TILLEULS, BROKEN = "0040001E", "0040002F", "0040003X"

HEAD = ('<?xml version="1.0" encoding="ISO-8859-15"?>\n'
        '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n<ficAlimMENESR>\n'
        '<!-- versionAF="AAF-VE2407" -->\n')


def _attr(name: str, values: list[str] | str) -> str:
    vals = [values] if isinstance(values, str) else values
    inner = "".join(f"<value>{v}</value>" for v in vals) if vals else "<value/>"
    return f'<attr name="{name}">{inner}</attr>'


def _request(category_attr: str, category: str, rid: str, attrs: dict[str, list[str] | str]
             ) -> str:
    body = "\n".join(_attr(k, v) for k, v in attrs.items())
    ident = f"<identifier><id>{rid}</id></identifier>" if rid else "<identifier><id/></identifier>"
    return (f'<addRequest>\n<operationalAttributes>{_attr(category_attr, category)}'
            f"</operationalAttributes>\n{ident}\n<attributes>\n{body}\n</attributes>\n"
            "</addRequest>\n")


def write(folder: Path, kind: str, chunk: int, requests: list[str]) -> Path:
    path = folder / f"ENT_Complet_20261204_{kind}_{chunk:04d}.xml"
    path.write_bytes((HEAD + "".join(requests) + "</ficAlimMENESR>\n").encode("utf-8"))
    return path


def school(rid: str, uai: str, name: str, town: str, classes: list[str], groups: list[str]
           ) -> str:
    return _request("categorieStructure", "EtabEducNat", rid, {
        "ENTStructureJointure": rid, "ENTStructureUAI": uai, "ENTEtablissementUAI": uai,
        "ENTStructureNomCourant": name, "ENTStructureTypeStruct": "COLLEGE", "l": town,
        "ENTStructureClasses": classes, "ENTStructureGroupes": groups,
        "ENTServAcAcademie": "AIX-MARSEILLE", "ENTStructureAttributInconnu": "ignoré",
    })


def subject(code: str, label: str) -> str:
    return _request("categorieMatiere", "Matiere", code, {
        "ENTMatJointure": code, "ENTLibelleMatiere": label})


def mef(code: str, label: str) -> str:
    return _request("categorieMef", "Mef", code, {
        "ENTMefJointure": code, "ENTLibelleMef": label, "ENTMEFSTAT11": code[:4]})


def pupil(rid: str, given: str, sn: str, school_id: str, klass: str, mef_code: str,
          relatives: list[str], groups: list[str] | None = None) -> str:
    return _request("categoriePersonne", "Eleve", rid, {
        "ENTPersonJointure": rid, "sn": sn, "givenName": given,
        "ENTPersonDateNaissance": "01/02/2014", "ENTEleveINE": f"{rid}AB",
        "ENTPersonStructRattach": school_id, "ENTElevePersRelEleve": relatives,
        "ENTEleveMEF": mef_code, "ENTEleveLibelleMEF": "",
        "ENTEleveClasses": [f"{school_id}${klass}"] if klass else [],
        "ENTEleveGroupes": [f"{school_id}${g}" for g in groups or []],
        "ENTEleveRegime": "DP DAN LA SEMAINE", "ENTFuturAttribut": "x",
    })


def relative(rid: str, given: str, sn: str, *, home: str = "", work: str = "", mobile: str = "",
             mail: str = "") -> str:
    return _request("categoriePersonne", "PersRelEleve", rid, {
        "ENTPersonJointure": rid, "sn": sn, "givenName": given, "personalTitle": "Mme",
        "homePhone": home, "telephoneNumber": work, "mobile": mobile, "mail": mail,
        "ENTPersonAdresse": "1 rue des &Eacute;coles$$$", "ENTPersonVille": "DIGNE",
    })


def staff(rid: str, given: str, sn: str, school_id: str, functions: list[str], *,
          presence: str = "N", categorie: str = "N", classes: list[str] | None = None,
          groups: list[str] | None = None, tutor: list[str] | None = None) -> str:
    return _request("categoriePersonne", "PersEducNat", rid, {
        "ENTPersonJointure": rid, "sn": sn, "givenName": given, "personalTitle": "Mme",
        "mail": f"{rid}@ac-test.invalid", "ENTPersonStructRattach": school_id,
        "ENTAuxEnsClassesMatieres": [f"{school_id}${c}" for c in classes or []],
        "ENTAuxEnsGroupesMatieres": [f"{school_id}${g}" for g in groups or []],
        "ENTAuxEnsClassesPrincipal": [f"{school_id}${c}" for c in tutor or []],
        "ENTPersonFonctions": [f"{school_id}${f}" for f in functions],
        "ENTPersonCategorieEnseignant": categorie, "PersEducNatPresenceDevantEleves": presence,
    })


SIXTH, THIRD = "10010012110", "10310019110"
LEGAL, NOT_LEGAL = "$20$1$1$1$1", "$39$0$0$1$0"
TEACH = "ENS$ENSEIGNEMENT$L1300$MATHEMATIQUES"


def snapshot(folder: Path, *, second: bool = False) -> Path:
    """Write snapshot 1 (or 2) into `folder`; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    schools = [
        school("4001", JEAN_MOULIN, "COLL&Egrave;GE JEAN MOULIN", "DIGNE-LES-BAINS",
               ["6A$6EME A", "6B$6EME B", "3A$3EME A"], ["6LAT$LATIN 6E"]),
        school("4002", TILLEULS, "COLLEGE LES TILLEULS", "MANOSQUE", [], []),
    ]
    if second:
        schools.append(school("4003", BROKEN, "COLLEGE SANS UAI VALIDE", "SISTERON", [], []))
    write(folder, "EtabEducNat", 0, schools)
    write(folder, "MatiereEducNat", 0, [
        subject("061300", "MATHEMATIQUES"), subject("020700", "FRANCAIS"),
        subject("022600", "LATIN"), subject("030201", "ANGLAIS LV1")])
    write(folder, "MefEducNat", 0, [mef(SIXTH, "6EME"), mef(THIRD, "3EME")])

    lea_class = "6B" if second else "6A"
    chloe_relatives = ["6004" + LEGAL] + ([] if second else ["6005" + LEGAL])
    write(folder, "Eleve", 0, [
        pupil("5001", "L&eacute;a", "MARTIN", "4001", lea_class, SIXTH,
              ["6001" + LEGAL, "6002" + LEGAL, "6003" + NOT_LEGAL], ["6LAT"]),
        pupil("5002", "Hugo", "MARTIN", "4001", "3A", THIRD, ["6001" + LEGAL, "6002" + LEGAL]),
        pupil("5003", "Chlo\u00e9", "DUBOIS", "4001", "6B", SIXTH, chloe_relatives),
    ])
    chunk1 = [
        pupil("5005", "Inès", "ROUX", "4001", "6Z", SIXTH, ["6004" + LEGAL]),  # unknown class
        pupil("5006", "Léa", "MARTIN", "4002", "601", SIXTH, ["6007" + LEGAL]),  # homonym
    ]
    if not second:
        chunk1.insert(0, pupil("5004", "Nathan", "PETIT", "4002", "601", SIXTH,
                               ["6006" + LEGAL]))
    else:
        chunk1.append(pupil("5008", "Jules", "BLANC", "4003", "6A", SIXTH, []))
        chunk1.append(pupil("", "Sans", "IDENTIFIANT", "4001", "6A", SIXTH, []))
    write(folder, "Eleve", 1, chunk1)

    relatives = [
        relative("6001", "Sophie", "MARTIN", mobile="06 11 22 33 44", mail="sophie@exemple.fr",
                 home="04 92 00 00 01"),
        relative("6002", "Marc", "MARTIN", work="04 92 00 00 02"),
        relative("6003", "Jeanne", "MARTIN", mobile="06 99 99 99 99"),  # not legal
        relative("6004", "Anne", "DUBOIS", mobile="06 44 44 44 44", mail="anne.dubois@exemple.fr"),
    ]
    if not second:
        relatives.append(relative("6005", "Paul", "DUBOIS", mobile="06 55 55 55 55"))
        relatives.append(relative("6006", "Julie", "PETIT", mobile="06 66 66 66 66"))
    # 6007 (the homonym's guardian) is in no file: the link is reported, the pupil kept.
    write(folder, "PersRelEleve", 0, relatives)

    people = [
        staff("7001", "Claire", "BERNARD", "4001", [TEACH], presence="O", categorie="O",
              classes=["6A$061300", "6B$061300"], groups=["6LAT$022600"], tutor=["6A"]),
        staff("7002", "Karim", "HADDAD", "4001",
              ["EDU$EDUCATION$E0030$CONSEILLER PRINCIPAL D'EDUCATION"]),
        staff("7003", "Val&eacute;rie", "LEROY", "4001",
              ["DIR$DIRECTION$D0010$CHEF D'ETABLISSEMENT"], categorie="O"),
        staff("7004", "Denis", "MOREAU", "4001", ["ADF$ADMINISTRATION$A0010$SECRETARIAT"]),
        staff("7005", "Emma", "GIRARD", "4002", ["ENS$ENSEIGNEMENT$L0202$LETTRES"],
              presence="O", classes=["601$020700"]),
        staff("7006", "Omar", "FAURE", "4001", [], presence="O",
              classes=["3A$030201", "5Z$030201"]),  # 5Z: unknown class
    ]
    if second:
        people.append(staff("7007", "Lucie", "CARON", "4001", [TEACH], presence="O",
                            classes=["6B$061300"]))
    write(folder, "PersEducNat", 0, people)
    return folder


async def imported(settings: Any, folder: Path, logins: tuple[str, ...]) -> dict[str, str]:
    """Import snapshot 1 into the settings' database and give these accounts a personal code
    (as the administration would: the import leaves none usable). Returns login → code."""
    import datetime as dt

    from realtime.db import open_database
    from realtime.directory.aaf.apply import import_aaf
    from realtime.identity.accounts import reset_code

    db = await open_database(settings)
    try:
        await import_aaf(db, snapshot(folder), now=dt.datetime.now(dt.UTC))
        return {login: await reset_code(db, settings, login, None) for login in logins}
    finally:
        await db.close()

"""The AAF import on a generated ~50 MB pupils file: time and peak memory.

    .venv/bin/python -m bench.aaf_import [--size-mb 50] [--skip-import]

Writes a full snapshot (one collège per 600 pupils, classes of 25, two legal
representatives per pupil, teachers) whose `_Eleve_0000.xml` weighs `--size-mb`, then runs,
each in its own process so that each peak resident memory (ru_maxrss) is its own:

- `tree` (baseline): `lxml.etree.parse` of the pupils file, the whole document in memory,
  as a naive reader would;
- `stream`: the project's streaming reader over the same file (`records`, one record at a
  time, each element freed);
- `import`: the whole `import-aaf` (read every file, then apply into a fresh SQLite file);
- `again`: the same snapshot imported a second time (the nightly run when nothing changed).

Prints a table, with each row's ratio to the baseline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from realtime.directory.model import uai_check_letter

HEAD = '<?xml version="1.0" encoding="ISO-8859-15"?>\n<ficAlimMENESR>\n'
GIVEN = ("Léa", "Hugo", "Chloé", "Nathan", "Inès", "Jules", "Zoé", "Adam", "Manon", "Noé")
LAST = ("MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND")


def _attrs(pairs: list[tuple[str, list[str]]]) -> str:
    return "".join(f'<attr name="{k}">' + ("".join(f"<value>{v}</value>" for v in vals)
                                          or "<value/>") + "</attr>\n" for k, vals in pairs)


def _req(cat: str, rid: str, pairs: list[tuple[str, list[str]]]) -> str:
    return ("<addRequest>\n<operationalAttributes><attr name=\"categoriePersonne\"><value>"
            f"{cat}</value></attr></operationalAttributes>\n<identifier><id>{rid}</id>"
            f"</identifier>\n<attributes>\n{_attrs(pairs)}</attributes>\n</addRequest>\n")


def pupil(i: int, school: int, klass: str) -> str:
    return _req("Eleve", f"P{i}", [
        ("ENTPersonJointure", [f"P{i}"]), ("ENTEleveINE", [f"{i:09d}AB"]),
        ("ENTPersonDateNaissance", ["01/02/2014"]), ("ENTPersonNomPatro", [LAST[i % 8]]),
        ("sn", [LAST[i % 8]]), ("givenName", [GIVEN[i % 10]]),
        ("ENTPersonAutresPrenoms", [GIVEN[i % 10], "Marie"]), ("personalTitle", ["M."]),
        ("ENTElevePersRelEleve", [f"R{2 * i}$20$1$1$1$1", f"R{2 * i + 1}$10$1$1$1$1"]),
        ("ENTEleveBoursier", ["N"]), ("ENTEleveRegime", ["DP DAN LA SEMAINE"]),
        ("ENTEleveTransport", ["N"]), ("ENTPersonAdresse", ["12 rue des &Eacute;coles$$$"]),
        ("ENTPersonCodePostal", ["04000"]), ("ENTPersonVille", ["DIGNE-LES-BAINS"]),
        ("ENTPersonPays", ["FRANCE"]), ("ENTEleveStatutEleve", ["SCOLAIRE"]),
        ("ENTEleveMEF", ["10010012110"]), ("ENTEleveLibelleMEF", ["6EME"]),
        ("ENTEleveNivFormation", ["6EME"]), ("ENTEleveFiliere", ["COLLEGE"]),
        ("ENTEleveEnseignements", ["ANGLAIS LV1", "EDUCATION MUSICALE"]),
        ("ENTEleveCodeEnseignements", ["030201", "081300"]),
        ("ENTPersonStructRattach", [str(school)]),
        ("ENTEleveDateEntreeClasses", [f"{school}$01/09/2026${klass}"]),
        ("ENTEleveClasses", [f"{school}${klass}"]), ("ENTEleveGroupes", []),
    ])


def relative(j: int) -> str:
    return _req("PersRelEleve", f"R{j}", [
        ("ENTPersonJointure", [f"R{j}"]), ("sn", [LAST[j % 8]]), ("givenName", ["Camille"]),
        ("personalTitle", ["Mme"]), ("homePhone", ["04 92 00 00 00"]),
        ("mobile", ["06 00 00 00 00"]), ("mail", [f"r{j}@exemple.fr"]),
    ])


def write_snapshot(folder: Path, size_mb: float) -> int:
    """The snapshot in `folder`; returns the number of pupils."""
    folder.mkdir(parents=True, exist_ok=True)
    per_school, classes_per_school = 600, 24
    pupils_path = folder / "ENT_Complet_20261204_Eleve_0000.xml"
    rel_path = folder / "ENT_Complet_20261204_PersRelEleve_0000.xml"
    n = 0
    with pupils_path.open("w", encoding="utf-8") as f, rel_path.open("w", encoding="utf-8") as r:
        f.write(HEAD)
        r.write(HEAD)
        while f.tell() < size_mb * 1e6:
            school = 4000 + n // per_school
            f.write(pupil(n, school, f"6{(n % per_school) % classes_per_school:02d}"))
            r.write(relative(2 * n) + relative(2 * n + 1))
            n += 1
        f.write("</ficAlimMENESR>\n")
        r.write("</ficAlimMENESR>\n")
    schools = n // per_school + 1
    etab = []
    for s in range(schools):
        digits = f"004{s:04d}"
        uai = digits + uai_check_letter(digits)
        etab.append(_req("EtabEducNat", str(4000 + s), [
            ("ENTStructureJointure", [str(4000 + s)]), ("ENTStructureUAI", [uai]),
            ("ENTStructureNomCourant", [f"COLLEGE {s}"]), ("l", ["DIGNE"])]))
    (folder / "ENT_Complet_20261204_EtabEducNat_0000.xml").write_text(
        HEAD + "".join(etab) + "</ficAlimMENESR>\n", encoding="utf-8")
    staff = [_req("PersEducNat", f"T{t}", [
        ("ENTPersonJointure", [f"T{t}"]), ("sn", [LAST[t % 8]]), ("givenName", ["Alex"]),
        ("ENTPersonStructRattach", [str(4000 + t // 40)]),
        ("ENTPersonFonctions", [f"{4000 + t // 40}$ENS$ENSEIGNEMENT$L1300$MATHEMATIQUES"]),
        ("ENTAuxEnsClassesMatieres", [f"{4000 + t // 40}$6{t % 24:02d}$061300"]),
        ("PersEducNatPresenceDevantEleves", ["O"])]) for t in range(schools * 40)]
    (folder / "ENT_Complet_20261204_PersEducNat_0000.xml").write_text(
        HEAD + "".join(staff) + "</ficAlimMENESR>\n", encoding="utf-8")
    return n


def run_mode(mode: str, folder: Path, db: Path) -> dict[str, float]:
    """Run in this (child) process; the peak RSS is this process's own."""
    start = time.perf_counter()
    pupils = folder / "ENT_Complet_20261204_Eleve_0000.xml"
    if mode == "tree":
        from lxml import etree

        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True,
                                  recover=True)  # &Eacute; is not XML
        count = len(etree.parse(str(pupils), parser).getroot())
    elif mode == "stream":
        from realtime.directory.aaf.reader import records

        count = sum(1 for _ in records(pupils))
    else:
        import asyncio

        from realtime.db import Database
        from realtime.directory.aaf.apply import import_aaf

        async def go() -> int:
            database = await Database.open(db)
            try:
                summary = await import_aaf(database, folder, now=dt.datetime.now(dt.UTC))
                return sum(sum(c.values()) for c in summary.counts.values())
            finally:
                await database.close()

        count = asyncio.run(go())
    return {"seconds": time.perf_counter() - start, "count": count,
            "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=float, default=50)
    ap.add_argument("--skip-import", action="store_true")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, folder, db = args.child
        print(json.dumps(run_mode(mode, Path(folder), Path(db))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder, db = Path(tmp) / "snap", Path(tmp) / "ent.sqlite3"
        n = write_snapshot(folder, args.size_mb)
        size = (folder / "ENT_Complet_20261204_Eleve_0000.xml").stat().st_size / 1e6
        print(f"Eleve_0000.xml: {size:.1f} MB, {n} pupils, {2 * n} guardians", flush=True)
        modes = ["tree", "stream"] + ([] if args.skip_import else ["import", "again"])
        rows = {}
        for mode in modes:
            out = subprocess.run([sys.executable, "-m", "bench.aaf_import", "--child", mode,
                                  str(folder), str(db)], capture_output=True, text=True,
                                 check=True)
            rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        base = rows["tree"]
        print(f"| {'run':<28} | {'seconds':>8} | {'peak RSS MiB':>12} | {'RSS / tree':>10} |")
        print(f"| {'-' * 28} | {'-' * 8} | {'-' * 12} | {'-' * 10} |")
        names = {"tree": "lxml parse, whole tree", "stream": "streaming reader (pupils)",
                 "import": "import-aaf, first run", "again": "import-aaf, same snapshot"}
        for mode, r in rows.items():
            print(f"| {names[mode]:<28} | {r['seconds']:>8.1f} | {r['rss_mib']:>12.0f} | "
                  f"{r['rss_mib'] / base['rss_mib']:>9.2f}× |")


if __name__ == "__main__":
    main()

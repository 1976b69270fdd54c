"""`python -m realtime directory import-aaf` as an operator runs it (a real process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests import engines
from tests.directory.aaf.files import snapshot


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    db = tmp_path / "ent.sqlite3"  # on PostgreSQL, a schema of its own stands for it
    return subprocess.run(
        [sys.executable, "-m", "realtime", "--db", str(db), "directory", "import-aaf", *args],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, **engines.db_env(db)})


def test_dry_run_then_import_then_nothing_to_do(tmp_path: Path) -> None:
    folder = snapshot(tmp_path / "snap1")
    dry = run(tmp_path, str(folder), "--dry-run", "--academy-prefix", "AIX")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("Simulation (--dry-run) : rien n'a été écrit.")
    assert "Lecture 5/7 : ENT_Complet_20261204_Eleve_0001.xml" in dry.stderr  # progress
    assert "élève AIX-5005 (Inès ROUX) : classe inconnue « 4001$6Z »" in dry.stdout

    real = run(tmp_path, str(folder), "--academy-prefix", "AIX")
    assert real.returncode == 0, real.stderr
    assert real.stdout.replace("Import terminé.", "Simulation (--dry-run) : rien n'a été écrit.",
                               1) == dry.stdout
    pupils = next(line for line in real.stdout.splitlines() if line.startswith("Élèves "))
    assert pupils.split("|")[1].strip() == "5"  # créés

    again = run(tmp_path, str(folder), "--academy-prefix", "AIX")
    line = next(li for li in again.stdout.splitlines() if li.startswith("Élèves "))
    assert [c.strip() for c in line.split("|")[1:]] == ["0", "0", "5", "0", "0", "0"]


def test_a_folder_without_a_snapshot_is_refused_in_french(tmp_path: Path) -> None:
    (tmp_path / "vide").mkdir()
    out = run(tmp_path, str(tmp_path / "vide"))
    assert out.returncode == 2
    assert "Erreur : aucun fichier …_Complet_…_EtabEducNat_0000.xml" in out.stderr
    assert "rien n'est importé" in out.stderr

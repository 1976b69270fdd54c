"""`python -m realtime users …` and `migrate`, run as an operator would, on the test run's
engine (with `REALTIME_TEST_DB=postgres` the commands find DATABASE_URL, as on a node)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from realtime.cli import cli
from realtime.db import migration_files
from realtime.identity import store
from realtime.identity.codes import CodeHasher
from tests import engines
from tests.conftest import TEST_KDF
from tests.engines import db_env, open_test_db


@pytest.fixture
def run(demo_db_path: Path, monkeypatch: Any) -> Any:
    for name, value in zip(("REALTIME_KDF_TIME_COST", "REALTIME_KDF_MEMORY_KIB",
                            "REALTIME_KDF_PARALLELISM"), TEST_KDF, strict=True):
        monkeypatch.setenv(name, str(value))
    for name, value in db_env(demo_db_path).items():
        monkeypatch.setenv(name, value)

    def invoke(*args: str, input: str | None = None) -> Any:
        return CliRunner().invoke(cli, ["--db", str(demo_db_path), *args], input=input)

    return invoke


def _verify(db_path: Path, login: str, code: str) -> bool:
    async def go() -> bool:
        db = await open_test_db(db_path)
        try:
            found = await store.user_by_login(db, login)
            return bool(found) and CodeHasher(*TEST_KDF).verify(found[1], code)
        finally:
            await db.close()

    return asyncio.run(go())


def test_users_add_prints_a_working_code(run: Any, demo_db_path: Path) -> None:
    result = run("users", "add", "helene.dupre", "--role", "teacher", "--name", "Hélène Dupré",
                 "--school", "0020032Z")
    assert result.exit_code == 0, result.output
    login, code = result.output.strip().split("\t")
    assert login == "helene.dupre" and len(code) >= 8
    assert _verify(demo_db_path, "helene.dupre", code)


@pytest.mark.parametrize("args", [
    ["users", "add", "x.y", "--role", "teacher", "--name", "X", "--school", "9999999Z"],
    ["users", "add", "x.y", "--role", "student", "--name", "X", "--school", "0020032Z",
     "--class", "7e Z"],
    ["users", "add", "x.y", "--role", "parent", "--name", "X"],
    ["users", "add", "virginie.renault", "--role", "teacher", "--name", "X", "--school",
     "0020032Z"],
    ["users", "add", "x.y", "--role", "teacher", "--name", "X", "--school", "0020032Z",
     "--code", "court"],
])
def test_users_add_refuses_bad_input(run: Any, args: list[str], demo_db_path: Path) -> None:
    before = _count(demo_db_path)
    result = run(*args)
    assert result.exit_code == 2
    assert "Erreur" in result.output
    assert _count(demo_db_path) == before


def _count(db_path: Path) -> int:
    with engines.connect(db_path) as conn:
        return conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]


def test_users_import_csv_all_or_nothing(run: Any, tmp_path: Path, demo_db_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(
        "login;role;name;uai;code;class;children\n"
        "lea.noel;student;Léa Noël;0020032Z;;6e A;\n"
        "marc.noel;parent;Marc Noël;;code-parent-1;;lea.noel\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "login,role,name,uai,code,class,children\n"
        "ok.eleve,student,Ok Élève,0020032Z,,6e A,\n"
        "ko.eleve,student,Ko Élève,0020032Z,,9e Z,\n",
        encoding="utf-8",
    )
    before = _count(demo_db_path)
    result = run("users", "import", str(bad))
    assert result.exit_code == 2
    assert "ligne 3" in result.output and "classe inconnue" in result.output
    assert _count(demo_db_path) == before  # the good line was not imported either

    result = run("users", "import", str(good))
    assert result.exit_code == 0, result.output
    assert "login,code" in result.output and "marc.noel,code-parent-1" in result.output
    assert _count(demo_db_path) == before + 2
    assert _verify(demo_db_path, "marc.noel", "code-parent-1")


def test_reset_code(run: Any, demo_db_path: Path, demo_accounts: list[dict[str, Any]]) -> None:
    acct = demo_accounts[0]
    result = run("users", "reset-code", acct["login"], "--code", "nouveau-code-42")
    assert result.exit_code == 0, result.output
    assert _verify(demo_db_path, acct["login"], "nouveau-code-42")
    assert not _verify(demo_db_path, acct["login"], acct["code"])
    assert run("users", "reset-code", "personne").exit_code == 2


def test_migrate_command(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.run(
        [sys.executable, "-m", "realtime", "--db", str(path), "migrate"],
        capture_output=True, text=True, timeout=60, check=False, env={**env, **db_env(path)},
    )
    assert proc.returncode == 0, proc.stderr
    latest = migration_files(engines.ENGINE)[-1][0]
    assert f"schéma en version {latest} (" in proc.stdout


def _external_id(db_path: Path, login: str) -> str | None:
    async def go() -> str | None:
        db = await open_test_db(db_path)
        try:
            found = await store.user_by_login(db, login)
            return found[0].external_id if found else None
        finally:
            await db.close()

    return asyncio.run(go())


def test_users_add_and_import_set_the_external_id(run: Any, tmp_path: Path,
                                                  demo_db_path: Path) -> None:
    result = run("users", "add", "ines.morel", "--role", "teacher", "--name", "Inès Morel",
                 "--school", "0020032Z", "--external-id", "AISNE-ENS-0001")
    assert result.exit_code == 0, result.output
    assert _external_id(demo_db_path, "ines.morel") == "AISNE-ENS-0001"

    before = _count(demo_db_path)
    clash = run("users", "add", "autre.prof", "--role", "teacher", "--name", "Autre",
                "--school", "0020032Z", "--external-id", "AISNE-ENS-0001")
    assert clash.exit_code == 2 and "AISNE-ENS-0001" in clash.output
    assert _count(demo_db_path) == before

    csv_file = tmp_path / "ext.csv"
    csv_file.write_text(
        "login;role;name;uai;code;class;children;external_id\n"
        "tom.roux;student;Tom Roux;0020032Z;;6e A;;AISNE-ELV-0042\n"
        "tom.roux2;student;Tom Roux bis;0020032Z;;6e A;;AISNE-ELV-0042\n",
        encoding="utf-8",
    )
    dup = run("users", "import", str(csv_file))
    assert dup.exit_code == 2 and "ligne 3" in dup.output
    assert _count(demo_db_path) == before
    csv_file.write_text(
        "login;role;name;uai;code;class;children;external_id\n"
        "tom.roux;student;Tom Roux;0020032Z;;6e A;;AISNE-ELV-0042\n",
        encoding="utf-8",
    )
    ok = run("users", "import", str(csv_file))
    assert ok.exit_code == 0, ok.output
    assert _external_id(demo_db_path, "tom.roux") == "AISNE-ELV-0042"
    assert _external_id(demo_db_path, "ines.morel") == "AISNE-ENS-0001"


def test_calendar_import_and_show(run: Any, tmp_path: Path) -> None:
    """The operator imports a collège's closures (CSV, then iCalendar) and reads the year's
    days without classes; a bad file is refused by line, with nothing stored."""
    csv_file = tmp_path / "fermetures.csv"
    csv_file.write_text("debut;fin;libelle\n2027-05-07;;Pont de l'Ascension\n", "utf-8")
    result = run("calendar", "import", "0020032z", str(csv_file))
    assert result.exit_code == 0, result.output
    assert "1 fermeture(s) lue(s), 1 ajoutée(s)." in result.output
    again = run("calendar", "import", "0020032Z", str(csv_file))
    assert "1 fermeture(s) lue(s), 0 ajoutée(s)." in again.output  # no duplicate
    bad = tmp_path / "bad.csv"
    bad.write_text("2027-05-07;;Ok\n31/02/2027;;Faux\n", "utf-8")
    refused = run("calendar", "import", "0020032Z", str(bad))
    assert refused.exit_code == 2 and "Ligne 2 : date invalide" in refused.output
    unknown = run("calendar", "import", "9999999Z", str(csv_file))
    assert unknown.exit_code == 2 and "aucun établissement" in unknown.output
    shown = run("calendar", "show", "0020032Z")
    assert shown.exit_code == 0 and "Collège Charlemagne (0020032Z) : zone B" in shown.output
    assert run("calendar", "zone", "0020032Z", "C").exit_code == 0
    assert "(0020032Z) : zone C" in run("calendar", "show", "0020032Z").output
    assert run("calendar", "zone", "0020032Z", "auto").exit_code == 0
    assert "(0020032Z) : zone B" in run("calendar", "show", "0020032Z").output

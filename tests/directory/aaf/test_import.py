"""The AAF import on the project's fixtures (tests/directory/aaf/files.py), real SQLite."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Any

import pytest

from realtime.db import Database
from realtime.directory import store as directory
from realtime.directory.aaf.apply import import_aaf
from realtime.identity import store as identity
from realtime.identity.codes import NO_CODE, CodeHasher
from realtime.identity.model import Session
from realtime.identity.service import IdentityService
from realtime.identity.tokens import TokenSigner
from realtime.policy import Action, BoardRef, ConversationRef, may
from realtime.ratelimit import MemoryRateLimiter
from tests.conftest import TEST_KDF
from tests.directory.aaf.files import JEAN_MOULIN, TILLEULS, snapshot
from tests.engines import open_test_db

NOW = dt.datetime(2026, 12, 4, 22, 0, tzinfo=dt.UTC)
TABLES = ("schools", "classes", "users", "enrollments", "guardianships", "teachings",
          "guardian_contacts", "class_groups", "group_members", "group_teachings", "class_tutors",
          "sessions")


@pytest.fixture
async def db(tmp_path: Path) -> Any:
    database = await open_test_db(tmp_path / "ent.sqlite3")
    yield database
    await database.close()


@pytest.fixture
def snap1(tmp_path: Path) -> Path:
    return snapshot(tmp_path / "snap1")


@pytest.fixture
def snap2(tmp_path: Path) -> Path:
    return snapshot(tmp_path / "snap2", second=True)


async def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    return {t: [tuple(r) for r in await db.fetchall(f"SELECT * FROM {t} ORDER BY 1, 2")]
            for t in TABLES}


async def person(db: Database, external_id: str) -> Any:
    return await db.fetchone("SELECT * FROM users WHERE external_id = ?", (external_id,))


async def class_of(db: Database, external_id: str) -> str:
    row = await db.fetchone(
        "SELECT c.name FROM users u JOIN enrollments e ON e.student_id = u.id JOIN classes c"
        " ON c.id = e.class_id WHERE u.external_id = ?", (external_id,))
    return row[0] if row else ""


def identity_service(db: Database) -> IdentityService:
    return IdentityService(db, CodeHasher(*TEST_KDF), TokenSigner("s" * 40, 3600),
                           MemoryRateLimiter(100, 60), MemoryRateLimiter(100, 60))


async def test_first_snapshot_creates_the_directory(db: Database, snap1: Path) -> None:
    lines: list[str] = []
    summary = await import_aaf(db, snap1, now=NOW, progress=lines.append)
    c = summary.counts
    assert c["schools"]["created"] == 2
    assert c["classes"]["created"] == 4  # 6A 6B 3A declared, 601 named by its pupils
    assert c["pupils"]["created"] == 5  # 5005 points to an unknown class
    assert c["guardians"]["created"] == 5  # 6003 is not a legal representative
    assert c["staff"]["created"] == 6
    assert any("Eleve_0001" in line for line in lines)  # progress, chunk by chunk

    jm = await directory.school_by_uai(db, JEAN_MOULIN)
    assert jm is not None and jm.name == "COLLÈGE JEAN MOULIN" and jm.town == "DIGNE-LES-BAINS"
    levels = {c.name: c.level for c in await directory.classes_of_schools(db, None)}
    assert levels == {"6A": "6e", "6B": "6e", "3A": "3e", "601": "6e"}

    lea = await person(db, "5001")
    assert (lea["login"], lea["role"], lea["name"], lea["source"]) == (
        "lea.martin", "student", "Léa MARTIN", "aaf")
    assert (await person(db, "5006"))["login"] == "lea.martin2"  # the homonym
    assert await class_of(db, "5001") == "6A"
    assert await directory.groups_of_student(db, lea["id"]) == ["LATIN 6E"]
    guardians = {g.external_id for g in await directory.guardians_of(db, lea["id"])}
    assert guardians == {"6001", "6002"}
    assert await person(db, "6003") is None
    hugo = await person(db, "5002")
    assert {g.external_id for g in await directory.guardians_of(db, hugo["id"])} == guardians
    sophie = await person(db, "6001")
    assert sophie["role"] == "parent" and sophie["school_id"] is None
    contacts = await directory.guardian_contacts(db, [sophie["id"]])
    assert contacts[sophie["id"]].mobile_phone == "06 11 22 33 44"
    assert contacts[sophie["id"]].email == "sophie@exemple.fr"

    roles = {k: (await person(db, k))["role"] for k in ("7001", "7002", "7003", "7004", "7005")}
    assert roles == {"7001": "teacher", "7002": "cpe", "7003": "staff", "7004": "staff",
                     "7005": "teacher"}
    assert (await person(db, "7003"))["name"] == "Valérie LEROY"
    claire = await person(db, "7001")
    teach = await directory.teachings_of(db, claire["id"])
    names = {cid: (await directory.school_class(db, cid)).name for cid, _ in teach}
    assert sorted((names[cid], subj) for cid, subj in teach) == [
        ("6A", "MATHEMATIQUES"), ("6B", "MATHEMATIQUES")]
    six_a = await directory.class_by_name(db, jm.id, "6A")
    assert await directory.tutors_of_class(db, six_a.id) == [claire["id"]]
    omar = await person(db, "7006")
    assert [s for _, s in await directory.teachings_of(db, omar["id"])] == ["ANGLAIS LV1"]

    reasons = {(s[0], s[1]) for s in summary.as_dict()["skipped"]}
    assert ("élève 5005 (Inès ROUX)", "classe inconnue « 4001$6Z »") in reasons
    assert ("responsable 6007 de l'élève 5006", "absent des fichiers PersRelEleve") in reasons
    assert ("enseignement de 7006 (Omar FAURE)", "classe inconnue « 5Z »") in reasons

    # No usable personal code: the ENT's SSO is the way in, until the office issues one.
    row = await db.fetchone("SELECT code_hash FROM users WHERE id = ?", (lea["id"],))
    assert row[0] == NO_CODE
    with pytest.raises(Exception, match="incorrect"):
        await identity_service(db).login("lea.martin", NO_CODE, "127.0.0.1")


async def test_the_same_snapshot_twice_changes_nothing(db: Database, snap1: Path) -> None:
    await import_aaf(db, snap1, now=NOW)
    before = await dump(db)
    again = await import_aaf(db, snap1, now=NOW + dt.timedelta(days=1))
    assert again.changes() == 0, again.lines()
    assert again.moved == 0
    assert await dump(db) == before


async def test_dry_run_prints_the_summary_and_writes_nothing(
        db: Database, snap1: Path, snap2: Path) -> None:
    await import_aaf(db, snap1, now=NOW)
    before = await dump(db)
    dry = await import_aaf(db, snap2, now=NOW, dry_run=True)
    assert await dump(db) == before
    assert "Simulation" in dry.lines()[0]
    real = await import_aaf(db, snap2, now=NOW)
    dry.dry_run = real.dry_run
    assert dry.as_dict() == real.as_dict()


async def test_second_snapshot_moves_adds_and_disables(
        db: Database, snap1: Path, snap2: Path) -> None:
    await import_aaf(db, snap1, now=NOW)
    nathan = await person(db, "5004")
    service = identity_service(db)
    session = Session(id=secrets.token_urlsafe(8), user_id=nathan["id"],
                      created_at=NOW.timestamp(), expires_at=NOW.timestamp() + 3600)
    async with db.transaction() as conn:
        await identity.insert_session(conn, session)
    token = service.signer.sign(session.id)
    service.clock = lambda: NOW.timestamp() + 1
    assert await service.authenticate(token) is not None

    summary = await import_aaf(db, snap2, now=NOW + dt.timedelta(days=1))
    c = summary.counts
    assert summary.moved == 1
    assert await class_of(db, "5001") == "6B"
    assert c["staff"]["created"] == 1 and (await person(db, "7007"))["role"] == "teacher"
    assert c["pupils"]["disabled"] == 1  # Nathan left
    assert c["guardians"]["disabled"] == 2  # his mother, and Chloé's father
    assert c["pupils"]["created"] == 0 and c["schools"]["created"] == 0

    # The departed parent: no longer linked, cannot sign in, kept (not deleted) for now.
    chloe, paul = await person(db, "5003"), await person(db, "6005")
    assert [g.external_id for g in await directory.guardians_of(db, chloe["id"])] == ["6004"]
    assert paul["disabled"] == 1 and paul["feed_disabled"] == 1
    assert paul["disabled_at"] == (NOW + dt.timedelta(days=1)).timestamp()
    # Nathan: disabled, his sessions revoked, still in his class's history.
    assert (await person(db, "5004"))["disabled"] == 1
    assert await service.authenticate(token) is None

    reasons = {(w, r) for w, r in summary.as_dict()["skipped"]}
    assert ("établissement 4003 (0040003X)", "UAI invalide « 0040003X »") in reasons
    assert ("élève 5008 (Jules BLANC)",
            "établissement ignoré (fiche établissement invalide)") in reasons
    assert ("fiche « Sans IDENTIFIANT »", "identifiant manquant") in reasons

    # Again: nothing more to do.
    assert (await import_aaf(db, snap2, now=NOW + dt.timedelta(days=2))).changes() == 0


async def test_back_in_the_feed_enabled_and_deleted_after_the_delay(
        db: Database, snap1: Path, snap2: Path) -> None:
    await import_aaf(db, snap1, now=NOW)
    await import_aaf(db, snap2, now=NOW)
    back = await import_aaf(db, snap1, now=NOW + dt.timedelta(days=3))
    assert back.counts["pupils"]["enabled"] == 1
    assert (await person(db, "5004"))["disabled"] == 0
    await import_aaf(db, snap2, now=NOW + dt.timedelta(days=4))
    kept = await import_aaf(db, snap2, now=NOW + dt.timedelta(days=100), delete_after_days=730)
    assert kept.counts["pupils"]["deleted"] == 0
    gone = await import_aaf(db, snap2, now=NOW + dt.timedelta(days=740), delete_after_days=730)
    assert gone.counts["pupils"]["deleted"] == 1 and gone.counts["guardians"]["deleted"] == 2
    assert await person(db, "5004") is None


async def test_accounts_outside_the_feed_are_left_alone(db: Database, snap1: Path) -> None:
    async with db.transaction() as conn:
        sid = await directory.insert_school(conn, TILLEULS, "Tilleuls (à la main)", "", "x")
        await identity.insert_user(conn, login="aide", role=identity.Role.STAFF, name="Aide",
                                   school_id=sid, code_hash="h")
    await import_aaf(db, snap1, now=NOW)
    assert (await db.fetchone("SELECT disabled FROM users WHERE login = 'aide'"))[0] == 0


async def test_a_pupil_who_moves_takes_boards_rolls_and_chat_with_them(
        db: Database, snap1: Path, snap2: Path) -> None:
    """Need-to-know follows the enrolment: the new class's board, roll and live chat; no
    longer the old class's; the guardians follow too."""
    await import_aaf(db, snap1, now=NOW)
    jm = await directory.school_by_uai(db, JEAN_MOULIN)
    six_a = await directory.class_by_name(db, jm.id, "6A")
    six_b = await directory.class_by_name(db, jm.id, "6B")
    claire = (await person(db, "7001"))["id"]
    boards = {c.id: BoardRef(id=c.id, school_id=jm.id, class_id=c.id, owner_id=claire)
              for c in (six_a, six_b)}
    live = {cid: ConversationRef(id=cid, school_id=jm.id, kind="live", creator_id=claire,
                                 board=b) for cid, b in boards.items()}
    service = identity_service(db)

    async def reach(external_id: str) -> dict[str, bool]:
        user = await identity.user_by_id(db, (await person(db, external_id))["id"])
        p = await service.principal_for(user)
        out = {}
        for name, c in (("6A", six_a), ("6B", six_b)):
            if p.role is identity.Role.PARENT:  # the class whose roll notices reach them
                out[name] = c.id in p.child_class_ids
            else:
                out[name] = (may(p, Action.VIEW_BOARD, boards[c.id])
                             and may(p, Action.CHAT_VIEW, live[c.id]))
        return out

    assert await reach("5001") == {"6A": True, "6B": False}
    assert await reach("6001") == {"6A": True, "6B": False}
    roster_a = [s.login for s in await directory.students_of_class(db, six_a.id)]
    assert "lea.martin" in roster_a

    await import_aaf(db, snap2, now=NOW)
    assert await reach("5001") == {"6A": False, "6B": True}
    assert await reach("6001") == {"6A": False, "6B": True}
    assert "lea.martin" not in [s.login for s in await directory.students_of_class(db, six_a.id)]
    assert "lea.martin" in [s.login for s in await directory.students_of_class(db, six_b.id)]


async def failing_enrollments(db: Database, name: str, when: str) -> None:
    """A trigger that fails an enrolment matching `when` with « panne simulée » (a school's
    writes failing halfway), in each engine's own trigger language."""
    if db.engine == "postgres":
        await db.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$"
                         f" BEGIN IF {when} THEN RAISE EXCEPTION 'panne simulée'; END IF;"
                         " RETURN NEW; END $$")
        await db.execute(f"CREATE TRIGGER {name} BEFORE INSERT ON enrollments FOR EACH ROW"
                         f" EXECUTE FUNCTION {name}()")
    else:
        await db.execute(f"CREATE TRIGGER {name} BEFORE INSERT ON enrollments WHEN {when}"
                         " BEGIN SELECT RAISE(ABORT, 'panne simulée'); END")


async def test_a_school_that_fails_is_rolled_back_whole_and_its_people_kept(
        db: Database, snap1: Path, snap2: Path) -> None:
    await failing_enrollments(db, "fail_tilleuls",
                              "NEW.class_id IN (SELECT c.id FROM classes c JOIN schools s"
                              " ON s.id = c.school_id WHERE s.uai = '0040002F')")
    first = await import_aaf(db, snap1, now=NOW)
    assert ("établissement 0040002F", "rien n'a été appliqué (panne simulée)") in {
        (w, r) for w, r in first.as_dict()["skipped"]}
    assert await directory.school_by_uai(db, TILLEULS) is None  # nothing half-applied
    assert await person(db, "5004") is None and await person(db, "7005") is None
    assert await class_of(db, "5001") == "6A"  # the other school is there
    assert first.counts["pupils"]["created"] == 3 and first.counts["schools"]["created"] == 1

    await db.execute("DROP TRIGGER fail_tilleuls" + (" ON enrollments" if db.engine == "postgres"
                                                      else ""))
    await import_aaf(db, snap1, now=NOW)
    # Tonight Les Tilleuls fails again: Nathan is not in the snapshot, but his school could not
    # be applied (re-enrolling the homonym fails), so he is not taken for gone.
    await failing_enrollments(db, "fail_tilleuls2", "NEW.student_id IN"
                              " (SELECT id FROM users WHERE external_id = '5006')")
    await db.execute("DELETE FROM enrollments WHERE student_id IN"
                     " (SELECT id FROM users WHERE external_id = '5006')")
    second = await import_aaf(db, snap2, now=NOW)
    assert ("établissement 0040002F", "rien n'a été appliqué (panne simulée)") in {
        (w, r) for w, r in second.as_dict()["skipped"]}
    assert (await person(db, "5004"))["disabled"] == 0
    assert (await person(db, "6006"))["disabled"] == 0
    assert await class_of(db, "5001") == "6B"
    await db.execute("DROP TRIGGER fail_tilleuls2" + (" ON enrollments"
                                                       if db.engine == "postgres" else ""))


async def test_two_structures_with_one_uai_keep_the_first(db: Database, tmp_path: Path) -> None:
    from tests.directory.aaf.files import school, write

    folder = snapshot(tmp_path / "twin")
    write(folder, "EtabEducNat", 1, [school("4009", JEAN_MOULIN, "DOUBLON", "X", [], [])])
    summary = await import_aaf(db, folder, now=NOW)
    assert ("établissement 4009 (0040001E)", "UAI déjà porté par l'établissement 4001") in {
        (w, r) for w, r in summary.as_dict()["skipped"]}
    assert (await directory.school_by_uai(db, JEAN_MOULIN)).name == "COLLÈGE JEAN MOULIN"


async def test_an_account_made_by_hand_with_the_external_id_is_adopted(
        db: Database, snap1: Path) -> None:
    """`users add --external-id` or the CSV set the same key: the feed takes the account over
    (login and code kept: SSO and the personal code both still lead to it)."""
    from realtime.identity.model import Role

    async with db.transaction() as conn:
        await identity.insert_user(conn, login="maman.lea", role=Role.PARENT,
                                   name="Sophie Martin", school_id=None, code_hash="h",
                                   external_id="6001")
    summary = await import_aaf(db, snap1, now=NOW)
    assert summary.counts["guardians"]["created"] == 4
    assert summary.counts["guardians"]["updated"] == 1
    sophie = await person(db, "6001")
    assert (sophie["login"], sophie["name"], sophie["source"], sophie["code_hash"]) == (
        "maman.lea", "Sophie MARTIN", "aaf", "h")
    lea = await person(db, "5001")
    assert sophie["id"] in {g.id for g in await directory.guardians_of(db, lea["id"])}


async def test_one_identifier_on_two_records_keeps_the_first(db: Database, tmp_path: Path) -> None:
    from tests.directory.aaf.files import staff, write

    folder = snapshot(tmp_path / "clash")
    write(folder, "PersEducNat", 1, [staff("5002", "Faux", "DOUBLON", "4001", [],
                                           presence="O")])
    summary = await import_aaf(db, folder, now=NOW)
    assert ("personnel 5002 (Faux DOUBLON)", "identifiant déjà porté par une autre fiche") in {
        (w, r) for w, r in summary.as_dict()["skipped"]}
    assert (await person(db, "5002"))["role"] == "student"
    assert (await import_aaf(db, folder, now=NOW)).changes() == 0


async def test_an_account_disabled_by_hand_stays_disabled_when_the_feed_names_it(
        db: Database, snap1: Path) -> None:
    await import_aaf(db, snap1, now=NOW)
    nathan = await person(db, "5004")
    async with db.transaction() as conn:  # what `users disable` (an administrator) does
        await conn.execute("UPDATE users SET disabled = 1 WHERE id = ?", (nathan["id"],))
    again = await import_aaf(db, snap1, now=NOW + dt.timedelta(days=1))
    assert again.counts["pupils"]["enabled"] == 0
    still = await person(db, "5004")
    assert still["disabled"] == 1 and still["feed_disabled"] == 0 and still["disabled_at"]

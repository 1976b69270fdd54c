"""Applying a full AAF snapshot: one transaction per school, then the absentees.

Idempotent by construction: every write first compares with what is stored, so the same
snapshot twice changes nothing and the summary says so. A school whose writes fail is rolled
back whole and reported; its people are then protected from being disabled as absent.
`dry_run` runs everything inside one transaction (a savepoint per school) and rolls it back:
the summary is the one a real run would print, and nothing is written.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from realtime.db import Database
from realtime.directory import store
from realtime.directory.aaf.model import (
    PupilRec,
    SchoolRec,
    Skip,
    Snapshot,
    StaffRec,
    base_login,
    unique_login,
)
from realtime.directory.aaf.reader import ReadError, records, snapshot_files
from realtime.identity import store as identity_store
from realtime.identity.codes import NO_CODE
from realtime.identity.model import FeedAccount, Role, User

FEED = "aaf"
KIND_LABELS = {
    "schools": "Établissements", "classes": "Classes", "groups": "Groupes",
    "pupils": "Élèves", "guardians": "Responsables légaux", "staff": "Personnels",
}
COLUMNS = ("created", "updated", "unchanged", "disabled", "enabled", "deleted")
COLUMN_LABELS = ("créés", "mis à jour", "inchangés", "désactivés", "réactivés", "supprimés")


class AafError(Exception):
    """The snapshot cannot be imported at all (French message); nothing was written."""


class Summary:
    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = {k: Counter() for k in KIND_LABELS}
        self.moved = 0
        self.skipped: list[Skip] = []
        self.read: Counter[str] = Counter()
        self.dry_run = False

    def add(self, kind: str, what: str, n: int = 1) -> None:
        self.counts[kind][what] += n

    def as_dict(self) -> dict[str, Any]:
        return {"counts": {k: dict(v) for k, v in self.counts.items()}, "moved": self.moved,
                "skipped": [(s.what, s.reason) for s in self.skipped], "dry_run": self.dry_run}

    def changes(self) -> int:
        return sum(c[w] for c in self.counts.values() for w in COLUMNS if w != "unchanged")

    def lines(self) -> list[str]:
        head = "Simulation (--dry-run) : rien n'a été écrit." if self.dry_run else "Import terminé."
        out = [head, "Fiches lues : " + ", ".join(f"{k} {n}" for k, n in self.read.items())]
        width = max(len(v) for v in KIND_LABELS.values())
        out.append(" " * width + " | " + " | ".join(COLUMN_LABELS))
        for kind, label in KIND_LABELS.items():
            c = self.counts[kind]
            out.append(label.ljust(width) + " | " + " | ".join(
                str(c[w]).rjust(len(lab)) for w, lab in zip(COLUMNS, COLUMN_LABELS, strict=True)))
        out.append(f"Élèves changés de classe : {self.moved}")
        out.append(f"Fiches ou liens ignorés : {len(self.skipped)}")
        out.extend(f"  - {s.what} : {s.reason}" for s in self.skipped)
        return out


def read_snapshot(folder: Path, prefix: str = "",
                  progress: Callable[[str], None] = lambda _: None) -> Snapshot:
    """Stream every file of the snapshot, in the order references need."""
    if not folder.is_dir():
        raise AafError(f"dossier introuvable : {folder}")
    files = snapshot_files(folder)
    if not any(kind == "EtabEducNat" for kind, _ in files):
        raise AafError(f"aucun fichier …_Complet_…_EtabEducNat_0000.xml dans {folder} : "
                       "rien n'est importé.")
    snap = Snapshot(prefix)
    for i, (kind, path) in enumerate(files, 1):
        progress(f"Lecture {i}/{len(files)} : {path.name}")
        n = 0
        try:
            for rec in records(path):
                snap.add(kind, rec)
                n += 1
                if n % 10000 == 0:
                    progress(f"  … {n} fiches")
        except ReadError as exc:
            raise AafError(f"{exc} : rien n'est importé.") from exc
        progress(f"  {n} fiches")
    return snap


class _DryRun(Exception):
    pass


class Importer:
    def __init__(self, db: Database, snap: Snapshot, *, now: dt.datetime, delete_after_days: int,
                 dry_run: bool = False, progress: Callable[[str], None] = lambda _: None) -> None:
        self.db, self.snap, self.now, self.dry_run = db, snap, now, dry_run
        self.delete_after_days = delete_after_days
        self.progress = progress
        self.summary = Summary()
        self.summary.dry_run = dry_run
        self.summary.read = snap.read
        self.summary.skipped = list(snap.skipped)
        self.seen: set[str] = set()
        self.guardians_done: dict[str, int] = {}
        self.protected_schools: set[int] = set()
        self.accounts: dict[str, FeedAccount] = {}
        self.taken: set[str] = set()
        self.enrolments: dict[int, int] = {}
        self.school_ids: dict[str, int] = {}  # external id → id, as stored before the run

    # --- the run ---------------------------------------------------------------------------

    async def run(self) -> Summary:
        self.accounts = await identity_store.feed_accounts(self.db)
        self.taken = await identity_store.taken_logins(self.db)
        rows = await self.db.fetchall("SELECT student_id, class_id FROM enrollments")
        self.enrolments = {r[0]: r[1] for r in rows}
        # Read before any transaction: the database's lock is held for the whole dry run.
        rows = await self.db.fetchall(
            "SELECT external_id, id FROM schools WHERE external_id IS NOT NULL")
        self.school_ids = {r[0]: r[1] for r in rows}
        if not self.dry_run:
            await self._schools(self.db.transaction)
            await self._absentees(self.db.transaction)
            return self.summary
        try:
            async with self.db.transaction() as conn:
                unit = _savepoints(conn)
                await self._schools(unit)
                await self._absentees(unit)
                raise _DryRun
        except _DryRun:
            pass
        return self.summary

    async def _schools(self, unit: Callable[[], Any]) -> None:
        by_school_pupils: dict[str, list[PupilRec]] = defaultdict(list)
        for p in self.snap.pupils.values():
            by_school_pupils[p.school].append(p)
        by_school_staff: dict[str, list[StaffRec]] = defaultdict(list)
        for s in self.snap.staff.values():
            by_school_staff[s.school].append(s)
        for key in self.snap.broken_schools:
            if key in self.school_ids:
                self.protected_schools.add(self.school_ids[key])
        schools = list(self.snap.schools.values())
        for i, rec in enumerate(schools, 1):
            saved = (dict(self.accounts), set(self.taken), dict(self.enrolments), set(self.seen),
                     dict(self.guardians_done), _copy_counts(self.summary))
            try:
                async with unit() as conn:
                    await self._school(conn, rec, by_school_pupils[rec.key],
                                       by_school_staff[rec.key])
            except (aiosqlite.Error, ValueError) as exc:
                (self.accounts, self.taken, self.enrolments, self.seen, self.guardians_done,
                 counts) = saved
                self.summary.counts = counts
                self.summary.skipped.append(Skip(f"établissement {rec.uai}",
                                                 f"rien n'a été appliqué ({exc})"))
                if rec.key in self.school_ids:
                    self.protected_schools.add(self.school_ids[rec.key])
            self.progress(f"Établissement {i}/{len(schools)} : {rec.uai} {rec.name}")
            await asyncio.sleep(0)

    async def _school(self, conn: aiosqlite.Connection, rec: SchoolRec,
                      pupils: list[PupilRec], staff: list[StaffRec]) -> None:
        s = self.summary
        school = (await store.school_by_external_id(conn, rec.key)
                  or await store.school_by_uai_in(conn, rec.uai))
        if school is None:
            sid = await store.insert_school(conn, rec.uai, rec.name, rec.town, rec.key)
            s.add("schools", "created")
        else:
            sid = school.id
            ext = await conn.execute("SELECT external_id FROM schools WHERE id = ?", (sid,))
            row = await ext.fetchone()
            if (school.uai, school.name, school.town, row[0] if row else None) != (
                    rec.uai, rec.name, rec.town, rec.key):
                await store.update_school(conn, sid, rec.uai, rec.name, rec.town, rec.key)
                s.add("schools", "updated")
            else:
                s.add("schools", "unchanged")

        class_ids = await self._classes(conn, rec, sid)
        group_ids = await self._groups(conn, rec, sid, pupils, staff)
        done = await self._pupils(conn, rec, sid, pupils, class_ids, group_ids)
        await self._guardians(conn, done)
        await self._staff(conn, rec, sid, staff, class_ids, group_ids)

    async def _classes(self, conn: aiosqlite.Connection, rec: SchoolRec, sid: int
                       ) -> dict[str, int]:
        existing = await store.classes_in(conn, sid)
        out: dict[str, int] = {}
        for code, level in sorted(self.snap.class_levels(rec.key).items()):
            if level is None:
                self.summary.skipped.append(Skip(f"classe {rec.uai} {code}",
                                                 "niveau inconnu (collège : 6e à 3e)"))
                continue
            c = existing.get(code)
            if c is not None and c.level == level:
                out[code] = c.id
                self.summary.add("classes", "unchanged")
                continue
            out[code] = await store.upsert_class(conn, sid, code, level)
            self.summary.add("classes", "created" if c is None else "updated")
        return out

    async def _groups(self, conn: aiosqlite.Connection, rec: SchoolRec, sid: int,
                      pupils: list[PupilRec], staff: list[StaffRec]) -> dict[str, int]:
        names = dict(rec.groups)
        for p in pupils:
            for g in p.groups:
                names.setdefault(g, g)
        out: dict[str, int] = {}
        for code, name in sorted(names.items()):
            before = await conn.execute(
                "SELECT 1 FROM class_groups WHERE school_id = ? AND code = ?", (sid, code))
            existed = await before.fetchone() is not None
            out[code], changed = await store.upsert_group(conn, sid, code, name)
            self.summary.add("groups", "unchanged" if not changed else
                             ("updated" if existed else "created"))
        return out

    async def _account(self, conn: aiosqlite.Connection, kind: str, key: str, role: Role,
                       name: str, first: str, last: str, school_id: int | None
                       ) -> tuple[int, str]:
        """Create or update one person: its id, and "created", "updated" or "unchanged"
        (the caller counts it once its relations are synced too)."""
        self.seen.add(key)
        acc = self.accounts.get(key)
        if acc is None:
            login = unique_login(base_login(first, last), self.taken)
            user = await identity_store.insert_user(
                conn, login=login, role=role, name=name, school_id=school_id,
                code_hash=NO_CODE, external_id=key, source=FEED)
            self.accounts[key] = FeedAccount(user=user, source=FEED)
            return user.id, "created"
        u, changed = acc.user, False
        if (u.role, u.name, u.school_id) != (role, name, school_id):
            await identity_store.update_user(conn, u.id, role=role, name=name,
                                             school_id=school_id)
            changed = True
        if acc.source != FEED:
            await identity_store.adopt_for_feed(conn, u.id, FEED)
            changed = True
        disabled = u.disabled
        if u.disabled and acc.disabled_at is not None:
            await identity_store.enable_user(conn, u.id)
            self.summary.add(kind, "enabled")
            disabled = False
        new_user = User(id=u.id, login=u.login, role=role, name=name, school_id=school_id,
                        disabled=disabled, external_id=key)
        self.accounts[key] = FeedAccount(user=new_user, source=FEED,
                                         disabled_at=None if not disabled else acc.disabled_at)
        return u.id, "updated" if changed else "unchanged"

    async def _pupils(self, conn: aiosqlite.Connection, rec: SchoolRec, sid: int,
                      pupils: list[PupilRec], class_ids: dict[str, int],
                      group_ids: dict[str, int]) -> list[tuple[PupilRec, int]]:
        done = []
        for p in pupils:
            cid = class_ids.get(p.class_code)
            if cid is None:
                self.summary.skipped.append(Skip(f"élève {p.key} ({p.name})",
                                                 f"classe « {p.class_code} » ignorée"))
                continue
            uid, state = await self._account(conn, "pupils", p.key, Role.STUDENT, p.name,
                                             p.first, p.last, sid)
            old = self.enrolments.get(uid)
            relinked = False
            if old != cid:
                await store.enroll(conn, uid, cid)
                self.enrolments[uid] = cid
                relinked = True
                if old is not None:
                    self.summary.moved += 1
            relinked |= await store.sync_set(
                conn, "group_members", ("student_id", uid), ("group_id",),
                {(group_ids[g],) for g in p.groups if g in group_ids})
            done.append((p, uid, state if state != "unchanged" or not relinked
                         else "updated"))
        return done

    def _count(self, kind: str, state: str, changed: bool) -> None:
        self.summary.add(kind, "updated" if state == "unchanged" and changed else state)

    async def _guardians(self, conn: aiosqlite.Connection,
                         pupils: list[tuple[PupilRec, int, str]]) -> None:
        for p, pid, pstate in pupils:
            gids: set[tuple[int]] = set()
            for gkey in p.guardians:
                rel = self.snap.relatives.get(gkey)
                if rel is None:
                    self.summary.skipped.append(Skip(
                        f"responsable {gkey} de l'élève {p.key}",
                        "absent des fichiers PersRelEleve"))
                    continue
                gid = self.guardians_done.get(gkey)
                if gid is None:
                    gid, state = await self._account(conn, "guardians", gkey, Role.PARENT,
                                                     rel.name, rel.first, rel.last, None)
                    self.guardians_done[gkey] = gid
                    contact = await store.set_guardian_contact(conn, store.GuardianContact(
                        guardian_id=gid, home_phone=rel.home_phone, work_phone=rel.work_phone,
                        mobile_phone=rel.mobile_phone, email=rel.email))
                    self._count("guardians", state, contact)
                gids.add((gid,))
            # Only the feed's guardians are synced: a link the administration made by hand
            # to an account outside the feed stays.
            relinked = await store.sync_set(
                conn, "guardianships", ("student_id", pid), ("guardian_id",), gids,
                scope="guardian_id IN (SELECT id FROM users WHERE source = ?)",
                scope_params=(FEED,))
            self._count("pupils", pstate, relinked)

    async def _staff(self, conn: aiosqlite.Connection, rec: SchoolRec, sid: int,
                     staff: list[StaffRec], class_ids: dict[str, int],
                     group_ids: dict[str, int]) -> None:
        for st in staff:
            uid, state = await self._account(conn, "staff", st.key, st.role, st.name,
                                             st.first, st.last, sid)
            teach: set[tuple[int, str]] = set()
            for code, subject in st.classes:
                if code in class_ids:
                    teach.add((class_ids[code], self.snap.subject_name(subject)))
                else:
                    self.summary.skipped.append(Skip(
                        f"enseignement de {st.key} ({st.name})", f"classe inconnue « {code} »"))
            gteach: set[tuple[int, str]] = set()
            for code, subject in st.groups:
                if code in group_ids:
                    gteach.add((group_ids[code], self.snap.subject_name(subject)))
                else:
                    self.summary.skipped.append(Skip(
                        f"enseignement de {st.key} ({st.name})", f"groupe inconnu « {code} »"))
            tutor = {(class_ids[c],) for c in st.tutor_of if c in class_ids}
            changed = await store.sync_set(conn, "teachings", ("teacher_id", uid),
                                           ("class_id", "subject"), teach)
            changed |= await store.sync_set(conn, "group_teachings", ("teacher_id", uid),
                                            ("group_id", "subject"), gteach)
            changed |= await store.sync_set(conn, "class_tutors", ("teacher_id", uid),
                                            ("class_id",), tutor)
            self._count("staff", state, changed)

    async def _absentees(self, unit: Callable[[], Any]) -> None:
        """Disable the feed's accounts this full snapshot no longer names, then delete those
        disabled for longer than the delay."""
        at = self.now.astimezone(dt.UTC).isoformat(timespec="seconds")
        kinds = {Role.STUDENT: "pupils", Role.PARENT: "guardians"}
        async with unit() as conn:
            for key, acc in sorted(self.accounts.items()):
                u = acc.user
                if acc.source != FEED or key in self.seen or u.disabled:
                    continue
                if await self._protected(conn, u):
                    continue
                await identity_store.disable_user(conn, u.id, at, self.now.timestamp())
                self.summary.add(kinds.get(u.role, "staff"), "disabled")
            cutoff = (self.now - dt.timedelta(days=self.delete_after_days)).astimezone(dt.UTC)
            for u in await _feed_disabled_before(conn, cutoff.isoformat(timespec="seconds")):
                await identity_store.delete_user(conn, u[0])
                self.summary.add(kinds.get(Role(u[1]), "staff"), "deleted")

    async def _protected(self, conn: aiosqlite.Connection, u: User) -> bool:
        """Someone of a school this run could not apply is not « absent »."""
        if not self.protected_schools:
            return False
        if u.role is not Role.PARENT:
            return u.school_id in self.protected_schools
        cur = await conn.execute(
            "SELECT c.school_id FROM guardianships g JOIN enrollments e ON e.student_id ="
            " g.student_id JOIN classes c ON c.id = e.class_id WHERE g.guardian_id = ?", (u.id,))
        return any(r[0] in self.protected_schools for r in await cur.fetchall())


async def _feed_disabled_before(conn: aiosqlite.Connection, cutoff: str) -> list[Any]:
    cur = await conn.execute(
        "SELECT id, role FROM users WHERE source = ? AND disabled = 1 AND disabled_at IS NOT NULL"
        " AND disabled_at < ?", (FEED, cutoff))
    return list(await cur.fetchall())


def _copy_counts(s: Summary) -> dict[str, Counter[str]]:
    return {k: Counter(v) for k, v in s.counts.items()}


def _savepoints(conn: aiosqlite.Connection) -> Callable[[], Any]:
    @asynccontextmanager
    async def unit() -> AsyncIterator[aiosqlite.Connection]:
        await conn.execute("SAVEPOINT aaf_school")
        try:
            yield conn
        except BaseException:
            await conn.execute("ROLLBACK TO aaf_school")
            await conn.execute("RELEASE aaf_school")
            raise
        await conn.execute("RELEASE aaf_school")
    return unit


async def import_aaf(db: Database, folder: Path, *, prefix: str = "", dry_run: bool = False,
                     now: dt.datetime | None = None, delete_after_days: int = 730,
                     progress: Callable[[str], None] = lambda _: None) -> Summary:
    """Read the snapshot (in a thread: parsing 50 MB is CPU work) and apply it."""
    snap = await asyncio.to_thread(read_snapshot, folder, prefix, progress)
    importer = Importer(db, snap, now=now or dt.datetime.now(dt.UTC),
                        delete_after_days=delete_after_days, dry_run=dry_run, progress=progress)
    return await importer.run()

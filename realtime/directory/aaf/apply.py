"""Applying a full AAF snapshot: one transaction per school, then the absentees.

Idempotent by construction: every write first compares with what is stored, so the same
snapshot twice changes nothing and the summary says so. A school whose writes fail is rolled
back whole and reported; its people are then protected from being disabled as absent.
A dry run applies the snapshot to a copy of the database and throws it away (`import_aaf`):
the summary is the one a real run would print, nothing is written, no writer waits. (An
in-memory database has no copy, and PostgreSQL needs none: there the run goes inside one
transaction, a savepoint per school, rolled back at the end; on PostgreSQL it blocks no
writer, except one changing a row the run changed, until the rollback.)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import tempfile
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec
import psycopg

from realtime.db import Database
from realtime.directory import store
from realtime.directory.aaf.model import (
    PupilRec,
    RelativeRec,
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


IMPORT_LOCK = "aaf:import"  # `Database.exclusive`: one import at a time, across nodes
ALREADY_RUNNING = ("Un import de l'annuaire est déjà en cours (sur ce serveur ou un autre) :"
                   " rien n'a été écrit. Relancez-le une fois le premier terminé.")


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


class _Want(msgspec.Struct):
    """One person as this snapshot wants them."""

    kind: str
    key: str
    role: Role
    name: str
    first: str
    last: str
    school_id: int | None


class Importer:
    """Diffs the snapshot against what is stored, read once in a few queries, and writes only
    the differences, in bulk, school by school (the steady nightly run writes almost nothing
    and asks the database almost nothing)."""

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
        self.protected_schools: set[int] = set()
        # The stored truth, mirrored (and kept in step with every write of the run).
        self.accounts: dict[str, FeedAccount] = {}
        self.taken: set[str] = set()
        self.tried: dict[str, int] = {}
        self.enrolments: dict[int, int] = {}
        self.school_ids: dict[str, int] = {}
        self.relations: dict[str, dict[int, set[tuple[Any, ...]]]] = {}
        self.contacts: dict[int, tuple[str, str, str, str]] = {}

    async def _load(self, fetch: identity_store.Fetch) -> None:
        self.accounts = await identity_store.feed_accounts(fetch)
        self.taken = await identity_store.taken_logins(fetch)
        self.enrolments = {r[0]: r[1] for r in await fetch(
            "SELECT student_id, class_id FROM enrollments", ())}
        self.school_ids = {r[0]: r[1] for r in await fetch(
            "SELECT external_id, id FROM schools WHERE external_id IS NOT NULL", ())}
        for table in store.FEED_RELATIONS:
            sql, params = store.feed_relation_sql(table, FEED)
            mirror: dict[int, set[tuple[Any, ...]]] = defaultdict(set)
            for r in await fetch(sql, params):
                mirror[r[0]].add(tuple(r[1:]))
            self.relations[table] = mirror
        self.contacts = {r[0]: tuple(r[1:]) for r in await fetch(  # type: ignore[misc]
            "SELECT guardian_id, home_phone, work_phone, mobile_phone, email"
            " FROM guardian_contacts", ())}

    # --- the run ---------------------------------------------------------------------------

    async def run(self) -> Summary:
        if not self.dry_run:
            await self._load(lambda sql, params: self.db.fetchall(sql, params))
            await self._schools(self.db.transaction, self._load_outside)
            await self._absentees(self.db.transaction)
            return self.summary
        try:
            async with self.db.transaction() as conn:
                async def fetch(sql: str, params: tuple[Any, ...]) -> list[Any]:
                    cur = await conn.execute(sql, params)
                    return list(await cur.fetchall())

                async def reload() -> None:
                    await self._load(fetch)

                await self._load(fetch)
                await self._schools(_savepoints(conn), reload)
                await self._absentees(_savepoints(conn))
                raise _DryRun
        except _DryRun:
            pass
        return self.summary

    async def _load_outside(self) -> None:
        await self._load(lambda sql, params: self.db.fetchall(sql, params))

    async def _schools(self, unit: Callable[[], Any],
                       reload: Callable[[], Awaitable[None]]) -> None:
        pupils_of: dict[str, list[PupilRec]] = defaultdict(list)
        for p in self.snap.pupils.values():
            pupils_of[p.school].append(p)
        staff_of: dict[str, list[StaffRec]] = defaultdict(list)
        for st in self.snap.staff.values():
            staff_of[st.school].append(st)
        for key in self.snap.broken_schools:
            if key in self.school_ids:
                self.protected_schools.add(self.school_ids[key])
        schools = list(self.snap.schools.values())
        for i, rec in enumerate(schools, 1):
            counts, moved, skipped, seen = (_copy_counts(self.summary), self.summary.moved,
                                            len(self.summary.skipped), set(self.seen))
            try:
                async with unit() as conn:
                    await self._school(conn, rec, pupils_of[rec.key], staff_of[rec.key])
            except (sqlite3.Error, psycopg.Error, ValueError) as exc:
                # Rolled back whole: the mirrors are read again from the stored truth.
                self.summary.counts, self.summary.moved, self.seen = counts, moved, seen
                del self.summary.skipped[skipped:]
                # PostgreSQL's message without its CONTEXT lines, as SQLite's reads.
                why = (exc.diag.message_primary or str(exc)) if isinstance(
                    exc, psycopg.Error) else str(exc)
                self.summary.skipped.append(Skip(f"établissement {rec.uai}",
                                                 f"rien n'a été appliqué ({why})"))
                await reload()
                if rec.key in self.school_ids:
                    self.protected_schools.add(self.school_ids[rec.key])
            self.progress(f"Établissement {i}/{len(schools)} : {rec.uai} {rec.name}")

    async def _school(self, conn: aiosqlite.Connection, rec: SchoolRec,
                      pupils: list[PupilRec], staff: list[StaffRec]) -> None:
        sid = await self._school_row(conn, rec)
        class_ids = await self._classes(conn, rec, sid)
        group_ids = await self._groups(conn, rec, sid, pupils)

        wants: list[_Want] = []
        kept: list[PupilRec] = []
        for p in pupils:
            if p.class_code not in class_ids:
                self.summary.skipped.append(Skip(f"élève {p.key} ({p.name})",
                                                 f"classe « {p.class_code} » ignorée"))
                continue
            if p.key in self.seen:  # named by another record already (a guardian's id)
                self.summary.skipped.append(Skip(f"élève {p.key} ({p.name})",
                                                 "identifiant déjà porté par une autre fiche"))
                continue
            kept.append(p)
            wants.append(_Want("pupils", p.key, Role.STUDENT, p.name, p.first, p.last, sid))
        guardians: dict[str, RelativeRec] = {}
        for p in kept:
            for gkey in p.guardians:
                rel = self.snap.relatives.get(gkey)
                if rel is None:
                    self.summary.skipped.append(Skip(f"responsable {gkey} de l'élève {p.key}",
                                                     "absent des fichiers PersRelEleve"))
                elif gkey in self.snap.staff:
                    self.summary.skipped.append(Skip(
                        f"responsable {gkey} de l'élève {p.key}",
                        "aussi personnel de l'Éducation nationale : un seul compte (personnel)"))
                elif gkey not in self.seen and gkey not in guardians:
                    guardians[gkey] = rel
                    wants.append(_Want("guardians", gkey, Role.PARENT, rel.name, rel.first,
                                       rel.last, None))
        wanted_keys = {w.key for w in wants}
        staff_kept: list[StaffRec] = []
        for st in staff:
            if st.key in self.seen or st.key in wanted_keys:
                self.summary.skipped.append(Skip(f"personnel {st.key} ({st.name})",
                                                 "identifiant déjà porté par une autre fiche"))
                continue
            staff_kept.append(st)
            wants.append(_Want("staff", st.key, st.role, st.name, st.first, st.last, sid))
        staff = staff_kept
        states = await self._accounts(conn, wants)
        changed: set[str] = set()
        ids = {key: self.accounts[key].user.id for key in states}

        # Pupils: class (enrolment), groups, legal representatives.
        moves = []
        for p in kept:
            uid, cid = ids[p.key], class_ids[p.class_code]
            if self.enrolments.get(uid) != cid:
                if uid in self.enrolments:
                    self.summary.moved += 1
                moves.append((uid, cid))
                self.enrolments[uid] = cid
                changed.add(p.key)
        await store.enroll_many(conn, moves)
        rel: dict[str, dict[int, set[tuple[Any, ...]]]] = defaultdict(dict)
        for p in kept:
            uid = ids[p.key]
            rel["group_members"][uid] = {(group_ids[g],) for g in p.groups if g in group_ids}
            rel["guardianships"][uid] = {
                (self.accounts[g].user.id,) for g in p.guardians
                if g in self.accounts and g in self.seen and g not in self.snap.staff}
        # Staff: classes and groups taught (with the subject), form tutor.
        for st in staff:
            uid = ids[st.key]
            rel["teachings"][uid] = self._taught(st, st.classes, class_ids, "classe")
            rel["group_teachings"][uid] = self._taught(st, st.groups, group_ids, "groupe")
            rel["class_tutors"][uid] = {(class_ids[c],) for c in st.tutor_of if c in class_ids}
        by_id = {uid: key for key, uid in ids.items()}
        for table, wanted in rel.items():
            for uid in await self._relation(conn, table, wanted):
                changed.add(by_id[uid])
        # Guardians' contact details.
        contacts = []
        for gkey, r in guardians.items():
            gid = ids[gkey]
            values = (r.home_phone, r.work_phone, r.mobile_phone, r.email)
            if self.contacts.get(gid) != values:
                contacts.append(store.GuardianContact(gid, *values))
                self.contacts[gid] = values
                changed.add(gkey)
        await store.set_guardian_contacts(conn, contacts)

        for w in wants:
            state = states[w.key]
            self.summary.add(w.kind, "updated" if state == "unchanged" and w.key in changed
                             else state)

    def _taught(self, st: StaffRec, pairs: list[tuple[str, str]], known: dict[str, int],
                kind: str) -> set[tuple[Any, ...]]:
        out: set[tuple[Any, ...]] = set()
        for code, subject in pairs:
            if code in known:
                out.add((known[code], self.snap.subject_name(subject)))
            else:
                self.summary.skipped.append(Skip(f"enseignement de {st.key} ({st.name})",
                                                 f"{kind} inconnue « {code} »"
                                                 if kind == "classe"
                                                 else f"{kind} inconnu « {code} »"))
        return out

    async def _relation(self, conn: aiosqlite.Connection, table: str,
                        wanted: dict[int, set[tuple[Any, ...]]]) -> set[int]:
        """Make each key's rows exactly `wanted[key]`; the keys whose rows changed."""
        mirror = self.relations[table]
        removed: list[tuple[Any, ...]] = []
        added: list[tuple[Any, ...]] = []
        changed = set()
        for key, rows in wanted.items():
            have = mirror.get(key, set())
            if have == rows:
                continue
            removed.extend((key, *r) for r in have - rows)
            added.extend((key, *r) for r in rows - have)
            mirror[key] = set(rows)
            changed.add(key)
        await store.change_relation(conn, table, removed, added)
        return changed

    async def _school_row(self, conn: aiosqlite.Connection, rec: SchoolRec) -> int:
        school = (await store.school_by_external_id(conn, rec.key)
                  or await store.school_by_uai_in(conn, rec.uai))
        if school is None:
            sid = await store.insert_school(conn, rec.uai, rec.name, rec.town, rec.key)
            self.summary.add("schools", "created")
        else:
            sid = school.id
            if (school.uai, school.name, school.town, self.school_ids.get(rec.key)) != (
                    rec.uai, rec.name, rec.town, sid):
                await store.update_school(conn, sid, rec.uai, rec.name, rec.town, rec.key)
                self.summary.add("schools", "updated")
            else:
                self.summary.add("schools", "unchanged")
        self.school_ids[rec.key] = sid
        return sid

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
                      pupils: list[PupilRec]) -> dict[str, int]:
        names = dict(rec.groups)
        for p in pupils:
            for g in p.groups:
                names.setdefault(g, g)
        cur = await conn.execute("SELECT code FROM class_groups WHERE school_id = ?", (sid,))
        existing = {r[0] for r in await cur.fetchall()}
        out: dict[str, int] = {}
        for code, name in sorted(names.items()):
            out[code], changed = await store.upsert_group(conn, sid, code, name)
            self.summary.add("groups", "unchanged" if not changed else
                             ("updated" if code in existing else "created"))
        return out

    async def _accounts(self, conn: aiosqlite.Connection, wants: list[_Want]) -> dict[str, str]:
        """Create, update or re-enable these people in bulk: key → "created", "updated" or
        "unchanged"."""
        states: dict[str, str] = {}
        new: list[tuple[str, Role, str, int | None, str]] = []
        updates: list[tuple[int, Role, str, int | None]] = []
        enable: list[int] = []
        for w in wants:
            self.seen.add(w.key)
            acc = self.accounts.get(w.key)
            if acc is None:
                login = unique_login(base_login(w.first, w.last), self.taken, self.tried)
                new.append((login, w.role, w.name, w.school_id, w.key))
                states[w.key] = "created"
                continue
            u = acc.user
            state = "unchanged"
            if (u.role, u.name, u.school_id) != (w.role, w.name, w.school_id) or (
                    acc.source != FEED):
                updates.append((u.id, w.role, w.name, w.school_id))
                state = "updated"
            disabled, feed_disabled = u.disabled, acc.feed_disabled
            if u.disabled and acc.feed_disabled:
                enable.append(u.id)
                self.summary.add(w.kind, "enabled")
                disabled, feed_disabled = False, False
            states[w.key] = state
            self.accounts[w.key] = FeedAccount(
                user=User(id=u.id, login=u.login, role=w.role, name=w.name,
                          school_id=w.school_id, disabled=disabled, external_id=w.key),
                source=FEED, feed_disabled=feed_disabled)
        if new:
            ids = await identity_store.insert_feed_users(conn, FEED, NO_CODE, new)
            for login, role, name, school_id, key in new:
                self.accounts[key] = FeedAccount(
                    user=User(id=ids[key], login=login, role=role, name=name,
                              school_id=school_id, external_id=key), source=FEED)
        await identity_store.update_feed_users(conn, FEED, updates)
        await identity_store.enable_users(conn, enable)
        return states

    async def _absentees(self, unit: Callable[[], Any]) -> None:
        """Disable the feed's accounts this full snapshot no longer names, then delete those
        disabled for longer than the delay."""
        kinds = {Role.STUDENT: "pupils", Role.PARENT: "guardians"}
        async with unit() as conn:
            for key, acc in sorted(self.accounts.items()):
                u = acc.user
                if acc.source != FEED or key in self.seen or u.disabled:
                    continue
                if await self._protected(conn, u):
                    continue
                await identity_store.disable_feed_user(conn, u.id, self.now.timestamp())
                self.summary.add(kinds.get(u.role, "staff"), "disabled")
            cutoff = self.now - dt.timedelta(days=self.delete_after_days)
            for u in await _feed_disabled_before(conn, cutoff.timestamp()):
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


async def _feed_disabled_before(conn: aiosqlite.Connection, cutoff: float) -> list[Any]:
    cur = await conn.execute(
        "SELECT id, role FROM users WHERE source = ? AND disabled = 1 AND feed_disabled = 1"
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
    """Read the snapshot (in a thread: parsing 50 MB is CPU work) and apply it.

    A dry run applies it to a copy of the database (SQLite's online backup, a read that
    blocks no writer) and throws the copy away: a running server's writes never wait for
    it, where one transaction held for the whole run would make them time out. PostgreSQL's
    readers and writers do not wait for one another: there the dry run is one transaction,
    rolled back."""
    if not dry_run:
        # One import at a time, whatever the node or the process: two runs interleaved
        # would each diff against a truth the other is changing (accounts created twice,
        # logins taken twice). A second one is refused at once, nothing written.
        async with db.exclusive(IMPORT_LOCK) as alone:
            if not alone:
                raise AafError(ALREADY_RUNNING)
            snap = await asyncio.to_thread(read_snapshot, folder, prefix, progress)
            return await Importer(db, snap, now=now or dt.datetime.now(dt.UTC),
                                  delete_after_days=delete_after_days,
                                  progress=progress).run()
    snap = await asyncio.to_thread(read_snapshot, folder, prefix, progress)
    when = now or dt.datetime.now(dt.UTC)
    if db.engine == "postgres" or str(db.path) == ":memory:":
        return await Importer(db, snap, now=when, delete_after_days=delete_after_days,
                              dry_run=dry_run, progress=progress).run()
    with tempfile.TemporaryDirectory(prefix="aaf-dry-run-") as tmp:
        copy_path = Path(tmp) / "copy.sqlite3"
        progress("Simulation : copie de la base…")
        await asyncio.to_thread(_backup, db.path, copy_path)
        copy = await Database.open(copy_path)
        try:
            summary = await Importer(copy, snap, now=when, delete_after_days=delete_after_days,
                                     progress=progress).run()
        finally:
            await copy.close()
    summary.dry_run = True
    return summary


def _backup(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()

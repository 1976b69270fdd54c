"""Writes a `DemoPlan` into the database, idempotently, and the accounts file.

Re-running changes nothing that is already right: schools, classes and users are upserted by
their natural keys (UAI, class name, login), slots keep their ids, and a stored code hash is
kept when it still verifies the demo code, whatever its parameters.

Demo codes are hashed with cheap Argon2id parameters (`DEMO_KDF`): the codes are public (they
are written to demo-accounts.json) and 1,381 full-strength hashes took two minutes on a fresh
2-core machine. An Argon2 hash string carries its own parameters, so the first login with a
demo code verifies the cheap hash and stores a full-strength one (`IdentityService.login`
rehashes whatever `needs_rehash` flags); a re-run keeps an upgraded hash as it is.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from realtime.attendance import store as attendance
from realtime.db import Database
from realtime.demo.chat import seed_chat
from realtime.demo.plan import DemoPlan, Person
from realtime.directory import store as directory
from realtime.directory.model import CourseSlot, level_of
from realtime.identity import store as identity
from realtime.identity.codes import CodeHasher
from realtime.identity.model import Role

# Argon2id at its cheapest sensible setting (about a millisecond): see the module docstring.
DEMO_KDF = (1, 1024, 1)

Progress = Callable[[int, int], None]
"""Called with (done, total) as the personal codes are hashed or checked."""

_hasher: CodeHasher | None = None


def _init_worker(time_cost: int, memory_kib: int, parallelism: int) -> None:
    global _hasher
    _hasher = CodeHasher(time_cost, memory_kib, parallelism)


def _hash_if_needed(existing: str | None, code: str) -> str | None:
    """A new hash, or None when the existing one already verifies this code (a hash
    upgraded at login is kept: its parameters are in the string)."""
    assert _hasher is not None
    if existing and _hasher.verify(existing, code):
        return None
    return _hasher.hash(code)


def _hash_chunk(pairs: list[tuple[str | None, str]]) -> list[str | None]:
    return [_hash_if_needed(existing, code) for existing, code in pairs]


_CHUNK = 50  # codes per pool task: a millisecond of hashing is not worth a round trip each


async def _hashes(
    people: list[Person], existing: dict[str, str], kdf: tuple[int, int, int],
    progress: Progress | None,
) -> dict[str, str | None]:
    loop = asyncio.get_running_loop()
    workers = max(1, min(4, os.cpu_count() or 1))
    done = 0

    async def chunk(pool: ProcessPoolExecutor, part: list[Person]) -> list[str | None]:
        nonlocal done
        pairs = [(existing.get(p.login), p.code) for p in part]
        result = await loop.run_in_executor(pool, _hash_chunk, pairs)
        done += len(part)
        if progress is not None:
            progress(done, len(people))
        return result

    parts = [people[i:i + _CHUNK] for i in range(0, len(people), _CHUNK)]
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=kdf) as pool:
        results = await asyncio.gather(*(chunk(pool, part) for part in parts))
    flat = [h for part in results for h in part]
    return {p.login: h for p, h in zip(people, flat, strict=True)}


async def seed(
    db: Database, plan: DemoPlan, kdf: tuple[int, int, int] = DEMO_KDF,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Apply the plan; return counts of what exists afterwards."""
    existing = await identity.code_hashes(db)
    new_hashes = await _hashes(plan.people, existing, kdf, progress)

    async with db.transaction() as conn:
        school_ids: dict[str, int] = {}
        class_ids: dict[tuple[str, str], int] = {}
        for s in plan.schools:
            sid = await directory.upsert_school(conn, s.uai, s.name, s.town)
            school_ids[s.uai] = sid
            for cname in s.classes:
                class_ids[(s.uai, cname)] = await directory.upsert_class(
                    conn, sid, cname, level_of(cname)
                )

        user_ids: dict[str, int] = {}
        for p in plan.people:
            role = Role(p.role)
            school_id = school_ids[p.school_uai] if p.school_uai else None
            if role is Role.PARENT:
                school_id = None  # a guardian belongs to no school; their children do
            code_hash = new_hashes[p.login]
            if p.login in existing:
                found = await identity.user_id_by_login(conn, p.login)
                assert found is not None
                uid = found
                await identity.update_user(conn, uid, role=role, name=p.name, school_id=school_id)
                if code_hash is not None:
                    await identity.set_code_hash(conn, uid, code_hash)
            else:
                assert code_hash is not None
                user = await identity.insert_user(
                    conn, login=p.login, role=role, name=p.name, school_id=school_id,
                    code_hash=code_hash,
                )
                uid = user.id
            user_ids[p.login] = uid

        for p in plan.people:
            uid = user_ids[p.login]
            if p.role == "student":
                await directory.enroll(conn, uid, class_ids[(p.school_uai, p.classes[0])])
            elif p.role == "parent":
                for child in p.children:
                    await directory.link_guardian(conn, uid, user_ids[child])

        for s in plan.schools:
            for slot in s.slots:
                await directory.add_teaching(
                    conn, user_ids[slot.teacher_login], class_ids[(s.uai, slot.class_name)],
                    slot.subject,
                )
            await directory.sync_school_timetable(
                conn,
                school_ids[s.uai],
                [
                    CourseSlot(
                        id=0,
                        school_id=school_ids[s.uai],
                        class_id=class_ids[(s.uai, sl.class_name)],
                        teacher_id=user_ids[sl.teacher_login],
                        subject=sl.subject,
                        room=sl.room,
                        weekday=sl.weekday,
                        start=sl.start,
                        end=sl.end,
                    )
                    for sl in s.slots
                ],
            )

        for s in plan.schools:
            for hall in s.study_halls:
                await attendance.upsert_study_hall(
                    conn, school_ids[s.uai], user_ids[hall.supervisor_login], hall.room,
                    hall.weekday, hall.start, hall.end)

    await seed_chat(db, plan)
    counts = {}
    for table in ("schools", "classes", "users", "enrollments", "guardianships", "course_slots",
                  "study_halls"):
        row = await db.fetchone(f"SELECT COUNT(*) AS n FROM {table}")
        counts[table] = int(row["n"]) if row else 0
    return counts


def accounts(plan: DemoPlan) -> list[dict[str, Any]]:
    """One object per account, as the README and tests read them."""
    school_names = {s.uai: s.name for s in plan.schools}
    out = []
    for p in plan.people:
        item: dict[str, Any] = {
            "login": p.login,
            "code": p.code,
            "role": p.role,
            "name": p.name,
            "school": school_names.get(p.school_uai) if p.school_uai else None,
            "classes": p.classes,
            "children": p.children,
        }
        if p.subjects:
            item["subjects"] = p.subjects
        out.append(item)
    return out


def write_accounts(plan: DemoPlan, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(accounts(plan), ensure_ascii=False, indent=1) + "\n", "utf-8")
    tmp.replace(path)

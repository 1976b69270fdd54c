"""A few deterministic conversations per demo school, so the messagerie is not empty.

Per school: a parent writes to a teacher of their child and gets an answer; the office sends
an information to the parents of one class; the teacher opens a group with three pupils.
They are written once (a school that already has conversations is left alone), on the
second teacher of each school so the first one's inbox stays empty for the tests.
"""

from __future__ import annotations

from realtime.chat import store
from realtime.db import Database
from realtime.demo.plan import DemoPlan, Person
from realtime.directory import store as directory
from realtime.identity import store as identity

START = 1_767_600_000.0  # a fixed morning (January 2026), for deterministic timestamps


def _by_role(plan: DemoPlan, uai: str, role: str) -> list[Person]:
    return [p for p in plan.people if p.school_uai == uai and p.role == role]


async def seed_chat(db: Database, plan: DemoPlan) -> int:
    """Write the demo conversations; return how many were created."""
    ids = await identity.ids_by_login(db)
    created = 0
    for school in plan.schools:
        found = await directory.school_by_uai(db, school.uai)
        if found is None:
            continue
        school_id = found.id
        if await store.school_has_conversations(db, school_id):
            continue
        teachers = [t for t in _by_role(plan, school.uai, "teacher") if t.classes]
        staff = _by_role(plan, school.uai, "staff")
        if len(teachers) < 2 or not staff:
            continue
        teacher = teachers[1]
        klass = teacher.classes[-1]
        pupils = [p for p in _by_role(plan, school.uai, "student") if p.classes == [klass]]
        parents = [p for p in plan.people if p.role == "parent"
                   and any(c in {s.login for s in pupils} for c in p.children)]
        if len(pupils) < 3 or not parents:
            continue
        t, parent = ids[teacher.login], ids[parents[0].login]
        now = START
        async with db.transaction() as conn:
            conv = await store.create(conn, school_id=school_id, kind="direct", title="",
                                      creator_id=parent, members=[parent, t], now=now)
            for author, body in (
                    (parent, "Bonjour, mon enfant a oublié son cahier de textes : pouvez-vous"
                             " me dire les devoirs pour jeudi ?"),
                    (t, "Bonjour, exercices 4 et 5 page 112, et relire la leçon sur les"
                        " fractions. Bonne soirée.")):
                now += 600
                _msg, seq = await store.insert_message(conn, conv, author, body, now, [])
                await store.mark_read(conn, conv, author, seq, now)
            info = await store.create(
                conn, school_id=school_id, kind="information",
                title=f"Réunion parents-professeurs ({klass})", creator_id=ids[staff[0].login],
                members=[ids[staff[0].login], *(ids[p.login] for p in parents)], now=now)
            await store.insert_message(
                conn, info, ids[staff[0].login],
                f"La réunion parents-professeurs de la {klass} aura lieu mardi à 18 h en"
                " salle polyvalente. Merci d'accuser réception.", now + 60, [])
            group = await store.create(
                conn, school_id=school_id, kind="group", title="Exposé sur le Moyen Âge",
                creator_id=t, members=[t, *(ids[p.login] for p in pupils[:3])], now=now)
            await store.insert_message(conn, group, t, "Voici votre groupe pour l'exposé :"
                                       " répartissez-vous les parties d'ici vendredi.",
                                       now + 120, [])
        created += 3
    return created

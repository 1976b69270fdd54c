"""What the messagerie tells people beyond the messages themselves: why a recipient cannot be
written to now (quiet hours), the class distribution lists of the school team, who read and
who acknowledged each of one's messages, and a report's outcome to whoever reported it.

A part of ChatService (like Attachments), given the service's own peer references and
message check: every decision still goes through `realtime/policy.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from realtime.chat import french, people, store
from realtime.chat.model import Message
from realtime.chat.rooms import ChatRooms
from realtime.db import Database
from realtime.directory import reads as directory
from realtime.errors import AppError, not_found
from realtime.identity.model import Principal, Role
from realtime.policy import Action, ChatPeerRef, ClassRef, may

AUDIENCES = {"parents": "Parents des élèves de {name}", "students": "Élèves de {name}"}
NOT_FOUND_LIST = "Liste de diffusion introuvable ou hors de vos classes."


class ClassList(msgspec.Struct, frozen=True):
    """A class's distribution list: `audience` is "parents" or "students"."""

    class_id: int
    audience: str


def quiet_refusal(p: Principal, ref: ChatPeerRef) -> AppError | None:
    """`quiet_hours` when the only thing keeping `p` from writing to `ref` is the time of day
    (the same request at the start of the school's day would be allowed)."""
    rules = ref.rules
    if not rules.quiet_hours:
        return None
    at_opening = msgspec.structs.replace(ref, local_minute=rules.day_start_min)
    if not may(p, Action.CHAT_WRITE_TO, at_opening):
        return None
    when = ("à partir de" if ref.local_minute < rules.day_start_min
            else "demain à partir de")
    return AppError(
        "quiet_hours",
        f"Les familles et les élèves écrivent à l'établissement de"
        f" {french.hour(rules.day_start_min)} à {french.hour(rules.day_end_min)}."
        f" Vous pourrez écrire {when} {french.hour(rules.day_start_min)} ; une conversation"
        f" déjà ouverte reste possible.",
        details={"user_id": ref.id, "opens_at": rules.day_start_min,
                 "closes_at": rules.day_end_min})


Peers = Callable[[Principal, list[int]], Awaitable[dict[int, ChatPeerRef]]]
Readable = Callable[[Principal, int], Awaitable[tuple[Message, Any]]]


class Outreach:
    def __init__(self, db: Database, tz: ZoneInfo, clock: Callable[[], float], peers: Peers,
                 readable: Readable, rooms: ChatRooms) -> None:
        self.db = db
        self.tz = tz
        self.clock = clock
        self.peers = peers
        self._message = readable
        self._emit_users = rooms.emit_users

    # --- quiet hours -------------------------------------------------------------------

    async def quiet_now(self, p: Principal) -> dict[str, Any] | None:
        """For the compose form: the school team hidden from `p` by quiet hours right now,
        and when they can be written to again (None when nobody is hidden)."""
        if p.role not in (Role.PARENT, Role.STUDENT):
            return None
        ids = await people.candidates(self.db, sorted(p.school_ids), p.role)
        for ref in (await self.peers(p, ids)).values():
            err = quiet_refusal(p, ref) if not may(p, Action.CHAT_WRITE_TO, ref) else None
            if err is not None:
                return {"message": err.message, **(err.details or {})}
        return None

    # --- class distribution lists ------------------------------------------------------

    async def class_lists(self, p: Principal) -> list[dict[str, Any]]:
        """The lists `p` may write to: a teacher's classes, the CPE's whole school."""
        if p.role not in (Role.TEACHER, Role.CPE) or p.school_id is None:
            return []
        school_classes = sorted(
            (c for c in await directory.classes_of_schools(self.db, [p.school_id])
             if may(p, Action.CHAT_WRITE_TO_CLASS, ClassRef(id=c.id, school_id=c.school_id))),
            key=lambda c: c.name)
        audiences = await self._audiences([c.id for c in school_classes])
        out = []
        for c in school_classes:
            for audience, label in AUDIENCES.items():
                out.append({"class_id": c.id, "class_name": c.name, "audience": audience,
                            "label": label.format(name=c.name),
                            "count": len(audiences[c.id][audience])})
        return out

    async def _audiences(self, class_ids: list[int]) -> dict[int, dict[str, set[int]]]:
        """Each class's enabled pupils ("students") and their enabled guardians ("parents")."""
        pupils = await directory.pupils_of_classes(self.db, class_ids)
        guardians = await directory.guardians_of(
            self.db, [s for ss in pupils.values() for s in ss])
        active = await directory.enabled(
            self.db, {*guardians, *(g for gs in guardians.values() for g in gs)})
        return {c: {"students": {s for s in ss if s in active},
                    "parents": {g for s in ss for g in guardians[s] if g in active}}
                for c, ss in pupils.items()}

    async def expand_lists(self, p: Principal, lists: list[ClassList]
                           ) -> tuple[list[int], str]:
        """The members of these lists (enabled accounts) and a title naming them."""
        members: set[int] = set()
        titles: list[str] = []
        found = await directory.classes(self.db, [item.class_id for item in lists])
        audiences = await self._audiences(list(found))
        for item in lists:
            c = found.get(item.class_id)
            if c is None or item.audience not in AUDIENCES or not may(
                    p, Action.CHAT_WRITE_TO_CLASS, ClassRef(id=c.id, school_id=c.school_id)):
                raise AppError("not_found", NOT_FOUND_LIST, details={"class_id": item.class_id})
            members.update(audiences[c.id][item.audience])
            titles.append(AUDIENCES[item.audience].format(name=c.name))
        return sorted(members), ", ".join(titles)

    # --- read receipts and acknowledgements ----------------------------------------------

    async def receipts(self, p: Principal, msg_id: int) -> dict[str, Any]:
        """Who of the other participants read this message of mine, and when; for an
        information, who acknowledged it, and when. Names, not only counts."""
        msg, loaded = await self._message(p, msg_id)
        if msg.author_id != p.id or loaded.conv.kind == "live":
            raise not_found("Message introuvable.")
        others = [u for u in loaded.members if u != p.id]
        parts = {x.user_id: x for x in await store.participants(self.db, loaded.conv.id)}
        times = await store.read_times(self.db, loaded.conv.id, msg.seq)
        acks = ((await store.acks_of(self.db, [msg.id]))[msg.id]
                if loaded.conv.kind == "information" else {})
        found = await people.people(self.db, others)
        rows = []
        for uid in others:
            read = uid in parts and parts[uid].read_seq >= msg.seq
            rows.append({"user_id": uid,
                         "name": found[uid].name if uid in found else "Compte désactivé",
                         "role": found[uid].role if uid in found else "",
                         "read": read, "read_at": times.get(uid) if read else None,
                         "acked_at": acks.get(uid)})
        rows.sort(key=lambda r: (not r["read"], r["name"]))
        return {"message_id": msg.id, "conversation_id": msg.conversation_id,
                "kind": loaded.conv.kind, "recipients": rows,
                "read": sum(r["read"] for r in rows), "acked": len(acks), "total": len(rows)}

    # --- a report's outcome, for its reporter --------------------------------------------

    def _outcome(self, r: dict[str, Any], names: dict[int, people.Person]) -> dict[str, Any]:
        author = names[r["author_id"]].name if r["author_id"] in names else "un compte supprimé"
        when = french.day_and_time(r["handled_at"], self.tz)
        return {"report_id": r["id"], "message_id": r["message_id"],
                "conversation_id": r["conversation_id"], "handled_at": r["handled_at"],
                "author_name": author,
                "message": f"La vie scolaire a traité votre signalement du message"
                           f" {french.de(author)} ({when})."}

    async def _outcomes(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = await people.people(self.db, sorted({r["author_id"] for r in rows}))
        return [self._outcome(r, names) for r in rows if r["handled_at"] is not None]

    async def tell_reporters(self, report_ids: list[int]) -> None:
        """After a CPE handled a message: each reporter's devices hear the outcome at once;
        until one of them says it was seen, it also waits in their next welcome."""
        rows = [r for r in await store.reports_by_ids(self.db, report_ids)
                if r["handled_at"] is not None]
        names = await people.people(self.db, sorted({r["author_id"] for r in rows}))
        for r in rows:
            await self._emit_users([r["reporter_id"]], "report_outcome", self._outcome(r, names))

    async def untold(self, p: Principal) -> list[dict[str, Any]]:
        return await self._outcomes(await store.untold_outcomes(self.db, p.id))

    async def outcomes_seen(self, p: Principal, report_ids: list[int]) -> int:
        async with self.db.transaction() as conn:
            return await store.mark_told(conn, p.id, report_ids, self.clock())

    async def my_reports(self, p: Principal) -> list[dict[str, Any]]:
        """What I reported, and where each stands (the CPE's note stays internal)."""
        rows = await store.reports_of_reporter(self.db, p.id)
        names = await people.people(self.db, sorted({r["author_id"] for r in rows}))
        return [{"report_id": r["id"], "message_id": r["message_id"],
                 "conversation_id": r["conversation_id"], "created_at": r["created_at"],
                 "reason": r["reason"], "handled_at": r["handled_at"],
                 "author_name": names[r["author_id"]].name if r["author_id"] in names
                 else "un compte supprimé",
                 "state": "handled" if r["handled_at"] else "open"} for r in rows]

"""Messaging: the only place that decides. Load → policy → domain → persist → publish.

The service composes three parts: `ChatRooms` (rooms.py) keeps the connections and emits
after the commit, `Attachments` the files of messages, `Outreach` what the messagerie tells
beyond messages (quiet hours, class lists, receipts, report outcomes). What a socket missed
while away it asks for with `sync` (seq after seq, from SQLite).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import socketio

from realtime.boards.service import board_ref_of, visible_board
from realtime.chat import model, people, store
from realtime.chat.attachments import Attachments
from realtime.chat.model import Attachment, Conversation, Limits, Message
from realtime.chat.outreach import ClassList, Outreach, quiet_refusal
from realtime.chat.rooms import ChatRooms, acks_for, describe
from realtime.db import Database
from realtime.directory import reads as directory
from realtime.errors import AppError, not_found
from realtime.files import FileStore
from realtime.identity.model import Principal, Role
from realtime.policy import (
    Action,
    ChatMessageRef,
    ChatPeerRef,
    ChatRules,
    ConversationRef,
    SchoolRef,
    may,
)
from realtime.presence.service import PresenceService

NOT_FOUND_CONV = "Conversation introuvable."
NOT_FOUND_MSG = "Message introuvable."
NOT_FOUND_REPORT = "Signalement introuvable."
NOT_FOUND_PEER = "Destinataire introuvable ou hors de vos contacts autorisés."


class _AlreadyDone(Exception):
    """Inside a transaction: the report was already in the state asked for."""


class Loaded:
    """A conversation with its members and its policy reference, loaded once per call."""

    __slots__ = ("conv", "members", "ref")

    def __init__(self, conv: Conversation, members: list[int], ref: ConversationRef) -> None:
        self.conv, self.members, self.ref = conv, members, ref


class ChatService:
    """Decisions of the messagerie, on the parts it composes (`rooms`, `attachments`,
    `outreach`), which decide nothing the service has not checked first."""

    def __init__(self, db: Database, sio: socketio.AsyncServer, files: FileStore,
                 limits: Limits, tz: ZoneInfo, clock: Callable[[], float] = time.time,
                 presence: PresenceService | None = None) -> None:
        self.db = db
        self.limits = limits
        self.tz = tz
        self.clock = clock
        self.rooms = ChatRooms(db, sio, presence)
        # The parts read the time through the service, so a test's clock reaches them all.
        self.attachments = Attachments(db, files, limits, self.now, self._message)
        self.outreach = Outreach(db, tz, self.now, self.peers, self._message, self.rooms)

    def now(self) -> float:
        return self.clock()

    # --- connections -------------------------------------------------------------------

    async def connected(self, sid: str, p: Principal) -> dict[str, Any]:
        """A new connection: it hears everything addressed to `p`; the welcome to send it."""
        await self.rooms.enter_user(sid, p.id)
        return await self.welcome(p)

    async def disconnected(self, sid: str) -> None:
        await self.rooms.forget(sid)

    async def open(self, p: Principal, sid: str, conv_id: int) -> dict[str, Any]:
        """A conversation on screen: its detail, and `p` shown as viewing it."""
        detail = await self.detail(p, conv_id)
        await self.rooms.viewing(sid, p, conv_id)
        return {"conversation": detail}

    async def close(self, sid: str, conv_id: int) -> None:
        """The conversation left the screen: no longer shown as viewing it."""
        await self.rooms.not_viewing(sid, conv_id)

    async def live_join(self, p: Principal, sid: str, board_id: int) -> dict[str, Any]:
        """Open a board session's chat: the latest page, then live events in the room."""
        conv = await self.live(p, board_id)
        await self.rooms.enter_live(sid, conv.id)
        await self.rooms.viewing(sid, p, conv.id)
        return {"conversation": await self.detail(p, conv.id),
                **await self.history(p, conv.id, None)}

    async def live_leave(self, p: Principal, sid: str, board_id: int) -> None:
        conv = await self.live(p, board_id)
        await self.rooms.leave_live(sid, conv.id)
        await self.rooms.not_viewing(sid, conv.id)

    # --- loading and policy ------------------------------------------------------------

    async def _ref(self, conv: Conversation, members: list[int]) -> ConversationRef:
        board = None
        if conv.board_id is not None:
            board = await board_ref_of(self.db, conv.board_id)
        return ConversationRef(id=conv.id, school_id=conv.school_id, kind=conv.kind,
                               creator_id=conv.creator_id, participants=frozenset(members),
                               open=conv.open, board=board)

    async def load(self, p: Principal, conv_id: int, action: Action = Action.CHAT_VIEW
                   ) -> Loaded:
        """The conversation if `p` may act on it; absent and forbidden answer alike."""
        found = await store.get_with_members(self.db, conv_id)
        if found is None:
            raise not_found(NOT_FOUND_CONV)
        conv, members = found
        loaded = Loaded(conv, members, await self._ref(conv, members))
        if not may(p, Action.CHAT_VIEW, loaded.ref):
            raise not_found(NOT_FOUND_CONV)
        if action is not Action.CHAT_VIEW and not may(p, action, loaded.ref):
            raise AppError("forbidden", _why_not(action, loaded))
        return loaded

    async def viewable(self, p: Principal, conv_id: int) -> bool:
        """May `p` see this conversation (and so who has it open): presence asks."""
        try:
            await self.load(p, conv_id)
        except AppError:
            return False
        return True

    async def _message(self, p: Principal, msg_id: int) -> tuple[Message, Loaded]:
        msg = await store.message(self.db, msg_id)
        if msg is None:
            raise not_found(NOT_FOUND_MSG)
        try:
            loaded = await self.load(p, msg.conversation_id)
        except AppError as err:
            raise not_found(NOT_FOUND_MSG) from err
        return msg, loaded

    async def peers(self, p: Principal, ids: list[int], rules: dict[int, ChatRules] | None = None
                    ) -> dict[int, ChatPeerRef]:
        """Policy references for these users, at this minute, under their school's rules."""
        found = await people.people(self.db, ids)
        rules = rules if rules is not None else {}
        minute = model.local_minute(self.clock(), self.tz)
        out: dict[int, ChatPeerRef] = {}
        for uid, person in found.items():
            shared = sorted(person.school_ids & p.school_ids) or sorted(person.school_ids)
            school = shared[0] if shared else None
            if school is not None and school not in rules:
                rules[school] = await store.rules_of(self.db, school)
            out[uid] = ChatPeerRef(id=uid, role=person.role, school_ids=person.school_ids,
                                   class_ids=person.class_ids,
                                   rules=rules.get(school, ChatRules()) if school else ChatRules(),
                                   local_minute=minute)
        return out

    async def recipients(self, p: Principal) -> list[dict[str, Any]]:
        """Everyone `p` may start a conversation with now, by name (for the compose form)."""
        schools = sorted(p.school_ids)
        ids = await people.candidates(self.db, schools, p.role)
        refs = await self.peers(p, ids)
        allowed = [uid for uid, ref in refs.items() if may(p, Action.CHAT_WRITE_TO, ref)]
        found = await people.people(self.db, allowed)
        return sorted((found[u].public() for u in allowed),
                      key=lambda x: (str(x["role"]), str(x["name"])))

    async def _check_peers(self, p: Principal, ids: list[int]) -> dict[int, ChatPeerRef]:
        if len(ids) > self.limits.participants_max:
            raise AppError("too_large",
                           f"{self.limits.participants_max} destinataires au plus.")
        refs = await self.peers(p, ids)
        for uid in ids:
            ref = refs.get(uid)
            if ref is None or not may(p, Action.CHAT_WRITE_TO, ref):
                # Someone one may write to in the daytime is not hidden at night: the
                # refusal says it is the hour, and when it opens again.
                quiet = quiet_refusal(p, ref) if ref is not None else None
                if quiet is not None:
                    raise quiet
                raise AppError("not_found", NOT_FOUND_PEER, details={"user_id": uid})
        return refs

    # --- conversations -----------------------------------------------------------------

    async def create(self, p: Principal, kind: str, members: list[int], title: str,
                     body: str, attachment_ids: list[int],
                     lists: list[ClassList] | None = None) -> dict[str, Any]:
        """A new conversation; `lists` adds the members of class distribution lists (the
        parents or the pupils of a class), for a group or an information only."""
        listed: list[int] = []
        if lists:
            if kind == "direct":
                raise AppError("invalid", "Une liste de diffusion s'écrit en groupe ou en"
                                          " information.")
            listed, named = await self.outreach.expand_lists(p, lists)
            if not listed:
                raise AppError("invalid", "Cette liste de diffusion est vide.")
            title = title or named[:self.limits.title_max]
        others = sorted((set(members) | set(listed)) - {p.id})
        if not others:
            raise AppError("invalid", "Choisissez au moins un destinataire.")
        title = model.clean_title(title, self.limits)
        if kind == "direct":
            if len(others) != 1:
                raise AppError("invalid", "Une conversation directe a un seul destinataire.")
        elif kind in ("group", "information"):
            if p.school_id is None or not may(p, Action.CHAT_START_GROUP,
                                              SchoolRef(id=p.school_id)):
                raise AppError("forbidden", "Seule l'équipe de l'établissement ouvre un groupe"
                                            " ou envoie une information.")
            if not title:
                raise AppError("invalid", "Donnez un titre au groupe ou à l'information.")
        else:
            raise AppError("invalid", "Type de conversation inconnu.")
        refs = await self._check_peers(p, others)
        body = model.clean_body(body, self.limits, allow_empty=bool(attachment_ids))
        school = p.school_id if p.school_id is not None else min(
            refs[others[0]].school_ids & p.school_ids)
        if kind == "direct":
            existing = await self._direct_between(p.id, others[0], school)
            if existing is not None:
                sent = await self.send(p, existing, body, attachment_ids)
                return {"conversation_id": existing, "created": False, **sent}
        now = self.clock()
        files = await self.attachments.pending(p, attachment_ids)
        async with self.db.transaction() as conn:
            conv_id = await store.create(conn, school_id=school, kind=kind, title=title,
                                         creator_id=p.id, members=[p.id, *others], now=now)
            msg_id, seq = await store.insert_message(conn, conv_id, p.id, body, now,
                                                     [f.id for f in files])
            await store.mark_read(conn, conv_id, p.id, seq, now)
            conn.on_commit(lambda: self.rooms.publish_new_conversation(conv_id))
            conn.on_commit(lambda: self.rooms.publish(conv_id, seq))
        return {"conversation_id": conv_id, "created": True, "message_id": msg_id, "seq": seq}

    async def _direct_between(self, a: int, b: int, school: int) -> int | None:
        return await store.direct_between(self.db, a, b, school)

    async def summaries(self, p: Principal) -> list[dict[str, Any]]:
        rows = await store.of_user(self.db, p.id)
        ids = [r["conversation"].id for r in rows]
        members = await store.members_of(self.db, ids)
        last = await store.last_messages(self.db, ids)
        found = await people.people(self.db, sorted({u for v in members.values() for u in v}))
        out = []
        for r in rows:
            conv: Conversation = r["conversation"]
            ref = await self._ref(conv, members[conv.id])
            if not may(p, Action.CHAT_VIEW, ref):
                continue  # e.g. a disabled account, a conversation of a school left behind
            out.append({
                **describe(conv, members[conv.id], found), "read_seq": r["read_seq"],
                "muted": r["muted"], "unread": r["unread"],
                "last": last[conv.id].view() if conv.id in last else None,
                "can_post": may(p, Action.CHAT_POST, ref),
                "can_moderate": may(p, Action.CHAT_MODERATE, ref),
            })
        return out

    async def detail(self, p: Principal, conv_id: int) -> dict[str, Any]:
        loaded = await self.load(p, conv_id)
        parts = await store.participants(self.db, conv_id) if loaded.conv.kind != "live" else []
        found = await people.people(self.db, loaded.members)
        me = next((x for x in parts if x.user_id == p.id), None)
        return {**describe(loaded.conv, loaded.members, found),
                "read": {str(x.user_id): x.read_seq for x in parts},
                "read_seq": me.read_seq if me else loaded.conv.last_seq,
                "muted": me.muted if me else False,
                "can_post": may(p, Action.CHAT_POST, loaded.ref),
                "can_moderate": may(p, Action.CHAT_MODERATE, loaded.ref),
                "can_invite": may(p, Action.CHAT_INVITE, loaded.ref)}

    async def welcome(self, p: Principal) -> dict[str, Any]:
        conversations = await self.summaries(p)
        return {"me": {"id": p.id, "name": p.user.name, "role": p.role.value},
                "conversations": conversations,
                "report_outcomes": await self.outreach.untold(p),
                "unread": sum(c["unread"] for c in conversations if not c["muted"]),
                "limits": {"body_max": self.limits.body_max,
                           "attachment_max_bytes": self.limits.attachment_max_bytes,
                           "attachments_per_message": self.limits.attachments_per_message,
                           "edit_window_s": self.limits.edit_window_s,
                           "history_page": self.limits.history_page,
                           "types": model.ALLOWED_TYPES_FR}}

    async def invite(self, p: Principal, conv_id: int, members: list[int]) -> int:
        loaded = await self.load(p, conv_id, Action.CHAT_INVITE)
        new = sorted(set(members) - set(loaded.members))
        if not new:
            raise AppError("invalid", "Ces personnes participent déjà.")
        if len(new) + len(loaded.members) > self.limits.participants_max:
            raise AppError("too_large", f"{self.limits.participants_max} participants au plus.")
        await self._check_peers(p, new)
        now = self.clock()
        async with self.db.transaction() as conn:
            await store.add_members(conn, conv_id, new, now)
            seq = await store.append_event(conn, conv_id, "joined", now,
                                           data={"user_ids": new, "by": p.id})
            conn.on_commit(lambda: self.rooms.publish_new_conversation(conv_id, only=new))
            conn.on_commit(lambda: self.rooms.publish(conv_id, seq))
        return seq

    async def set_open(self, p: Principal, conv_id: int, open_: bool) -> int:
        loaded = await self.load(p, conv_id, Action.CHAT_MODERATE)
        if loaded.conv.open == open_:
            return loaded.conv.last_seq
        now = self.clock()
        async with self.db.transaction() as conn:
            await store.set_open(conn, conv_id, open_)
            seq = await store.append_event(conn, conv_id, "reopened" if open_ else "closed",
                                           now, data={"by": p.id})
            conn.on_commit(lambda: self.rooms.publish(conv_id, seq))
        return seq

    async def mute(self, p: Principal, conv_id: int, muted: bool) -> None:
        loaded = await self.load(p, conv_id)
        if loaded.conv.kind == "live":
            raise AppError("invalid", "Le fil de la séance ne se met pas en sourdine.")
        async with self.db.transaction() as conn:
            await store.set_muted(conn, conv_id, p.id, muted)
            conn.on_commit(lambda: self.rooms.emit_users(
                [p.id], "muted", {"conversation_id": conv_id, "muted": muted}))

    # --- messages ----------------------------------------------------------------------

    async def send(self, p: Principal, conv_id: int, body: str, attachment_ids: list[int]
                   ) -> dict[str, Any]:
        loaded = await self.load(p, conv_id, Action.CHAT_POST)
        if attachment_ids and loaded.conv.kind == "live":
            raise AppError("invalid", "Pas de pièce jointe dans le fil de la séance.")
        body = model.clean_body(body, self.limits, allow_empty=bool(attachment_ids))
        files = await self.attachments.pending(p, attachment_ids)
        now = self.clock()
        async with self.db.transaction() as conn:
            msg_id, seq = await store.insert_message(conn, conv_id, p.id, body, now,
                                                     [f.id for f in files])
            if loaded.conv.kind != "live":
                await store.mark_own(conn, conv_id, p.id, seq)
            conn.on_commit(lambda: self._deliver(p, loaded, msg_id, seq, body, now, files))
        return {"message_id": msg_id, "seq": seq}

    async def _deliver(self, p: Principal, loaded: Loaded, msg_id: int, seq: int, body: str,
                       now: float, files: list[Attachment]) -> None:
        """A new message to its readers. The hot path: the event is built from what is in
        hand, not read back."""
        conv_id = loaded.conv.id
        msg = Message(id=msg_id, conversation_id=conv_id, seq=seq, author_id=p.id, body=body,
                      created_at=now, attachments=tuple(
                          msgspec.structs.replace(f, message_id=msg_id) for f in files))
        view = msg.view({} if loaded.conv.kind == "information" else None)
        view["author_name"] = p.user.name
        item = {"conversation_id": conv_id, "seq": seq, "kind": "message", "at": now,
                "message": view}
        if loaded.conv.kind == "live":
            await self.rooms.emit_live(conv_id, "event", item)
        else:
            await self.rooms.emit_users(loaded.members, "event", item)

    async def edit(self, p: Principal, msg_id: int, body: str) -> int:
        msg, loaded = await self._message(p, msg_id)
        if not may(p, Action.CHAT_POST, loaded.ref):
            raise AppError("forbidden", _why_not(Action.CHAT_POST, loaded))
        model.check_edit(msg, p.id, self.clock(), self.limits)
        body = model.clean_body(body, self.limits, allow_empty=bool(msg.attachments))
        async with self.db.transaction() as conn:
            seq = await store.edit_message(conn, msg, body, self.clock())
            conn.on_commit(lambda: self.rooms.publish(msg.conversation_id, seq))
        return seq

    async def delete(self, p: Principal, msg_id: int) -> int:
        msg, loaded = await self._message(p, msg_id)
        moderator = may(p, Action.CHAT_MODERATE, loaded.ref)
        model.check_delete(msg, p.id, self.clock(), self.limits, moderator)
        return await self._remove(p, msg, loaded, recall=False)

    async def recall(self, p: Principal, msg_id: int) -> int:
        msg, loaded = await self._message(p, msg_id)
        if not may(p, Action.CHAT_RECALL, ChatMessageRef(conversation=loaded.ref,
                                                         author_id=msg.author_id)):
            raise AppError("forbidden", "Seul·e un·e membre de l'équipe rappelle son propre"
                                        " message.")
        if msg.gone:
            raise AppError("conflict", "Ce message a déjà été supprimé.")
        return await self._remove(p, msg, loaded, recall=True)

    async def _remove(self, p: Principal, msg: Message, loaded: Loaded, recall: bool) -> int:
        async with self.db.transaction() as conn:
            seq, keys = await store.remove_message(conn, msg, p.id, self.clock(), recall)
            conn.on_commit(lambda: self.attachments.files.remove(keys))
            conn.on_commit(lambda: self.rooms.publish(msg.conversation_id, seq))
        return seq

    async def read(self, p: Principal, conv_id: int, seq: int) -> int:
        loaded = await self.load(p, conv_id)
        if loaded.conv.kind == "live":
            return min(seq, loaded.conv.last_seq)
        async with self.db.transaction() as conn:
            read_seq = await store.mark_read(conn, conv_id, p.id,
                                             min(seq, loaded.conv.last_seq), self.clock())
            conn.on_commit(lambda: self.rooms.emit_users(
                loaded.members, "receipt", {"conversation_id": conv_id, "user_id": p.id,
                                            "read_seq": read_seq, "at": self.clock()}))
        return read_seq

    async def ack(self, p: Principal, msg_id: int) -> float:
        """Acknowledge receipt of an information (once; the time of the first one stays)."""
        msg, loaded = await self._message(p, msg_id)
        if loaded.conv.kind != "information" or msg.author_id == p.id or msg.gone:
            raise AppError("invalid", "Seule une information reçue demande un accusé de"
                                      " réception.")
        now = self.clock()
        async with self.db.transaction() as conn:
            await store.ack(conn, msg.id, p.id, now)
            # Acknowledging is reading: the author's « Lu » agrees with the acknowledgement.
            read_seq = await store.mark_read(conn, msg.conversation_id, p.id, msg.seq, now)
            conn.on_commit(lambda: self._tell_acked(p, msg, loaded, read_seq, now))
        return (await store.acks_of(self.db, [msg.id]))[msg.id][p.id]

    async def _tell_acked(self, p: Principal, msg: Message, loaded: Loaded, read_seq: int,
                          now: float) -> None:
        at = (await store.acks_of(self.db, [msg.id]))[msg.id][p.id]  # the first one's time
        await self.rooms.emit_users(loaded.members, "receipt",
                               {"conversation_id": msg.conversation_id, "user_id": p.id,
                                "read_seq": read_seq, "at": now})
        await self.rooms.emit_users(sorted({msg.author_id, p.id}), "acked",
                               {"conversation_id": msg.conversation_id, "message_id": msg.id,
                                "user_id": p.id, "name": p.user.name, "at": at})

    async def report(self, p: Principal, msg_id: int, reason: str) -> None:
        """Signal a message to the vie scolaire: every CPE of the school is told at once."""
        msg, loaded = await self._message(p, msg_id)
        if msg.author_id == p.id:
            raise AppError("invalid", "Vous ne pouvez pas signaler votre propre message.")
        reason = " ".join(reason.split())[:500]
        async with self.db.transaction() as conn:
            report_id = await store.report(conn, msg.id, p.id, loaded.conv.school_id, reason,
                                           self.clock())
            if report_id is not None:  # else already reported by this person: nothing new
                conn.on_commit(lambda: self._tell_cpes(loaded.conv.school_id, "report", {
                    "report_id": report_id, "message_id": msg.id,
                    "conversation_id": msg.conversation_id}))

    async def _tell_cpes(self, school_id: int, event: str, data: dict[str, Any]) -> None:
        await self.rooms.emit_users(await self._cpe_ids(school_id), event, data)

    async def _cpe_ids(self, school_id: int) -> list[int]:
        """Who is told of reports: every active CPE of the school."""
        return [u.id for u in await directory.staff_of_schools(self.db, [school_id], {Role.CPE})]

    async def _named_reports(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = await people.people(self.db, sorted(
            {r["author_id"] for r in rows} | {r["reporter_id"] for r in rows}
            | {r["handled_by"] for r in rows if r["handled_by"] is not None}))

        def name(uid: int | None) -> str:
            return names[uid].name if uid is not None and uid in names else ""

        for r in rows:
            r["author"] = name(r["author_id"])
            r["reporter"] = name(r["reporter_id"])
            r["handled_by_name"] = name(r["handled_by"]) if r["handled_at"] else None
            if r["deleted_at"] or r["recalled_at"]:
                r["body"] = model.DELETED_FR
        return rows

    @staticmethod
    def _handles_reports(p: Principal) -> int | None:
        """The school whose reports `p` lists and handles (its CPE), or None."""
        if p.school_id is None or not may(p, Action.CHAT_HANDLE_REPORTS,
                                          SchoolRef(id=p.school_id)):
            return None
        return p.school_id

    async def reports(self, p: Principal) -> list[dict[str, Any]]:
        school_id = self._handles_reports(p)
        if school_id is None:
            raise not_found()
        return await self._named_reports(await store.reports_of_school(self.db, school_id))

    async def handle_report(self, p: Principal, report_id: int, note: str | None,
                            handled: bool = True) -> dict[str, Any]:
        """Mark a reported message « traité » (or reopen it): every report of that message in
        the school changes together, and every CPE of the school is told at once."""
        if self._handles_reports(p) is None:
            raise AppError("forbidden", "Seule la vie scolaire traite les signalements.")
        found = await store.report_by_id(self.db, report_id)
        if found is None or not may(p, Action.CHAT_HANDLE_REPORTS,
                                    SchoolRef(id=found["school_id"])):
            raise not_found(NOT_FOUND_REPORT)
        school_id, msg_id = found["school_id"], found["message_id"]
        clean = (note or "").strip() or None
        at = self.clock() if handled else None
        try:
            async with self.db.transaction() as conn:
                ids = await store.set_handled(conn, msg_id, school_id,
                                              p.id if handled else None,
                                              clean if handled else None, at)
                if report_id not in ids:  # changed meanwhile: roll back, tell who did it
                    raise _AlreadyDone
                conn.on_commit(lambda: self._tell_handled(report_id, school_id, ids, handled))
        except _AlreadyDone:
            await self._already_done(report_id, handled)
        row = await store.report_by_id(self.db, report_id)
        if row is None:  # the message was erased meanwhile
            raise not_found(NOT_FOUND_REPORT)
        return (await self._named_reports([row]))[0]

    async def _tell_handled(self, report_id: int, school_id: int, ids: list[int],
                            handled: bool) -> None:
        """After the commit: every CPE of the school, and the reporters of a handled one."""
        row = await store.report_by_id(self.db, report_id)
        if row is None:  # the message was erased meanwhile
            return
        view = (await self._named_reports([row]))[0]
        await self.rooms.emit_users(await self._cpe_ids(school_id), "report_handled", {
            "message_id": row["message_id"], "report_ids": ids,
            "handled_at": view["handled_at"], "handled_by_name": view["handled_by_name"],
            "note": view["note"], "handled": handled})
        if handled:
            await self.outreach.tell_reporters(ids)

    async def _already_done(self, report_id: int, handled: bool) -> None:
        """Two CPE on one report: the second is told, nothing is overwritten."""
        row = await store.report_by_id(self.db, report_id)
        if row is None:
            raise not_found(NOT_FOUND_REPORT)
        if not handled:
            raise AppError("conflict", "Ce signalement n'est pas traité : rien à rouvrir.")
        who = (await self._named_reports([row]))[0]["handled_by_name"] or "un compte supprimé"
        raise AppError("conflict", f"Ce signalement a déjà été traité par {who}.")

    # --- school settings ---------------------------------------------------------------

    async def _configurable(self, p: Principal, school_id: int) -> None:
        if not may(p, Action.CHAT_CONFIGURE, SchoolRef(id=school_id)):
            raise not_found("Établissement introuvable.")
        if not await directory.school_exists(self.db, school_id):
            raise not_found("Établissement introuvable.")

    async def rules(self, p: Principal, school_id: int) -> ChatRules:
        """A school's messaging rules, for whoever may configure them."""
        await self._configurable(p, school_id)
        return await store.rules_of(self.db, school_id)

    async def set_rules(self, p: Principal, school_id: int, rules: ChatRules) -> ChatRules:
        await self._configurable(p, school_id)
        if rules.day_start_min >= rules.day_end_min:
            raise AppError("invalid", "La journée doit commencer avant de finir.")
        await store.set_rules(self.db, school_id, rules)
        return rules

    # --- reading -----------------------------------------------------------------------

    async def _views(self, p: Principal, loaded: Loaded, msgs: list[Message]
                     ) -> list[dict[str, Any]]:
        acks = (await store.acks_of(self.db, [m.id for m in msgs])
                if loaded.conv.kind == "information" else {})
        return [m.view(acks_for(p.id, m, acks)) for m in msgs]

    async def history(self, p: Principal, conv_id: int, before: int | None,
                      limit: int | None = None) -> dict[str, Any]:
        """One page of messages before the cursor `before` (a seq), oldest first."""
        loaded = await self.load(p, conv_id)
        n = min(limit or self.limits.history_page, self.limits.history_page)
        msgs = await store.history(self.db, conv_id, before, n)
        views = await self._views(p, loaded, msgs)
        await self.rooms.name_authors(views)
        return {"conversation_id": conv_id, "messages": views,
                "head": loaded.conv.last_seq,
                "before": msgs[0].seq if len(msgs) == n else None}

    async def sync(self, p: Principal, conv_id: int, since: int) -> dict[str, Any]:
        """Every event after `since`, in order, or `reset` when that is too much to replay
        (the client then reloads the latest page of history)."""
        loaded = await self.load(p, conv_id)
        head = loaded.conv.last_seq
        if since > head or since < loaded.conv.purged_seq:
            return {"conversation_id": conv_id, "reset": True, "head": head}
        if head - since > self.limits.resume_max:
            return {"conversation_id": conv_id, "reset": True, "head": head}
        events = await store.events_after(self.db, conv_id, since, self.limits.resume_max)
        return {"conversation_id": conv_id, "head": head,
                "events": await self.rooms.render(p.id, loaded.conv, events)}

    async def search(self, p: Principal, text: str) -> list[dict[str, Any]]:
        msgs = await store.search(self.db, p.id, model.fts_query(text), 50)
        views = [m.view() for m in msgs]
        await self.rooms.name_authors(views)
        return views

    async def typing(self, p: Principal, sid: str, conv_id: int) -> None:
        loaded = await self.load(p, conv_id, Action.CHAT_POST)
        data = {"conversation_id": conv_id, "user_id": p.id, "name": p.user.name}
        if loaded.conv.kind == "live":
            await self.rooms.emit_live(conv_id, "typing", data, skip_sid=sid)
            return
        await self.rooms.emit_users([uid for uid in loaded.members if uid != p.id], "typing",
                                    data)

    # --- live-session chat -------------------------------------------------------------

    async def live(self, p: Principal, board_id: int) -> Conversation:
        """The chat of a board session, opened by whoever first looks (if they may see it)."""
        meta = await visible_board(self.db, p, board_id)
        if meta is None:
            raise not_found("Tableau introuvable.")
        conv = await store.of_board(self.db, board_id)
        if conv is None:
            async with self.db.transaction() as conn:
                await store.open_live(conn, meta.school_id, meta.title[:120], meta.owner_id,
                                      board_id, self.clock())
            conv = await store.of_board(self.db, board_id)
        assert conv is not None
        return conv

def _why_not(action: Action, loaded: Loaded) -> str:
    if action is Action.CHAT_POST:
        if not loaded.conv.open:
            return "Cette conversation est fermée."
        if loaded.conv.kind == "information":
            return "Une information n'appelle pas de réponse : accusez-en réception."
        if loaded.ref.board is not None and loaded.ref.board.state == "ended":
            return "La séance est terminée."
        return "Vous ne pouvez pas écrire ici."
    if action is Action.CHAT_INVITE:
        return "Seul·e l'auteur·rice du groupe y invite d'autres personnes."
    return "Seul·e l'enseignant·e ou l'auteur·rice du groupe modère cette conversation."

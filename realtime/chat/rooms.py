"""The messagerie's rooms: where each connection sits and what reaches it.

Every socket of a user sits in `chatuser:<id>`, so one emit per participant reaches each of
their open devices (across processes through the Socket.IO manager); a live-session chat
uses the room `chatlive:<conversation id>` of those who opened it; a connection is shown as
viewing the (few) conversations it has on screen (presence). Publishing renders the
conversation's stream as each participant sees it and emits it there, after the commit.
Nothing here decides who may see what: `ChatService` does, before calling in.

A process emits a conversation's events in seq order (`in_order`): the changes themselves
commit side by side, and an event's publish waits for this process's earlier events of the
conversation. (Two transactions committing on two pooled PostgreSQL connections would
otherwise run their after-commit callbacks in either order.) Across nodes the order of
arrival is not guaranteed: a client that sees a gap asks `sync`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import socketio

from realtime.chat import people, store
from realtime.chat.model import Conversation, Message
from realtime.db import Database, Transaction
from realtime.identity.model import Principal
from realtime.presence.model import conversation
from realtime.presence.service import PresenceService

log = logging.getLogger(__name__)

NAMESPACE = "/chat"
OPEN_MAX = 4  # conversations one connection is shown as viewing; opening more drops the oldest
# How long a conversation's event waits for this process's earlier ones to be published
# before it goes anyway (a publish stuck on a dead Redis): a client then sees a gap and asks
# `sync` for what it lacks, as after a reconnection.
ORDER_WAIT_S = 2.0


def user_room(user_id: int) -> str:
    return f"chatuser:{user_id}"


def live_room(conv_id: int) -> str:
    return f"chatlive:{conv_id}"


def describe(conv: Conversation, members: list[int], found: dict[int, people.Person]
             ) -> dict[str, Any]:
    """A conversation as its list shows it: participants by name (a disabled account too)."""
    return {"id": conv.id, "kind": conv.kind, "title": conv.title,
            "creator_id": conv.creator_id, "board_id": conv.board_id, "open": conv.open,
            "school_id": conv.school_id, "last_seq": conv.last_seq, "last_at": conv.last_at,
            "participants": [found[u].public() if u in found else
                             {"id": u, "name": "Compte désactivé", "role": ""}
                             for u in members]}


class _Ticket:
    """One event of a conversation this process committed (or is committing): its publish
    after the commit, done once published or rolled back."""

    __slots__ = ("conv_id", "done", "seq")

    def __init__(self, conv_id: int, seq: int) -> None:
        self.conv_id, self.seq = conv_id, seq
        self.done = asyncio.Event()


class InOrder:
    """The conversation events a block of code publishes after its transaction's commit,
    each once this process's earlier events of the same conversation are out
    (`ChatRooms.in_order`)."""

    def __init__(self, rooms: ChatRooms) -> None:
        self._rooms = rooms
        self.tickets: list[_Ticket] = []

    def publish(self, conn: Transaction, conv_id: int, seq: int,
                fn: Callable[[], Awaitable[None]]) -> None:
        """Inside the transaction that took `seq`: `fn()` after the commit, in seq order."""
        ticket = self._rooms._take(conv_id, seq)
        self.tickets.append(ticket)
        conn.on_commit(lambda: self._rooms._publish_in_order(ticket, fn))


class ChatRooms:
    """The connections of `/chat` in this process and the emits that reach them."""

    def __init__(self, db: Database, sio: socketio.AsyncServer,
                 presence: PresenceService | None = None) -> None:
        self.db = db
        self.sio = sio
        self.presence = presence
        self._viewing: dict[str, list[int]] = {}  # sid → conversations it has open
        # Conversation → events taken by this process and not yet published (in seq order).
        self._unpublished: dict[int, list[_Ticket]] = {}
        self.held_back = 0  # publishes waiting now for an earlier event of theirs
        self.order_timeouts = 0  # events published after ORDER_WAIT_S, earlier ones not out

    # --- publishing in seq order ---------------------------------------------------------

    @asynccontextmanager
    async def in_order(self) -> AsyncIterator[InOrder]:
        """Around a transaction that appends to conversations' streams:

            async with rooms.in_order() as order, db.transaction() as conn:
                seq = await store.append_event(conn, conv_id, …)
                order.publish(conn, conv_id, seq, lambda: rooms.publish(conv_id, seq))

        Events are published after the commit, and since several transactions commit at
        once (PostgreSQL's pool connections; on SQLite too, callbacks run outside the
        lock), their callbacks would race: seq 12 could reach a device before seq 11. So an
        event waits until this process's earlier events of its conversation are published
        (or rolled back), at most `ORDER_WAIT_S`. A seq is taken under the conversation's
        row lock (or SQLite's writer), so an earlier seq of this process is always known
        here before a later one is. Events committed by other nodes come through their own
        publishes: a device may see them out of order with ours and fills the gap with
        `sync` (docs/chat.md)."""
        order = InOrder(self)
        try:
            yield order
        finally:
            for ticket in order.tickets:  # rolled back, or its publish never ran
                self._finish(ticket)

    def _take(self, conv_id: int, seq: int) -> _Ticket:
        ticket = _Ticket(conv_id, seq)
        self._unpublished.setdefault(conv_id, []).append(ticket)
        return ticket

    def _finish(self, ticket: _Ticket) -> None:
        if ticket.done.is_set():
            return
        ticket.done.set()
        pending = self._unpublished.get(ticket.conv_id)
        if pending is not None:
            pending.remove(ticket)
            if not pending:
                del self._unpublished[ticket.conv_id]

    async def _publish_in_order(self, ticket: _Ticket,
                                fn: Callable[[], Awaitable[None]]) -> None:
        earlier = [t.done.wait() for t in self._unpublished.get(ticket.conv_id, ())
                   if t.seq < ticket.seq]
        try:
            if earlier:
                self.held_back += 1
                try:
                    await asyncio.wait_for(asyncio.gather(*earlier), ORDER_WAIT_S)
                except TimeoutError:
                    self.order_timeouts += 1
                    log.warning("chat event published before an earlier one",
                                extra={"conversation": ticket.conv_id, "seq": ticket.seq})
                finally:
                    self.held_back -= 1
            await fn()
        finally:
            self._finish(ticket)

    # --- membership --------------------------------------------------------------------

    async def enter_user(self, sid: str, user_id: int) -> None:
        """A new connection of `user_id`: every emit to them reaches it."""
        await self.sio.enter_room(sid, user_room(user_id), namespace=NAMESPACE)

    async def enter_live(self, sid: str, conv_id: int) -> None:
        await self.sio.enter_room(sid, live_room(conv_id), namespace=NAMESPACE)

    async def leave_live(self, sid: str, conv_id: int) -> None:
        await self.sio.leave_room(sid, live_room(conv_id), namespace=NAMESPACE)

    async def viewing(self, sid: str, p: Principal, conv_id: int) -> None:
        """This connection has the conversation on screen: it is present there (the
        messagerie's « en ligne »), renewed by the presence heartbeat until closed."""
        viewing = self._viewing.setdefault(sid, [])
        if conv_id in viewing or self.presence is None:
            return
        viewing.append(conv_id)
        await self.presence.enter(conversation(conv_id), p, sid)
        while len(viewing) > OPEN_MAX:
            await self.presence.leave(conversation(viewing.pop(0)), sid)

    async def not_viewing(self, sid: str, conv_id: int) -> None:
        viewing = self._viewing.get(sid, [])
        if conv_id in viewing and self.presence is not None:
            viewing.remove(conv_id)
            await self.presence.leave(conversation(conv_id), sid)

    async def forget(self, sid: str) -> None:
        """The connection is gone (Socket.IO drops its rooms itself)."""
        self._viewing.pop(sid, None)
        if self.presence is not None:
            await self.presence.leave_all(sid)

    # --- rendering ---------------------------------------------------------------------

    async def name_authors(self, views: list[dict[str, Any]]) -> None:
        """Authors by name: a live session's chat has no participant list to look them up."""
        found = await people.people(self.db, sorted({int(v["author_id"]) for v in views}))
        for v in views:
            person = found.get(int(v["author_id"]))
            v["author_name"] = person.name if person else "Compte désactivé"

    async def render(self, viewer: int | None, conv: Conversation,
                     events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Stored events as `viewer` sees them (None: as everyone does, acks aside)."""
        ids = [e["message_id"] for e in events if e["message_id"] is not None]
        msgs = await store.messages(self.db, ids)
        acks = (await store.acks_of(self.db, ids)
                if conv.kind == "information" else {})
        out = []
        for e in events:
            item = {"conversation_id": conv.id, "seq": e["seq"], "kind": e["kind"],
                    "at": e["at"], **({"data": e["data"]} if e["data"] else {})}
            msg = msgs.get(e["message_id"]) if e["message_id"] is not None else None
            if msg is not None:
                item["message"] = msg.view(acks_for(viewer, msg, acks))
            out.append(item)
        await self.name_authors([i["message"] for i in out if "message" in i])
        return out

    # --- publishing (after the commit) -------------------------------------------------

    async def publish(self, conv_id: int, seq: int) -> None:
        """After the commit: the event at `seq` to every open device of every participant."""
        conv = await store.get(self.db, conv_id)
        if conv is None:
            return
        members = [] if conv.kind == "live" else (await store.members_of(self.db,
                                                                          [conv_id]))[conv_id]
        events = await store.events_after(self.db, conv_id, seq - 1, 1)
        if not events:
            return
        if conv.kind == "live":
            [item] = await self.render(None, conv, events)
            await self.emit_live(conv_id, "event", item)
            return
        [item] = await self.render(None, conv, events)
        msg = item.get("message")
        if conv.kind != "information" or msg is None:
            await self.emit_users(members, "event", item)
            return
        acks = (await store.acks_of(self.db, [msg["id"]]))[msg["id"]]
        for uid in members:  # acknowledgements: the author sees all, a recipient their own
            mine = {str(k): v for k, v in acks.items() if uid == msg["author_id"] or k == uid}
            await self.emit_users([uid], "event", {**item, "message": {**msg, "acks": mine}})

    async def publish_new_conversation(self, conv_id: int, only: list[int] | None = None
                                       ) -> None:
        conv = await store.get(self.db, conv_id)
        if conv is None:
            return
        members = (await store.members_of(self.db, [conv_id]))[conv_id]
        found = await people.people(self.db, members)
        summary = describe(conv, members, found)
        await self.emit_users(only or members, "conversation", summary)

    async def emit_users(self, user_ids: list[int], event: str, data: dict[str, Any]) -> None:
        for uid in user_ids:
            await self.sio.emit(event, data, room=user_room(uid), namespace=NAMESPACE)

    async def emit_live(self, conv_id: int, event: str, data: dict[str, Any],
                        skip_sid: str | None = None) -> None:
        await self.sio.emit(event, data, room=live_room(conv_id), skip_sid=skip_sid,
                            namespace=NAMESPACE)


def acks_for(viewer: int | None, msg: Message, acks: dict[int, dict[int, float]]
              ) -> dict[int, float] | None:
    if msg.id not in acks:
        return None
    if viewer == msg.author_id:
        return acks[msg.id]
    return {k: v for k, v in acks[msg.id].items() if k == viewer}

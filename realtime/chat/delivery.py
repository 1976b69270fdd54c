"""Delivery: what the conversation's stream looks like to each participant, and emitting it
after the commit to every open device (`chatuser:<id>` rooms) or a live session's room."""

from __future__ import annotations

from typing import Any

import socketio

from realtime.chat import people, store
from realtime.chat.model import Conversation, Message
from realtime.db import Database
from realtime.policy import ConversationRef

NAMESPACE = "/chat"


def user_room(user_id: int) -> str:
    return f"chatuser:{user_id}"


def live_room(conv_id: int) -> str:
    return f"chatlive:{conv_id}"


class Loaded:
    """A conversation with its members and its policy reference, loaded once per call."""

    __slots__ = ("conv", "members", "ref")

    def __init__(self, conv: Conversation, members: list[int], ref: ConversationRef) -> None:
        self.conv, self.members, self.ref = conv, members, ref


class Delivery:
    """Mixed into ChatService: rendering and publishing the stream."""

    db: Database
    sio: socketio.AsyncServer

    async def _ref(self, conv: Conversation, members: list[int]) -> ConversationRef:
        raise NotImplementedError

    def _describe(self, conv: Conversation, members: list[int],
                  found: dict[int, people.Person]) -> dict[str, Any]:
        raise NotImplementedError

    async def _name_authors(self, views: list[dict[str, Any]]) -> None:
        """Authors by name: a live session's chat has no participant list to look them up."""
        found = await people.people(self.db, sorted({int(v["author_id"]) for v in views}))
        for v in views:
            person = found.get(int(v["author_id"]))
            v["author_name"] = person.name if person else "Compte désactivé"

    # --- publishing --------------------------------------------------------------------

    async def _render(self, viewer: int | None, loaded: Loaded, events: list[dict[str, Any]]
                      ) -> list[dict[str, Any]]:
        ids = [e["message_id"] for e in events if e["message_id"] is not None]
        msgs = await store.messages(self.db, ids)
        acks = (await store.acks_of(self.db, ids)
                if loaded.conv.kind == "information" else {})
        out = []
        for e in events:
            item = {"conversation_id": loaded.conv.id, "seq": e["seq"], "kind": e["kind"],
                    "at": e["at"], **({"data": e["data"]} if e["data"] else {})}
            msg = msgs.get(e["message_id"]) if e["message_id"] is not None else None
            if msg is not None:
                item["message"] = msg.view(acks_for(viewer, msg, acks))
            out.append(item)
        await self._name_authors([i["message"] for i in out if "message" in i])
        return out

    async def _publish(self, conv_id: int, seq: int, loaded: Loaded | None = None) -> None:
        """After the commit: the event at `seq` to every open device of every participant."""
        conv = await store.get(self.db, conv_id)
        if conv is None:
            return
        members = [] if conv.kind == "live" else (await store.members_of(self.db,
                                                                          [conv_id]))[conv_id]
        fresh = Loaded(conv, members, loaded.ref if loaded else await self._ref(conv, members))
        events = await store.events_after(self.db, conv_id, seq - 1, 1)
        if not events:
            return
        if conv.kind == "live":
            [item] = await self._render(None, fresh, events)
            await self.sio.emit("event", item, room=live_room(conv_id), namespace=NAMESPACE)
            return
        [item] = await self._render(None, fresh, events)
        msg = item.get("message")
        if conv.kind != "information" or msg is None:
            await self._emit_users(members, "event", item)
            return
        acks = (await store.acks_of(self.db, [msg["id"]]))[msg["id"]]
        for uid in members:  # acknowledgements: the author sees all, a recipient their own
            mine = {str(k): v for k, v in acks.items() if uid == msg["author_id"] or k == uid}
            await self._emit_users([uid], "event", {**item, "message": {**msg, "acks": mine}})

    async def _publish_new_conversation(self, conv_id: int, only: list[int] | None = None
                                        ) -> None:
        conv = await store.get(self.db, conv_id)
        if conv is None:
            return
        members = (await store.members_of(self.db, [conv_id]))[conv_id]
        found = await people.people(self.db, members)
        summary = self._describe(conv, members, found)
        await self._emit_users(only or members, "conversation", summary)

    async def _emit_users(self, user_ids: list[int], event: str, data: dict[str, Any]) -> None:
        for uid in user_ids:
            await self.sio.emit(event, data, room=user_room(uid), namespace=NAMESPACE)


def acks_for(viewer: int | None, msg: Message, acks: dict[int, dict[int, float]]
              ) -> dict[int, float] | None:
    if msg.id not in acks:
        return None
    if viewer == msg.author_id:
        return acks[msg.id]
    return {k: v for k, v in acks[msg.id].items() if k == viewer}

"""Presence as data: scopes, who is in one, and the roster a watcher sees. Pure, no I/O.

A *device* is one live connection (a browser tab, a tablet); a *user* is present in a scope
while at least one of their devices is. Entries expire unless their node renews them: a node
that dies takes its devices with it after `timeout_s`, without anyone having to notice.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

import msgspec

from realtime.identity.model import Principal, Role

MAX_SCOPE_ID = 2**53
_SCOPE = re.compile(r"^(school|class|board|conversation|doc):([1-9][0-9]{0,15})$")


class Kind(StrEnum):
    SCHOOL = "school"
    CLASS = "class"
    BOARD = "board"
    CONVERSATION = "conversation"  # who has a conversation open (the messagerie)
    DOC = "doc"  # who has a course document open (its editor)


class Scope(msgspec.Struct, frozen=True, order=True):
    """Where someone is present: `school:3`, `class:12`, `board:40`, `conversation:7`,
    `doc:5`."""

    kind: Kind
    id: int

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        """The scope a client names, or None when it is not one (the caller answers invalid)."""
        m = _SCOPE.match(text) if isinstance(text, str) else None
        if m is None or int(m.group(2)) > MAX_SCOPE_ID:
            return None
        return cls(Kind(m.group(1)), int(m.group(2)))


def school(school_id: int) -> Scope:
    return Scope(Kind.SCHOOL, school_id)


def school_class(class_id: int) -> Scope:
    return Scope(Kind.CLASS, class_id)


def board(board_id: int) -> Scope:
    return Scope(Kind.BOARD, board_id)


def conversation(conversation_id: int) -> Scope:
    return Scope(Kind.CONVERSATION, conversation_id)


def doc(doc_id: int) -> Scope:
    return Scope(Kind.DOC, doc_id)


class Who(msgspec.Struct, frozen=True):
    """What a roster shows of a user: enough to name them and place them, nothing more."""

    id: int
    name: str
    role: str
    class_id: int | None = None  # a student's class, so the school roster counts per class


class Entry(msgspec.Struct, frozen=True):
    """One user in a roster: since when (their first device), on how many devices."""

    id: int
    name: str
    role: str
    since: float
    devices: int
    class_id: int | None = None


class Roster(msgspec.Struct, frozen=True):
    """A scope's users at one `version` of its `epoch` (see Change)."""

    scope: str
    epoch: str
    version: int
    users: list[Entry]


class Change(msgspec.Struct, frozen=True):
    """A user appeared in or left a scope. `version` counts changes within `epoch`: a watcher
    applies version v+1 on top of v and fetches the roster again on anything else (a lost
    pub/sub message, or the scope's keys recreated with a new epoch)."""

    scope: str
    epoch: str
    version: int
    type: str  # join | leave
    user: dict[str, Any]


UNKNOWN_SCOPE = ("Portée inconnue : « school:<id> », « class:<id> », « board:<id> », "
                 "« conversation:<id> » ou « doc:<id> » attendu.")


def who(p: Principal) -> Who:
    class_id = next(iter(p.class_ids)) if p.role is Role.STUDENT and p.class_ids else None
    return Who(id=p.id, name=p.user.name, role=p.role.value, class_id=class_id)


def home_scopes(p: Principal) -> list[Scope]:
    """Where an open app tab makes someone present: their school, and a student's class.

    Teachers teach many classes, so an open tab does not place them in one; guardians and
    département administrators belong to no school roster.
    """
    if p.role in (Role.PARENT, Role.ADMIN) or p.school_id is None:
        return []
    scopes = [school(p.school_id)]
    if p.role is Role.STUDENT:
        scopes += [school_class(c) for c in sorted(p.class_ids)]
    return scopes


def apply(users: dict[int, Entry], change: Change) -> None:
    """A watcher's roster, updated by one change (what the web client does, in Python)."""
    entry = msgspec.convert(change.user, Entry)
    if change.type == "join":
        users[entry.id] = entry
    else:
        users.pop(entry.id, None)


def sorted_users(users: list[Entry]) -> list[Entry]:
    """Teachers first, then by name: the order a teacher reads a class list in."""
    return sorted(users, key=lambda e: (e.role != Role.TEACHER.value, e.name.casefold(), e.id))


# --- who a viewer may see in a roster (issue #13: rosters show only people one may see) ----

# Rosters where viewers may not all see everyone: a course document shared with two classes.
# School, class and board rosters are only for those who see all of them; a conversation's
# participants see each other in the conversation itself.
RESTRICTED_KINDS = frozenset({Kind.DOC})
ADULT_ROLES = frozenset({"teacher", "cpe", "staff", "admin"})


class Audience(msgspec.Struct, frozen=True):
    """Whom one viewer may see in one roster: every adult of the school (pupils know their
    teachers and the vie scolaire); pupils of `classes` (a pupil's classmates, a teacher's
    classes, the school team's school); the people in `users` (themselves, a parent's
    children); guardians only if `parents` (adults of the school)."""

    everyone: bool = False
    classes: frozenset[int] = frozenset()
    users: frozenset[int] = frozenset()
    parents: bool = False


EVERYONE = Audience(everyone=True)


def sees(a: Audience, user: Who | Entry) -> bool:
    if a.everyone or user.id in a.users:
        return True
    if user.role in ADULT_ROLES:
        return True
    if user.role == "student":
        return user.class_id is not None and user.class_id in a.classes
    return a.parents  # a guardian


def change_rooms(scope: str, user: dict[str, Any]) -> list[str]:
    """The delivery rooms of a change about `user` (a Change's user) in a restricted scope:
    each room's members may see that user (see `audience_rooms`)."""
    role, class_id = user.get("role"), user.get("class_id")
    rooms = [f"presence:{scope}:user:{user.get('id')}"]
    if role in ADULT_ROLES:
        rooms.append(f"presence:{scope}:adults")
    elif role == "student":
        if class_id is not None:
            rooms.append(f"presence:{scope}:class:{class_id}")
    else:
        rooms.append(f"presence:{scope}:parents")
    return rooms


def audience_rooms(scope: str, a: Audience) -> list[str]:
    """The rooms a watcher with audience `a` joins to hear of exactly the people it may see.
    A change it may not see reaches it only as a gap in `version` on a later one, after
    which it fetches its (filtered) roster again, as on any gap."""
    if a.everyone:
        return [f"presence:{scope}"]
    rooms = [f"presence:{scope}:adults"]
    rooms += [f"presence:{scope}:class:{c}" for c in sorted(a.classes)]
    rooms += [f"presence:{scope}:user:{u}" for u in sorted(a.users)]
    if a.parents:
        rooms.append(f"presence:{scope}:parents")
    return rooms

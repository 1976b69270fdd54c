"""Course documents as data: metadata, access list, versions. Pure, no I/O."""

from __future__ import annotations

from enum import StrEnum

import msgspec

from realtime.policy import DocRef

TITLE_MAX = 200
LABEL_MAX = 200
FRAGMENT = "prosemirror"  # the XmlFragment y-prosemirror (and Tiptap, field=…) binds to


class ClassMode(StrEnum):
    READ = "read"
    EDIT = "edit"


class DocMeta(msgspec.Struct, frozen=True):
    id: int
    school_id: int
    owner_id: int
    title: str
    created_at: float
    updated_at: float
    editors: frozenset[int] = frozenset()
    classes: dict[int, ClassMode] = {}

    def ref(self) -> DocRef:
        return DocRef(
            id=self.id, school_id=self.school_id, owner_id=self.owner_id, editors=self.editors,
            read_classes=frozenset(c for c, m in self.classes.items() if m is ClassMode.READ),
            edit_classes=frozenset(c for c, m in self.classes.items() if m is ClassMode.EDIT),
        )


class VersionKind(StrEnum):
    MANUAL = "manual"  # « Enregistrer une version »
    AUTO = "auto"  # every few minutes of editing, and when the last person leaves
    RESTORE = "restore"  # the content just before a restore replaced it


class Version(msgspec.Struct, frozen=True):
    """A named version ("checkpoint"): the document's full state when it was taken."""

    id: int
    doc_id: int
    label: str
    created_by: int | None
    created_at: float
    kind: VersionKind = VersionKind.MANUAL


class Stored(msgspec.Struct, frozen=True):
    """What SQLite holds of one document's content: the snapshot and the updates after it."""

    snapshot: bytes | None
    upto: int  # every update id <= upto is inside the snapshot
    updates: list[tuple[int, bytes]]

    @property
    def last_id(self) -> int:
        """The newest update id this holds (or the snapshot covers)."""
        return max(self.upto, self.updates[-1][0] if self.updates else 0)

    def all_updates(self) -> list[bytes]:
        head = [self.snapshot] if self.snapshot else []
        return head + [data for _, data in self.updates]

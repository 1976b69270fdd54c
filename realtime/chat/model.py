"""Conversations and messages as pure data, with the rules that need no I/O.

The clock is passed in: edit windows and quiet hours are decided on a `now` the caller gives,
so tests can stand at 19:59 or 20:00 in Paris without waiting for it.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import msgspec

from realtime.errors import AppError
from realtime.text import clean_filename as _clean_filename
from realtime.text import clean_text

DELETED_FR = "Message supprimé"
RECALLED_FR = "Message retiré par son auteur"
KINDS = ("direct", "group", "information", "live")


class Limits(msgspec.Struct, frozen=True):
    """Published to clients (`limits` in the welcome) and enforced by the server."""

    body_max: int = 4000
    title_max: int = 120
    edit_window_s: int = 15 * 60
    participants_max: int = 400
    attachments_per_message: int = 5
    attachment_max_bytes: int = 5 * 1024 * 1024
    history_page: int = 50
    resume_max: int = 500
    messages_per_second: float = 2.0
    messages_burst: float = 10.0


class Conversation(msgspec.Struct, frozen=True):
    id: int
    school_id: int
    kind: str
    title: str
    creator_id: int
    board_id: int | None
    open: bool
    created_at: float
    last_seq: int
    last_at: float
    purged_seq: int = 0  # every seq up to this one was removed by the retention purge


class Participant(msgspec.Struct, frozen=True):
    user_id: int
    read_seq: int = 0
    muted: bool = False


class Attachment(msgspec.Struct, frozen=True):
    id: int
    owner_id: int
    message_id: int | None
    name: str
    mime: str
    size: int
    storage_key: str
    created_at: float

    def public(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "mime": self.mime, "size": self.size,
                "url": f"/api/chat/attachments/{self.id}"}


class Message(msgspec.Struct, frozen=True):
    id: int
    conversation_id: int
    seq: int
    author_id: int
    body: str
    created_at: float
    edited_at: float | None = None
    deleted_at: float | None = None
    deleted_by: int | None = None
    recalled_at: float | None = None
    attachments: tuple[Attachment, ...] = ()

    @property
    def gone(self) -> bool:
        return self.deleted_at is not None or self.recalled_at is not None

    def view(self, acks: dict[int, float] | None = None) -> dict[str, object]:
        """What every participant sees: a deleted or recalled message keeps its place, not
        its content."""
        out: dict[str, object] = {
            "id": self.id, "conversation_id": self.conversation_id, "seq": self.seq,
            "author_id": self.author_id, "created_at": self.created_at,
            "edited_at": self.edited_at,
        }
        if self.recalled_at is not None:
            out.update(body=RECALLED_FR, state="recalled", attachments=[])
        elif self.deleted_at is not None:
            out.update(body=DELETED_FR, state="deleted", attachments=[])
        else:
            out.update(body=self.body, state="edited" if self.edited_at else "sent",
                       attachments=[a.public() for a in self.attachments])
        if acks is not None:
            out["acks"] = {str(k): v for k, v in acks.items()}
        return out


def clean_body(text: str, limits: Limits, *, allow_empty: bool = False) -> str:
    body = text.strip()
    if not body and not allow_empty:
        raise AppError("invalid", "Le message est vide.")
    if len(body) > limits.body_max:
        raise AppError("too_large",
                       f"Message trop long ({len(body)} caractères, {limits.body_max} au plus).")
    return body


def clean_title(text: str, limits: Limits) -> str:
    title = clean_text(text)
    if len(title) > limits.title_max:
        raise AppError("invalid", f"Le titre compte {limits.title_max} caractères au plus.")
    return title


def check_edit(msg: Message, actor_id: int, now: float, limits: Limits) -> None:
    """The author alone, within the window, on a message still there."""
    if msg.author_id != actor_id:
        raise AppError("forbidden", "Seul·e l'auteur·rice modifie son message.")
    if msg.gone:
        raise AppError("conflict", "Ce message a déjà été supprimé.")
    if now - msg.created_at > limits.edit_window_s:
        minutes = limits.edit_window_s // 60
        raise AppError("forbidden",
                       f"Un message se modifie ou se supprime dans les {minutes} minutes.")


def check_delete(msg: Message, actor_id: int, now: float, limits: Limits,
                 moderator: bool) -> None:
    """Its author within the window, or a moderator (the live session's teacher) any time."""
    if msg.gone:
        raise AppError("conflict", "Ce message a déjà été supprimé.")
    if moderator:
        return
    check_edit(msg, actor_id, now, limits)


def local_minute(ts: float, tz: ZoneInfo) -> int:
    """Minutes after local midnight at `ts` in `tz` (summer and winter time alike)."""
    local = dt.datetime.fromtimestamp(ts, tz)
    return local.hour * 60 + local.minute


_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str, max_terms: int = 8) -> str:
    """A safe FTS5 MATCH expression: each word a quoted prefix term, all required.

    Quoting each word keeps FTS5's operators (AND, NEAR, *, :, ^) out of a user's hands.
    """
    words = _WORD.findall(text)[:max_terms]
    if not words:
        raise AppError("invalid", "Saisissez au moins un mot à chercher.")
    return " ".join(f'"{w}"*' for w in words)


# Accepted attachment types, recognised by their first bytes (the name and the browser's
# claim are not trusted). ODF and OOXML documents are zip files: the extension decides which.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_ZIP_TYPES = {
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
ALLOWED_TYPES_FR = "PDF, PNG, JPEG, GIF, WebP, texte, ODT, ODS, DOCX, XLSX"


def sniff_type(head: bytes, filename: str) -> str:
    """The file's type from its content, or `unsupported_media_type`."""
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    ext = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if head.startswith(b"PK\x03\x04") and ext in _ZIP_TYPES:
        return _ZIP_TYPES[ext]
    if ext == ".txt" and b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # a character cut at the end of the sample is fine
                raise AppError("unsupported_media_type",
                               "Le fichier texte doit être en UTF-8.") from exc
        return "text/plain"
    raise AppError("unsupported_media_type",
                   f"Type de fichier refusé. Types acceptés : {ALLOWED_TYPES_FR}.")


def clean_filename(name: str) -> str:
    """A name safe to show and to send back in Content-Disposition."""
    return _clean_filename(name)

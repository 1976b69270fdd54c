"""Attachments: uploads checked by size and content, kept in the file store until sent, served back
only to whoever may read the message they belong to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from realtime.chat import model, store
from realtime.chat.model import Attachment, Limits, Message
from realtime.db import Database
from realtime.errors import AppError, not_found
from realtime.files import FileStore
from realtime.identity.model import Principal


class Attachments:
    """Part of ChatService: the files of messages. `readable` is the service's own check
    that a principal may read a message (it raises when not)."""

    def __init__(self, db: Database, files: FileStore, limits: Limits,
                 clock: Callable[[], float],
                 readable: Callable[[Principal, int], Awaitable[tuple[Message, Any]]]
                 ) -> None:
        self.db = db
        self.files = files
        self.limits = limits
        self.clock = clock
        self._message = readable

    async def pending(self, p: Principal, ids: list[int]) -> list[Attachment]:
        if len(ids) > self.limits.attachments_per_message:
            raise AppError("too_large", f"{self.limits.attachments_per_message} pièces jointes"
                                        " au plus par message.")
        files = await store.pending_attachments(self.db, p.id, sorted(set(ids)))
        if len(files) != len(set(ids)):
            raise AppError("not_found", "Pièce jointe introuvable (déjà envoyée ?).")
        return files

    async def upload(self, p: Principal, name: str, data: bytes) -> Attachment:
        if len(data) > self.limits.attachment_max_bytes:
            raise AppError("too_large", _too_big(self.limits))
        if not data:
            raise AppError("invalid", "Le fichier est vide.")
        name = model.clean_filename(name)
        mime = model.sniff_type(data[:4096], name)
        key = await self.files.put(data)
        return await store.add_attachment(self.db, owner_id=p.id, name=name, mime=mime,
                                          size=len(data), storage_key=key, now=self.clock())

    async def attachment(self, p: Principal, att_id: int) -> Attachment:
        """The file if it is the caller's own upload or sits in a message they may read."""
        att = await store.attachment(self.db, att_id)
        if att is None:
            raise not_found("Pièce jointe introuvable.")
        if att.message_id is None:
            if att.owner_id != p.id:
                raise not_found("Pièce jointe introuvable.")
            return att
        try:
            await self._message(p, att.message_id)
        except AppError as err:
            raise not_found("Pièce jointe introuvable.") from err
        return att

    async def purge_pending(self, older_than_s: float = 24 * 3600) -> int:
        """Files uploaded but never sent are removed after a day."""
        stale = await store.stale_attachments(self.db, self.clock() - older_than_s)
        await store.delete_attachments(self.db, [a.id for a in stale])
        await self.files.remove([a.storage_key for a in stale])
        return len(stale)



def _too_big(limits: Limits) -> str:
    return f"Fichier trop lourd ({limits.attachment_max_bytes // (1024 * 1024)} Mio au plus)."

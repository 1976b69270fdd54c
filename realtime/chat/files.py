"""Where the messagerie keeps attachments' bytes: `realtime/files.py`'s store for this
database, under `<data dir>/chat-files/` on SQLite, in `stored_files` on PostgreSQL.

The database holds who sent what (name, type, size) and the key; the store holds the bytes
under that random key, so nothing a user types ever becomes part of a path.
"""

from __future__ import annotations

from realtime.db import Database
from realtime.files import FileStore, file_store
from realtime.settings import Settings

DIR = "chat-files"  # beside the SQLite database


def chat_files(settings: Settings, db: Database) -> FileStore:
    """The same store for the service, the retention job and the command line."""
    return file_store(db, settings.db_path.parent / DIR)

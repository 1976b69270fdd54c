"""Files only the server's own account may read: the database and its WAL, attachments, keys.

The database holds pupils' absences and messages, the secret signs every session: created
`0600` inside `0700` directories whatever the process's umask, and tightened when found
wider (an older installation). The operator's own directories above are left alone.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """`path` and any missing parent created `0700` (existing ones are not changed)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another worker made it meanwhile
            d.mkdir(mode=DIR_MODE)
        os.chmod(d, DIR_MODE)  # mkdir's mode goes through the umask
    return path


def tighten(path: Path) -> None:
    """Remove group and other permissions from a file of ours, if it exists."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        st = path.stat()
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)


def private_file(path: Path) -> None:
    """Create `path` empty and `0600` if missing; tighten it otherwise."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        tighten(path)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a new file `path`, `0600` from its first byte, durably."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())

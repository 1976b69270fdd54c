"""The one cleaning of names people give: titles, display names, file names.

A title or a file name travels to other people's screens, to a download's `filename*`, to a
CSV. Control characters break layouts and logs; bidi overrides and isolates (U+202A–202E,
U+2066–2069, and the marks) make « Cours‮fdp.exe » read as something else and hide a file's
real extension. So every name is NFC-normalised, stripped of those characters and of other
invisible format characters (zero-width joiners stay: emoji and some scripts need them), and
its whitespace collapsed. Pure: the domain models use it too.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterable
from typing import Any

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                          "\u200e\u200f\u061c")
_KEPT_FORMAT = frozenset("\u200c\u200d")  # ZWNJ, ZWJ
_FILENAME_FORBIDDEN = frozenset('"<>:*?|/\\')


def clean_text(text: str) -> str:
    """`text` on one line, without control, bidi or invisible format characters."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in BIDI_CONTROLS:
            continue
        category = unicodedata.category(ch)
        if category == "Cc":
            out.append(" ")  # a newline or a tab in a title separates words
        elif category == "Cf" and ch not in _KEPT_FORMAT:
            continue
        elif category in ("Cs", "Co", "Cn"):
            continue
        else:
            out.append(ch)
    return " ".join("".join(out).split())


def clean_filename(name: str, fallback: str = "fichier", limit: int = 120) -> str:
    """A file name safe to show and to send back in Content-Disposition: the last path
    component, cleaned as a title, without characters file systems or headers refuse."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in clean_text(base) if ch not in _FILENAME_FORBIDDEN)
    return base.strip(" .")[:limit].strip() or fallback


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A cell a spreadsheet will not run: text starting with `=`, `+`, `-`, `@`, a tab or
    a carriage return (a formula to Excel or LibreOffice: `=HYPERLINK(…)`, `=cmd|…`) gets a
    leading apostrophe (OWASP « CSV injection »). Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class SafeCsvWriter:
    """`csv.writer` whose every cell goes through `csv_cell`: every CSV export uses it."""

    def __init__(self, out: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(out, **kwargs)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow([csv_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)

"""French as the messagerie writes it to people: elision, hours, dates.

Pure functions (no I/O), so the words a parent reads are tested like any other rule.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

_VOWELS = set("aeiouyhàâäéèêëîïôöùûüœæ")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")


def de(name: str) -> str:
    """« de Bruno », « d'Alice », « d'Hélène »: the preposition elided before a vowel or an h."""
    name = name.strip()
    if name[:1].lower() in _VOWELS:
        return f"d'{name}"
    return f"de {name}"


def hour(minute_of_day: int) -> str:
    """420 → « 7 h », 450 → « 7 h 30 » (how French writes the time of day)."""
    h, m = divmod(minute_of_day, 60)
    return f"{h} h {m:02d}" if m else f"{h} h"


def day_and_time(ts: float, tz: ZoneInfo) -> str:
    """« le 4 décembre à 10 h 02 », « le 1er mars à 9 h »."""
    local = dt.datetime.fromtimestamp(ts, tz)
    return (f"le {local.day}{'er' if local.day == 1 else ''} {MONTHS[local.month - 1]}"
            f" à {hour(local.hour * 60 + local.minute)}")

"""A clock a test moves by hand: rate limits judged at one instant, windows that end when the
test says so, never by sleeping (and never by how fast the machine happens to run)."""

from __future__ import annotations

import math
import time
from typing import Any

from realtime import keys


class ManualClock:
    """Callable like `time.monotonic`; starts at the real monotonic time rounded up to a whole
    second, so that swapping it in under a limiter that already read the real one moves
    nothing backwards, and whole-second steps stay exact (no « 59.0000001 s » left)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = float(math.ceil(time.monotonic())) if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def freeze_budgets(app: Any, namespace: str) -> ManualClock:
    """The event budgets of `namespace` (its per-connection token buckets) on a manual clock;
    set before the clients connect."""
    clock = ManualClock()
    app[keys.SIO].namespace_handlers[namespace].clock = clock
    return clock

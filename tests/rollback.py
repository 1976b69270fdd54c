"""Make a real database roll back what a service just did, for « nothing is published for a
change that was rolled back » (DESIGN.md: publish after commit is the database's job).

`rolled_back(db)`: while it is active, each transaction of `db` runs the service's whole
block (its writes, its `on_commit` registrations) and then fails, as a later step of the same
transaction would, so SQLite rolls it all back. A service that published from inside its
block would already have told someone; one that publishes through `on_commit` tells nobody.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from realtime.db import Database


class Aborted(Exception):
    """The failure injected at the end of a transaction."""


@contextlib.contextmanager
def rolled_back(db: Database) -> Iterator[list[int]]:
    """Yields a list that counts the transactions rolled back this way (so a test can check
    its call did reach the database)."""
    real = db.transaction
    aborted: list[int] = []

    @asynccontextmanager
    async def failing() -> AsyncIterator[Any]:
        async with real() as conn:
            yield conn
            aborted.append(1)
            raise Aborted("rolled back by the test")

    db.transaction = failing  # type: ignore[method-assign]
    try:
        yield aborted
    finally:
        del db.transaction  # the class's method again

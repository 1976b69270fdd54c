"""« Nothing arrived » checks that cannot pass vacuously: one idiom, a positive control.

A test that waits, then asserts that a listener received nothing, passes just as well when
the listener was deaf: a connection dropped, a subscription never made, a room left, a wait
too short for a slow machine. So every such check goes through `nothing_arrived`, which asks
for a positive control: something sent on the same channel *after* the unwanted thing would
have been sent, which must arrive. A channel delivers in order (one websocket, one Redis
pub/sub connection, one Yjs room), so once the control is there, the unwanted thing would be
there too had it been sent; and a deaf listener fails the test instead of passing it. No
fixed sleep: the control's arrival is the end of the wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

POLL_S = 0.01


async def eventually(predicate: Callable[[], Any], wait_s: float, what: str) -> None:
    """Poll `predicate` (real sockets fill what it reads) until true, or fail saying `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(POLL_S)


async def nothing_arrived(unwanted: Callable[[], Any], *,
                          control: Callable[[], Awaitable[Any]],
                          arrived: Callable[[], Any], wait_s: float = 10.0) -> None:
    """Assert that `unwanted()` stays empty (falsy), proven by a positive control.

    `control()` makes the server send something to the same listener, on the same channel,
    after the moment the unwanted thing would have been sent; `arrived()` is true once the
    listener has it. The control must be new (`arrived()` false before it is sent), must
    arrive within `wait_s`, and only then is `unwanted()` checked.
    """
    found = unwanted()
    assert not found, f"arrived although it must not: {found!r}"
    assert not arrived(), "the positive control had arrived before it was sent: it proves nothing"
    await control()
    await eventually(arrived, wait_s,
                     "the positive control never arrived: the listener was not live, so "
                     "« nothing arrived » would have proven nothing")
    found = unwanted()
    assert not found, f"arrived although it must not: {found!r}"

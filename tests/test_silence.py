"""The « nothing arrived » helper itself: it fails on a deaf listener, on a late unwanted
message, and on a control that proves nothing; it passes only when the channel was live."""

from __future__ import annotations

import asyncio

import pytest

from tests.silence import nothing_arrived


class Channel:
    """In order, as a websocket is: what is sent arrives after what was sent before."""

    def __init__(self, deaf: bool = False) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.heard: list[str] = []
        self.deaf = deaf
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            item = await self.queue.get()
            await asyncio.sleep(0.01)  # the wire's delay
            if not self.deaf:
                self.heard.append(item)

    async def send(self, item: str) -> None:
        await self.queue.put(item)


async def test_a_live_quiet_channel_passes() -> None:
    ch = Channel()
    await nothing_arrived(lambda: [x for x in ch.heard if x != "control"],
                          control=lambda: ch.send("control"),
                          arrived=lambda: "control" in ch.heard)
    ch.reader.cancel()


async def test_an_unwanted_message_sent_before_the_control_is_caught_even_if_slow() -> None:
    ch = Channel()
    await ch.send("fuite")  # not there yet when the check starts: a bare check would pass
    with pytest.raises(AssertionError, match="fuite"):
        await nothing_arrived(lambda: [x for x in ch.heard if x != "control"],
                              control=lambda: ch.send("control"),
                              arrived=lambda: "control" in ch.heard)
    ch.reader.cancel()


async def test_a_deaf_listener_fails_instead_of_passing() -> None:
    ch = Channel(deaf=True)
    with pytest.raises(AssertionError, match="never arrived"):
        await nothing_arrived(lambda: ch.heard, control=lambda: ch.send("control"),
                              arrived=lambda: "control" in ch.heard, wait_s=0.3)
    ch.reader.cancel()


async def test_a_control_already_there_proves_nothing() -> None:
    ch = Channel()
    await ch.send("control")
    await asyncio.sleep(0.05)
    with pytest.raises(AssertionError, match="proves nothing"):
        await nothing_arrived(lambda: [], control=lambda: ch.send("control"),
                              arrived=lambda: "control" in ch.heard)
    ch.reader.cancel()

"""One frame to many local members: encoded once, written straight to each member's socket.

`sio.emit(room=…)` costs, per recipient, an asyncio task, a walk of the payload for binary
parts, a fresh encoding, then a wake-up of the engine.io socket's writer task (whose `poll`
wraps each wait in a new task) and aiohttp's framing. A board's frame is the same bytes for
every member, so it is built once — the Engine.IO + Socket.IO message (`42/boards,[event,
data]`, JSON by msgspec), and the websocket frame itself (server frames are not masked) —
and then:

- a member on a websocket whose writer is idle gets those bytes written to its transport: one
  `write` each, no task (`realtime/direct.py` says when that keeps the socket's order);
- any other member on this process (long-polling, packets waiting in its queue) gets the
  same Engine.IO packet object put on its engine.io queue;
- a member not on this process's engine.io server falls back to `sio.emit(to=sid)`.

Cross-node delivery does not go through here: every node follows the board's stream and
delivers to its own members (see live.py).

Back-pressure, per member: a reliable frame for a socket with more than `max_buffer` bytes
unsent (or `max_queue` packets waiting) is not sent; the member is disconnected instead and
resumes with `since` when it comes back (the web client does so by itself). Volatile traffic
(pointer, view) is dropped for a socket already behind, and for everyone while the event loop
lags (`LoadGauge`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import msgspec
import socketio
from engineio import packet as eio_packet

from realtime.direct import track_websockets, transport_now, websocket_frame

log = logging.getLogger(__name__)

MAX_QUEUE = 2_000  # frames waiting for one socket before it is cut (it resumes with `since`)
VOLATILE_QUEUE = 50  # a socket this far behind gets no more pointers / views for now
MAX_BUFFER = 4 * 1024 * 1024  # unsent bytes on one websocket before it is cut
VOLATILE_BUFFER = 64 * 1024  # … before it gets no more pointers / views for now
LAG_CHECK_S = 0.05
OVERLOADED_LAG_S = 0.025  # the loop woke this late: shed volatile traffic
SUSTAIN_WEIGHT = 0.1  # of each wake-up in the loop lag's moving average
ADMIT_LAG_S = 0.04  # … above which new ops are refused (`rate_limited`)


class LoadGauge:
    """How late the event loop wakes a periodic timer: the server's own measure of overload.

    Two readings of it. `overloaded`: the last wake-ups were late (a peak, held and decaying
    within ~0.2 s): enough to shed volatile traffic, which costs nothing to drop. `saturated`:
    the loop has been late *on average* over its last wake-ups (a moving average, each
    wake-up counting for `SUSTAIN_WEIGHT`, so about the last ten: half a second or more):
    the server is taking in more work than it gets through, so new ops are refused
    (`rate_limited`; the web client sends them again a moment later) rather than queued
    behind the others with a latency that grows without bound. One garbage collection pause
    or one slow callback moves the average by a tenth of itself, so it alone refuses nothing.
    """

    def __init__(self, every_s: float = LAG_CHECK_S) -> None:
        self.every_s = every_s
        self.lag_s = 0.0
        self.sustained_s = 0.0
        self.admit_lag_s = ADMIT_LAG_S
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time() + self.every_s
        self._handle = loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        late = max(0.0, now - self._due)
        # Decays in about four ticks once the loop is on time again.
        self.lag_s = max(late, self.lag_s * 0.75)
        self.sustained_s += SUSTAIN_WEIGHT * (late - self.sustained_s)
        self._due = now + self.every_s
        self._handle = loop.call_at(self._due, self._tick)

    @property
    def overloaded(self) -> bool:
        return self.lag_s > OVERLOADED_LAG_S

    @property
    def saturated(self) -> bool:
        return self.sustained_s > self.admit_lag_s

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Fanout:
    def __init__(self, sio: socketio.AsyncServer, namespace: str,
                 max_queue: int = MAX_QUEUE, volatile_queue: int = VOLATILE_QUEUE,
                 max_buffer: int = MAX_BUFFER, volatile_buffer: int = VOLATILE_BUFFER) -> None:
        self.sio = sio
        self.namespace = namespace
        self.max_queue = max_queue
        self.volatile_queue = volatile_queue
        self.max_buffer = max_buffer
        self.volatile_buffer = volatile_buffer
        self.direct_writes = 0
        track_websockets(sio)  # done by DirectServer already; kept for a plain AsyncServer
        self.gauge = LoadGauge()
        self.cut: set[str] = set()  # members disconnected for being too slow, until they go
        self.volatile_dropped = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    def packet(self, body: bytes) -> eio_packet.Packet:
        """The Engine.IO packet of `body` (the JSON array [event, data]), for socket queues:
        its encoded form is cached, so every writer task reuses the same string."""
        text = f"42{self.namespace},{body.decode()}"
        pkt = eio_packet.Packet(eio_packet.MESSAGE, data=text[1:])
        pkt.encode_cache = text
        return pkt

    def _socket(self, sid: str) -> Any:
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, self.namespace)
        sock = self.sio.eio.sockets.get(eio_sid) if eio_sid else None
        if sock is None or sock.closed or sock.closing:
            return None
        return sock

    def send(self, sids: Iterable[str], event: str, data: Any, *, volatile: bool = False,
             skip_sid: str | None = None, shed_on_lag: bool = True) -> int:
        """`send_encoded` of `[event, data]` (JSON by msgspec)."""
        return self.send_encoded(sids, event, msgspec.json.encode([event, data]),
                                 volatile=volatile, skip_sid=skip_sid, shed_on_lag=shed_on_lag)

    def send_encoded(self, sids: Iterable[str], event: str, body: bytes, *,
                     volatile: bool = False, skip_sid: str | None = None,
                     shed_on_lag: bool = True) -> int:
        """Send `body`, the JSON array `[event, data]`, to every member; return how many got
        it. The message (`42/boards,` + body) and its websocket frame are built once. Never
        awaits, so the frames of one board leave in the order they were sent. Volatile
        traffic is dropped for a member already behind, and, if `shed_on_lag`, for everyone
        while the loop runs late."""
        if volatile and shed_on_lag and self.gauge.overloaded:
            self.volatile_dropped += 1
            return 0
        pkt: eio_packet.Packet | None = None
        frame = b""
        data: Any = None
        sent = 0
        for sid in sids:
            if sid == skip_sid or sid in self.cut:
                continue
            sock = self._socket(sid)
            if sock is None:
                if data is None:
                    data = msgspec.json.decode(body)[1]
                self._spawn(self.sio.emit(event, data, to=sid, namespace=self.namespace,
                                          ignore_queue=True))
                sent += 1
                continue
            transport = transport_now(sock)
            if transport is not None:
                unsent = transport.get_write_buffer_size()
                if volatile and unsent >= self.volatile_buffer:
                    self.volatile_dropped += 1
                    continue
                if unsent >= self.max_buffer:
                    self._cut(sid, unsent)
                    continue
                if not frame:
                    frame = websocket_frame(b"42%b,%b" % (self.namespace.encode(), body))
                transport.write(frame)
                self.direct_writes += 1
                sent += 1
                continue
            waiting = sock.queue.qsize()
            if volatile and waiting >= self.volatile_queue:
                self.volatile_dropped += 1
                continue
            if waiting >= self.max_queue:
                self._cut(sid, waiting)
                continue
            if pkt is None:
                pkt = self.packet(body)
            sock.queue.put_nowait(pkt)
            sent += 1
        return sent

    def _cut(self, sid: str, waiting: int) -> None:
        log.warning("board member too slow: disconnected, it will resume",
                    extra={"sid": sid, "waiting": waiting})
        self.cut.add(sid)
        self._spawn(self.sio.disconnect(sid, namespace=self.namespace, ignore_queue=True))

    def forget(self, sid: str) -> None:
        self.cut.discard(sid)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self.gauge.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

"""Writing a packet straight to a client's websocket, when that cannot reorder anything.

python-engineio sends every packet through the socket's queue: `send` puts it there, then the
socket's writer task wakes, takes it (inside `asyncio.wait_for`, a task of its own on Python
3.11), and aiohttp frames and writes it. For the packets a busy server sends most — an `op`'s
ack, a board's frame to each member — that is two task switches and a timer per packet for
one `write`. This module writes the websocket frame to the connection's transport instead,
in the caller's own step, whenever that is indistinguishable from the queue's order:

- the connection is an upgraded websocket whose aiohttp response we can reach
  (`track_websockets`), open, and not mid-upgrade;
- its queue is empty **and its writer task is parked** waiting for the queue (an undone getter
  on the queue). Then every packet queued before has been written to the transport already:
  the writer holds none (it would not be waiting otherwise) and writes nothing until a new
  packet is queued. A writer that took packets and is waiting for the transport to drain, or
  that was woken and has not run yet, is not parked: the packet goes through the queue, after
  the others.

So the client receives the same frames in the same order as through the queue. The frame is
sent uncompressed (RSV1 clear), which RFC 7692 allows even when permessage-deflate was
negotiated, and whole in one `write`, so it never interleaves with a frame aiohttp writes.
Anything else (long-polling, binary packets, a closing socket) takes the queue as before.
"""

from __future__ import annotations

from typing import Any

import msgspec
import socketio
from engineio.async_drivers import aiohttp as eio_aiohttp

from realtime.internals import (
    install_websocket_driver,
    queue_has_waiting_getter,
    raw_websocket,
    websocket_transport,
)


class _TrackedWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]
    """python-engineio's aiohttp websocket, noting the aiohttp response on its engine.io
    socket (`aiohttp_ws`) for as long as the connection lives."""

    def __init__(self, handler: Any, server: Any) -> None:
        owner = getattr(handler, "__self__", None)

        async def tracked(ws: Any) -> Any:
            if owner is not None:
                owner.aiohttp_ws = raw_websocket(ws)
            try:
                return await handler(ws)
            finally:
                if owner is not None:
                    owner.aiohttp_ws = None

        super().__init__(tracked, server)


def track_websockets(sio: socketio.AsyncServer) -> None:
    """Install `_TrackedWebSocket` on this server only (the driver table is copied)."""
    install_websocket_driver(sio, _TrackedWebSocket)


def websocket_frame(payload: bytes) -> bytes:
    """An unmasked, final, uncompressed text frame (RFC 6455 §5.2) carrying `payload`
    (UTF-8 text)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 65536:
        header = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return header + payload


def writer_parked(sock: Any) -> bool:
    """The engine.io socket's queue is empty and its writer task waits on it."""
    queue = sock.queue
    if queue.qsize():
        return False
    return queue_has_waiting_getter(queue)


def transport_now(sock: Any) -> Any:
    """The asyncio transport to write `sock`'s next frame to directly, or None when the
    frame must go through the socket's queue (see the module's docstring)."""
    if sock.closed or sock.closing or not sock.upgraded or sock.upgrading:
        return None
    ws = getattr(sock, "aiohttp_ws", None)
    if ws is None or ws.closed:
        return None
    transport = websocket_transport(ws)
    if transport is None or transport.is_closing() or not writer_parked(sock):
        return None
    return transport


def send_text_now(sock: Any, text: str) -> bool:
    """Write the Engine.IO packet `text` (already encoded, e.g. "42/boards,[…]") to `sock`'s
    websocket if `transport_now` allows; False: the caller queues it instead."""
    transport = transport_now(sock)
    if transport is None:
        return False
    transport.write(websocket_frame(text.encode()))
    return True


def send_packet_now(sock: Any, pkt: Any) -> bool:
    """`send_text_now` for an Engine.IO text packet; its frame is built once and kept on the
    packet, for an emit that sends the same packet object to many sockets."""
    if pkt.binary:
        return False
    transport = transport_now(sock)
    if transport is None:
        return False
    frame = getattr(pkt, "direct_frame", None)
    if frame is None:
        frame = pkt.direct_frame = websocket_frame(pkt.encode().encode())
    transport.write(frame)
    return True


class DirectServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, sending each text packet straight to the client's
    websocket when `transport_now` allows (acks, emits to a connection), through the
    socket's queue otherwise. Same frames, same order; two task switches fewer each.
    It overrides python-socketio's `_send_packet` / `_send_eio_packet`: the start-up
    self-check (`realtime/internals.py`, « socketio_send_hooks ») says if they are gone."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        track_websockets(self)
        self.direct_packets = 0

    def counters(self) -> dict[str, int]:
        """For the metrics page (`realtime.metrics.Counted`): packets written straight to
        their websocket, and the Redis manager's listener reconnections (none in memory)."""
        from realtime.fanout import RoomChannelRedisManager

        manager = self.manager
        reconnects = (manager.counters()["reconnects"]
                      if isinstance(manager, RoomChannelRedisManager) else 0)
        return {"direct_packets": self.direct_packets, "redis_reconnects": reconnects}

    def _sock(self, eio_sid: str) -> Any:
        return self.eio.sockets.get(eio_sid)

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        encoded = pkt.encode()
        if isinstance(encoded, str):
            sock = self._sock(eio_sid)
            if sock is not None and send_text_now(sock, "4" + encoded):
                self.direct_packets += 1
                return
            await self.eio.send(eio_sid, encoded)
            return
        for part in encoded:  # binary attachments: the queue, as python-socketio does
            await self.eio.send(eio_sid, part)

    async def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        sock = self._sock(eio_sid)
        if sock is not None and send_packet_now(sock, eio_pkt):
            self.direct_packets += 1
            return
        await self.eio.send_packet(eio_sid, eio_pkt)


class MsgspecJSON:
    """The JSON of Socket.IO packets, by msgspec (python-socketio's `json=` option, which
    python-engineio then uses too): the standard library's `loads` with python-engineio's
    integer guard cost about 12 µs for an `op`, msgspec about 1.5 µs; `dumps` likewise for each
    ack. Invalid JSON still raises a `ValueError` (`msgspec.DecodeError` is one)."""

    @staticmethod
    def dumps(obj: Any, **_options: Any) -> str:
        return msgspec.json.encode(obj).decode()

    @staticmethod
    def loads(text: str | bytes, **_options: Any) -> Any:
        return msgspec.json.decode(text)

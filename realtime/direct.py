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

import contextlib
import logging
import re
from typing import Any

import msgspec
import socketio
from engineio.async_drivers import aiohttp as eio_aiohttp
from socketio import packet as sio_packet

from realtime.internals import (
    install_websocket_driver,
    queue_has_waiting_getter,
    raw_websocket,
    websocket_transport,
)

log = logging.getLogger(__name__)


async def _drop_malformed(owner: Any, ws: Any, exc: Exception) -> None:
    server = getattr(owner, "server", None)
    if server is not None:
        server.malformed_frames = getattr(server, "malformed_frames", 0) + 1
    log.info("malformed Engine.IO frame, connection closed",
             extra={"error": f"{type(exc).__name__}: {str(exc)[:80]}"})
    if owner is not None:
        await owner.queue.put(None)  # the socket's writer task ends
        with contextlib.suppress(Exception):
            await owner.close(wait=False, abort=True,
                              reason=owner.server.reason.TRANSPORT_ERROR)
    with contextlib.suppress(Exception):
        await ws.close()


class ProtocolNoise(logging.Filter):
    """engine.io logs a traceback at ERROR for a frame it cannot handle inside a live
    connection ("Unknown receive error": an unknown packet type): a client's garbage, not
    a server fault. Such records become one INFO line, counted on `owner.malformed_frames`."""

    NOISE = ("Unknown receive error", "message async handler error")

    def __init__(self, owner: Any) -> None:
        super().__init__()
        self.owner = owner

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.msg in self.NOISE and record.exc_info:
            exc = record.exc_info[1]
            self.owner.malformed_frames = getattr(self.owner, "malformed_frames", 0) + 1
            record.msg = "malformed Engine.IO frame: %s"
            record.args = (f"{type(exc).__name__}: {str(exc)[:80]}",)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet_protocol_logs(sio: socketio.AsyncServer) -> None:
    """Give python-socketio and python-engineio loggers of ours: warnings and errors only
    (their INFO lines describe every packet), through `ProtocolNoise`, and without the
    StreamHandler they add to their default loggers (every line printed twice)."""
    for lib, attr in (("socketio", "logger"), ("engineio", None)):
        logger = logging.getLogger(f"realtime.{lib}")
        logger.setLevel(logging.WARNING)
        if not any(isinstance(f, ProtocolNoise) for f in logger.filters):
            logger.addFilter(ProtocolNoise(sio.eio))
        if attr:
            sio.logger = logger
        else:
            sio.eio.logger = logger


_EIO_TYPES = frozenset("0123456")  # open, close, ping, pong, message, upgrade, noop


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
            except Exception as exc:
                # An Engine.IO frame engine.io cannot decode (empty, garbage) escapes its
                # handler: the websocket is already upgraded, so nothing may be written as
                # an HTTP response (the error middleware would write a 500 into the socket).
                # Closed and counted instead, in one log line.
                await _drop_malformed(owner, ws, exc)
                return None
            finally:
                if owner is not None:
                    owner.aiohttp_ws = None

        super().__init__(tracked, server)
        self._owner = owner

    async def wait(self) -> Any:
        """The next frame, or None (engine.io then closes the connection as if the client
        had) for a text frame that is no Engine.IO packet: empty, or an unknown type
        (engine.io would log a traceback and carry on)."""
        data = await super().wait()
        if isinstance(data, str) and (not data or data[0] not in _EIO_TYPES):
            server = self.server
            server.malformed_frames = getattr(server, "malformed_frames", 0) + 1
            log.info("malformed Engine.IO frame, connection closed",
                     extra={"bytes": len(data)})
            return None
        return data


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


def _malformed(pkt: Any) -> str | None:
    """Why a decoded packet cannot be handled, or None."""
    kind, data = pkt.packet_type, pkt.data
    if pkt.namespace is not None and not isinstance(pkt.namespace, str):
        return "namespace"
    if kind in (sio_packet.EVENT, sio_packet.BINARY_EVENT):
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            return "event without a name"
    elif kind in (sio_packet.ACK, sio_packet.BINARY_ACK):
        if not isinstance(data, list):
            return "ack without arguments"
    elif kind == sio_packet.CONNECT:
        if data is not None and not isinstance(data, dict):
            return "connect payload"
    elif kind != sio_packet.DISCONNECT:
        return f"packet type {kind}"
    if kind in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK) and not pkt.attachment_count:
        return "binary packet without attachments"
    return None


MALFORMED_MAX = 20  # malformed packets a connection may send before it is closed
MALFORMED_MESSAGE = "Message illisible : il a été ignoré."
# type, attachments-, /namespace, ack id: enough of a packet to answer it
_HEAD = re.compile(r"^([0-6])(?:\d+-)?(?:(/[^,\[{\d][^,]{0,100}),)?(\d{1,15})?")


class DirectServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, sending each text packet straight to the client's
    websocket when `transport_now` allows (acks, emits to a connection), through the
    socket's queue otherwise. Same frames, same order; two task switches fewer each.
    It overrides python-socketio's `_send_packet` / `_send_eio_packet`: the start-up
    self-check (`realtime/internals.py`, « socketio_send_hooks ») says if they are gone."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        track_websockets(self)
        quiet_protocol_logs(self)
        self.direct_packets = 0
        self.eio.malformed_frames = 0  # refused frames, both layers (realtime/metrics.py)

    @property
    def malformed_frames(self) -> int:
        return int(self.eio.malformed_frames)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """Malformed Socket.IO packets are answered (the connection is closed: no client of
        ours sends one) and counted, with one line in the log, not a traceback per frame
        from engine.io's handler. Well-formed packets take python-socketio's own path; an
        attachment of a binary packet under way too."""
        if eio_sid in self._binary_packet:
            return await super()._handle_eio_message(eio_sid, data)
        try:
            pkt = self.packet_class(encoded_packet=data)
            why = _malformed(pkt)
        except Exception as exc:  # whatever the decoder raises on garbage
            pkt, why = None, f"undecodable ({type(exc).__name__})"
        if why is not None:
            await self._refuse(eio_sid, data, why)
            return None
        return await self._dispatch(eio_sid, pkt)

    async def _refuse(self, eio_sid: str, data: Any, why: str) -> None:
        """A packet we cannot handle: counted; answered `invalid` when it asked for an
        answer (an event with an ack id, a namespace connection); otherwise dropped, the
        connection going on as the official clients expect. The first one of a connection
        is logged (one line); past `MALFORMED_MAX`, the connection is closed."""
        self.eio.malformed_frames += 1
        sock = self._sock(eio_sid)
        seen = getattr(sock, "malformed_seen", 0) + 1
        if sock is not None:
            sock.malformed_seen = seen
        if seen == 1:
            log.info("malformed Socket.IO packet refused",
                     extra={"reason": why, "bytes": len(data) if data else 0})
        if seen > MALFORMED_MAX:
            log.info("too many malformed Socket.IO packets, connection closed")
            await self._close_now(eio_sid)
            return
        head = _HEAD.match(data) if isinstance(data, str) else None
        if head is None:
            return
        kind, namespace, ack_id = int(head[1]), head[2] or "/", head[3]
        error = {"code": "invalid", "message": MALFORMED_MESSAGE}
        with contextlib.suppress(Exception):
            if kind == sio_packet.EVENT and ack_id and self.manager.sid_from_eio_sid(
                    eio_sid, namespace):
                await self._send_packet(eio_sid, self.packet_class(
                    sio_packet.ACK, namespace=namespace,
                    data=[{"ok": False, "error": error}], id=int(ack_id)))
            elif kind == sio_packet.CONNECT:
                await self._send_packet(eio_sid, self.packet_class(
                    sio_packet.CONNECT_ERROR, namespace=namespace,
                    data={"message": MALFORMED_MESSAGE, "data": {"code": "invalid"}}))

    async def _close_now(self, eio_sid: str) -> None:
        """Engine.IO's close, then the websocket itself: without it the socket would wait
        for the client to answer, up to the ping timeout."""
        ws = getattr(self._sock(eio_sid), "aiohttp_ws", None)
        with contextlib.suppress(Exception):
            await self.eio.disconnect(eio_sid)
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close(code=1008, message=b"malformed packet")

    async def _dispatch(self, eio_sid: str, pkt: Any) -> None:
        """python-socketio's dispatch of a decoded packet (its `_handle_eio_message`)."""
        kind = pkt.packet_type
        if kind == sio_packet.CONNECT:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif kind == sio_packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace,
                                          self.reason.CLIENT_DISCONNECT)
        elif kind == sio_packet.EVENT:
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif kind == sio_packet.ACK:
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or "/"):
            self._binary_packet[eio_sid] = pkt  # BINARY_EVENT / BINARY_ACK
        else:
            self.eio.malformed_frames += 1
            log.info("binary Socket.IO packet before connecting, connection closed")
            await self._close_now(eio_sid)

    def counters(self) -> dict[str, int]:
        """For the metrics page (`realtime.metrics.Counted`): packets written straight to
        their websocket, the Redis manager's listener reconnections (none in memory), and
        the malformed frames refused (both layers)."""
        from realtime.fanout import RoomChannelRedisManager

        manager = self.manager
        reconnects = (manager.counters()["reconnects"]
                      if isinstance(manager, RoomChannelRedisManager) else 0)
        return {"direct_packets": self.direct_packets, "redis_reconnects": reconnects,
                "malformed_frames": self.malformed_frames}

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

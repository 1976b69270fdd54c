"""A lean Socket.IO 5 / Engine.IO 4 client: a websocket spoken on a bare `asyncio.Protocol`.

The load generator's clients must cost far less CPU per received event than the server under
test, or a small machine measures its clients. `bench/_rawsio.py` (aiohttp's websocket) costs
~34 µs per delivery; this client does the HTTP/1.1 upgrade itself, parses websocket frames
straight out of `data_received` and decodes Socket.IO packets with `msgspec`, with no task,
future or aiohttp object per message: one received event is a frame header read, a prefix
compare, one JSON decode and the `on_event` call.

What it speaks (what python-socketio's client sends, so the server sees the same client):

- websocket (RFC 6455): `GET /socket.io/?EIO=4&transport=websocket` upgrade, 101 and
  `Sec-WebSocket-Accept` checked; server frames are unmasked (7/16/64-bit lengths, text,
  ping → pong, close → close back); client frames masked with a random key each. No
  permessage-deflate, no fragmented messages (the server sends neither: a continuation frame
  is an error).
- Engine.IO 4: the `0{…}` open packet, ping `2` → pong `3`; one packet per frame.
- Socket.IO 5 on one namespace: connect `40/ns,{"token": …}` → `40/ns,…` (or `44/ns,…`, a
  refusal: `ConnectionRefusedError`), events `42/ns,[name, data]` → `on_event(name, data)`,
  `emit` (`42/ns,<id>[event, data]`, the id when a callback is given) and its ack
  `43/ns,<id>[…]` → `callback(*args)`, `41/ns,` to leave.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import random
import ssl
import struct
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import msgspec

OnEvent = Callable[[str, Any], None]
Ack = Callable[..., None]

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PATH = "/socket.io/?EIO=4&transport=websocket"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_HEADER = 64 * 1024  # the 101 response's headers, at most

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")
_decode = msgspec.json.decode
_encode = msgspec.json.encode


class WebSocketProtocolError(ConnectionError):
    """The server broke RFC 6455 or sent something this client does not speak."""


def accept_key(key: str) -> str:
    """The `Sec-WebSocket-Accept` a server must answer to `Sec-WebSocket-Key: key`."""
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def mask_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One final client frame (RFC 6455 §5.3): masked with a fresh random 4-byte key."""
    n = len(payload)
    key = random.getrandbits(32).to_bytes(4, "big")
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + _U16.pack(n)
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + _U64.pack(n)
    if not n:
        return head + key
    keys = (key * ((n + 3) // 4))[:n]
    body = (int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(
        n, "little")
    return head + key + body


def unmask(frame_payload: bytes, key: bytes) -> bytes:
    """XOR with the key again: a masked payload back in clear (for tests)."""
    n = len(frame_payload)
    keys = (key * ((n + 3) // 4))[:n]
    return (int.from_bytes(frame_payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(
        n, "little")


def _settle(fut: asyncio.Future[None], exc: Exception) -> None:
    """Fail a waiter that may have none (a connection that breaks after it opened): whoever
    awaits it still gets the exception, nobody else logs "never retrieved"."""
    if not fut.done():
        fut.set_exception(exc)
        fut.exception()


class LeanSocketIO(asyncio.Protocol):
    """One Socket.IO connection to one namespace. Build it with `await LeanSocketIO.connect(…)`;
    the constructor and `connection_made`/`data_received` are the protocol's (tests feed them
    bytes directly)."""

    def __init__(self, ns: str, on_event: OnEvent, host: str = "localhost",
                 query: str = "") -> None:
        self.ns = ns
        self.path = f"{PATH}&{query}" if query else PATH
        self.on_event = on_event
        self.host = host
        sep = f"{ns}," if ns != "/" else ""
        self._ev = f"42{sep}".encode()  # server event
        self._ack = f"43{sep}".encode()  # answer to one of our emits
        self._nsp = sep.encode()
        self._ev_len, self._ack_len = len(self._ev), len(self._ack)
        self.transport: asyncio.Transport | None = None
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.upgraded = False
        self.closed = False
        self.open_packet: dict[str, Any] | None = None
        self.sid: str | None = None
        self.close_code: int | None = None
        self.pings = 0  # Engine.IO pings answered
        self.error: Exception | None = None  # what broke the connection, if we broke it
        self._buf = bytearray()
        self._acks: dict[int, Ack] = {}
        self._next_id = 1
        loop = asyncio.get_event_loop()
        self._opened: asyncio.Future[None] = loop.create_future()  # Engine.IO open packet
        self._joined: asyncio.Future[None] = loop.create_future()  # namespace connected
        self._lost: asyncio.Future[None] = loop.create_future()  # transport gone

    # --- connecting ----------------------------------------------------------------------

    @classmethod
    async def connect(cls, url: str, ns: str, token: str | None, on_event: OnEvent,
                      timeout_s: float = 30, auth: dict[str, Any] | None = None,
                      query: str = "") -> LeanSocketIO:
        """Open the websocket to `url` (http://host:port or ws://…), wait for Engine.IO's
        open packet, connect to `ns` with `{"token": token}` (or `auth`) and return once the
        server accepted it. A refusal raises `ConnectionRefusedError`. `query` (`board=12`)
        is added to the handshake's URL, as the web client's board connection does."""
        parts = urlsplit(url)
        secure = parts.scheme in ("https", "wss")
        host = parts.hostname or "localhost"
        port = parts.port or (443 if secure else 80)
        loop = asyncio.get_running_loop()
        netloc = host if parts.port is None else f"{host}:{port}"
        ctx = ssl.create_default_context() if secure else None
        _t, self = await asyncio.wait_for(
            loop.create_connection(lambda: cls(ns, on_event, netloc, query), host, port,
                                   ssl=ctx),
            timeout_s)
        try:
            await asyncio.wait_for(asyncio.shield(self._opened), timeout_s)
            body = auth if auth is not None else ({"token": token} if token is not None
                                                  else None)
            packet = b"40" + self._nsp + (_encode(body) if body is not None else b"")
            self._send(packet)
            await asyncio.wait_for(asyncio.shield(self._joined), timeout_s)
        except BaseException:
            self.abort()
            raise
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's: no subclass
        transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode())

    def _upgrade(self) -> None:
        """Parse the 101 response once the buffer holds its headers; frames may follow."""
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEADER:
                raise WebSocketProtocolError("no end to the upgrade response's headers")
            return
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        del buf[:end + 4]
        status = lines[0].split(" ", 2)
        if len(status) < 2 or status[1] != "101":
            raise WebSocketProtocolError(f"websocket upgrade refused: {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("sec-websocket-accept") != accept_key(self.key):
            raise WebSocketProtocolError("bad Sec-WebSocket-Accept in the upgrade response")
        if headers.get("sec-websocket-extensions"):
            raise WebSocketProtocolError(
                f"unrequested websocket extension: {headers['sec-websocket-extensions']}")
        self.upgraded = True

    # --- receiving: the hot path -----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        try:
            buf = self._buf
            if not self.upgraded:
                buf += data
                self._upgrade()
                if not self.upgraded or not buf:
                    return
                b: bytes | bytearray = buf
            elif buf:
                buf += data
                b = buf
            else:
                b = data  # nothing left over: parse the chunk itself, no copy
            end = len(b)
            i = self._frames(b, end)
            if b is buf:
                del buf[:i]
            elif i < end:
                buf += b[i:]
        except Exception as exc:  # kept for the caller to see; the connection is dropped
            self.error = exc
            self._fail(exc)

    def _frames(self, b: bytes | bytearray, end: int) -> int:
        """Handle every complete frame in b; return where the first incomplete one starts."""
        i = 0
        ev, ev_len = self._ev, self._ev_len
        on_event = self.on_event
        while end - i >= 2:
            b0 = b[i]
            n = b[i + 1]
            if n & 0x80:
                raise WebSocketProtocolError("the server masked a frame")
            if n < 126:
                s = i + 2
            elif n == 126:
                if end - i < 4:
                    break
                n = _U16.unpack_from(b, i + 2)[0]
                s = i + 4
            else:
                if end - i < 10:
                    break
                n = _U64.unpack_from(b, i + 2)[0]
                s = i + 10
            e = s + n
            if e > end:
                break
            i = e
            if b0 == 0x81:  # final text frame: one Engine.IO packet
                if b.startswith(ev, s, e):
                    j = s + ev_len
                    if b[j] != 0x5B:  # `[`: an ack id first (the server wants an answer)
                        j = b.index(b"[", j, e)
                    name, payload = _decode(b[j:e])
                    on_event(name, payload)
                else:
                    self._packet(b[s:e])
            else:
                self._control(b0, b[s:e])
        return i

    def _packet(self, p: bytes | bytearray) -> None:
        """Every Engine.IO / Socket.IO packet but a server event."""
        if p == b"2":  # Engine.IO ping
            self.pings += 1
            self._send(b"3")
        elif p.startswith(self._ack):
            k = p.index(b"[", self._ack_len)
            callback = self._acks.pop(int(p[self._ack_len:k]), None)
            if callback is not None:
                callback(*_decode(p[k:]))
        elif p[:1] == b"0":  # Engine.IO open
            self.open_packet = _decode(p[1:])
            if not self._opened.done():
                self._opened.set_result(None)
        elif p.startswith(b"40" + self._nsp):
            rest = p[2 + len(self._nsp):]
            self.sid = _decode(rest).get("sid") if rest else None
            if not self._joined.done():
                self._joined.set_result(None)
        elif p.startswith(b"44" + self._nsp):
            rest = p[2 + len(self._nsp):]
            detail = _decode(rest) if rest else None
            message = detail.get("message") if isinstance(detail, dict) else detail
            exc = ConnectionRefusedError(f"Socket.IO namespace {self.ns} refused the "
                                         f"connection: {message!r}")
            _settle(self._joined, exc)
            self.abort()
        elif p.startswith(b"41" + self._nsp) or p == b"1":  # left by the server / EIO close
            self.abort()
        # Anything else (noop `6`, other namespaces, a binary event's header) is ignored; a
        # binary frame (an attachment) is an error in `_control`.

    def _control(self, b0: int, payload: bytes | bytearray) -> None:
        op = b0 & 0x0F
        if b0 & 0x70:
            raise WebSocketProtocolError("a frame with RSV bits set (no extension agreed)")
        if not b0 & 0x80 or op == OP_CONT:
            raise WebSocketProtocolError(
                "fragmented websocket message (continuation frames are not supported)")
        if op == OP_PING:
            self._write(mask_frame(bytes(payload), OP_PONG))
        elif op == OP_PONG:
            pass
        elif op == OP_CLOSE:
            self.close_code = _U16.unpack_from(payload)[0] if len(payload) >= 2 else None
            if not self.closed:
                self._write(mask_frame(bytes(payload[:2]), OP_CLOSE))
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        elif op == OP_TEXT:  # non-final text frame
            raise WebSocketProtocolError("fragmented websocket message")
        else:
            raise WebSocketProtocolError(f"unexpected websocket opcode {op:#x}")

    # --- sending ----------------------------------------------------------------------------

    def _write(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    def _send(self, packet: bytes) -> None:
        if self.closed:
            raise ConnectionError("the connection is closed")
        self._write(mask_frame(packet))

    def emit(self, event: str, data: Any, callback: Ack | None = None) -> None:
        """Send `event` with `data` now (written to the transport, nothing awaited); with a
        callback, the server's ack calls `callback(*args)`."""
        if callback is None:
            self._send(self._ev + _encode([event, data]))
            return
        ack_id = self._next_id
        self._next_id += 1
        self._acks[ack_id] = callback
        self._send(self._ev + str(ack_id).encode() + _encode([event, data]))

    async def call(self, event: str, data: Any, timeout_s: float = 30) -> Any:
        """Emit `event` and return the first argument of its ack."""
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        lost = self._lost

        def done(*args: Any) -> None:
            if not answer.done():
                answer.set_result(args[0] if args else None)

        self.emit(event, data, callback=done)
        await asyncio.wait_for(asyncio.wait((answer, lost),
                                            return_when=asyncio.FIRST_COMPLETED), timeout_s)
        if not answer.done():
            raise ConnectionError(f"connection lost while waiting for the ack of {event}")
        return answer.result()

    # --- closing --------------------------------------------------------------------------

    async def disconnect(self, wait_s: float = 5) -> None:
        """Leave the namespace (`41/ns,`), close the websocket and wait (at most wait_s) for
        the server to close the connection."""
        if not self.closed:
            with contextlib.suppress(ConnectionError):
                self._send(b"41" + self._nsp)
            self._write(mask_frame(_U16.pack(1000), OP_CLOSE))
            self.closed = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._lost), wait_s)
        self.abort()

    def abort(self) -> None:
        """Close the transport now."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        for fut in (self._opened, self._joined):
            _settle(fut, exc)
        if self.transport is not None:
            self.transport.abort()
        self.closed = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        lost = self.error or exc or ConnectionError("connection closed before it was open")
        for fut in (self._opened, self._joined):
            _settle(fut, lost)
        if not self._lost.done():
            self._lost.set_result(None)
        self._acks.clear()

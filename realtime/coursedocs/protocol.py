"""The y-protocols wire format (sync, awareness, auth, query-awareness), encoded by hand.

Hand-written on purpose: pycrdt 0.14's `write_var_string` prefixes a string with its character
count, while lib0 (Yjs) prefixes the UTF-8 *byte* length, so any non-ASCII awareness name
("Hélène") would be misread by a browser. Everything here is pure and bounds-checked: a
malformed frame raises `ProtocolError` and never reads past the buffer.
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Any

import msgspec


class ProtocolError(ValueError):
    """A frame that does not follow y-protocols."""


class MessageType(IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3


class SyncType(IntEnum):
    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


PERMISSION_DENIED = 0
ACCESS = 1  # ours: "edit" / "read", when the owner changes a class's access (stock clients
# read only subtype 0 and ignore this one)
EMPTY_UPDATE = b"\x00\x00"  # no structs, empty delete set


def write_var_uint(n: int) -> bytes:
    if n < 0:
        raise ValueError("varUint must not be negative")
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def write_var_bytes(data: bytes) -> bytes:
    return write_var_uint(len(data)) + data


def write_var_string(text: str) -> bytes:
    """lib0's writeVarString: the UTF-8 byte length, then the bytes."""
    return write_var_bytes(text.encode("utf-8"))


class Reader:
    """lib0 decoding over one frame."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def var_uint(self) -> int:
        n, shift = 0, 0
        while True:
            if self.pos >= len(self.buf):
                raise ProtocolError("varUint runs past the end of the frame")
            b = self.buf[self.pos]
            self.pos += 1
            n |= (b & 0x7F) << shift
            if b < 0x80:
                return n
            shift += 7
            if shift > 63:
                raise ProtocolError("varUint is too long")

    def var_bytes(self) -> bytes:
        size = self.var_uint()
        end = self.pos + size
        if end > len(self.buf):
            raise ProtocolError("byte array runs past the end of the frame")
        data = self.buf[self.pos:end]
        self.pos = end
        return data

    def var_string(self) -> str:
        try:
            return self.var_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("string is not UTF-8") from exc

    def done(self) -> bool:
        return self.pos >= len(self.buf)


# --- messages -------------------------------------------------------------------------------

def sync_step1(state_vector: bytes) -> bytes:
    return bytes([MessageType.SYNC, SyncType.STEP1]) + write_var_bytes(state_vector)


def sync_step2(update: bytes) -> bytes:
    return bytes([MessageType.SYNC, SyncType.STEP2]) + write_var_bytes(update)


def sync_update(update: bytes) -> bytes:
    return bytes([MessageType.SYNC, SyncType.UPDATE]) + write_var_bytes(update)


def awareness_message(update: bytes) -> bytes:
    return bytes([MessageType.AWARENESS]) + write_var_bytes(update)


def query_awareness() -> bytes:
    return bytes([MessageType.QUERY_AWARENESS])


def permission_denied(reason: str) -> bytes:
    return bytes([MessageType.AUTH, PERMISSION_DENIED]) + write_var_string(reason)


def access_changed(mode: str) -> bytes:
    """Tell an open connection it may now write ("edit") or only read ("read")."""
    return bytes([MessageType.AUTH, ACCESS]) + write_var_string(mode)


class Message(msgspec.Struct, frozen=True):
    """One decoded frame: `kind`, the sync subtype if any, and its payload bytes/reason."""

    kind: MessageType
    sync: SyncType | None = None
    payload: bytes = b""
    reason: str = ""


def decode(frame: bytes) -> Message:
    """One message per frame, as the stock y-websocket client expects and sends."""
    r = Reader(frame)
    try:
        kind = MessageType(r.var_uint())
    except ValueError as exc:
        raise ProtocolError("unknown message type") from exc
    if kind is MessageType.SYNC:
        try:
            sub = SyncType(r.var_uint())
        except ValueError as exc:
            raise ProtocolError("unknown sync message") from exc
        msg = Message(kind, sub, r.var_bytes())
    elif kind is MessageType.AWARENESS:
        msg = Message(kind, payload=r.var_bytes())
    elif kind is MessageType.AUTH:
        sub = r.var_uint()
        if sub not in (PERMISSION_DENIED, ACCESS):
            raise ProtocolError("unknown auth message")
        msg = Message(kind, payload=bytes([sub]), reason=r.var_string())
    else:
        msg = Message(kind)
    if not r.done():
        raise ProtocolError("trailing bytes after the message")
    return msg


# --- awareness ------------------------------------------------------------------------------

class AwarenessEntry(msgspec.Struct, frozen=True):
    """One client's awareness: `state` is the JSON text ("null" once it left)."""

    client_id: int
    clock: int
    state: str

    @property
    def removed(self) -> bool:
        return self.state == "null"


def decode_awareness(update: bytes) -> list[AwarenessEntry]:
    r = Reader(update)
    count = r.var_uint()
    if count > 10_000:
        raise ProtocolError("too many awareness entries")
    entries = []
    for _ in range(count):
        client_id, clock, state = r.var_uint(), r.var_uint(), r.var_string()
        try:
            json.loads(state)
        except (ValueError, RecursionError) as exc:  # "[[[[…" 100,000 deep: RecursionError
            raise ProtocolError("awareness state is not JSON") from exc
        entries.append(AwarenessEntry(client_id, clock, state))
    if not r.done():
        raise ProtocolError("trailing bytes after the awareness update")
    return entries


def encode_awareness(entries: list[AwarenessEntry]) -> bytes:
    out = bytearray(write_var_uint(len(entries)))
    for e in entries:
        out += write_var_uint(e.client_id) + write_var_uint(e.clock) + write_var_string(e.state)
    return bytes(out)


def awareness_state(entry: AwarenessEntry) -> Any:
    return json.loads(entry.state)

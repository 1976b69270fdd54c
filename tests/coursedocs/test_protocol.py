"""The lib0 / y-protocols encoding, byte for byte (pure)."""

from __future__ import annotations

import pytest

from realtime.coursedocs import protocol as wire


def test_var_string_prefixes_the_utf8_byte_length() -> None:
    assert wire.write_var_string("é") == b"\x02\xc3\xa9"  # 2 bytes, not 1 character
    assert wire.write_var_string("Hélène") == b"\x08" + "Hélène".encode()
    r = wire.Reader(wire.write_var_string("œuvre à l'école"))
    assert r.var_string() == "œuvre à l'école" and r.done()


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 2**32, 2**53])
def test_var_uint_round_trip(n: int) -> None:
    r = wire.Reader(wire.write_var_uint(n))
    assert r.var_uint() == n and r.done()


def test_var_uint_known_bytes() -> None:
    assert wire.write_var_uint(300) == b"\xac\x02"  # lib0: 7 bits per byte, low first


def test_messages_round_trip() -> None:
    assert wire.decode(wire.sync_step1(b"\x00")) == wire.Message(
        wire.MessageType.SYNC, wire.SyncType.STEP1, b"\x00")
    assert wire.decode(wire.sync_update(b"\x00\x00")).sync is wire.SyncType.UPDATE
    assert wire.decode(wire.query_awareness()).kind is wire.MessageType.QUERY_AWARENESS
    denied = wire.permission_denied("Lecture seule : é")
    assert denied[:2] == b"\x02\x00"
    assert wire.decode(denied).reason == "Lecture seule : é"


def test_awareness_round_trip_with_accents() -> None:
    entries = [wire.AwarenessEntry(1, 3, '{"user":{"name":"Zoé"}}'),
               wire.AwarenessEntry(2**40, 1, "null")]
    encoded = wire.encode_awareness(entries)
    assert wire.decode_awareness(encoded) == entries
    assert entries[1].removed


@pytest.mark.parametrize("frame", [
    b"", b"\x09", b"\x00", b"\x00\x05", b"\x00\x00\x05ab", b"\x00\x00\x01\x00\x00",
    b"\x02\x01", b"\x02\x00\x02\xff\xfe", b"\x03\x00", b"\xff" * 12,
])
def test_malformed_frames_raise(frame: bytes) -> None:
    with pytest.raises(wire.ProtocolError):
        wire.decode(frame)


@pytest.mark.parametrize("update", [
    b"\x01\x01\x01\x01\x03{x}", b"\x01\x01\x01\x01\x09abc", b"\x01\x01",
])
def test_malformed_awareness_raises(update: bytes) -> None:
    with pytest.raises(wire.ProtocolError):
        wire.decode_awareness(update)

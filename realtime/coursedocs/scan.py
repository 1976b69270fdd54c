"""Read a Yjs update (v1) struct by struct before pycrdt sees it, and bound what it may hold.

Why by hand: yrs decodes some contents recursively. A 200 KB update holding one `ContentAny`
nested 100,000 arrays deep overflows its stack and kills the whole server process (SIGSEGV),
so such bytes must never reach `pycrdt.get_state` or `Doc.apply_update`. This reader is
iterative, bounds-checked (a `ProtocolError` on anything short or unknown) and counts what
the limits are about: structs, shared types created (nodes), the nesting of JSON-like values.

Format (Yjs `UpdateEncoderV1`, lib0 encodings): varUint number of client groups; each: varUint
struct count, client, clock, then structs (info byte: low 5 bits the content kind, bit 8 left
origin, bit 7 right origin, bit 6 parent sub); then the delete set.
"""

from __future__ import annotations

import msgspec

from realtime.coursedocs.protocol import ProtocolError, Reader

ANY_DEPTH_MAX = 32  # nesting of lib0 "any" values (attributes, ContentAny): JSON-like data
STRUCTS_MAX = 200_000  # a 1 MiB frame cannot hold more meaningful structs than this

_GC, _SKIP = 0, 10
_TYPE_REF_XML_ELEMENT, _TYPE_REF_XML_HOOK = 3, 5
_TYPE_REF_MAX = 6


class Scan(msgspec.Struct):
    """What one update holds."""

    structs: int = 0
    types: int = 0  # shared types created (XmlElement, XmlText, Map, Array, Text…)
    roots: set[str] = msgspec.field(default_factory=set)  # root names it names as parents
    subdocs: int = 0


def _u8(r: Reader) -> int:
    if r.pos >= len(r.buf):
        raise ProtocolError("update ends inside a struct")
    b = r.buf[r.pos]
    r.pos += 1
    return b


def _skip(r: Reader, n: int) -> None:
    if r.pos + n > len(r.buf):
        raise ProtocolError("update ends inside a value")
    r.pos += n


def _any(r: Reader) -> None:
    """One lib0 `any` value, iteratively: each open array or object on `stack` says how many
    values it still holds (an object's entries are a plain-string key, then a value)."""
    stack: list[list[int]] = [[0, 1]]  # [is_object, values left]
    while stack:
        top = stack[-1]
        if top[1] == 0:
            stack.pop()
            continue
        top[1] -= 1
        if top[0]:
            r.var_bytes()  # the key
        tag = _u8(r)
        if tag in (127, 126, 121, 120):  # undefined, null, false, true
            continue
        if tag == 125:  # varInt
            r.var_uint()
        elif tag == 124:  # float32
            _skip(r, 4)
        elif tag in (123, 122):  # float64, bigint64
            _skip(r, 8)
        elif tag in (119, 116):  # string, bytes
            r.var_bytes()
        elif tag in (118, 117):  # object, array
            n = _count(r)
            if len(stack) >= ANY_DEPTH_MAX:
                raise ProtocolError("value nested too deeply")
            stack.append([int(tag == 118), n])
        else:
            raise ProtocolError("unknown value type")


def _json_text(r: Reader) -> None:
    """ContentJSON / ContentEmbed / ContentFormat values are JSON strings that yrs parses:
    bound their nesting without parsing them (brackets outside strings)."""
    text = r.var_bytes()
    depth, in_string, escaped = 0, False, False
    for b in text:
        if in_string:
            if escaped:
                escaped = False
            elif b == 0x5C:
                escaped = True
            elif b == 0x22:
                in_string = False
        elif b == 0x22:
            in_string = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > ANY_DEPTH_MAX:
                raise ProtocolError("value nested too deeply")
        elif b in (0x5D, 0x7D):
            depth -= 1


def _content(r: Reader, kind: int, scan: Scan) -> None:
    if kind == 1:  # deleted
        r.var_uint()
    elif kind == 2:  # JSON: count, then strings
        for _ in range(_count(r)):
            _json_text(r)
    elif kind == 3:  # binary
        r.var_bytes()
    elif kind == 4:  # string
        r.var_bytes()
    elif kind == 5:  # embed
        _json_text(r)
    elif kind == 6:  # format: key, JSON value
        r.var_bytes()
        _json_text(r)
    elif kind == 7:  # a shared type
        ref = r.var_uint()
        if ref > _TYPE_REF_MAX:
            raise ProtocolError("unknown shared type")
        if ref in (_TYPE_REF_XML_ELEMENT, _TYPE_REF_XML_HOOK):
            r.var_bytes()  # the tag
        scan.types += 1
    elif kind == 8:  # any: count, then values
        for _ in range(_count(r)):
            _any(r)
    elif kind == 9:  # a sub-document: guid, options
        r.var_bytes()
        _any(r)
        scan.subdocs += 1
    else:
        raise ProtocolError("unknown content kind")


def _count(r: Reader) -> int:
    n = r.var_uint()
    if n > len(r.buf):
        raise ProtocolError("count larger than the update")
    return n


def scan_update(update: bytes) -> Scan:
    """Read the whole update; `ProtocolError` if it is not a well-formed Yjs update v1 or
    holds values nested deeper than `ANY_DEPTH_MAX`."""
    r = Reader(update)
    scan = Scan()
    for _ in range(_count(r)):
        n_structs = _count(r)
        r.var_uint()  # client
        r.var_uint()  # clock
        for _ in range(n_structs):
            scan.structs += 1
            if scan.structs > STRUCTS_MAX:
                raise ProtocolError("too many structs")
            info = _u8(r)
            kind = info & 0x1F
            if kind in (_GC, _SKIP):
                r.var_uint()
                continue
            if info & 0x80:  # left origin
                r.var_uint()
                r.var_uint()
            if info & 0x40:  # right origin
                r.var_uint()
                r.var_uint()
            if not info & 0xC0:  # no origin: the parent is written
                if r.var_uint() == 1:
                    try:
                        scan.roots.add(r.var_bytes().decode("utf-8"))
                    except UnicodeDecodeError as exc:
                        raise ProtocolError("root name is not UTF-8") from exc
                else:
                    r.var_uint()
                    r.var_uint()
                if info & 0x20:
                    r.var_bytes()  # parent sub (a map key)
            _content(r, kind, scan)
    for _ in range(_count(r)):  # delete set
        r.var_uint()
        for _ in range(_count(r)):
            r.var_uint()
            r.var_uint()
    if not r.done():
        raise ProtocolError("trailing bytes after the update")
    return scan

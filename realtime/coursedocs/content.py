"""Document content with pycrdt: build from the store, validate updates, restore versions."""

from __future__ import annotations

import secrets
from typing import Any

import pycrdt
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from realtime.coursedocs import protocol as wire
from realtime.coursedocs.model import FRAGMENT


class BadUpdate(ValueError):
    """Bytes that are not a Yjs update (v1)."""


def build(updates: list[bytes]) -> Doc:
    doc = Doc()
    for u in updates:
        doc.apply_update(u)
    return doc


def fragment(doc: Doc) -> XmlFragment:
    return doc.get(FRAGMENT, type=XmlFragment)


def check_update(update: bytes) -> None:
    """Decode the whole update without applying it (yrs reads every struct to find the state
    vector), so garbage is refused before it is stored."""
    try:
        pycrdt.get_state(update)
    except Exception as exc:  # pyo3 raises ValueError, or PanicException on some inputs
        raise BadUpdate(str(exc)) from exc


def merge(updates: list[bytes]) -> bytes:
    """One update equivalent to all of them (no struct dropped, pending ones included)."""
    if len(updates) == 1:
        return updates[0]
    return pycrdt.merge_updates(*updates)


def _attr(value: Any) -> Any:
    """Yjs numbers come back from pycrdt as floats: keep integers integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _copy_children(source: Any, target: Any) -> None:
    for child in source.children:
        if isinstance(child, XmlText):
            text = target.children.append(XmlText())
            for chunk, attrs in child.diff():
                at = len(text)
                if isinstance(chunk, str):
                    text.insert(at, chunk, attrs=attrs)
                else:
                    text.insert_embed(at, chunk, attrs=attrs)
        elif isinstance(child, XmlElement):
            attrs = {k: _attr(v) for k, v in child.attributes}
            element = target.children.append(XmlElement(child.tag, attrs))
            _copy_children(child, element)


def client_ids(state_vector: bytes) -> set[int]:
    """The clients a Yjs state vector (v1) knows: varUint count, then (client, clock) pairs."""
    r = wire.Reader(state_vector)
    ids = set()
    for _ in range(r.var_uint()):
        ids.add(r.var_uint())
        r.var_uint()
    return ids


def server_client_id(current: bytes) -> int:
    """A client id for an edit the server writes itself: 32 bits, as Yjs draws its own, and
    none of the document's. pycrdt's default is 53 bits, which y-py (yrs 0.16) truncates to
    32: a y-py client re-sending such content on its next sync would make it appear twice."""
    taken = client_ids(pycrdt.get_state(current))
    while True:
        candidate = secrets.randbits(32)
        if candidate and candidate not in taken:
            return candidate


def restore_update(current: bytes, old_state: bytes) -> bytes:
    """The update that, applied on top of `current`, makes the content equal to `old_state`:
    history is kept (it is a new edit that deletes today's content and inserts the old one),
    so every connected client converges to the old text by ordinary sync."""
    work = Doc(client_id=server_client_id(current))
    work.apply_update(current)
    old = build([old_state])
    target, source = fragment(work), fragment(old)
    before = work.get_state()
    with work.transaction():
        while len(target.children):
            del target.children[0]
        _copy_children(source, target)
    return work.get_update(before)

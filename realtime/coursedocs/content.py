"""Document content with pycrdt: build from the store, validate updates, restore versions."""

from __future__ import annotations

import secrets
import weakref
from collections.abc import Iterator
from typing import Any

import msgspec
import pycrdt
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from realtime.coursedocs import protocol as wire
from realtime.coursedocs.model import FRAGMENT
from realtime.coursedocs.scan import scan_update


class BadUpdate(ValueError):
    """Bytes that are not a Yjs update (v1)."""


class TooDeep(ValueError):
    """An update that would break a structure limit (nesting, nodes, roots): refused like
    the other limits, the document unchanged. The message is for people."""


COPY_DEPTH = 200  # what a restore copies of a (pre-limit, poisoned) document


class Limits(msgspec.Struct, frozen=True):
    max_depth: int = 64  # elements inside elements (a list in a list is 2 levels)
    max_nodes: int = 10_000  # shared types (paragraphs, texts, list items…) per update


def build(updates: list[bytes]) -> Doc:
    doc = Doc()
    for u in updates:
        doc.apply_update(u)
    return doc


def fragment(doc: Doc) -> XmlFragment:
    return doc.get(FRAGMENT, type=XmlFragment)


def check_update(update: bytes, limits: Limits | None = None) -> None:
    """Read the whole update without applying it, first with our own bounded reader (yrs
    overflows its stack on deeply nested values: a crash, not an error), then with yrs (which
    reads every struct to find the state vector), so garbage is refused before it is stored.
    With `limits`: also the node count and the roots (only the "prosemirror" fragment)."""
    try:
        scan = scan_update(update)
    except wire.ProtocolError as exc:
        raise BadUpdate(str(exc)) from exc
    if limits is not None:
        if scan.types > limits.max_nodes:
            raise TooDeep(f"Modification trop grande ({limits.max_nodes} éléments au plus).")
        if scan.roots - {FRAGMENT} or scan.subdocs:
            raise TooDeep("Ce document n'accepte que le contenu du cours.")
    try:
        pycrdt.get_state(update)
    except BaseException as exc:  # pyo3: ValueError, or PanicException (a BaseException)
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        raise BadUpdate(str(exc)) from exc


def _kids(node: Any) -> Iterator[Any]:
    """The shared types directly inside `node` (children, embeds, attribute values)."""
    if isinstance(node, (XmlElement, XmlFragment)):
        yield from node.children
    if isinstance(node, XmlElement):
        for _, value in node.attributes:
            if isinstance(value, (XmlElement, XmlText, Map, Array, Text)):
                yield value
    if isinstance(node, (XmlText, Text)):
        for chunk, _ in node.diff():
            if isinstance(chunk, (XmlElement, XmlText, Map, Array, Text)):
                yield chunk
    elif isinstance(node, Map):
        for value in node.values():
            if isinstance(value, (XmlElement, XmlText, Map, Array, Text)):
                yield value
    elif isinstance(node, Array):
        for value in node:
            if isinstance(value, (XmlElement, XmlText, Map, Array, Text)):
                yield value


def height(node: Any, stop: int) -> int:
    """How many levels `node` spans (1 for a leaf), walked without recursion; stops
    counting once past `stop`."""
    best = 0
    stack = [(node, 1)]
    while stack:
        current, level = stack.pop()
        best = max(best, level)
        if best > stop:
            return best
        stack.extend((kid, level + 1) for kid in _kids(current))
    return best


class Gate:
    """A copy of the content, ahead of the room's `Doc` by the updates queued for storage:
    a client's update is tried here before it is stored, and refused if it would nest
    elements deeper than `limits.max_depth` (a depth no single update shows: it grows one
    paragraph inside the last one, update after update). Every other update the room applies
    (relayed, caught up, restored) is followed here too. After a refusal the copy holds the
    refused update: the room rebuilds it from what is really there (`reset`)."""

    def __init__(self, updates: list[bytes], limits: Limits) -> None:
        self.limits = limits
        self.reset(updates)

    def reset(self, updates: list[bytes]) -> None:
        self.doc = build(updates)
        self._deepest = 0
        self._fragment = fragment(self.doc)  # the subscription lives as long as these
        gate = weakref.ref(self)  # the document's callback must not hold its gate: no cycle

        def observe(events: list[Any]) -> None:
            live = gate()
            if live is not None:
                live._observe(events)
        self._subscription = self._fragment.observe_deep(observe)

    def _observe(self, events: list[Any]) -> None:
        stop = self.limits.max_depth
        try:
            for event in events:
                base = len(event.path) + 1
                for op in event.delta or ():
                    inserted = op.get("insert") if isinstance(op, dict) else None
                    for item in inserted if isinstance(inserted, list) else [inserted]:
                        if isinstance(item, (XmlElement, XmlText, Map, Array, Text)):
                            self._deepest = max(self._deepest, base + height(item, stop) - 1)
                for change in (getattr(event, "keys", None) or {}).values():
                    value = change.get("newValue") if isinstance(change, dict) else None
                    if isinstance(value, (XmlElement, XmlText, Map, Array, Text)):
                        self._deepest = max(self._deepest, base + height(value, stop) - 1)
        except Exception:  # never raise inside yrs' callback: refuse instead
            self._deepest = stop + 1

    def admit(self, update: bytes) -> None:
        """Check a client's update; apply it here if it passes (TooDeep/BadUpdate if not)."""
        check_update(update, self.limits)
        self._deepest = 0
        self.doc.apply_update(update)
        if self._deepest > self.limits.max_depth:
            raise TooDeep(f"Trop d'imbrications ({self.limits.max_depth} niveaux au plus).")

    def follow(self, update: bytes) -> None:
        self.doc.apply_update(update)


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


def _copy_children(source: Any, target: Any, max_depth: int = COPY_DEPTH) -> None:
    """Copy a fragment's elements, texts and attributes into another, without recursion;
    elements nested deeper than `max_depth` (a poisoned document) are left out."""
    stack = [(source, target, 1)]
    while stack:
        src, dst, level = stack.pop()
        for child in src.children:
            if isinstance(child, XmlText):
                text = dst.children.append(XmlText())
                for chunk, attrs in child.diff():
                    at = len(text)
                    if isinstance(chunk, str):
                        text.insert(at, chunk, attrs=attrs)
                    elif not isinstance(chunk, (XmlElement, XmlText, Map, Array, Text)):
                        text.insert_embed(at, chunk, attrs=attrs)
            elif isinstance(child, XmlElement) and level <= max_depth:
                attrs = {k: _attr(v) for k, v in child.attributes
                         if isinstance(_attr(v), (str, int, float, bool))}
                element = dst.children.append(XmlElement(child.tag, attrs))
                stack.append((child, element, level + 1))


def client_ids(state_vector: bytes) -> set[int]:
    """The clients a Yjs state vector (v1) knows: varUint count, then (client, clock) pairs."""
    r = wire.Reader(state_vector)
    ids = set()
    n = r.var_uint()
    if n > len(state_vector):
        raise wire.ProtocolError("state vector shorter than its count")
    for _ in range(n):
        ids.add(r.var_uint())
        r.var_uint()
    if not r.done():
        raise wire.ProtocolError("trailing bytes after the state vector")
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

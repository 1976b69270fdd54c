"""Streaming reader of AAF XML files (`ficAlimMENESR`), tolerant as real feeds need.

Real exports declare ISO-8859-15 and hold UTF-8, carry HTML named entities (`&eacute;`)
that XML does not know, and reach 50 MB per file. So the bytes are decoded as UTF-8 whatever
the declaration says (a byte that is not UTF-8 is read as Windows-1252 rather than lost),
the declaration and the DOCTYPE are dropped (no DTD is ever loaded, no entity declared),
HTML entities become their characters, and the text is fed chunk by chunk to lxml's pull
parser (entities unresolved, network off). Each `addRequest` is turned into a small record
and its element freed at once, so memory stays flat whatever the file's size.
"""

from __future__ import annotations

import codecs
import html.entities
import re
from collections.abc import Iterator
from pathlib import Path

import msgspec
from lxml import etree

CHUNK = 1 << 20
_XML_ENTITIES = {"amp", "lt", "gt", "quot", "apos"}
_ENTITY = re.compile(r"&(#[0-9]+;|#[xX][0-9a-fA-F]+;|[A-Za-z][A-Za-z0-9]{0,31};)?")
_PROLOG = re.compile(r"^\ufeff?\s*(<\?xml[^>]*\?>)?\s*(<!DOCTYPE[^\[>]*(\[.*?\])?\s*>)?", re.S)


class Record(msgspec.Struct, frozen=True):
    """One `addRequest`: its category (`Eleve`, `PersEducNat`, …), its identifier and its
    attributes (name → non-empty values, stripped). Attributes nobody reads are kept
    harmlessly; a missing one reads as empty."""

    category: str
    id: str
    attrs: dict[str, list[str]]

    def first(self, name: str) -> str:
        values = self.attrs.get(name)
        return values[0] if values else ""

    def all(self, name: str) -> list[str]:
        return self.attrs.get(name, [])


def _lenient(err: UnicodeDecodeError) -> tuple[str, int]:
    bad = err.object[err.start:err.end]
    return bytes(bad).decode("cp1252", errors="replace"), err.end


codecs.register_error("aaf-lenient", _lenient)


def _entity(m: re.Match[str]) -> str:
    body = m.group(1)
    if body is None:  # a bare « & » (« Dupont & fils »)
        return "&amp;"
    if body[0] == "#" or body[:-1] in _XML_ENTITIES:
        return m.group(0)
    char = html.entities.html5.get(body)
    if char is None:
        return "&amp;" + body  # unknown: kept as text
    return char.replace("&", "&amp;").replace("<", "&lt;")


def xml_chunks(path: Path, chunk: int = CHUNK) -> Iterator[bytes]:
    """The file as well-formed UTF-8 XML without prolog, chunk by chunk."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="aaf-lenient")
    carry, first = "", True
    with path.open("rb") as f:
        while True:
            raw = f.read(chunk)
            final = not raw
            text = carry + decoder.decode(raw, final=final)
            carry = ""
            if first:
                if not final and len(text) < 4096:  # the prolog must be seen whole
                    carry = text
                    continue
                text, first = _PROLOG.sub("", text, count=1), False
            if not final:
                amp = text.rfind("&")
                if amp != -1 and ";" not in text[amp:] and len(text) - amp < 40:
                    text, carry = text[:amp], text[amp:]  # an entity cut by the chunk
            yield _ENTITY.sub(_entity, text).encode("utf-8")
            if final:
                return


class ReadError(Exception):
    """The file is not readable XML even after the tolerant clean-up (French message)."""


def _values(attr: etree._Element) -> list[str]:
    out = []
    for v in attr.iter("value"):
        text = (v.text or "").strip()
        if text:
            out.append(text)
    return out


def records(path: Path) -> Iterator[Record]:
    """Every `addRequest` of an AAF file, in order. Other requests (modify, delete: delta
    files) are not part of a full snapshot and are skipped."""
    parser = etree.XMLPullParser(
        events=("end",), tag="addRequest", resolve_entities=False, no_network=True,
        load_dtd=False, huge_tree=False, remove_comments=True, remove_pis=True,
    )
    try:
        for data in xml_chunks(path):
            parser.feed(data)
            yield from _drain(parser)
        parser.close()
        yield from _drain(parser)
    except etree.XMLSyntaxError as exc:
        raise ReadError(f"{path.name} : XML illisible ({exc})") from exc


def _drain(parser: etree.XMLPullParser) -> Iterator[Record]:
    for _, el in parser.read_events():
        category = ""
        ops = el.find("operationalAttributes")
        if ops is not None:
            for attr in ops.iter("attr"):
                vals = _values(attr)
                category = vals[0] if vals else ""
        rid = (el.findtext("identifier/id") or "").strip()
        attrs: dict[str, list[str]] = {}
        block = el.find("attributes")
        if block is not None:
            for attr in block.iterchildren("attr"):
                name = attr.get("name")
                if name:
                    attrs[name] = _values(attr)
        yield Record(category=category, id=rid, attrs=attrs)
        el.clear(keep_tail=False)
        parent = el.getparent()
        if parent is not None:
            while el.getprevious() is not None:
                del parent[0]


# File names of a full snapshot: …_Complet_…_<Kind>_<chunk>.xml, read kind by kind.
KINDS = ("EtabEducNat", "MatiereEducNat", "MefEducNat", "Eleve", "PersRelEleve", "PersEducNat")
_FILE = re.compile(r"_Complet_.*_(" + "|".join(KINDS) + r")_(\d{4})\.xml$", re.I)


def snapshot_files(folder: Path) -> list[tuple[str, Path]]:
    """(kind, path) of a full snapshot's files, schools → subjects → MEF → pupils →
    relatives → staff, chunks in their order."""
    found: list[tuple[int, int, str, Path]] = []
    for p in folder.iterdir():
        m = _FILE.search(p.name)
        if m and p.is_file():
            kind = next(k for k in KINDS if k.lower() == m.group(1).lower())
            found.append((KINDS.index(kind), int(m.group(2)), kind, p))
    found.sort(key=lambda t: (t[0], t[1], t[3].name))
    return [(kind, p) for _, _, kind, p in found]

"""The tolerant streaming reader: encodings, entities, chunk boundaries, unknown attributes."""

from __future__ import annotations

from pathlib import Path

import pytest

from realtime.directory.aaf.reader import ReadError, records, snapshot_files, xml_chunks

BODY = """<ficAlimMENESR><addRequest>
<operationalAttributes><attr name="categoriePersonne"><value>Eleve</value></attr>
</operationalAttributes><identifier><id>42</id></identifier><attributes>
<attr name="sn"><value>{sn}</value></attr>
<attr name="givenName"><value>{given}</value></attr>
<attr name="AttributInconnu"><value>a</value><value/><value> b </value></attr>
</attributes></addRequest></ficAlimMENESR>"""


def write(tmp_path: Path, raw: bytes, name: str = "x.xml") -> Path:
    path = tmp_path / name
    path.write_bytes(raw)
    return path


def test_utf8_whatever_the_declaration_and_html_entities(tmp_path: Path) -> None:
    head = b'<?xml version="1.0" encoding="ISO-8859-15"?>\n<!DOCTYPE f SYSTEM "nowhere.dtd">\n'
    body = BODY.format(sn="L&Eacute;GER &amp; Fils &amp;c", given="Zo\u00e9 &nbsp;&hellip;")
    [rec] = list(records(write(tmp_path, head + body.encode("utf-8"))))
    assert rec.category == "Eleve" and rec.id == "42"
    assert rec.first("sn") == "LÉGER & Fils &c"
    assert rec.first("givenName") == "Zoé \u00a0…"
    assert rec.all("AttributInconnu") == ["a", "b"]  # kept, harmless, empty values dropped
    assert rec.first("absent") == "" and rec.all("absent") == []


def test_latin1_bytes_bare_ampersands_and_unknown_entities(tmp_path: Path) -> None:
    body = BODY.format(sn="DUPONT & FILS", given="Ren\xe9 &bogus;").encode("latin-1")
    [rec] = list(records(write(tmp_path, body)))
    assert rec.first("sn") == "DUPONT & FILS"
    assert rec.first("givenName") == "René &bogus;"


def test_chunk_boundaries_never_cut_an_entity_or_a_character(tmp_path: Path) -> None:
    body = BODY.format(sn="&Eacute;" * 50, given="é" * 50).encode("utf-8")
    path = write(tmp_path, b'<?xml version="1.0"?>' + body)
    whole = b"".join(xml_chunks(path))
    for size in (1, 2, 3, 5, 7, 64):
        assert b"".join(xml_chunks(path, chunk=size)) == whole
    [rec] = list(records(path))
    assert rec.first("sn") == "É" * 50 and rec.first("givenName") == "é" * 50


def test_entities_declared_in_the_file_are_never_expanded(tmp_path: Path) -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            + BODY.format(sn="&b;", given="x").encode())
    [rec] = list(records(write(tmp_path, bomb)))
    assert rec.first("sn") == "&b;"  # the internal subset is dropped: text, not 10^n bytes


def test_unreadable_xml_says_which_file(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"cassé\.xml : XML illisible"):
        list(records(write(tmp_path, b"<ficAlimMENESR><addRequest><oops></ficAlimMENESR>",
                           "cassé.xml")))


def test_snapshot_files_in_reference_order(tmp_path: Path) -> None:
    for name in ("ENT_Complet_1_PersEducNat_0000.xml", "ENT_Complet_1_Eleve_0001.xml",
                 "ENT_Complet_1_Eleve_0000.xml", "ENT_Complet_1_EtabEducNat_0000.xml",
                 "ENT_Complet_1_MefEducNat_0000.xml", "ENT_Delta_1_Eleve_0000.xml",
                 "ENT_Complet_1_PersRelEleve_0000.xml", "ENT_Complet_1_MatiereEducNat_0000.xml",
                 "notes.txt"):
        write(tmp_path, b"", name)
    assert [p.name for _, p in snapshot_files(tmp_path)] == [
        "ENT_Complet_1_EtabEducNat_0000.xml", "ENT_Complet_1_MatiereEducNat_0000.xml",
        "ENT_Complet_1_MefEducNat_0000.xml", "ENT_Complet_1_Eleve_0000.xml",
        "ENT_Complet_1_Eleve_0001.xml", "ENT_Complet_1_PersRelEleve_0000.xml",
        "ENT_Complet_1_PersEducNat_0000.xml"]

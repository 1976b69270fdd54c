"""The rich text as ProseMirror JSON, HTML and Markdown (pure, real pycrdt documents)."""

from __future__ import annotations

from pycrdt import Doc, XmlElement, XmlText

from realtime.coursedocs import content, render


def course() -> Doc:
    doc = Doc()
    frag = content.fragment(doc)
    with doc.transaction():
        h = frag.children.append(XmlElement("heading", {"level": 2}))
        h.children.append(XmlText("La Révolution française"))
        p = frag.children.append(XmlElement("paragraph"))
        t = p.children.append(XmlText("En "))
        t.insert(len(t), "1789", attrs={"bold": {}})
        t.insert(len(t), ", les États généraux ")
        t.insert(len(t), "se réunissent", attrs={"italic": {}})
        t.insert(len(t), " (voir ")
        t.insert(len(t), "Gallica", attrs={"link": {"href": "https://gallica.bnf.fr/"}})
        t.insert(len(t), ").")
        ul = frag.children.append(XmlElement("bulletList"))
        for item in ("Tiers état", "Noblesse"):
            li = ul.children.append(XmlElement("listItem"))
            lp = li.children.append(XmlElement("paragraph"))
            lp.children.append(XmlText(item))
        ol = frag.children.append(XmlElement("orderedList", {"start": 1}))
        li = ol.children.append(XmlElement("listItem"))
        li.children.append(XmlElement("paragraph")).children.append(XmlText("Serment"))
        frag.children.append(XmlElement("image", {"src": "/static/favicon.svg",
                                                   "alt": "Prise de la Bastille"}))
        bad = frag.children.append(XmlElement("paragraph"))
        bt = bad.children.append(XmlText())
        bt.insert(0, "piège <script>", attrs={"link": {"href": "javascript:alert(1)"}})
    return doc


def test_json_is_prosemirror_shaped() -> None:
    j = render.to_json(course())
    assert j["type"] == "doc"
    heading = j["content"][0]
    assert heading == {"type": "heading", "attrs": {"level": 2},
                       "content": [{"type": "text", "text": "La Révolution française"}]}
    marks = [n.get("marks") for n in j["content"][1]["content"]]
    assert [{"type": "bold"}] in marks and [{"type": "italic"}] in marks
    assert [{"type": "link", "attrs": {"href": "https://gallica.bnf.fr/"}}] in marks
    assert j["content"][2]["type"] == "bulletList"


def test_html_escapes_and_drops_unsafe_links() -> None:
    html = render.to_html(course())
    assert "<h2>La Révolution française</h2>" in html
    assert "<strong>1789</strong>" in html and "<em>se réunissent</em>" in html
    assert '<a href="https://gallica.bnf.fr/" rel="noopener noreferrer">Gallica</a>' in html
    assert "<ul><li><p>Tiers état</p></li><li><p>Noblesse</p></li></ul>" in html
    assert '<img src="/static/favicon.svg" alt="Prise de la Bastille">' in html
    assert "javascript:" not in html and "<script>" not in html
    assert "piège &lt;script&gt;" in html


def test_markdown() -> None:
    md = render.to_markdown(course())
    assert md.startswith("## La Révolution française\n\n")
    assert "En **1789**, les États généraux *se réunissent* (voir [Gallica]" in md
    assert "- Tiers état\n- Noblesse" in md
    assert "1. Serment" in md
    assert "![Prise de la Bastille](</static/favicon.svg>)" in md
    assert "javascript:" not in md and "piège \\<script\\>" in md


def test_schema_basic_names_are_accepted() -> None:
    doc = Doc()
    frag = content.fragment(doc)
    with doc.transaction():
        ul = frag.children.append(XmlElement("bullet_list"))
        li = ul.children.append(XmlElement("list_item"))
        t = li.children.append(XmlElement("paragraph")).children.append(XmlText())
        t.insert(0, "fort", attrs={"strong": {}})
    assert render.to_html(doc) == "<ul><li><p><strong>fort</strong></p></li></ul>"

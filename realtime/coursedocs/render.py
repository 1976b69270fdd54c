"""The document's rich text as ProseMirror JSON, HTML and Markdown, for the rest of the ENT.

Schema: the XmlFragment "prosemirror" holds what y-prosemirror writes for a Tiptap StarterKit
editor: block elements `paragraph`, `heading` (level), `bulletList` / `orderedList` (start) of
`listItem`, `blockquote`, `codeBlock`, `horizontalRule`, `hardBreak`, `image` (src, alt,
title); text marks `bold`, `italic`, `strike`, `code`, `underline`, `link` (href), stored as
Yjs text formatting attributes. prosemirror-schema-basic's snake_case names are accepted too.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import urlparse

from pycrdt import Doc, XmlElement, XmlText

from realtime.coursedocs.content import _attr, build, fragment

ALIASES = {"bullet_list": "bulletList", "ordered_list": "orderedList", "list_item": "listItem",
           "code_block": "codeBlock", "horizontal_rule": "horizontalRule",
           "hard_break": "hardBreak", "strong": "bold", "em": "italic"}
SAFE_SCHEMES = {"http", "https", "mailto", ""}
DEPTH_MAX = 100  # levels rendered: deeper elements (a poisoned document) are left out
Node = dict[str, Any]
Scalar = (str, int, float, bool)


def _name(raw: str) -> str:
    base = raw.split("--", 1)[0]  # y-prosemirror suffixes overlapping marks with a hash
    return ALIASES.get(base, base)


def _scalars(values: Any) -> dict[str, Any]:
    """Attributes as ProseMirror has them: plain values only (never a nested structure)."""
    out = {}
    for k, v in values:
        v = _attr(v)
        if isinstance(v, Scalar) or v is None:
            out[str(k)] = v
    return out


def _text_nodes(text: XmlText) -> list[Node]:
    out: list[Node] = []
    for chunk, attrs in text.diff():
        if not isinstance(chunk, str) or not chunk:
            continue
        node: Node = {"type": "text", "text": chunk}
        marks = []
        for key, value in sorted((attrs or {}).items()):
            mark: Node = {"type": _name(key)}
            if isinstance(value, dict) and value:
                mark["attrs"] = _scalars(value.items())
            if mark["type"] == "link":
                href = _safe_url(mark.get("attrs", {}).get("href"))
                if href is None:
                    continue  # javascript:, data:, … : the text stays, the link goes
                mark["attrs"]["href"] = href
            marks.append(mark)
        if marks:
            node["marks"] = marks
        out.append(node)
    return out


def _element(el: XmlElement, depth: int) -> Node | None:
    node: Node = {"type": _name(el.tag)}
    attrs = _scalars(el.attributes)
    if node["type"] == "image":
        src = _safe_url(attrs.get("src"))
        if src is None:
            return None
        attrs["src"] = src
    if attrs:
        node["attrs"] = attrs
    content = _children(el, depth + 1)
    if content:
        node["content"] = content
    return node


def _children(parent: Any, depth: int = 1) -> list[Node]:
    out: list[Node] = []
    if depth > DEPTH_MAX:
        return out
    for child in parent.children:
        if isinstance(child, XmlText):
            out.extend(_text_nodes(child))
        elif isinstance(child, XmlElement):
            node = _element(child, depth)
            if node is not None:
                out.append(node)
    return out


def to_json(doc: Doc) -> Node:
    """ProseMirror's JSON form: {"type": "doc", "content": [...]}; unsafe links and image
    sources are dropped, and nothing deeper than DEPTH_MAX levels is rendered."""
    return {"type": "doc", "content": _children(fragment(doc))}


def _safe_url(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    url = url.strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return None  # a browser ignores tabs and newlines inside a scheme: "java\tscript:"
    try:
        scheme = urlparse(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in SAFE_SCHEMES else None


# --- HTML ------------------------------------------------------------------------------------

_HTML_MARKS = {"bold": "strong", "italic": "em", "strike": "s", "code": "code", "underline": "u"}
_HTML_BLOCKS = {"paragraph": "p", "bulletList": "ul", "orderedList": "ol", "listItem": "li",
                "blockquote": "blockquote"}


def _html_text(node: Node) -> str:
    html = escape(node["text"])
    for mark in node.get("marks", []):
        kind = mark["type"]
        if kind in _HTML_MARKS:
            tag = _HTML_MARKS[kind]
            html = f"<{tag}>{html}</{tag}>"
        elif kind == "link":
            href = _safe_url(mark.get("attrs", {}).get("href"))
            if href is not None:
                html = f'<a href="{escape(href)}" rel="noopener noreferrer">{html}</a>'
    return html


def _html(node: Node) -> str:
    kind = node["type"]
    if kind == "text":
        return _html_text(node)
    inner = "".join(_html(c) for c in node.get("content", []))
    attrs = node.get("attrs", {})
    if kind == "heading":
        level = attrs.get("level", 1)
        level = level if isinstance(level, int) and 1 <= level <= 6 else 1
        return f"<h{level}>{inner}</h{level}>"
    if kind == "image":
        src = _safe_url(attrs.get("src"))
        if src is None:
            return ""
        alt = escape(str(attrs.get("alt") or ""))
        return f'<img src="{escape(src)}" alt="{alt}">'
    if kind == "codeBlock":
        return f"<pre><code>{inner}</code></pre>"
    if kind == "horizontalRule":
        return "<hr>"
    if kind == "hardBreak":
        return "<br>"
    if kind == "orderedList" and isinstance(attrs.get("start"), int) and attrs["start"] != 1:
        return f'<ol start="{attrs["start"]}">{inner}</ol>'
    tag = _HTML_BLOCKS.get(kind)
    return f"<{tag}>{inner}</{tag}>" if tag else inner


def to_html(doc: Doc) -> str:
    return "".join(_html(n) for n in to_json(doc)["content"])


def html_page(title: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="fr"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title></head>\n<body><h1>{escape(title)}</h1>\n"
            f"{body}\n</body></html>\n")


# --- Markdown --------------------------------------------------------------------------------

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]#<>|"})


def _md_text(node: Node) -> str:
    marks = {m["type"]: m for m in node.get("marks", [])}
    if "code" in marks:
        text = "`" + node["text"].replace("`", "") + "`"
    else:
        text = node["text"].translate(_MD_SPECIAL)
    if "bold" in marks:
        text = f"**{text}**"
    if "italic" in marks:
        text = f"*{text}*"
    if "strike" in marks:
        text = f"~~{text}~~"
    if "link" in marks:
        href = _safe_url(marks["link"].get("attrs", {}).get("href"))
        if href is not None:
            text = f"[{text}](<{_md_url(href)}>)"
    return text


def _md_inline(node: Node) -> str:
    out = []
    for c in node.get("content", []):
        if c["type"] == "text":
            out.append(_md_text(c))
        elif c["type"] == "hardBreak":
            out.append("  \n")
        elif c["type"] == "image":
            out.append(_md_block(c, ""))
    return "".join(out)


def _md_block(node: Node, indent: str) -> str:
    kind, attrs = node["type"], node.get("attrs", {})
    if kind == "heading":
        level = attrs.get("level", 1)
        level = level if isinstance(level, int) and 1 <= level <= 6 else 1
        return f"{indent}{'#' * level} {_md_inline(node)}"
    if kind == "image":
        src = _safe_url(attrs.get("src"))
        alt = str(attrs.get("alt") or "").translate(_MD_SPECIAL)
        return f"{indent}![{alt}](<{_md_url(src)}>)" if src else ""
    if kind in ("bulletList", "orderedList"):
        start = attrs.get("start", 1) if kind == "orderedList" else 0
        items = []
        for i, item in enumerate(node.get("content", [])):
            bullet = f"{start + i}. " if kind == "orderedList" else "- "
            blocks = [_md_block(b, indent + " " * len(bullet)) for b in item.get("content", [])]
            first = blocks[0].lstrip() if blocks else ""
            items.append("\n".join([indent + bullet + first, *blocks[1:]]))
        return "\n".join(items)
    if kind == "blockquote":
        inner = "\n\n".join(_md_block(b, "") for b in node.get("content", []))
        return "\n".join(f"{indent}> {line}" if line else f"{indent}>"
                         for line in inner.split("\n"))
    if kind == "codeBlock":
        code = "".join(c.get("text", "") for c in node.get("content", []))
        return f"{indent}```\n{code}\n{indent}```"
    if kind == "horizontalRule":
        return f"{indent}---"
    return indent + _md_inline(node)


def to_markdown(doc: Doc) -> str:
    blocks = [_md_block(n, "") for n in to_json(doc)["content"]]
    return "\n\n".join(b for b in blocks if b) + "\n"


def markdown_page(title: str, body: str) -> str:
    """The title as a first-level heading, escaped like the text (a title is one line)."""
    return f"# {' '.join(title.split()).translate(_MD_SPECIAL)}\n\n{body}"


def _md_url(url: str) -> str:
    """Inside `<…>`: no angle bracket or line end may close it early."""
    return url.replace("<", "%3C").replace(">", "%3E").replace("\n", "")


def rendering(state: bytes, wanted: str, title: str) -> Any:
    """One rendering of a stored state, whole: meant for a worker thread (the `Doc` is built,
    read and dropped there), so a large or hostile document never holds the event loop."""
    doc = build([state])
    if wanted == "text/html":
        return html_page(title, to_html(doc))
    if wanted == "text/markdown":
        return markdown_page(title, to_markdown(doc))
    return to_json(doc)

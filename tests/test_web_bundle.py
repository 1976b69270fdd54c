"""The web client's weight: the course editor (tiptap, ProseMirror, Yjs) loads only on its page.

Reads the built bundle (`scripts/dev.sh test` builds it first): what a page downloads is its
entry plus every chunk it imports statically, transitively. Budget from issue #15: every page
but the course editor ≤ 160 KB minified.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DIST = Path(__file__).resolve().parent.parent / "web_client" / "dist"
BUDGET = 160 * 1024
_STATIC = re.compile(r'(?:from|import)\s*"(\./[^"]+\.js)"')
_DYNAMIC = re.compile(r'import\("(\./[^"]+\.js)"\)')


def _closure(start: Path) -> set[Path]:
    """The file and what it imports statically (what the browser must fetch before running)."""
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for rel in _STATIC.findall(path.read_text(encoding="utf-8")):
            todo.append((path.parent / rel).resolve())
    return seen


def _dynamic(path: Path) -> dict[str, Path]:
    return {Path(rel).name.split("-")[0]: (path.parent / rel).resolve()
            for rel in _DYNAMIC.findall(path.read_text(encoding="utf-8"))}


def _size(files: set[Path]) -> int:
    return sum(f.stat().st_size for f in files)


@pytest.fixture(scope="module")
def app_js() -> Path:
    path = DIST / "app.js"
    if not path.exists():
        pytest.fail("web_client/dist is not built: run scripts/dev.sh test (npm run build)")
    return path.resolve()


def test_pages_other_than_the_editor_stay_under_budget(app_js: Path) -> None:
    home = _closure(app_js)
    assert _size(home) <= BUDGET, f"Mon espace downloads {_size(home)} bytes"
    lazy = _dynamic(app_js)
    assert {"board", "coursedoc", "messages", "roll"} <= set(lazy), lazy
    for page, chunk in lazy.items():
        if page == "coursedoc":
            continue
        size = _size(home | _closure(chunk))
        assert size <= BUDGET, f"the {page} page downloads {size} bytes"


def test_the_editor_is_only_in_its_own_chunks(app_js: Path) -> None:
    editor_markers = ("ProseMirror", "prosemirror")
    lazy = _dynamic(app_js)
    for path in _closure(app_js) | _closure(lazy["board"]):
        text = path.read_text(encoding="utf-8")
        assert not any(m in text for m in editor_markers), path.name
    editor = _closure(lazy["coursedoc"])
    assert any("ProseMirror" in p.read_text(encoding="utf-8") for p in editor)

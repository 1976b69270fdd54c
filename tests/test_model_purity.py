"""DESIGN.md: the domain is pure — no model.py imports I/O libraries."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"aiohttp", "socketio", "aiosqlite", "redis", "engineio", "asyncio"}
ROOT = Path(__file__).resolve().parent.parent / "realtime"


def test_models_import_no_io_library() -> None:
    models = sorted(ROOT.rglob("model.py"))
    assert models, "expected model.py files"
    for path in models:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path} imports {name}"

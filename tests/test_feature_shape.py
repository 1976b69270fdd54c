"""docs/architecture.md « Feature shape »: the live features show their rooms, service,
socket, routes, store and model; rooms keep, services decide, handlers only pass on.

Each check reads the source (like the model-purity test), so a policy call slipped into a
handler or a room, a mixin stub, or a feature wired outside its `setup` fails here."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from realtime import app as app_module

ROOT = Path(__file__).resolve().parent.parent / "realtime"
# feature → the module holding its live transport (course documents speak plain websocket
# Yjs on /yjs, the others a Socket.IO namespace)
LIVE = {"chat": "socket.py", "boards": "socket.py", "coursedocs": "websocket.py"}
SHAPE = ("rooms.py", "service.py", "routes.py", "store.py", "model.py", "__init__.py")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _imports(tree: ast.Module) -> set[str]:
    """Every imported module and every name imported from one (`realtime.policy.may`)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _calls(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.id if isinstance(f, ast.Name) else
                      f.attr if isinstance(f, ast.Attribute) else "")
    return names


@pytest.mark.parametrize("feature", sorted(LIVE))
def test_a_feature_shows_its_parts(feature: str) -> None:
    pkg = ROOT / feature
    missing = [f for f in (*SHAPE, LIVE[feature]) if not (pkg / f).exists()]
    assert not missing, f"realtime/{feature}/ lacks {missing}"


# Every feature with live parts is wired by its package's `setup` (attendance and presence
# too, whose live parts are the attendance hub and the presence service).
WIRED = (*sorted(LIVE), "attendance", "presence")


@pytest.mark.parametrize("feature", WIRED)
def test_a_feature_is_wired_by_its_package_setup(feature: str) -> None:
    module = importlib.import_module(f"realtime.{feature}")
    assert callable(getattr(module, "setup", None)), f"realtime.{feature} has no setup()"
    assert module in app_module.FEATURES, f"realtime.{feature} is not in FEATURES"


@pytest.mark.parametrize("feature", sorted(LIVE))
def test_handlers_and_rooms_decide_nothing(feature: str) -> None:
    """Policy is asked by services only: neither a handler nor the rooms call `may`."""
    for name in ("routes.py", LIVE[feature], "rooms.py", "__init__.py"):
        path = ROOT / feature / name
        tree = _tree(path)
        assert "realtime.policy.may" not in _imports(tree), f"{path} imports policy.may"
        assert "may" not in _calls(tree), f"{path} calls may()"


@pytest.mark.parametrize("feature", sorted(LIVE))
def test_rooms_do_not_reach_back_into_the_service(feature: str) -> None:
    tree = _tree(ROOT / feature / "rooms.py")
    assert f"realtime.{feature}.service" not in _imports(tree)


def test_no_mixin_stubs_left() -> None:
    """Services compose their parts; a method that only raises NotImplementedError is a
    mixin's promise that some other class provides it."""
    for feature in sorted(LIVE):
        for path in sorted((ROOT / feature).rglob("*.py")):
            for node in ast.walk(_tree(path)):
                if isinstance(node, ast.Raise) and node.exc is not None:
                    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                    assert not (isinstance(exc, ast.Name) and exc.id == "NotImplementedError"), \
                        f"{path}:{node.lineno} raises NotImplementedError"


def test_positive_control_the_checks_see_a_policy_call(tmp_path: Path) -> None:
    """The handler check is not vacuous: a handler that asks policy itself is caught."""
    bad = tmp_path / "routes.py"
    bad.write_text("from realtime.policy import may\n\n"
                   "def handler(p, ref):\n    return may(p, 'x', ref)\n", encoding="utf-8")
    tree = _tree(bad)
    assert "realtime.policy.may" in _imports(tree) and "may" in _calls(tree)

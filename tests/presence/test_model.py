"""Scopes, where a tab makes someone present, and the watcher's roster rule. Pure."""

from __future__ import annotations

import pytest

from realtime.identity.model import Principal, Role, User
from realtime.presence.model import Change, Entry, Kind, Scope, apply, home_scopes, who


@pytest.mark.parametrize("text", ["board:1", "class:12", "school:3", "board:9007199254740992",
                                  "conversation:7", "doc:5"])
def test_scopes_parse_and_print(text: str) -> None:
    scope = Scope.parse(text)
    assert scope is not None and str(scope) == text


@pytest.mark.parametrize("text", ["", "board:", "board:0", "board:-1", "room:1", "board:1:2",
                                  "BOARD:1", "board: 1", "board:01", "board:9007199254740993",
                                  "board:99999999999999999", "conversations:1", "docs:1",
                                  "conversation:0"])
def test_bad_scopes_are_refused(text: str) -> None:
    assert Scope.parse(text) is None


def _p(role: Role, school: int | None = 1, classes: frozenset[int] = frozenset()) -> Principal:
    return Principal(user=User(id=7, login="x", role=role, name="X", school_id=school),
                     class_ids=classes)


def test_home_scopes_by_role() -> None:
    assert home_scopes(_p(Role.STUDENT, classes=frozenset({12}))) == [
        Scope(Kind.SCHOOL, 1), Scope(Kind.CLASS, 12)]
    assert home_scopes(_p(Role.TEACHER, classes=frozenset({12, 13}))) == [Scope(Kind.SCHOOL, 1)]
    assert home_scopes(_p(Role.CPE)) == [Scope(Kind.SCHOOL, 1)]
    assert home_scopes(_p(Role.PARENT, school=None)) == []
    assert home_scopes(_p(Role.ADMIN, school=None)) == []


def test_who_carries_a_pupils_class_only() -> None:
    assert who(_p(Role.STUDENT, classes=frozenset({12}))).class_id == 12
    assert who(_p(Role.TEACHER, classes=frozenset({12}))).class_id is None


def test_apply_join_then_leave() -> None:
    users: dict[int, Entry] = {}
    user = {"id": 7, "name": "X", "role": "student", "since": 1.0, "devices": 1}
    apply(users, Change(scope="class:1", epoch="e", version=1, type="join", user=user))
    assert list(users) == [7]
    apply(users, Change(scope="class:1", epoch="e", version=2, type="leave", user=user))
    assert users == {}

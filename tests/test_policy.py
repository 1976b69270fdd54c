"""Every role × every action, on targets that are theirs, their school's and another school's.

The table lists, per role and action, exactly the targets allowed; every other target of the
action's kind must be refused. A new action without a row here fails the coverage test.
"""

from __future__ import annotations

import pytest

from realtime.errors import AppError
from realtime.identity.model import Principal, Role, User
from realtime.policy import (
    RULES,
    Action,
    BoardRef,
    ClassRef,
    DocRef,
    SchoolRef,
    StudentRef,
    TeacherRef,
    may,
    require,
)

# The world: school 1 has classes 10 and 11, school 2 has class 20.
TARGETS = {
    "own_school": SchoolRef(id=1),
    "other_school": SchoolRef(id=2),
    "class_10": ClassRef(id=10, school_id=1),  # taught by the teacher, the student's class
    "class_11": ClassRef(id=11, school_id=1),  # same school, not theirs
    "class_20": ClassRef(id=20, school_id=2),  # another school
    "student_100": StudentRef(id=100, school_id=1, class_id=10),  # the student, the child
    "student_101": StudentRef(id=101, school_id=1, class_id=11),
    "student_200": StudentRef(id=200, school_id=2, class_id=20),
    "teacher_50": TeacherRef(id=50, school_id=1),  # the teacher
    "teacher_51": TeacherRef(id=51, school_id=1),
    "teacher_60": TeacherRef(id=60, school_id=2),
    # Boards of class 10: the teacher's own; a colleague's with the pen for student 100;
    # a colleague's locked one with the pen for everyone; an ended one.
    "board_own": BoardRef(id=1, school_id=1, class_id=10, owner_id=50),
    "board_pen": BoardRef(id=2, school_id=1, class_id=10, owner_id=51, pen=frozenset({100})),
    "board_locked": BoardRef(id=3, school_id=1, class_id=10, owner_id=51, state="locked",
                             pen_all=True),
    "board_ended": BoardRef(id=4, school_id=1, class_id=10, owner_id=50, state="ended",
                            pen_all=True),
    "board_11": BoardRef(id=5, school_id=1, class_id=11, owner_id=51, pen_all=True),
    "board_20": BoardRef(id=6, school_id=2, class_id=20, owner_id=60, pen_all=True),
    # Course documents: the teacher's own; a colleague's with the teacher as co-editor; a
    # colleague's shared with class 10 read-only, editable; one of class 11; another school's.
    "doc_own": DocRef(id=1, school_id=1, owner_id=50),
    "doc_coedit": DocRef(id=2, school_id=1, owner_id=51, editors=frozenset({50})),
    "doc_read10": DocRef(id=3, school_id=1, owner_id=51, read_classes=frozenset({10})),
    "doc_edit10": DocRef(id=4, school_id=1, owner_id=51, edit_classes=frozenset({10})),
    "doc_11": DocRef(id=5, school_id=1, owner_id=51, edit_classes=frozenset({11})),
    "doc_20": DocRef(id=6, school_id=2, owner_id=60, editors=frozenset({50}),
                     edit_classes=frozenset({10, 20})),
}
CLASS_10_BOARDS = {"board_own", "board_pen", "board_locked", "board_ended"}
SCHOOL_1_BOARDS = {*CLASS_10_BOARDS, "board_11"}
NO_BOARD = {Action.CREATE_BOARD: set(), Action.VIEW_BOARD: set(), Action.DRAW_ON_BOARD: set(),
            Action.CONTROL_BOARD: set()}
NO_DOC = {Action.CREATE_DOC: set(), Action.VIEW_DOC: set(), Action.EDIT_DOC: set(),
          Action.VERSION_DOC: set(), Action.MANAGE_DOC: set()}


def principal(role: Role) -> Principal:
    ids = {Role.TEACHER: 50, Role.STUDENT: 100, Role.PARENT: 300, Role.CPE: 400,
           Role.STAFF: 401, Role.ADMIN: 1}
    school = None if role in (Role.PARENT, Role.ADMIN) else 1
    user = User(id=ids[role], login=role.value, role=role, name=role.value, school_id=school)
    if role in (Role.TEACHER, Role.STUDENT):
        return Principal(user=user, class_ids=frozenset({10}))
    if role is Role.PARENT:
        return Principal(user=user, child_ids=frozenset({100}),
                         child_class_ids=frozenset({10}), child_school_ids=frozenset({1}))
    return Principal(user=user)


ALL_OF_SCHOOL_1 = {"own_school", "class_10", "class_11", "student_100", "student_101",
                   "teacher_50", "teacher_51"}
EVERYTHING = set(TARGETS)

ALLOWED: dict[Role, dict[Action, set[str]]] = {
    Role.TEACHER: {
        Action.VIEW_SCHOOL: {"own_school"},
        Action.VIEW_CLASS: {"class_10"},
        Action.LIST_CLASS_STUDENTS: {"class_10"},
        Action.VIEW_CLASS_TIMETABLE: {"class_10"},
        Action.VIEW_STUDENT: {"student_100"},
        Action.VIEW_TEACHER_TIMETABLE: {"teacher_50"},
        Action.MANAGE_USERS: set(),
        Action.CREATE_BOARD: {"class_10"},
        Action.VIEW_BOARD: CLASS_10_BOARDS,
        Action.DRAW_ON_BOARD: {"board_own", "board_pen", "board_locked"},
        Action.CONTROL_BOARD: {"board_own", "board_pen", "board_locked"},
        Action.CREATE_DOC: {"own_school"},
        Action.VIEW_DOC: {"doc_own", "doc_coedit", "doc_read10", "doc_edit10"},
        Action.EDIT_DOC: {"doc_own", "doc_coedit"},
        Action.VERSION_DOC: {"doc_own", "doc_coedit"},
        Action.MANAGE_DOC: {"doc_own"},
    },
    Role.STUDENT: {
        Action.VIEW_SCHOOL: {"own_school"},
        Action.VIEW_CLASS: {"class_10"},
        Action.LIST_CLASS_STUDENTS: set(),
        Action.VIEW_CLASS_TIMETABLE: {"class_10"},
        Action.VIEW_STUDENT: {"student_100"},
        Action.VIEW_TEACHER_TIMETABLE: set(),
        Action.MANAGE_USERS: set(),
        **NO_BOARD,
        Action.VIEW_BOARD: CLASS_10_BOARDS,
        Action.DRAW_ON_BOARD: {"board_pen"},
        **NO_DOC,
        Action.VIEW_DOC: {"doc_read10", "doc_edit10"},
        Action.EDIT_DOC: {"doc_edit10"},
    },
    Role.PARENT: {
        Action.VIEW_SCHOOL: {"own_school"},
        Action.VIEW_CLASS: {"class_10"},
        Action.LIST_CLASS_STUDENTS: set(),
        Action.VIEW_CLASS_TIMETABLE: {"class_10"},
        Action.VIEW_STUDENT: {"student_100"},
        Action.VIEW_TEACHER_TIMETABLE: set(),
        Action.MANAGE_USERS: set(),
        **NO_BOARD,
        **NO_DOC,
    },
    Role.CPE: {
        Action.VIEW_SCHOOL: {"own_school"},
        Action.VIEW_CLASS: {"class_10", "class_11"},
        Action.LIST_CLASS_STUDENTS: {"class_10", "class_11"},
        Action.VIEW_CLASS_TIMETABLE: {"class_10", "class_11"},
        Action.VIEW_STUDENT: {"student_100", "student_101"},
        Action.VIEW_TEACHER_TIMETABLE: {"teacher_50", "teacher_51"},
        Action.MANAGE_USERS: set(),
        **NO_BOARD,
        Action.VIEW_BOARD: SCHOOL_1_BOARDS,
        **NO_DOC,
    },
    Role.STAFF: {
        Action.VIEW_SCHOOL: {"own_school"},
        Action.VIEW_CLASS: {"class_10", "class_11"},
        Action.LIST_CLASS_STUDENTS: {"class_10", "class_11"},
        Action.VIEW_CLASS_TIMETABLE: {"class_10", "class_11"},
        Action.VIEW_STUDENT: {"student_100", "student_101"},
        Action.VIEW_TEACHER_TIMETABLE: {"teacher_50", "teacher_51"},
        Action.MANAGE_USERS: {"own_school"},
        **NO_BOARD,
        Action.VIEW_BOARD: SCHOOL_1_BOARDS,
        **NO_DOC,
    },
    Role.ADMIN: {**{action: EVERYTHING for action in Action}, **NO_BOARD,
                 Action.VIEW_BOARD: EVERYTHING, **NO_DOC},
}

CASES = [
    (role, action, name)
    for role in Role
    for action in Action
    for name, target in TARGETS.items()
    if isinstance(target, RULES[action][0])
]


def test_table_covers_every_role_and_action() -> None:
    assert set(ALLOWED) == set(Role)
    for role, actions in ALLOWED.items():
        assert set(actions) == set(Action), role
        assert set(RULES) == set(Action)


@pytest.mark.parametrize(("role", "action", "target"), CASES,
                         ids=[f"{r.value}-{a.value}-{t}" for r, a, t in CASES])
def test_policy_table(role: Role, action: Action, target: str) -> None:
    expected = target in ALLOWED[role][action]
    assert may(principal(role), action, TARGETS[target]) is expected


def test_no_school_team_member_reaches_another_school() -> None:
    for role in (Role.TEACHER, Role.STUDENT, Role.PARENT, Role.CPE, Role.STAFF):
        assert not ALLOWED[role][Action.VIEW_CLASS] & {"class_20"}
        for action in Action:
            assert not ALLOWED[role][action] & {"other_school", "class_20", "student_200",
                                                "teacher_60", "board_20", "doc_20"}


def test_disabled_user_may_nothing() -> None:
    p = Principal(user=User(id=1, login="a", role=Role.ADMIN, name="a", school_id=None,
                            disabled=True))
    assert not may(p, Action.VIEW_SCHOOL, TARGETS["own_school"])


def test_require_answers_not_found() -> None:
    with pytest.raises(AppError) as err:
        require(principal(Role.STUDENT), Action.VIEW_STUDENT, TARGETS["student_101"])
    assert err.value.code == "not_found"


def test_wrong_target_kind_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        may(principal(Role.CPE), Action.VIEW_CLASS, TARGETS["own_school"])

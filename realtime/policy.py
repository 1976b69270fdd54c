"""The one place that answers "may X do Y on Z".

Pure functions over a `Principal` (who, with their relations already loaded) and a small
reference to the target. Services call `may` / `require`; handlers never improvise role checks.
A refusal on something that exists answers the same `not_found` as something that does not,
so nobody can probe another school's or family's data.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import msgspec

from realtime.errors import AppError
from realtime.identity.model import Principal, Role


class Action(StrEnum):
    VIEW_SCHOOL = "school.view"
    VIEW_CLASS = "class.view"
    LIST_CLASS_STUDENTS = "class.list_students"
    VIEW_CLASS_TIMETABLE = "class.timetable"
    VIEW_STUDENT = "student.view"
    VIEW_TEACHER_TIMETABLE = "teacher.timetable"
    MANAGE_USERS = "users.manage"
    CREATE_BOARD = "board.create"
    VIEW_BOARD = "board.view"
    DRAW_ON_BOARD = "board.draw"
    CONTROL_BOARD = "board.control"
    CREATE_DOC = "doc.create"
    VIEW_DOC = "doc.view"
    EDIT_DOC = "doc.edit"
    VERSION_DOC = "doc.version"
    MANAGE_DOC = "doc.manage"


class SchoolRef(msgspec.Struct, frozen=True):
    id: int


class ClassRef(msgspec.Struct, frozen=True):
    id: int
    school_id: int


class StudentRef(msgspec.Struct, frozen=True):
    id: int
    school_id: int
    class_id: int


class TeacherRef(msgspec.Struct, frozen=True):
    id: int
    school_id: int


class BoardRef(msgspec.Struct, frozen=True):
    """A board with what decides access: its class, its owner, its state and who has the pen
    (`pen_all`: everyone of the class; `pen`: chosen students)."""

    id: int
    school_id: int
    class_id: int
    owner_id: int
    state: str = "live"  # live | locked | ended
    pen_all: bool = False
    pen: frozenset[int] = frozenset()


class DocRef(msgspec.Struct, frozen=True):
    """A course document with its access list: teacher co-editors, and classes it is shared
    with read-only (`read_classes`) or editable by their students (`edit_classes`)."""

    id: int
    school_id: int
    owner_id: int
    editors: frozenset[int] = frozenset()
    read_classes: frozenset[int] = frozenset()
    edit_classes: frozenset[int] = frozenset()


Target = SchoolRef | ClassRef | StudentRef | TeacherRef | BoardRef | DocRef
Rule = Callable[[Principal, Target], bool]


def _in_school(p: Principal, school_id: int) -> bool:
    return p.school_id is not None and p.school_id == school_id


def _school_team(p: Principal, school_id: int) -> bool:
    """CPE and administration act on their whole school."""
    return p.role in (Role.CPE, Role.STAFF) and _in_school(p, school_id)


def _view_school(p: Principal, t: Target) -> bool:
    assert isinstance(t, SchoolRef)
    return p.role is Role.ADMIN or t.id in p.school_ids


def _view_class(p: Principal, t: Target) -> bool:
    assert isinstance(t, ClassRef)
    if p.role is Role.ADMIN or _school_team(p, t.school_id):
        return True
    if p.role in (Role.TEACHER, Role.STUDENT):
        return _in_school(p, t.school_id) and t.id in p.class_ids
    if p.role is Role.PARENT:
        return t.id in p.child_class_ids
    return False


def _list_class_students(p: Principal, t: Target) -> bool:
    """Names of minors: the school team and the class's own teachers, nobody else."""
    assert isinstance(t, ClassRef)
    if p.role is Role.ADMIN or _school_team(p, t.school_id):
        return True
    return p.role is Role.TEACHER and _in_school(p, t.school_id) and t.id in p.class_ids


def _view_student(p: Principal, t: Target) -> bool:
    assert isinstance(t, StudentRef)
    if p.role is Role.ADMIN or _school_team(p, t.school_id):
        return True
    if p.role is Role.TEACHER:
        return _in_school(p, t.school_id) and t.class_id in p.class_ids
    if p.role is Role.STUDENT:
        return t.id == p.id
    if p.role is Role.PARENT:
        return t.id in p.child_ids
    return False


def _view_teacher_timetable(p: Principal, t: Target) -> bool:
    assert isinstance(t, TeacherRef)
    if p.role is Role.ADMIN or _school_team(p, t.school_id):
        return True
    return p.role is Role.TEACHER and t.id == p.id


def _manage_users(p: Principal, t: Target) -> bool:
    assert isinstance(t, SchoolRef)
    return p.role is Role.ADMIN or (p.role is Role.STAFF and _in_school(p, t.id))


def _create_board(p: Principal, t: Target) -> bool:
    assert isinstance(t, ClassRef)
    return p.role is Role.TEACHER and _in_school(p, t.school_id) and t.id in p.class_ids


def _board_teacher(p: Principal, t: BoardRef) -> bool:
    """The owner, or another teacher of the class (a replacement, a co-teacher)."""
    if p.role is not Role.TEACHER or not _in_school(p, t.school_id):
        return False
    return p.id == t.owner_id or t.class_id in p.class_ids


def _view_board(p: Principal, t: Target) -> bool:
    assert isinstance(t, BoardRef)
    if p.role is Role.ADMIN or _school_team(p, t.school_id) or _board_teacher(p, t):
        return True
    return p.role is Role.STUDENT and _in_school(p, t.school_id) and t.class_id in p.class_ids


def _draw_on_board(p: Principal, t: Target) -> bool:
    assert isinstance(t, BoardRef)
    if t.state == "ended" or not _view_board(p, t):
        return False
    if _board_teacher(p, t):
        return True
    if t.state != "live" or p.role is not Role.STUDENT:
        return False
    return t.pen_all or p.id in t.pen


def _control_board(p: Principal, t: Target) -> bool:
    assert isinstance(t, BoardRef)
    return t.state != "ended" and _board_teacher(p, t)


def _create_doc(p: Principal, t: Target) -> bool:
    assert isinstance(t, SchoolRef)
    return p.role is Role.TEACHER and _in_school(p, t.id)


def _doc_teacher(p: Principal, t: DocRef) -> bool:
    """The owner or a teacher co-editor: they write, keep versions and restore them."""
    if p.role is not Role.TEACHER or not _in_school(p, t.school_id):
        return False
    return p.id == t.owner_id or p.id in t.editors


def _doc_classes(p: Principal, t: DocRef, classes: frozenset[int]) -> bool:
    """A student of, or a teacher of, one of these classes (of the document's school)."""
    if p.role not in (Role.STUDENT, Role.TEACHER) or not _in_school(p, t.school_id):
        return False
    return not classes.isdisjoint(p.class_ids)


def _view_doc(p: Principal, t: Target) -> bool:
    assert isinstance(t, DocRef)
    return _doc_teacher(p, t) or _doc_classes(p, t, t.read_classes | t.edit_classes)


def _edit_doc(p: Principal, t: Target) -> bool:
    assert isinstance(t, DocRef)
    if _doc_teacher(p, t):
        return True
    return p.role is Role.STUDENT and _doc_classes(p, t, t.edit_classes)


def _version_doc(p: Principal, t: Target) -> bool:
    assert isinstance(t, DocRef)
    return _doc_teacher(p, t)


def _manage_doc(p: Principal, t: Target) -> bool:
    """Rename, share, delete: the owner only."""
    assert isinstance(t, DocRef)
    return p.role is Role.TEACHER and _in_school(p, t.school_id) and p.id == t.owner_id


RULES: dict[Action, tuple[type, Rule]] = {
    Action.VIEW_SCHOOL: (SchoolRef, _view_school),
    Action.VIEW_CLASS: (ClassRef, _view_class),
    Action.LIST_CLASS_STUDENTS: (ClassRef, _list_class_students),
    Action.VIEW_CLASS_TIMETABLE: (ClassRef, _view_class),
    Action.VIEW_STUDENT: (StudentRef, _view_student),
    Action.VIEW_TEACHER_TIMETABLE: (TeacherRef, _view_teacher_timetable),
    Action.MANAGE_USERS: (SchoolRef, _manage_users),
    Action.CREATE_BOARD: (ClassRef, _create_board),
    Action.VIEW_BOARD: (BoardRef, _view_board),
    Action.DRAW_ON_BOARD: (BoardRef, _draw_on_board),
    Action.CONTROL_BOARD: (BoardRef, _control_board),
    Action.CREATE_DOC: (SchoolRef, _create_doc),
    Action.VIEW_DOC: (DocRef, _view_doc),
    Action.EDIT_DOC: (DocRef, _edit_doc),
    Action.VERSION_DOC: (DocRef, _version_doc),
    Action.MANAGE_DOC: (DocRef, _manage_doc),
}


def may(p: Principal, action: Action, target: Target) -> bool:
    if p.user.disabled:
        return False
    expected, rule = RULES[action]
    if not isinstance(target, expected):
        raise TypeError(f"{action} applies to {expected.__name__}, not {type(target).__name__}")
    return rule(p, target)


def require(p: Principal, action: Action, target: Target, message: str | None = None) -> None:
    """Raise the same `not_found` whether the target is forbidden or absent."""
    if not may(p, action, target):
        raise AppError("not_found", message)

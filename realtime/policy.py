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
    VIEW_GUARDIAN_CONTACTS = "student.guardian_contacts"
    VIEW_TEACHER_TIMETABLE = "teacher.timetable"
    MANAGE_USERS = "users.manage"
    CREATE_BOARD = "board.create"
    VIEW_BOARD = "board.view"
    DRAW_ON_BOARD = "board.draw"
    CONTROL_BOARD = "board.control"
    VIEW_SCHOOL_PRESENCE = "presence.school"
    VIEW_CLASS_PRESENCE = "presence.class"
    VIEW_BOARD_PRESENCE = "presence.board"
    TAKE_ROLL = "roll.take"
    VIEW_ROLL = "roll.view"
    NAME_REPLACEMENT = "roll.replacement"
    CREATE_STUDY_HALL = "roll.study_hall"
    VIEW_ATTENDANCE_DASHBOARD = "attendance.dashboard"
    VIEW_CLASS_ATTENDANCE = "attendance.class"
    EXPORT_ATTENDANCE = "attendance.export"
    MANAGE_ABSENCE_REASONS = "attendance.reasons"
    VIEW_ABSENCES = "absences.view"
    GIVE_ABSENCE_REASON = "absences.give_reason"
    DECIDE_ABSENCE = "absences.decide"
    MANAGE_SCHOOL_CALENDAR = "attendance.calendar"
    VIEW_SUPPORTING_DOCUMENT = "absences.document"
    CHAT_WRITE_TO = "chat.write_to"
    CHAT_START_GROUP = "chat.start_group"
    CHAT_VIEW = "chat.view"
    CHAT_POST = "chat.post"
    CHAT_INVITE = "chat.invite"
    CHAT_MODERATE = "chat.moderate"
    CHAT_RECALL = "chat.recall"
    CHAT_CONFIGURE = "chat.configure"
    CHAT_HANDLE_REPORTS = "chat.handle_reports"
    CHAT_WRITE_TO_CLASS = "chat.write_to_class"
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


class GuardianContactsRef(msgspec.Struct, frozen=True):
    """A pupil's guardians' phones and e-mails, with the form tutors of the pupil's class."""

    student_id: int
    school_id: int
    class_id: int
    tutor_ids: frozenset[int] = frozenset()


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


class RollRef(msgspec.Struct, frozen=True):
    """A roll call: its class (None for a study hall), the slot's teacher (or the study
    hall's supervisor) and the replacement the CPE named, if any."""

    id: int
    school_id: int
    class_id: int | None
    teacher_id: int
    replacement_id: int | None = None


class ChatRules(msgspec.Struct, frozen=True):
    """A school's messaging settings (one row per school; these are the defaults).

    With `quiet_hours`, parents and students start conversations only between
    `day_start_min` and `day_end_min` (minutes after local midnight, Europe/Paris).
    """

    parents_to_teachers: bool = True
    parents_to_cpe: bool = True
    parents_to_staff: bool = True
    students_to_teachers: bool = True
    students_to_cpe: bool = True
    quiet_hours: bool = True
    day_start_min: int = 7 * 60
    day_end_min: int = 20 * 60


class ChatPeerRef(msgspec.Struct, frozen=True):
    """Someone the principal wants to write to, at a given local minute of the day.

    `school_ids`: their school (or, for a parent, their children's schools); `class_ids`: a
    teacher's classes, a student's class, a parent's children's classes. `rules` are the
    school's settings; `local_minute` comes from the clock passed to the service.
    """

    id: int
    role: str
    school_ids: frozenset[int]
    class_ids: frozenset[int] = frozenset()
    rules: ChatRules = ChatRules()
    local_minute: int = 12 * 60


class ConversationRef(msgspec.Struct, frozen=True):
    """A conversation: `kind` direct | group | information | live; `board` for a live one."""

    id: int
    school_id: int
    kind: str
    creator_id: int
    participants: frozenset[int] = frozenset()
    open: bool = True
    board: BoardRef | None = None


class ChatMessageRef(msgspec.Struct, frozen=True):
    conversation: ConversationRef
    author_id: int


class DocRef(msgspec.Struct, frozen=True):
    """A course document with its access list: teacher co-editors, and classes it is shared
    with read-only (`read_classes`) or editable by their students (`edit_classes`)."""

    id: int
    school_id: int
    owner_id: int
    editors: frozenset[int] = frozenset()
    read_classes: frozenset[int] = frozenset()
    edit_classes: frozenset[int] = frozenset()


Target = (SchoolRef | ClassRef | StudentRef | GuardianContactsRef | TeacherRef | BoardRef
          | RollRef | ChatPeerRef | ConversationRef | ChatMessageRef | DocRef)
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


def _view_guardian_contacts(p: Principal, t: Target) -> bool:
    """Guardians' phones and e-mails, by need-to-know: the vie scolaire (CPE) and the
    administration (secretariat, direction) of the pupil's school, who call families about
    absences, incidents and emergencies, and the pupil's form tutor (professeur principal),
    the family's appointed teacher contact. Other teachers reach families through the
    messaging; the département's administrator and other families have no need of them."""
    assert isinstance(t, GuardianContactsRef)
    if _school_team(p, t.school_id):
        return True
    return p.role is Role.TEACHER and _in_school(p, t.school_id) and p.id in t.tutor_ids


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


def _view_school_presence(p: Principal, t: Target) -> bool:
    """Who is online in a school: its school team (the CPE's day), nobody else."""
    assert isinstance(t, SchoolRef)
    return p.role is Role.ADMIN or _school_team(p, t.id)


def _view_board_presence(p: Principal, t: Target) -> bool:
    """Who follows a board: its teachers and the school team, never the pupils."""
    assert isinstance(t, BoardRef)
    return p.role is Role.ADMIN or _school_team(p, t.school_id) or _board_teacher(p, t)
def _take_roll(p: Principal, t: Target) -> bool:
    """The slot's teacher, the replacement the CPE named, the CPE or the administration."""
    assert isinstance(t, RollRef)
    if _school_team(p, t.school_id):
        return True
    return _in_school(p, t.school_id) and p.role is Role.TEACHER and p.id in (
        t.teacher_id, t.replacement_id)


def _view_roll(p: Principal, t: Target) -> bool:
    """Who may take it, and the other teachers of the class."""
    assert isinstance(t, RollRef)
    if _take_roll(p, t):
        return True
    return (p.role is Role.TEACHER and _in_school(p, t.school_id) and t.class_id is not None
            and t.class_id in p.class_ids)


def _cpe_of(p: Principal, t: Target) -> bool:
    school_id = t.id if isinstance(t, SchoolRef) else getattr(t, "school_id", None)
    return p.role is Role.CPE and school_id is not None and _in_school(p, school_id)


def _school_team_of(p: Principal, t: Target) -> bool:
    assert isinstance(t, SchoolRef)
    return _school_team(p, t.id)


def _class_attendance(p: Principal, t: Target) -> bool:
    """A class's rolls and absences: the school team and the class's teachers."""
    assert isinstance(t, ClassRef)
    return _list_class_students(p, t) and p.role is not Role.ADMIN


def _view_absences(p: Principal, t: Target) -> bool:
    """A minor's absence record: the student, their guardians, their teachers, the school
    team; not the département's administrators."""
    assert isinstance(t, StudentRef)
    return p.role is not Role.ADMIN and _view_student(p, t)


def _give_absence_reason(p: Principal, t: Target) -> bool:
    assert isinstance(t, StudentRef)
    return p.role is Role.PARENT and t.id in p.child_ids
CHAT_OPENERS = (Role.TEACHER, Role.CPE, Role.STAFF)  # may open groups and invite anyone


def _quiet(t: ChatPeerRef) -> bool:
    r = t.rules
    return r.quiet_hours and not (r.day_start_min <= t.local_minute < r.day_end_min)


def _chat_write_to(p: Principal, t: Target) -> bool:
    """May p address t directly (start a conversation with, or invite t)."""
    assert isinstance(t, ChatPeerRef)
    if t.id == p.id or t.role == Role.ADMIN.value:
        return False
    if p.role in CHAT_OPENERS:  # everyone of their school
        return p.school_id is not None and p.school_id in t.school_ids
    if p.role not in (Role.PARENT, Role.STUDENT) or _quiet(t):
        return False
    if not (p.school_ids & t.school_ids):
        return False
    r = t.rules
    if p.role is Role.PARENT:
        if t.role == Role.TEACHER.value:
            return r.parents_to_teachers and bool(p.child_class_ids & t.class_ids)
        if t.role == Role.CPE.value:
            return r.parents_to_cpe
        return t.role == Role.STAFF.value and r.parents_to_staff
    if t.role == Role.TEACHER.value:
        return r.students_to_teachers and bool(p.class_ids & t.class_ids)
    return t.role == Role.CPE.value and r.students_to_cpe


def _chat_start_group(p: Principal, t: Target) -> bool:
    """Groups and informations (where students or parents meet their peers): the school team."""
    assert isinstance(t, SchoolRef)
    return p.role in CHAT_OPENERS and _in_school(p, t.id)


def _live_view(p: Principal, t: ConversationRef) -> bool:
    return t.board is not None and _view_board(p, t.board)


def _chat_view(p: Principal, t: Target) -> bool:
    assert isinstance(t, ConversationRef)
    if t.kind == "live":
        return _live_view(p, t)
    return p.id in t.participants and t.school_id in p.school_ids


def _chat_post(p: Principal, t: Target) -> bool:
    assert isinstance(t, ConversationRef)
    if not t.open or not _chat_view(p, t):
        return False
    if t.kind == "live":
        assert t.board is not None
        return t.board.state != "ended" and (
            _board_teacher(p, t.board) or p.role is Role.STUDENT)
    if t.kind == "information":
        return p.id == t.creator_id
    return True


def _chat_moderate(p: Principal, t: Target) -> bool:
    """Close, delete anyone's message: the live session's teacher, a group's opener."""
    assert isinstance(t, ConversationRef)
    if t.kind == "live":
        return t.board is not None and _control_board(p, t.board)
    return p.role in CHAT_OPENERS and p.id == t.creator_id and _chat_view(p, t)


def _chat_invite(p: Principal, t: Target) -> bool:
    assert isinstance(t, ConversationRef)
    return t.kind in ("group", "information") and t.open and _chat_moderate(p, t)


def _chat_recall(p: Principal, t: Target) -> bool:
    assert isinstance(t, ChatMessageRef)
    return (p.role in CHAT_OPENERS and p.id == t.author_id
            and _chat_view(p, t.conversation))


def _chat_write_to_class(p: Principal, t: Target) -> bool:
    """A class's distribution list (its parents, its pupils): a teacher for the classes they
    teach, the CPE for every class of their school."""
    assert isinstance(t, ClassRef)
    if p.role is Role.TEACHER:
        return _in_school(p, t.school_id) and t.id in p.class_ids
    return p.role is Role.CPE and _in_school(p, t.school_id)


def _chat_configure(p: Principal, t: Target) -> bool:
    assert isinstance(t, SchoolRef)
    return p.role is Role.ADMIN or (p.role is Role.STAFF and _in_school(p, t.id))
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
    Action.VIEW_GUARDIAN_CONTACTS: (GuardianContactsRef, _view_guardian_contacts),
    Action.VIEW_TEACHER_TIMETABLE: (TeacherRef, _view_teacher_timetable),
    Action.MANAGE_USERS: (SchoolRef, _manage_users),
    Action.CREATE_BOARD: (ClassRef, _create_board),
    Action.VIEW_BOARD: (BoardRef, _view_board),
    Action.DRAW_ON_BOARD: (BoardRef, _draw_on_board),
    Action.CONTROL_BOARD: (BoardRef, _control_board),
    Action.VIEW_SCHOOL_PRESENCE: (SchoolRef, _view_school_presence),
    # Who of a class is online: those who may list its pupils.
    Action.VIEW_CLASS_PRESENCE: (ClassRef, _list_class_students),
    Action.VIEW_BOARD_PRESENCE: (BoardRef, _view_board_presence),
    Action.TAKE_ROLL: (RollRef, _take_roll),
    Action.VIEW_ROLL: (RollRef, _view_roll),
    Action.NAME_REPLACEMENT: (RollRef, _cpe_of),
    Action.CREATE_STUDY_HALL: (SchoolRef, _school_team_of),
    Action.VIEW_ATTENDANCE_DASHBOARD: (SchoolRef, _school_team_of),
    Action.VIEW_CLASS_ATTENDANCE: (ClassRef, _class_attendance),
    Action.EXPORT_ATTENDANCE: (SchoolRef, _school_team_of),
    Action.MANAGE_ABSENCE_REASONS: (SchoolRef, _cpe_of),
    Action.VIEW_ABSENCES: (StudentRef, _view_absences),
    Action.GIVE_ABSENCE_REASON: (StudentRef, _give_absence_reason),
    Action.DECIDE_ABSENCE: (StudentRef, _cpe_of),
    # The school calendar's closures: the CPE and the administration of the school.
    Action.MANAGE_SCHOOL_CALENDAR: (SchoolRef, _school_team_of),
    # A supporting document (a medical certificate): the guardians who may give a reason,
    # and who decides (the CPE); not the teachers.
    Action.VIEW_SUPPORTING_DOCUMENT: (StudentRef, lambda p, t: _give_absence_reason(p, t)
                                      or _cpe_of(p, t)),
    Action.CHAT_WRITE_TO: (ChatPeerRef, _chat_write_to),
    Action.CHAT_START_GROUP: (SchoolRef, _chat_start_group),
    Action.CHAT_VIEW: (ConversationRef, _chat_view),
    Action.CHAT_POST: (ConversationRef, _chat_post),
    Action.CHAT_INVITE: (ConversationRef, _chat_invite),
    Action.CHAT_MODERATE: (ConversationRef, _chat_moderate),
    Action.CHAT_RECALL: (ChatMessageRef, _chat_recall),
    Action.CHAT_CONFIGURE: (SchoolRef, _chat_configure),
    # Reported messages: the vie scolaire (CPE) of the school lists and handles them.
    Action.CHAT_HANDLE_REPORTS: (SchoolRef, _cpe_of),
    Action.CHAT_WRITE_TO_CLASS: (ClassRef, _chat_write_to_class),
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

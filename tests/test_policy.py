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
    ChatMessageRef,
    ChatPeerRef,
    ChatRules,
    ClassRef,
    ConversationRef,
    DocRef,
    GuardianContactsRef,
    RollRef,
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
    # Rolls: the teacher's own slot; a colleague's slot of class 11 where the CPE named the
    # teacher as replacement; a colleague's course in class 10; class 11; a study hall; and
    # a roll of the other school.
    "roll_own": RollRef(id=1, school_id=1, class_id=10, teacher_id=50),
    "roll_replacing": RollRef(id=2, school_id=1, class_id=11, teacher_id=51, replacement_id=50),
    "roll_colleague_10": RollRef(id=3, school_id=1, class_id=10, teacher_id=51),
    "roll_11": RollRef(id=4, school_id=1, class_id=11, teacher_id=51),
    "roll_study": RollRef(id=5, school_id=1, class_id=None, teacher_id=51),
    "roll_20": RollRef(id=6, school_id=2, class_id=20, teacher_id=60),
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
# Guardians' phones and e-mails of pupil 100: the teacher 50 is the form tutor of class 10
# (« contacts_tutor_10 »), or only one of its teachers (« contacts_10 »); another school's.
TARGETS.update({
    "contacts_tutor_10": GuardianContactsRef(student_id=100, school_id=1, class_id=10,
                                             tutor_ids=frozenset({50})),
    "contacts_10": GuardianContactsRef(student_id=100, school_id=1, class_id=10),
    "contacts_20": GuardianContactsRef(student_id=200, school_id=2, class_id=20,
                                       tutor_ids=frozenset({50})),
})
SCHOOL_1_CONTACTS = {"contacts_tutor_10", "contacts_10"}
SCHOOL_1_ROLLS = {"roll_own", "roll_replacing", "roll_colleague_10", "roll_11", "roll_study"}
NO_ATTENDANCE = {Action.TAKE_ROLL: set(), Action.VIEW_ROLL: set(),
                 Action.NAME_REPLACEMENT: set(), Action.CREATE_STUDY_HALL: set(),
                 Action.VIEW_ATTENDANCE_DASHBOARD: set(),
                 Action.VIEW_CLASS_ATTENDANCE: set(), Action.EXPORT_ATTENDANCE: set(),
                 Action.MANAGE_ABSENCE_REASONS: set(), Action.VIEW_ABSENCES: set(),
                 Action.GIVE_ABSENCE_REASON: set(), Action.DECIDE_ABSENCE: set(),
                 Action.MANAGE_SCHOOL_CALENDAR: set(),
                 Action.VIEW_SUPPORTING_DOCUMENT: set()}
NIGHT, NOON = 21 * 60, 12 * 60
_NO_QUIET = ChatRules(quiet_hours=False)
_CLOSED = ChatRules(parents_to_teachers=False, students_to_teachers=False)
_DEFAULT = ChatRules()


def _peer(id_: int, role: str, school: int = 1, classes: frozenset[int] = frozenset(),
          rules: ChatRules = _DEFAULT, minute: int = NOON) -> ChatPeerRef:
    return ChatPeerRef(id=id_, role=role, school_ids=frozenset({school}), class_ids=classes,
                       rules=rules, local_minute=minute)


def _conv(id_: int, kind: str, creator: int, members: set[int], school: int = 1,
          open_: bool = True, board: str | None = None) -> ConversationRef:
    ref = TARGETS[board] if board else None
    assert ref is None or isinstance(ref, BoardRef)
    return ConversationRef(id=id_, school_id=school, kind=kind, creator_id=creator,
                           participants=frozenset(members), open=open_, board=ref)


# Messaging: people to write to (at noon unless said), conversations, messages.
TARGETS.update({
    "peer_teacher_50": _peer(50, "teacher", classes=frozenset({10})),
    "peer_teacher_51": _peer(51, "teacher", classes=frozenset({11})),
    "peer_teacher_50_night": _peer(50, "teacher", classes=frozenset({10}), minute=NIGHT),
    "peer_teacher_50_closed": _peer(50, "teacher", classes=frozenset({10}), rules=_CLOSED),
    "peer_cpe_400": _peer(400, "cpe"),
    "peer_cpe_400_night": _peer(400, "cpe", minute=NIGHT),
    "peer_cpe_400_night_no_quiet": _peer(400, "cpe", rules=_NO_QUIET, minute=NIGHT),
    "peer_staff_401": _peer(401, "staff"),
    "peer_student_100": _peer(100, "student", classes=frozenset({10})),
    "peer_student_101": _peer(101, "student", classes=frozenset({11})),
    "peer_parent_300": _peer(300, "parent", classes=frozenset({10})),
    "peer_parent_301": _peer(301, "parent", classes=frozenset({11})),
    "peer_admin_1": _peer(1, "admin"),
    "peer_teacher_60": _peer(60, "teacher", school=2, classes=frozenset({20})),
    "peer_cpe_2": _peer(402, "cpe", school=2),
    "peer_parent_2": _peer(302, "parent", school=2, classes=frozenset({20})),
})
TARGETS.update({
    "conv_direct": _conv(1, "direct", 300, {300, 50}),
    "conv_group": _conv(2, "group", 50, {50, 100, 300, 400}),
    "conv_group_staff": _conv(3, "group", 401, {401, 100, 300, 50}),
    "conv_info": _conv(4, "information", 401, {401, 50, 100, 300}),
    "conv_closed": _conv(5, "group", 50, {50, 100}, open_=False),
    "conv_other": _conv(6, "direct", 51, {51, 101}),
    "conv_20": _conv(7, "group", 60, {60, 50, 100, 300, 400, 401}, school=2),
    "live_own": _conv(8, "live", 50, set(), board="board_own"),
    "live_ended": _conv(9, "live", 50, set(), board="board_ended"),
    "live_11": _conv(10, "live", 51, set(), board="board_11"),
    "live_closed": _conv(11, "live", 50, set(), open_=False, board="board_own"),
    "live_20": _conv(12, "live", 60, set(), school=2, board="board_20"),
})


def _msg(conv: str, author: int) -> ChatMessageRef:
    ref = TARGETS[conv]
    assert isinstance(ref, ConversationRef)
    return ChatMessageRef(conversation=ref, author_id=author)


TARGETS.update({
    "msg_teacher_group": _msg("conv_group", 50),
    "msg_cpe_group": _msg("conv_group", 400),
    "msg_staff_info": _msg("conv_info", 401),
    "msg_parent_direct": _msg("conv_direct", 300),
    "msg_teacher_20": _msg("conv_20", 50),
})
SCHOOL_1_PEERS = {"peer_teacher_50", "peer_teacher_51", "peer_teacher_50_night",
                  "peer_teacher_50_closed", "peer_cpe_400", "peer_cpe_400_night",
                  "peer_cpe_400_night_no_quiet", "peer_staff_401", "peer_student_100",
                  "peer_student_101", "peer_parent_300", "peer_parent_301"}
LIVE_CLASS_10 = {"live_own", "live_ended", "live_closed"}
NO_CHAT = {Action.CHAT_WRITE_TO: set(), Action.CHAT_START_GROUP: set(),
           Action.CHAT_VIEW: set(), Action.CHAT_POST: set(), Action.CHAT_INVITE: set(),
           Action.CHAT_MODERATE: set(), Action.CHAT_RECALL: set(),
           Action.CHAT_CONFIGURE: set(), Action.CHAT_HANDLE_REPORTS: set(),
           Action.CHAT_WRITE_TO_CLASS: set()}
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
        Action.VIEW_GUARDIAN_CONTACTS: {"contacts_tutor_10"},
        Action.VIEW_TEACHER_TIMETABLE: {"teacher_50"},
        Action.MANAGE_USERS: set(),
        Action.CREATE_BOARD: {"class_10"},
        Action.VIEW_BOARD: CLASS_10_BOARDS,
        Action.DRAW_ON_BOARD: {"board_own", "board_pen", "board_locked"},
        Action.CONTROL_BOARD: {"board_own", "board_pen", "board_locked"},
        Action.VIEW_SCHOOL_PRESENCE: set(),
        Action.VIEW_CLASS_PRESENCE: {"class_10"},
        Action.VIEW_BOARD_PRESENCE: CLASS_10_BOARDS,
        **NO_ATTENDANCE,
        Action.TAKE_ROLL: {"roll_own", "roll_replacing"},
        Action.VIEW_ROLL: {"roll_own", "roll_replacing", "roll_colleague_10"},
        Action.VIEW_CLASS_ATTENDANCE: {"class_10"},
        Action.VIEW_ABSENCES: {"student_100"},
        Action.CHAT_WRITE_TO: SCHOOL_1_PEERS - {"peer_teacher_50", "peer_teacher_50_night",
                                                "peer_teacher_50_closed"},
        Action.CHAT_START_GROUP: {"own_school"},
        Action.CHAT_VIEW: {"conv_direct", "conv_group", "conv_group_staff", "conv_info",
                           "conv_closed", *LIVE_CLASS_10},
        Action.CHAT_POST: {"conv_direct", "conv_group", "conv_group_staff", "live_own"},
        Action.CHAT_INVITE: {"conv_group"},
        Action.CHAT_MODERATE: {"conv_group", "conv_closed", "live_own", "live_closed"},
        Action.CHAT_RECALL: {"msg_teacher_group"},
        Action.CHAT_CONFIGURE: set(),
        Action.CHAT_HANDLE_REPORTS: set(),
        Action.CHAT_WRITE_TO_CLASS: {"class_10"},  # the classes they teach
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
        Action.VIEW_GUARDIAN_CONTACTS: set(),
        Action.VIEW_TEACHER_TIMETABLE: set(),
        Action.MANAGE_USERS: set(),
        **NO_BOARD,
        Action.VIEW_BOARD: CLASS_10_BOARDS,
        Action.DRAW_ON_BOARD: {"board_pen"},
        Action.VIEW_SCHOOL_PRESENCE: set(),
        Action.VIEW_CLASS_PRESENCE: set(),
        Action.VIEW_BOARD_PRESENCE: set(),
        **NO_ATTENDANCE,
        Action.VIEW_ABSENCES: {"student_100"},
        **NO_CHAT,
        Action.CHAT_WRITE_TO: {"peer_teacher_50", "peer_cpe_400", "peer_cpe_400_night_no_quiet"},
        Action.CHAT_VIEW: {"conv_group", "conv_group_staff", "conv_info", "conv_closed",
                           *LIVE_CLASS_10},
        Action.CHAT_POST: {"conv_group", "conv_group_staff", "live_own"},
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
        Action.VIEW_GUARDIAN_CONTACTS: set(),
        Action.VIEW_TEACHER_TIMETABLE: set(),
        Action.MANAGE_USERS: set(),
        **NO_BOARD,
        Action.VIEW_SCHOOL_PRESENCE: set(),
        Action.VIEW_CLASS_PRESENCE: set(),
        Action.VIEW_BOARD_PRESENCE: set(),
        **NO_ATTENDANCE,
        Action.VIEW_ABSENCES: {"student_100"},
        Action.GIVE_ABSENCE_REASON: {"student_100"},
        Action.VIEW_SUPPORTING_DOCUMENT: {"student_100"},
        **NO_CHAT,
        Action.CHAT_WRITE_TO: {"peer_teacher_50", "peer_cpe_400", "peer_staff_401",
                               "peer_cpe_400_night_no_quiet"},
        Action.CHAT_VIEW: {"conv_direct", "conv_group", "conv_group_staff", "conv_info"},
        Action.CHAT_POST: {"conv_direct", "conv_group", "conv_group_staff"},
        **NO_DOC,
    },
    Role.CPE: {
        Action.VIEW_SCHOOL: {"own_school"},
        Action.VIEW_CLASS: {"class_10", "class_11"},
        Action.LIST_CLASS_STUDENTS: {"class_10", "class_11"},
        Action.VIEW_CLASS_TIMETABLE: {"class_10", "class_11"},
        Action.VIEW_STUDENT: {"student_100", "student_101"},
        Action.VIEW_GUARDIAN_CONTACTS: SCHOOL_1_CONTACTS,
        Action.VIEW_TEACHER_TIMETABLE: {"teacher_50", "teacher_51"},
        Action.MANAGE_USERS: set(),
        **NO_BOARD,
        Action.VIEW_BOARD: SCHOOL_1_BOARDS,
        Action.VIEW_SCHOOL_PRESENCE: {"own_school"},
        Action.VIEW_CLASS_PRESENCE: {"class_10", "class_11"},
        Action.VIEW_BOARD_PRESENCE: SCHOOL_1_BOARDS,
        Action.TAKE_ROLL: SCHOOL_1_ROLLS,
        Action.VIEW_ROLL: SCHOOL_1_ROLLS,
        Action.NAME_REPLACEMENT: SCHOOL_1_ROLLS,
        Action.VIEW_ATTENDANCE_DASHBOARD: {"own_school"},
        Action.CREATE_STUDY_HALL: {"own_school"},
        Action.VIEW_CLASS_ATTENDANCE: {"class_10", "class_11"},
        Action.EXPORT_ATTENDANCE: {"own_school"},
        Action.MANAGE_ABSENCE_REASONS: {"own_school"},
        Action.VIEW_ABSENCES: {"student_100", "student_101"},
        Action.GIVE_ABSENCE_REASON: set(),
        Action.DECIDE_ABSENCE: {"student_100", "student_101"},
        Action.MANAGE_SCHOOL_CALENDAR: {"own_school"},
        Action.VIEW_SUPPORTING_DOCUMENT: {"student_100", "student_101"},
        Action.CHAT_WRITE_TO: SCHOOL_1_PEERS - {"peer_cpe_400", "peer_cpe_400_night",
                                                "peer_cpe_400_night_no_quiet"},
        Action.CHAT_START_GROUP: {"own_school"},
        Action.CHAT_VIEW: {"conv_group", *LIVE_CLASS_10, "live_11"},
        Action.CHAT_POST: {"conv_group"},
        Action.CHAT_INVITE: set(),
        Action.CHAT_MODERATE: set(),
        Action.CHAT_RECALL: {"msg_cpe_group"},
        Action.CHAT_CONFIGURE: set(),
        Action.CHAT_HANDLE_REPORTS: {"own_school"},
        Action.CHAT_WRITE_TO_CLASS: {"class_10", "class_11"},  # every class of the school
        **NO_DOC,
    },
    Role.STAFF: {
        Action.VIEW_SCHOOL: {"own_school"},
        Action.VIEW_CLASS: {"class_10", "class_11"},
        Action.LIST_CLASS_STUDENTS: {"class_10", "class_11"},
        Action.VIEW_CLASS_TIMETABLE: {"class_10", "class_11"},
        Action.VIEW_STUDENT: {"student_100", "student_101"},
        Action.VIEW_GUARDIAN_CONTACTS: SCHOOL_1_CONTACTS,
        Action.VIEW_TEACHER_TIMETABLE: {"teacher_50", "teacher_51"},
        Action.MANAGE_USERS: {"own_school"},
        **NO_BOARD,
        Action.VIEW_BOARD: SCHOOL_1_BOARDS,
        Action.VIEW_SCHOOL_PRESENCE: {"own_school"},
        Action.VIEW_CLASS_PRESENCE: {"class_10", "class_11"},
        Action.VIEW_BOARD_PRESENCE: SCHOOL_1_BOARDS,
        **NO_ATTENDANCE,
        Action.TAKE_ROLL: SCHOOL_1_ROLLS,
        Action.VIEW_ROLL: SCHOOL_1_ROLLS,
        Action.VIEW_ATTENDANCE_DASHBOARD: {"own_school"},
        Action.CREATE_STUDY_HALL: {"own_school"},
        Action.VIEW_CLASS_ATTENDANCE: {"class_10", "class_11"},
        Action.EXPORT_ATTENDANCE: {"own_school"},
        Action.VIEW_ABSENCES: {"student_100", "student_101"},
        Action.MANAGE_SCHOOL_CALENDAR: {"own_school"},
        Action.CHAT_WRITE_TO: SCHOOL_1_PEERS - {"peer_staff_401"},
        Action.CHAT_START_GROUP: {"own_school"},
        Action.CHAT_VIEW: {"conv_group_staff", "conv_info", *LIVE_CLASS_10, "live_11"},
        Action.CHAT_POST: {"conv_group_staff", "conv_info"},
        Action.CHAT_INVITE: {"conv_group_staff", "conv_info"},
        Action.CHAT_MODERATE: {"conv_group_staff", "conv_info"},
        Action.CHAT_RECALL: {"msg_staff_info"},
        Action.CHAT_CONFIGURE: {"own_school"},
        Action.CHAT_HANDLE_REPORTS: set(),
        Action.CHAT_WRITE_TO_CLASS: set(),
        **NO_DOC,
    },
    # Minors' absence data: not the département's administrators.
    # Guardians' contact details: the school team's, not the département's.
    Role.ADMIN: {**{action: EVERYTHING for action in Action}, **NO_BOARD,
                 Action.VIEW_GUARDIAN_CONTACTS: set(),
                 Action.VIEW_BOARD: EVERYTHING, **NO_ATTENDANCE, **NO_CHAT,
                 Action.CHAT_VIEW: {*LIVE_CLASS_10, "live_11", "live_20"},
                 Action.CHAT_CONFIGURE: EVERYTHING, **NO_DOC},
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
                                                "teacher_60", "board_20", "roll_20", "doc_20",
                                                "contacts_20"}


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


def test_no_chat_reaches_another_school() -> None:
    other = {"peer_teacher_60", "peer_cpe_2", "peer_parent_2", "conv_20", "live_20",
             "msg_teacher_20", "other_school"}
    for role in (Role.TEACHER, Role.STUDENT, Role.PARENT, Role.CPE, Role.STAFF):
        for action in NO_CHAT:
            assert not ALLOWED[role][action] & other, (role, action)


@pytest.mark.parametrize(("minute", "allowed"), [
    (6 * 60 + 59, False), (7 * 60, True), (19 * 60 + 59, True), (20 * 60, False), (0, False),
])
def test_quiet_hours_bound_parents_and_students_only(minute: int, allowed: bool) -> None:
    teacher = _peer(50, "teacher", classes=frozenset({10}), minute=minute)
    assert may(principal(Role.PARENT), Action.CHAT_WRITE_TO, teacher) is allowed
    assert may(principal(Role.STUDENT), Action.CHAT_WRITE_TO, teacher) is allowed
    student = _peer(100, "student", classes=frozenset({10}), minute=minute)
    assert may(principal(Role.TEACHER), Action.CHAT_WRITE_TO, student)


def test_a_school_sets_its_own_day() -> None:
    rules = ChatRules(day_start_min=8 * 60, day_end_min=18 * 60)
    late = _peer(400, "cpe", rules=rules, minute=18 * 60 + 30)
    assert not may(principal(Role.PARENT), Action.CHAT_WRITE_TO, late)
    assert may(principal(Role.PARENT), Action.CHAT_WRITE_TO,
               _peer(400, "cpe", rules=rules, minute=9 * 60))

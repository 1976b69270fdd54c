"""Users, roles and the `Principal` every policy question is asked about. Pure data."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Role(StrEnum):
    TEACHER = "teacher"
    STUDENT = "student"
    PARENT = "parent"  # responsable légal
    CPE = "cpe"  # conseiller principal d'éducation (vie scolaire)
    STAFF = "staff"  # administration (secrétariat, direction)
    ADMIN = "admin"  # administrateur de l'ENT, à l'échelle du département


ROLE_LABELS_FR: dict[Role, str] = {
    Role.TEACHER: "Enseignant·e",
    Role.STUDENT: "Élève",
    Role.PARENT: "Responsable légal",
    Role.CPE: "CPE (vie scolaire)",
    Role.STAFF: "Administration",
    Role.ADMIN: "Administrateur",
}


class User(msgspec.Struct, frozen=True):
    id: int
    login: str
    role: Role
    name: str
    school_id: int | None
    disabled: bool = False
    external_id: str | None = None  # the ENT's key (AAF ENTPersonJointure), for SSO

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "login": self.login,
            "role": self.role.value,
            "name": self.name,
            "school_id": self.school_id,
        }


class FeedAccount(msgspec.Struct, frozen=True):
    """An account as the directory feed (AAF import) sees it: `source` is "aaf" for the
    accounts it manages; `feed_disabled`: the feed (not a person) disabled it, so it comes
    back if the feed names it again."""

    user: User
    source: str | None = None
    feed_disabled: bool = False


class Session(msgspec.Struct, frozen=True):
    id: str
    user_id: int
    created_at: float
    expires_at: float
    revoked_at: float | None = None

    def active(self, now: float) -> bool:
        return self.revoked_at is None and now < self.expires_at


class Principal(msgspec.Struct, frozen=True):
    """A user with the relations policy needs, loaded once per request or connection.

    `class_ids`: the classes a teacher teaches, or a student's own class.
    `child_ids` / `child_class_ids` / `child_school_ids`: a guardian's children and theirs.
    """

    user: User
    session_id: str | None = None
    class_ids: frozenset[int] = frozenset()
    child_ids: frozenset[int] = frozenset()
    child_class_ids: frozenset[int] = frozenset()
    child_school_ids: frozenset[int] = frozenset()

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def role(self) -> Role:
        return self.user.role

    @property
    def school_id(self) -> int | None:
        return self.user.school_id

    @property
    def school_ids(self) -> frozenset[int]:
        """Every school this person has a legitimate link to."""
        own = {self.user.school_id} if self.user.school_id is not None else set()
        return frozenset(own | self.child_school_ids)

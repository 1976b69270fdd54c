"""Login, logout, token checks and account management: the only place that decides them."""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Callable

import aiosqlite

from realtime.db import Database, Transaction, unique_violation
from realtime.directory import store as directory
from realtime.errors import AppError
from realtime.identity import store
from realtime.identity.codes import CODE_MAX_LEN, CODE_MIN_LEN, CodeHasher
from realtime.identity.devices import DeviceCookies
from realtime.identity.model import Principal, Role, Session, User
from realtime.identity.sessions import SessionBus
from realtime.identity.tokens import TokenSigner
from realtime.ratelimit import RateLimiter, Throttle

LOGIN_MAX_LEN = 64
BAD_LOGIN_MESSAGE = "Identifiant ou code personnel incorrect."
DISABLED_MESSAGE = (
    "Ce compte est désactivé : il ne peut plus se connecter. Si c'est une erreur, adressez-vous"
    " au secrétariat de votre établissement."
)
REPLAYED_MESSAGE = (
    "Ce ticket de connexion a déjà servi : il ne peut ouvrir qu'une session. Reconnectez-vous"
    " depuis l'ENT."
)
# Who is meant, in the message that sends them to the ENT.
_ROLE_PLURALS_FR: dict[Role, str] = {
    Role.TEACHER: "Les enseignants",
    Role.STUDENT: "Les élèves",
    Role.PARENT: "Les responsables légaux",
    Role.CPE: "Les CPE",
    Role.STAFF: "Les personnels de l'administration",
    Role.ADMIN: "Les administrateurs",
}


def code_login_off_message(role: Role) -> str:
    return (f"{_ROLE_PLURALS_FR[role]} se connectent avec leur compte ENT : utilisez le bouton"
            " « Se connecter avec l'ENT ». Le code personnel ne sert plus pour ce compte.")


def _wait_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Trop de tentatives de connexion échouées. Réessayez dans {minutes} {unit}."


def _delay_message(seconds: int) -> str:
    unit = "seconde" if seconds == 1 else "secondes"
    return (f"Trop de tentatives de connexion échouées : patientez {seconds} {unit} avant "
            "de réessayer.")


class IdentityService:
    def __init__(
        self,
        db: Database,
        hasher: CodeHasher,
        signer: TokenSigner,
        per_login: RateLimiter,
        per_address: RateLimiter,
        clock: Callable[[], float] = time.time,
        code_login_off: frozenset[Role] = frozenset(),
        sessions: SessionBus | None = None,
        throttle: Throttle | None = None,
        max_delay_s: float = 60.0,
    ) -> None:
        self.db = db
        # Roles the ENT feed covers: they sign in through the ENT only (docs/identity.md).
        self.code_login_off = code_login_off
        self.sessions = sessions  # closes the live connections of a session that ends
        self.throttle = throttle  # progressive delays per login and per address
        self.devices = DeviceCookies(signer.secret)  # browsers that logged in before
        self.max_delay_s = max_delay_s
        self.hasher = hasher
        self.signer = signer
        self.per_login = per_login
        self.per_address = per_address
        self.clock = clock

    async def login(self, login: str, code: str, address: str,
                    device: str | None = None) -> tuple[str, User]:
        """A token and the user, or `unauthorized` / `rate_limited` (checked before hashing,
        so a flood of guesses costs the server nothing).

        The policy (docs/security.md « Login limits »): failures are counted per login, per
        address and per (login, address) pair — or (login, device) for a browser that
        already logged in to this account (`device`, from its device cookie). The pair is
        locked after `per_login.limit` failures until the window ends; the login and the
        address are only slowed down (one attempt per 1, 2, 4 … s, up to `max_delay_s`)
        once they pass their own limit. A known device skips those delays: other people's
        failures never refuse the rightful user's right code on their own device."""
        login = login.strip()
        folded = login.casefold()[:LOGIN_MAX_LEN + 1]  # keys stay small: no login is longer
        login_key, address_key = f"login:{folded}", f"addr:{address}"
        pair_key = f"pair:{folded}:" + (f"dev:{device}" if device else f"addr:{address}")
        if await self.per_login.blocked(pair_key):
            wait = await self.per_login.retry_after(pair_key)
            raise AppError("rate_limited", _wait_message(wait), retry_after=wait)
        if device is None and self.throttle is not None:
            for limiter, key in ((self.per_login, login_key), (self.per_address, address_key)):
                failures = await limiter.count(key)
                if failures < limiter.limit:
                    continue
                delay = min(self.max_delay_s, 2.0 ** min(failures - limiter.limit, 30))
                wait_s = await self.throttle.take(key, delay)
                if wait_s > 0:
                    seconds = max(1, math.ceil(wait_s))
                    raise AppError("rate_limited", _delay_message(seconds),
                                   retry_after=seconds)

        found = None
        if 0 < len(login) <= LOGIN_MAX_LEN and len(code) <= CODE_MAX_LEN:
            found = await store.user_by_login(self.db, login)
        user, code_hash = found if found else (None, None)
        ok = await self.hasher.verify_async(code_hash, code)
        if not ok or user is None or user.disabled:
            await self.per_login.hit(pair_key)
            await self.per_login.hit(login_key)
            await self.per_address.hit(address_key)
            raise AppError("unauthorized", BAD_LOGIN_MESSAGE)
        # Only after the right code: a guesser learns nothing about which accounts exist.
        if user.role in self.code_login_off:
            raise AppError("forbidden", code_login_off_message(user.role))

        # The pair's own failures are forgiven; the login's and the address's stay counted
        # (an attacker must not reset their cost by knowing when the user logs in).
        await self.per_login.reset(pair_key)
        async with self.db.transaction() as conn:
            session = await self._open_session(conn, user)
            if code_hash and self.hasher.needs_rehash(code_hash):
                await store.set_code_hash(conn, user.id, await self.hasher.hash_async(code))
        return self.signer.sign(session.id), user

    async def _open_session(self, conn: aiosqlite.Connection, user: User) -> Session:
        """Every path to a session goes through here: a disabled account never gets one."""
        if await store.user_is_disabled(conn, user.id):
            raise AppError("forbidden", DISABLED_MESSAGE)
        now = self.clock()
        session = Session(
            id=secrets.token_urlsafe(24),
            user_id=user.id,
            created_at=now,
            expires_at=now + self.signer.ttl_s,
        )
        await store.insert_session(conn, session)
        return session

    async def sso_login(self, user: User, provider: str, index: str) -> str:
        """A token for someone the ENT vouched for (CAS ticket or OIDC ID token checked by
        the caller). `index` is what the provider handed us once (the CAS service ticket, the
        OIDC nonce): its first use opens the session, any other is refused as a replay, on
        every node sharing the database."""
        index_hash = sso_index_hash(index)
        async with self.db.transaction() as conn:
            session = await self._open_session(conn, user)
            if not await store.insert_sso_login(conn, provider, index_hash, session.id,
                                                session.created_at):
                raise AppError("forbidden", REPLAYED_MESSAGE)  # rolls the session back
        return self.signer.sign(session.id)

    async def logout_session(self, session_id: str) -> None:
        """End one session by its id (a CAS back-channel logout names the ticket, not our
        token): through `logout`, so whatever a logout does (closing open sockets) applies."""
        await self.logout(self.signer.sign(session_id))

    async def session_provider(self, token: str | None) -> str | None:
        """'cas' or 'oidc' when the token's session was opened through the ENT."""
        sid = self.signer.session_id(token or "")
        return await store.sso_provider_of(self.db, sid) if sid else None

    async def logout(self, token: str | None) -> None:
        sid = self.signer.session_id(token or "")
        if sid:
            await self.end_session(sid)

    # --- sessions that end (docs/security.md « How sessions end ») -----------------------

    async def end_session(self, session_id: str) -> None:
        """Revoke one session and close every live connection made with it, on every
        worker and node (logout; a CAS back-channel logout names the session to end)."""
        async with self.db.transaction() as conn:
            await store.revoke_session(conn, session_id, self.clock())
            self._tell_ended(conn, sessions=[session_id])

    async def end_user_sessions(self, user_id: int) -> None:
        """Revoke every session of a user and close all their live connections."""
        async with self.db.transaction() as conn:
            await store.revoke_user_sessions(conn, user_id, self.clock())
            self._tell_ended(conn, users=[user_id])

    async def disable_user(self, login: str) -> User:
        """Disable an account (it can no longer log in) and end all its sessions at once:
        the one call for an account that leaves (AAF import, SSO de-provisioning, the
        `users disable` command). Idempotent."""
        user = await self._user(login)
        async with self.db.transaction() as conn:
            await store.set_disabled(conn, user.id, True)
            await store.revoke_user_sessions(conn, user.id, self.clock())
            self._tell_ended(conn, users=[user.id])
        return user

    async def enable_user(self, login: str) -> User:
        """Allow a disabled account to log in again (its old sessions stay ended)."""
        user = await self._user(login)
        async with self.db.transaction() as conn:
            await store.set_disabled(conn, user.id, False)
        return user

    def _tell_ended(self, conn: Transaction, *, sessions: list[str] | None = None,
                    users: list[int] | None = None) -> None:
        """Once the revocation is committed, every worker and node closes the live
        connections made with these sessions (never for a revocation rolled back)."""
        bus = self.sessions
        if bus is not None:
            conn.on_commit(lambda: bus.ended(sessions=sessions or (), users=users or ()))

    async def _user(self, login: str) -> User:
        found = await store.user_by_login(self.db, login)
        if not found:
            raise AppError("not_found", f"Aucun compte « {login} ».")
        return found[0]

    async def authenticate(self, token: str | None) -> Principal | None:
        """The principal behind a token, or None for a forged, expired or revoked one."""
        sid = self.signer.session_id(token or "")
        if not sid:
            return None
        session = await store.session_by_id(self.db, sid)
        if session is None or not session.active(self.clock()):
            return None
        user = await store.user_by_id(self.db, session.user_id)
        if user is None or user.disabled:
            return None
        return await self.principal_for(user, session_id=sid)

    async def principal_for(self, user: User, session_id: str | None = None) -> Principal:
        rel = await directory.relations_of(self.db, user)
        return Principal(
            user=user,
            session_id=session_id,
            class_ids=rel.class_ids,
            child_ids=rel.child_ids,
            child_class_ids=rel.child_class_ids,
            child_school_ids=rel.child_school_ids,
        )

    # --- account management (CLI and, later, the admin console) -------------------------

    async def add_user(
        self, *, login: str, role: Role, name: str, school_id: int | None, code: str
    ) -> User:
        check_code(code)
        if not login or len(login) > LOGIN_MAX_LEN or any(c.isspace() for c in login):
            raise AppError("invalid", "Identifiant invalide (sans espace, 64 caractères au plus).")
        taken = AppError("conflict", f"L'identifiant « {login} » existe déjà.")
        if await store.user_by_login(self.db, login):
            raise taken
        code_hash = await self.hasher.hash_async(code)
        try:
            async with self.db.transaction() as conn:
                return await store.insert_user(
                    conn, login=login, role=role, name=name, school_id=school_id,
                    code_hash=code_hash)
        except Exception as exc:  # created meanwhile (another node, another request)
            if unique_violation(exc) is None:
                raise
            raise taken from exc

    async def reset_code(self, login: str, code: str) -> User:
        """A new personal code; every open session of that user is closed."""
        check_code(code)
        found = await store.user_by_login(self.db, login)
        if not found:
            raise AppError("not_found", f"Aucun compte « {login} ».")
        user, _ = found
        code_hash = await self.hasher.hash_async(code)
        async with self.db.transaction() as conn:
            await store.set_code_hash(conn, user.id, code_hash)
            await store.revoke_user_sessions(conn, user.id, self.clock())
            self._tell_ended(conn, users=[user.id])
        await self.per_login.reset(f"login:{user.login.casefold()}")
        return user


def sso_index_hash(index: str) -> str:
    """Tickets are bearer secrets for a moment: only their hash is kept."""
    return hashlib.sha256(index.encode()).hexdigest()


def check_code(code: str) -> None:
    if not (CODE_MIN_LEN <= len(code) <= CODE_MAX_LEN):
        raise AppError(
            "invalid",
            f"Le code personnel doit compter entre {CODE_MIN_LEN} et {CODE_MAX_LEN} caractères.",
        )

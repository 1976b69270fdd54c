"""One `Settings` object, built once from the environment.

Every knob has a documented default (see docs/configuration.md); the defaults run one process
on an embedded SQLite file with in-memory fan-out, so a laptop needs nothing else.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

_ROOT = Path(__file__).resolve().parent.parent


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number ≥ 0, got {raw!r}")
    return value


def _database_url(value: str | None) -> str | None:
    """DATABASE_URL, the platform convention: postgresql://USER[:PASSWORD]@HOST:PORT/DBNAME."""
    if not value:
        return None
    if not value.startswith(("postgresql://", "postgres://")):
        raise ValueError("DATABASE_URL: expected postgresql://USER[:PASSWORD]@HOST:PORT/DBNAME")
    return value


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _choice(env: dict[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = (env.get(name) or "").strip().replace(" ", "")
    if not raw:
        return default
    if raw not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _is_loopback_or_https(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"))


def _check_sso(s: Settings) -> None:
    """A half-configured SSO fails at start-up with its variable's name, not at the first
    sign-in; plain http is for a provider on this machine only (tests, a local proxy)."""
    for name, url in (("REALTIME_CAS_URL", s.cas_url), ("REALTIME_OIDC_ISSUER", s.oidc_issuer),
                      ("REALTIME_PUBLIC_URL", s.public_url)):
        if url and not _is_loopback_or_https(url):
            raise ValueError(f"{name} must be an https:// URL, got {url!r}")
    if s.oidc_issuer and not s.oidc_client_id:
        raise ValueError("REALTIME_OIDC_CLIENT_ID is required with REALTIME_OIDC_ISSUER")
    if s.oidc_client_id and not s.oidc_issuer:
        raise ValueError("REALTIME_OIDC_ISSUER is required with REALTIME_OIDC_CLIENT_ID")
    if s.saml_idp_metadata:
        for name, value in (("REALTIME_SAML_SP_KEY", s.saml_sp_key),
                            ("REALTIME_SAML_SP_CERT", s.saml_sp_cert),
                            ("REALTIME_PUBLIC_URL", s.public_url)):
            if not value:
                raise ValueError(f"{name} is required with REALTIME_SAML_IDP_METADATA")
        for name, path in (("REALTIME_SAML_IDP_METADATA", s.saml_idp_metadata),
                           ("REALTIME_SAML_SP_KEY", s.saml_sp_key),
                           ("REALTIME_SAML_SP_CERT", s.saml_sp_cert)):
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: no file {path}")


def _path(env: dict[str, str], name: str) -> Path | None:
    raw = (env.get(name) or "").strip()
    return Path(raw) if raw else None


def _prefix(raw: str) -> str:
    """`AIX` or `AIX-` → `AIX-`, as `directory import-aaf --academy-prefix` writes ids."""
    raw = raw.strip().rstrip("-")
    return f"{raw}-" if raw else ""


_ROLES = ("teacher", "student", "parent", "cpe", "staff", "admin")


def _roles(env: dict[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of roles (identity.model.Role values)."""
    roles = tuple(r.strip().lower() for r in (env.get(name) or "").split(",") if r.strip())
    unknown = [r for r in roles if r not in _ROLES]
    if unknown:
        raise ValueError(f"{name}: unknown roles {unknown}; known: {', '.join(_ROLES)}")
    return roles
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(env: dict[str, str], name: str) -> tuple[Network, ...]:
    raw = env.get(name) or ""
    out = []
    for part in raw.replace(" ", ",").split(","):
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(f"{name}: not an address or CIDR: {part!r}") from exc
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Settings:
    db_path: Path = Path("./data/ent.sqlite3")
    # DATABASE_URL=postgresql://… selects PostgreSQL (several nodes); without it, SQLite at
    # db_path. The directory of db_path keeps this node's files either way.
    database_url: str | None = None
    db_pool_min: int = 2  # PostgreSQL connections per process (docs/deployment.md)
    db_pool_max: int = 10
    redis_url: str | None = None
    redis_prefix: str = "rt"
    secret: str | None = None  # unset: one generated, shared by every node (realtime/shared.py)
    host: str = "127.0.0.1"
    port: int = 8080
    token_ttl_s: int = 12 * 3600
    cookie_secure: bool = False
    max_body_bytes: int = 64 * 1024
    login_max_failures_per_login: int = 5
    login_max_failures_per_ip: int = 30
    login_window_s: int = 15 * 60
    kdf_time_cost: int = 2
    kdf_memory_kib: int = 19 * 1024
    kdf_parallelism: int = 1
    stream_max_len: int = 10_000
    stream_max_age_s: int = 7 * 24 * 3600
    stream_group_ms: float = 2  # SQLite: transactions begin at most this often (group commit)
    shutdown_timeout_s: float = 10.0
    log_level: str = "INFO"
    log_json: bool = True
    timezone: str = "Europe/Paris"
    static_dir: Path = field(default_factory=lambda: _ROOT / "web_client" / "dist")
    board_batch_ms: int = 15  # a live board's ops leave in one frame per tick (0: at once)
    board_admit_lag_ms: int = 40  # event loop lag (moving average) refusing new ops (0: never)
    ws_compression: bool = False  # permessage-deflate on websockets (memory per connection)
    board_snapshot_every: int = 1_000  # events applied between two snapshots of a live board
    presence_heartbeat_s: float = 10.0
    presence_timeout_s: float = 30.0
    workers: int = 1
    # serve --workers N: a board's connections on its home worker (realtime/placement.py)
    place_boards: bool = True
    sio_channels: str = "rooms"  # rooms: one Redis channel per room (realtime/fanout.py)
    # Attendance (docs/attendance.md): details are kept until the end of the school year
    # this many years after their own (2: the school year after next), then purged.
    attendance_retention_years: int = 2
    attendance_overdue_min: int = 10
    # Retention of everything else (docs/retention.md): days, 0 = never purge that category.
    retention_chat_days: int = 365
    retention_boards_days: int = 365
    retention_departed_days: int = 90
    retention_every_s: float = 24 * 3600.0
    # AAF import (docs/identity.md): an account the feed disabled is deleted after this many
    # days, never before the attendance retention (whichever is longer applies).
    aaf_delete_after_days: int = 730
    # A roll still « en cours » this many minutes after the start: a second reminder.
    attendance_unvalidated_min: int = 20
    # The CPE or administration may take or correct a past slot's roll this many days back.
    attendance_correction_days: int = 7
    # Days back a teacher may still take their own course's roll (0: the day's courses only).
    attendance_teacher_past_days: int = 0
    # A guardian's supporting document (photo or PDF of a certificate), in KiB.
    attendance_document_max_kib: int = 5120
    # Unjustified half-days in a calendar month that flag a pupil to the CPE (the DASEN's).
    attendance_alert_half_days: int = 4
    # Web Push: without a key, one is generated beside the database on first start.
    vapid_private_key: str | None = None  # unset: generated once, shared (realtime/shared.py)
    vapid_subject: str = "mailto:vie-scolaire@ent.invalid"
    push_allowed_hosts: tuple[str, ...] = (
        "fcm.googleapis.com", "updates.push.services.mozilla.com", "push.services.mozilla.com",
        "notify.windows.com", "push.apple.com", "web.push.apple.com",
    )
    push_allow_http: bool = False  # only for tests against a local push endpoint
    docs_webhook_url: str | None = None
    docs_webhook_secret: str | None = None
    docs_webhook_debounce_s: float = 5.0
    docs_max_frame_bytes: int = 1024 * 1024
    docs_frames_per_s: int = 60
    docs_compact_every: int = 500
    docs_heartbeat_s: float = 25.0
    docs_recheck_s: float = 5.0  # with Redis: an open document looks in SQLite for what it missed
    docs_max_depth: int = 64  # elements nested in elements, in an accepted update
    docs_max_nodes: int = 10_000  # shared types (paragraphs, texts…) created by one update
    docs_send_queue_bytes: int = 16 * 1024 * 1024  # bytes waiting for one /yjs client
    docs_awareness_clients: int = 8  # awareness clients one /yjs connection may announce
    docs_awareness_bytes: int = 4096  # one awareness state (name, colour, cursor)
    docs_auto_version_s: float = 600.0  # editing time between automatic versions (0: none)
    docs_image_bytes: int = 5 * 1024 * 1024  # an image uploaded into a course
    docs_images_total_bytes: int = 100 * 1024 * 1024  # all the images of one course
    # GET /metrics: from loopback without a token, from elsewhere with this bearer token
    # (docs/deployment.md); without it, only loopback (not through a proxy) may scrape.
    metrics_token: str | None = None
    # Signing in through the ENT (docs/identity.md). The public address of this service, as
    # the browser sees it: CAS service and OIDC redirect URIs are built on it (without it,
    # on the request's own scheme and Host).
    public_url: str | None = None
    cas_url: str | None = None  # the CAS base, e.g. https://ent.example.fr/cas
    cas_validate: str = "/serviceValidate"  # or /p3/serviceValidate
    cas_id: str = "user"  # the field naming the person: `user`, or an attribute (externalId)
    cas_single_logout: bool = True  # our logout also ends the CAS session
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_id_claim: str = "sub"
    oidc_scopes: str = "openid profile"
    oidc_single_logout: bool = True  # our logout goes on to the provider's end_session
    # SAML 2.0 (ÉduConnect through a federation): the IdP's metadata file, this service's key
    # and certificate (PEM files), and the attribute naming the person (`nameid`: the NameID).
    saml_idp_metadata: Path | None = None
    saml_sp_key: Path | None = None
    saml_sp_cert: Path | None = None
    saml_id_attribute: str = "nameid"
    # How the id the ENT gives is matched: against users.external_id, or the login.
    sso_match: str = "external_id"
    sso_id_prefix: str = ""  # "AIX-": prepended (when missing) to the ENT's id, as the AAF import
    # Roles the ENT feed covers, refused on the personal-code login (empty: none).
    code_login_off: tuple[str, ...] = ()
    # Security (docs/security.md): how often live connections' sessions are checked again
    # in the database (the safety net behind the session-ended messages).
    session_recheck_s: float = 5.0
    # Peers (CIDRs) whose X-Forwarded-For / Forwarded headers are believed: the load
    # balancers. Without any, the client address is the TCP peer.
    trusted_proxies: tuple[Network, ...] = ()
    login_max_delay_s: float = 60.0  # the longest progressive delay between two attempts
    # Origins allowed to show the ENT's pages in a frame (the académie's portal); none: only
    # the ENT itself (frame-ancestors 'self').
    frame_ancestors: tuple[str, ...] = ()
    exports_per_min: int = 12  # board exports (SVG, PDF) per user per minute
    export_workers: int = 2  # processes rendering exports, off the event loop

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        d = cls()
        built = cls(
            db_path=Path(env.get("REALTIME_DB") or d.db_path),
            database_url=_database_url(env.get("DATABASE_URL")),
            db_pool_min=_int(env, "REALTIME_DB_POOL_MIN", d.db_pool_min),
            db_pool_max=_int(env, "REALTIME_DB_POOL_MAX", d.db_pool_max),
            redis_url=env.get("REDIS_URL") or None,
            redis_prefix=env.get("REALTIME_REDIS_PREFIX") or d.redis_prefix,
            secret=env.get("REALTIME_SECRET") or None,
            host=env.get("REALTIME_HOST") or d.host,
            port=_int(env, "PORT", d.port),
            token_ttl_s=_int(env, "REALTIME_TOKEN_TTL", d.token_ttl_s),
            cookie_secure=_bool(env, "REALTIME_COOKIE_SECURE", d.cookie_secure),
            max_body_bytes=_int(env, "REALTIME_MAX_BODY", d.max_body_bytes),
            login_max_failures_per_login=_int(
                env, "REALTIME_LOGIN_MAX_FAILURES", d.login_max_failures_per_login
            ),
            login_max_failures_per_ip=_int(
                env, "REALTIME_LOGIN_MAX_FAILURES_IP", d.login_max_failures_per_ip
            ),
            login_window_s=_int(env, "REALTIME_LOGIN_WINDOW", d.login_window_s),
            kdf_time_cost=_int(env, "REALTIME_KDF_TIME_COST", d.kdf_time_cost),
            kdf_memory_kib=_int(env, "REALTIME_KDF_MEMORY_KIB", d.kdf_memory_kib),
            kdf_parallelism=_int(env, "REALTIME_KDF_PARALLELISM", d.kdf_parallelism),
            stream_max_len=_int(env, "REALTIME_STREAM_MAX_LEN", d.stream_max_len),
            stream_max_age_s=_int(env, "REALTIME_STREAM_MAX_AGE", d.stream_max_age_s),
            stream_group_ms=_float(env, "REALTIME_STREAM_GROUP_MS", d.stream_group_ms),
            shutdown_timeout_s=_float(env, "REALTIME_SHUTDOWN_TIMEOUT", d.shutdown_timeout_s),
            log_level=(env.get("REALTIME_LOG_LEVEL") or d.log_level).upper(),
            log_json=_bool(env, "REALTIME_LOG_JSON", d.log_json),
            timezone=env.get("REALTIME_TZ") or d.timezone,
            static_dir=Path(env.get("REALTIME_STATIC_DIR") or d.static_dir),
            board_batch_ms=_int(env, "REALTIME_BOARD_BATCH_MS", d.board_batch_ms),
            board_admit_lag_ms=_int(env, "REALTIME_BOARD_ADMIT_LAG_MS", d.board_admit_lag_ms),
            ws_compression=_bool(env, "REALTIME_WS_COMPRESSION", d.ws_compression),
            board_snapshot_every=_int(env, "REALTIME_BOARD_SNAPSHOT_EVERY",
                                      d.board_snapshot_every),
            presence_heartbeat_s=_float(env, "REALTIME_PRESENCE_HEARTBEAT",
                                        d.presence_heartbeat_s),
            presence_timeout_s=_float(env, "REALTIME_PRESENCE_TIMEOUT", d.presence_timeout_s),
            workers=_int(env, "REALTIME_WORKERS", d.workers),
            place_boards=_bool(env, "REALTIME_PLACE_BOARDS", d.place_boards),
            sio_channels=(env.get("REALTIME_SIO_CHANNELS") or d.sio_channels).lower(),
            attendance_retention_years=_int(env, "REALTIME_ATTENDANCE_RETENTION_YEARS",
                                            d.attendance_retention_years),
            attendance_overdue_min=_int(env, "REALTIME_ATTENDANCE_OVERDUE_MIN",
                                        d.attendance_overdue_min),
            retention_chat_days=_int(env, "REALTIME_RETENTION_CHAT_DAYS",
                                     d.retention_chat_days),
            retention_boards_days=_int(env, "REALTIME_RETENTION_BOARDS_DAYS",
                                       d.retention_boards_days),
            retention_departed_days=_int(env, "REALTIME_RETENTION_DEPARTED_DAYS",
                                         d.retention_departed_days),
            retention_every_s=_float(env, "REALTIME_RETENTION_EVERY", d.retention_every_s),
            aaf_delete_after_days=_int(env, "REALTIME_AAF_DELETE_AFTER_DAYS",
                                       d.aaf_delete_after_days),
            attendance_unvalidated_min=_int(env, "REALTIME_ATTENDANCE_UNVALIDATED_MIN",
                                            d.attendance_unvalidated_min),
            attendance_correction_days=_int(env, "REALTIME_ATTENDANCE_CORRECTION_DAYS",
                                            d.attendance_correction_days),
            attendance_teacher_past_days=_int(env, "REALTIME_ATTENDANCE_TEACHER_PAST_DAYS",
                                              d.attendance_teacher_past_days),
            attendance_document_max_kib=_int(env, "REALTIME_ATTENDANCE_DOCUMENT_MAX_KIB",
                                             d.attendance_document_max_kib),
            attendance_alert_half_days=_int(env, "REALTIME_ATTENDANCE_ALERT_HALF_DAYS",
                                            d.attendance_alert_half_days),
            vapid_private_key=env.get("REALTIME_VAPID_PRIVATE_KEY") or None,
            vapid_subject=env.get("REALTIME_VAPID_SUBJECT") or d.vapid_subject,
            push_allowed_hosts=tuple(h.strip() for h in env["REALTIME_PUSH_HOSTS"].split(",")
                                     if h.strip()) if env.get("REALTIME_PUSH_HOSTS")
            else d.push_allowed_hosts,
            push_allow_http=_bool(env, "REALTIME_PUSH_ALLOW_HTTP", d.push_allow_http),
            docs_webhook_url=env.get("REALTIME_DOCS_WEBHOOK_URL") or None,
            docs_webhook_secret=env.get("REALTIME_DOCS_WEBHOOK_SECRET") or None,
            docs_webhook_debounce_s=_float(env, "REALTIME_DOCS_WEBHOOK_DEBOUNCE",
                                           d.docs_webhook_debounce_s),
            docs_max_frame_bytes=_int(env, "REALTIME_DOCS_MAX_FRAME", d.docs_max_frame_bytes),
            docs_frames_per_s=_int(env, "REALTIME_DOCS_FRAMES_PER_S", d.docs_frames_per_s),
            docs_compact_every=_int(env, "REALTIME_DOCS_COMPACT_EVERY", d.docs_compact_every),
            docs_heartbeat_s=_float(env, "REALTIME_DOCS_HEARTBEAT", d.docs_heartbeat_s),
            docs_recheck_s=_float(env, "REALTIME_DOCS_RECHECK", d.docs_recheck_s),
            docs_max_depth=_int(env, "REALTIME_DOCS_MAX_DEPTH", d.docs_max_depth),
            docs_max_nodes=_int(env, "REALTIME_DOCS_MAX_NODES", d.docs_max_nodes),
            docs_send_queue_bytes=_int(env, "REALTIME_DOCS_SEND_QUEUE_BYTES",
                                       d.docs_send_queue_bytes),
            docs_awareness_clients=_int(env, "REALTIME_DOCS_AWARENESS_CLIENTS",
                                        d.docs_awareness_clients),
            docs_awareness_bytes=_int(env, "REALTIME_DOCS_AWARENESS_BYTES",
                                      d.docs_awareness_bytes),
            docs_auto_version_s=_float(env, "REALTIME_DOCS_AUTO_VERSION",
                                       d.docs_auto_version_s),
            docs_image_bytes=_int(env, "REALTIME_DOCS_IMAGE_BYTES", d.docs_image_bytes),
            docs_images_total_bytes=_int(env, "REALTIME_DOCS_IMAGES_TOTAL_BYTES",
                                         d.docs_images_total_bytes),
            metrics_token=env.get("REALTIME_METRICS_TOKEN") or None,
            public_url=(env.get("REALTIME_PUBLIC_URL") or "").rstrip("/") or None,
            cas_url=(env.get("REALTIME_CAS_URL") or "").rstrip("/") or None,
            cas_validate=env.get("REALTIME_CAS_VALIDATE") or d.cas_validate,
            cas_id=env.get("REALTIME_CAS_ID") or d.cas_id,
            cas_single_logout=_bool(env, "REALTIME_CAS_SINGLE_LOGOUT", d.cas_single_logout),
            oidc_issuer=env.get("REALTIME_OIDC_ISSUER") or None,  # kept as is: iss must match
            oidc_client_id=env.get("REALTIME_OIDC_CLIENT_ID") or None,
            oidc_client_secret=env.get("REALTIME_OIDC_CLIENT_SECRET") or None,
            oidc_id_claim=env.get("REALTIME_OIDC_ID_CLAIM") or d.oidc_id_claim,
            oidc_scopes=env.get("REALTIME_OIDC_SCOPES") or d.oidc_scopes,
            oidc_single_logout=_bool(env, "REALTIME_OIDC_SINGLE_LOGOUT", d.oidc_single_logout),
            saml_idp_metadata=_path(env, "REALTIME_SAML_IDP_METADATA"),
            saml_sp_key=_path(env, "REALTIME_SAML_SP_KEY"),
            saml_sp_cert=_path(env, "REALTIME_SAML_SP_CERT"),
            saml_id_attribute=env.get("REALTIME_SAML_ID_ATTRIBUTE") or d.saml_id_attribute,
            sso_match=_choice(env, "REALTIME_SSO_MATCH", d.sso_match,
                              ("external_id", "login", "external_id,login")),
            # The same value as `directory import-aaf --academy-prefix` (AIX → AIX-2397809).
            sso_id_prefix=_prefix(env.get("REALTIME_SSO_ID_PREFIX") or ""),
            code_login_off=_roles(env, "REALTIME_CODE_LOGIN_OFF"),
            session_recheck_s=_float(env, "REALTIME_SESSION_RECHECK", d.session_recheck_s),
            trusted_proxies=_networks(env, "REALTIME_TRUSTED_PROXIES"),
            login_max_delay_s=_float(env, "REALTIME_LOGIN_MAX_DELAY", d.login_max_delay_s),
            frame_ancestors=tuple((env.get("REALTIME_FRAME_ANCESTORS") or "").split()),
            exports_per_min=_int(env, "REALTIME_EXPORTS_PER_MIN", d.exports_per_min),
            export_workers=_int(env, "REALTIME_EXPORT_WORKERS", d.export_workers),
        )
        _check_sso(built)
        return built

    @property
    def db_target(self) -> Path | str:
        """What `Database.open` takes: the PostgreSQL URL when set, else the SQLite file."""
        return self.database_url or self.db_path

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

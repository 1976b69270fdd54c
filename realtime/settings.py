"""One `Settings` object, built once from the environment.

Every knob has a documented default (see docs/configuration.md); the defaults run one process
on an embedded SQLite file with in-memory fan-out, so a laptop needs nothing else.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
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


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Settings:
    db_path: Path = Path("./data/ent.sqlite3")
    redis_url: str | None = None
    redis_prefix: str = "rt"
    secret: str | None = None
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
    sio_channels: str = "rooms"  # rooms: one Redis channel per room (realtime/fanout.py)
    # Attendance (docs/attendance.md): details are kept until the end of the school year
    # this many years after their own (2: the school year after next), then purged.
    attendance_retention_years: int = 2
    attendance_overdue_min: int = 10
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
    vapid_private_key: str | None = None
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
    # GET /metrics: from loopback without a token, from elsewhere with this bearer token
    # (docs/deployment.md); without it, only loopback (not through a proxy) may scrape.
    metrics_token: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        d = cls()
        return cls(
            db_path=Path(env.get("REALTIME_DB") or d.db_path),
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
            sio_channels=(env.get("REALTIME_SIO_CHANNELS") or d.sio_channels).lower(),
            attendance_retention_years=_int(env, "REALTIME_ATTENDANCE_RETENTION_YEARS",
                                            d.attendance_retention_years),
            attendance_overdue_min=_int(env, "REALTIME_ATTENDANCE_OVERDUE_MIN",
                                        d.attendance_overdue_min),
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
            metrics_token=env.get("REALTIME_METRICS_TOKEN") or None,
        )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def resolved_secret(self) -> str:
        """The signing secret: from the environment, else a file beside the database.

        Keeping it in a file means a restart (or a second worker on the same machine) keeps
        every issued token valid without an operator having to invent a secret.
        """
        if self.secret:
            return self.secret
        path = self.db_path.parent / "secret.key"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            value = secrets.token_urlsafe(48)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another worker won the race: use its secret
                return path.read_text().strip()
            with os.fdopen(fd, "w") as fh:
                fh.write(value)
            return value

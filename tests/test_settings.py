"""Settings from the environment: typed, with a clear error for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from realtime.settings import Settings


def test_stream_group_window_from_the_environment() -> None:
    assert Settings.from_env({}).stream_group_ms == 2
    assert Settings.from_env({"REALTIME_STREAM_GROUP_MS": "0.5"}).stream_group_ms == 0.5
    assert Settings.from_env({"REALTIME_STREAM_GROUP_MS": "0"}).stream_group_ms == 0


@pytest.mark.parametrize("raw", ["deux", "-1", "nan", "inf"])
def test_a_bad_stream_group_window_is_refused_by_name(raw: str) -> None:
    with pytest.raises(ValueError, match="REALTIME_STREAM_GROUP_MS"):
        Settings.from_env({"REALTIME_STREAM_GROUP_MS": raw})


def test_a_bad_integer_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="REALTIME_BOARD_BATCH_MS must be an integer"):
        Settings.from_env({"REALTIME_BOARD_BATCH_MS": "quinze"})


@pytest.mark.parametrize("name", ["REALTIME_SHUTDOWN_TIMEOUT", "REALTIME_PRESENCE_HEARTBEAT",
                                  "REALTIME_PRESENCE_TIMEOUT", "REALTIME_DOCS_WEBHOOK_DEBOUNCE",
                                  "REALTIME_DOCS_HEARTBEAT", "REALTIME_DOCS_RECHECK"])
def test_every_duration_is_read_the_same_way(name: str) -> None:
    """Seconds from the environment: a number is taken as given, anything else is refused by
    the variable's name."""
    field = {"REALTIME_SHUTDOWN_TIMEOUT": "shutdown_timeout_s",
             "REALTIME_PRESENCE_HEARTBEAT": "presence_heartbeat_s",
             "REALTIME_PRESENCE_TIMEOUT": "presence_timeout_s",
             "REALTIME_DOCS_WEBHOOK_DEBOUNCE": "docs_webhook_debounce_s",
             "REALTIME_DOCS_HEARTBEAT": "docs_heartbeat_s",
             "REALTIME_DOCS_RECHECK": "docs_recheck_s"}[name]
    assert getattr(Settings.from_env({name: "7.5"}), field) == 7.5
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: "sept"})


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://ent:s3cr%40t@db.lan:5432/ent", "postgresql://ent:***@db.lan:5432/ent"),
    ("postgresql://ent@db.lan/ent?sslmode=require&password=x",
     "postgresql://ent@db.lan/ent?sslmode=require&password=***"),
    ("postgresql://postgres@127.0.0.1:5432/ent", "postgresql://postgres@127.0.0.1:5432/ent"),
])
def test_a_database_url_is_shown_without_its_password(url: str, shown: str) -> None:
    from realtime.settings import redact_url

    assert redact_url(url) == shown


@pytest.mark.parametrize("raw", ["mysql://root@127.0.0.1/ent", "127.0.0.1:5432/ent",
                                 "sqlite:///data/ent.sqlite3"])
def test_a_database_url_that_is_not_postgresql_is_refused_by_name(raw: str) -> None:
    with pytest.raises(ValueError, match="DATABASE_URL: expected postgresql://"):
        Settings.from_env({"DATABASE_URL": raw})


def test_database_url_selects_postgresql_and_its_absence_sqlite() -> None:
    url = "postgresql://ent:secret@10.0.0.5:5432/ent"
    assert Settings.from_env({"DATABASE_URL": url}).db_target == url
    assert Settings.from_env({"DATABASE_URL": "postgres://h/ent"}).db_target == "postgres://h/ent"
    plain = Settings.from_env({"REALTIME_DB": "/srv/ent.sqlite3"})
    assert plain.database_url is None and plain.db_target == Path("/srv/ent.sqlite3")

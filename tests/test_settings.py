"""Settings from the environment: typed, with a clear error for a bad value."""

from __future__ import annotations

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

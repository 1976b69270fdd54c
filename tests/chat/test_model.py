"""The pure parts: message views, windows, FTS queries, file types, local time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from realtime.chat import model
from realtime.chat.model import Limits, Message
from realtime.errors import AppError

LIMITS = Limits()


def msg(**kw: object) -> Message:
    base: dict[str, object] = {"id": 1, "conversation_id": 1, "seq": 1, "author_id": 7,
                               "body": "Bonjour", "created_at": 1000.0}
    return Message(**{**base, **kw})  # type: ignore[arg-type]


def test_deleted_and_recalled_keep_their_place_not_their_words() -> None:
    assert msg().view()["body"] == "Bonjour"
    gone = msg(deleted_at=1001.0).view()
    assert gone["body"] == "Message supprimé" and gone["state"] == "deleted"
    assert msg(recalled_at=1001.0).view()["state"] == "recalled"


def test_edit_window() -> None:
    model.check_edit(msg(), 7, 1000.0 + LIMITS.edit_window_s, LIMITS)
    with pytest.raises(AppError) as err:
        model.check_edit(msg(), 7, 1001.0 + LIMITS.edit_window_s, LIMITS)
    assert err.value.code == "forbidden"
    with pytest.raises(AppError):
        model.check_edit(msg(), 8, 1000.0, LIMITS)
    model.check_delete(msg(), 8, 99_999.0, LIMITS, moderator=True)
    with pytest.raises(AppError) as err:
        model.check_delete(msg(deleted_at=1.0), 7, 1000.0, LIMITS, moderator=True)
    assert err.value.code == "conflict"


def test_body_is_trimmed_and_capped() -> None:
    assert model.clean_body("  salut \n", LIMITS) == "salut"
    with pytest.raises(AppError):
        model.clean_body("   ", LIMITS)
    assert model.clean_body("", LIMITS, allow_empty=True) == ""
    with pytest.raises(AppError) as err:
        model.clean_body("x" * (LIMITS.body_max + 1), LIMITS)
    assert err.value.code == "too_large"


def test_fts_query_quotes_every_word() -> None:
    assert model.fts_query("élève sérieux") == '"élève"* "sérieux"*'
    assert model.fts_query('a" OR b*') == '"a"* "OR"* "b"*'
    with pytest.raises(AppError):
        model.fts_query("*** ()")


@pytest.mark.parametrize(("head", "name", "mime"), [
    (b"%PDF-1.7", "x.bin", "application/pdf"),
    (b"\x89PNG\r\n\x1a\nxxxx", "x", "image/png"),
    (b"\xff\xd8\xff\xe0", "x.jpg", "image/jpeg"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8", "x", "image/webp"),
    (b"PK\x03\x04rest", "devoir.odt", "application/vnd.oasis.opendocument.text"),
    ("Liste des fournitures — élève".encode(), "liste.txt", "text/plain"),
])
def test_types_are_read_from_the_bytes(head: bytes, name: str, mime: str) -> None:
    assert model.sniff_type(head, name) == mime


@pytest.mark.parametrize(("head", "name"), [
    (b"MZ\x90\x00", "cours.pdf"), (b"PK\x03\x04", "virus.zip"), (b"<html>", "page.html"),
    (b"\x00\x01binary", "x.txt"), (b"\xff\xfe\xfa\xfb" * 4, "x.txt"),
])
def test_other_types_are_refused(head: bytes, name: str) -> None:
    with pytest.raises(AppError) as err:
        model.sniff_type(head, name)
    assert err.value.code == "unsupported_media_type"


def test_filenames_are_cleaned() -> None:
    assert model.clean_filename("../../etc/passwd") == "passwd"
    assert model.clean_filename('C:\\x\\a"b<c>.pdf') == "abc.pdf"
    assert model.clean_filename("\x00\n") == "fichier"


def test_local_minute_follows_paris_summer_and_winter_time() -> None:
    paris = ZoneInfo("Europe/Paris")
    summer = dt.datetime(2026, 7, 1, 18, 0, tzinfo=dt.UTC).timestamp()  # 20:00 in Paris
    winter = dt.datetime(2026, 1, 15, 18, 0, tzinfo=dt.UTC).timestamp()  # 19:00 in Paris
    assert model.local_minute(summer, paris) == 20 * 60
    assert model.local_minute(winter, paris) == 19 * 60

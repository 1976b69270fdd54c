"""The UAI's key letter (seven digits modulo 23, letters without I, O, Q)."""

import pytest

from realtime.directory.model import uai_check_letter, uai_check_ok


@pytest.mark.parametrize("uai", ["0750654D", "0750680G", "0020032Z", "0021490J"])
def test_valid_uais(uai: str) -> None:
    assert uai_check_ok(uai)


@pytest.mark.parametrize("uai", ["0020032L", "0750680H", "075068G", "0750680", "ABCDEFGH", ""])
def test_invalid_uais(uai: str) -> None:
    assert not uai_check_ok(uai)


def test_check_letter_refuses_bad_digits() -> None:
    with pytest.raises(ValueError):
        uai_check_letter("00200AB")

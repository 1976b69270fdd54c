"""The security settings read from the environment (README's configuration table)."""

from __future__ import annotations

import ipaddress

import pytest

from realtime.settings import Settings


def test_security_settings_from_env() -> None:
    s = Settings.from_env({
        "REALTIME_TRUSTED_PROXIES": "10.0.0.0/24, 192.0.2.7 2001:db8::/32",
        "REALTIME_FRAME_ANCESTORS": "https://ent.example.fr https://portail.example.fr",
        "REALTIME_SESSION_RECHECK": "2.5", "REALTIME_LOGIN_MAX_DELAY": "30",
        "REALTIME_EXPORTS_PER_MIN": "6", "REALTIME_EXPORT_WORKERS": "3",
    })
    assert s.trusted_proxies == (ipaddress.ip_network("10.0.0.0/24"),
                                 ipaddress.ip_network("192.0.2.7/32"),
                                 ipaddress.ip_network("2001:db8::/32"))
    assert s.frame_ancestors == ("https://ent.example.fr", "https://portail.example.fr")
    assert (s.session_recheck_s, s.login_max_delay_s) == (2.5, 30.0)
    assert (s.exports_per_min, s.export_workers) == (6, 3)
    d = Settings.from_env({})
    assert d.trusted_proxies == () and d.frame_ancestors == () and d.session_recheck_s == 5.0


def test_a_bad_proxy_is_named() -> None:
    with pytest.raises(ValueError, match=r"REALTIME_TRUSTED_PROXIES.*'10\.0\.0\.300'"):
        Settings.from_env({"REALTIME_TRUSTED_PROXIES": "10.0.0.0/8,10.0.0.300"})

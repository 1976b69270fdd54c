"""The pure parts of SSO: reading CAS answers safely, `next`, the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from realtime.identity import cas
from realtime.identity.sso import safe_next
from realtime.settings import Settings

OPEN_ENT_NG_STYLE = b"""<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationSuccess>
    <cas:user>jean.dupont</cas:user>
    <cas:attributes>
      <cas:externalId>ACA-4242</cas:externalId>
      <cas:profile>Teacher</cas:profile>
      <cas:classes>0123456A$3A</cas:classes>
      <cas:classes>0123456A$3B</cas:classes>
    </cas:attributes>
  </cas:authenticationSuccess>
</cas:serviceResponse>"""

FLAT_ATTRIBUTES = b"""<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationSuccess><cas:user>u1</cas:user><cas:externalId> X-1 </cas:externalId>
  </cas:authenticationSuccess></cas:serviceResponse>"""

FAILURE = b"""<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationFailure code="INVALID_TICKET">Ticket ST-1 not recognized
  </cas:authenticationFailure></cas:serviceResponse>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess>
<cas:user>&lol1;</cas:user></cas:authenticationSuccess></cas:serviceResponse>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess>
<cas:user>&xxe;</cas:user></cas:authenticationSuccess></cas:serviceResponse>"""


def test_attributes_in_cas_attributes_and_flat() -> None:
    ok = cas.parse_validation(OPEN_ENT_NG_STYLE)
    assert ok.user == "jean.dupont"
    assert ok.identifier("user") == "jean.dupont"
    assert ok.identifier("externalId") == "ACA-4242"
    assert ok.attributes["classes"] == ["0123456A$3A", "0123456A$3B"]
    assert ok.identifier("missing") is None
    assert cas.parse_validation(FLAT_ATTRIBUTES).identifier("externalId") == "X-1"


def test_failure_names_the_cas_code() -> None:
    with pytest.raises(cas.CasRefusal) as err:
        cas.parse_validation(FAILURE)
    assert err.value.code == "INVALID_TICKET"


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, b"<html>proxy error</html>",
                                  b"", b"not xml at all"])
def test_hostile_or_foreign_answers_are_refusals(body: bytes) -> None:
    with pytest.raises(cas.CasRefusal):
        cas.parse_validation(body)


def test_logout_request_session_index() -> None:
    xml = ('<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"'
           ' xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="x" Version="2.0"'
           ' IssueInstant="2026-12-04T10:00:00Z"><saml:NameID>@NOT_USED@</saml:NameID>'
           "<samlp:SessionIndex>ST-abc-123</samlp:SessionIndex></samlp:LogoutRequest>")
    assert cas.parse_logout_request(xml) == "ST-abc-123"
    with pytest.raises(cas.CasRefusal):
        cas.parse_logout_request(xml.replace("ST-abc-123", ""))


def test_urls_encode_the_service() -> None:
    service = "https://rt.ent.example.fr/auth/cas/callback"
    assert cas.login_url("https://ent.example.fr/cas", service) == (
        "https://ent.example.fr/cas/login?service="
        "https%3A%2F%2Frt.ent.example.fr%2Fauth%2Fcas%2Fcallback")
    assert cas.validate_url("https://e/cas", "p3/serviceValidate", service, "ST-1").startswith(
        "https://e/cas/p3/serviceValidate?service=https%3A%2F%2Frt")
    assert not cas.ticket_looks_valid("ST 1") and not cas.ticket_looks_valid("x" * 300)


@pytest.mark.parametrize(("raw", "expected"), [
    (None, "/"), ("", "/"), ("/", "/"), ("/#/boards/3", "/#/boards/3"),
    ("/#/?date=2026-12-04", "/#/?date=2026-12-04"),
    ("https://evil.example/", "/"), ("//evil.example", "/"), ("/\\evil.example", "/"),
    ("\\\\evil", "/"), ("javascript:alert(1)", "/"), ("/a\nb", "/"), ("/a b", "/"),
    ("evil.example", "/"), ("/" + "a" * 2000, "/"),
])
def test_next_is_a_path_of_this_site(raw: str | None, expected: str) -> None:
    assert safe_next(raw) == expected


def test_settings_read_the_sso_variables() -> None:
    s = Settings.from_env({
        "REALTIME_CAS_URL": "https://ent.example.fr/cas/",
        "REALTIME_CAS_VALIDATE": "/p3/serviceValidate",
        "REALTIME_CAS_ID": "externalId",
        "REALTIME_OIDC_ISSUER": "https://ent.example.fr/",
        "REALTIME_OIDC_CLIENT_ID": "rt",
        "REALTIME_OIDC_ID_CLAIM": "externalId",
        "REALTIME_CODE_LOGIN_OFF": "student, Parent",
        "REALTIME_SSO_MATCH": "external_id,login",
        "REALTIME_PUBLIC_URL": "https://rt.ent.example.fr/",
        "REALTIME_SSO_ID_PREFIX": "AIX",
    })
    assert s.sso_id_prefix == "AIX-"  # as `directory import-aaf --academy-prefix AIX`
    assert s.cas_url == "https://ent.example.fr/cas"
    assert s.cas_validate == "/p3/serviceValidate" and s.cas_id == "externalId"
    assert s.oidc_issuer == "https://ent.example.fr/"  # kept as is: `iss` must match exactly
    assert s.code_login_off == ("student", "parent")
    assert s.sso_match == "external_id,login"
    assert s.public_url == "https://rt.ent.example.fr"
    with pytest.raises(ValueError, match="REALTIME_CODE_LOGIN_OFF"):
        Settings.from_env({"REALTIME_CODE_LOGIN_OFF": "eleve"})
    with pytest.raises(ValueError, match="REALTIME_SSO_MATCH"):
        Settings.from_env({"REALTIME_SSO_MATCH": "email"})


@pytest.mark.parametrize(("env", "message"), [
    ({"REALTIME_OIDC_ISSUER": "https://ent.example.fr"}, "REALTIME_OIDC_CLIENT_ID is required"),
    ({"REALTIME_OIDC_CLIENT_ID": "rt"}, "REALTIME_OIDC_ISSUER is required"),
    ({"REALTIME_CAS_URL": "http://ent.example.fr/cas"}, "REALTIME_CAS_URL must be an https"),
    ({"REALTIME_OIDC_ISSUER": "http://ent.example.fr", "REALTIME_OIDC_CLIENT_ID": "rt"},
     "REALTIME_OIDC_ISSUER must be an https"),
])
def test_half_configured_sso_fails_at_start(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)
    # A provider on this machine may speak plain http (tests, a local proxy).
    Settings.from_env({"REALTIME_CAS_URL": "http://127.0.0.1:8443/cas"})


def test_saml_needs_its_files_and_public_url(tmp_path: Path) -> None:
    meta = tmp_path / "idp.xml"
    meta.write_text("<md/>")
    env = {"REALTIME_SAML_IDP_METADATA": str(meta), "REALTIME_SAML_SP_KEY": str(meta),
           "REALTIME_SAML_SP_CERT": str(meta), "REALTIME_PUBLIC_URL": "https://rt.example.fr"}
    assert Settings.from_env(env).saml_idp_metadata == meta
    with pytest.raises(ValueError, match="REALTIME_PUBLIC_URL is required"):
        Settings.from_env({k: v for k, v in env.items() if k != "REALTIME_PUBLIC_URL"})
    with pytest.raises(ValueError, match="REALTIME_SAML_SP_KEY is required"):
        Settings.from_env({k: v for k, v in env.items() if k != "REALTIME_SAML_SP_KEY"})
    with pytest.raises(ValueError, match="REALTIME_SAML_SP_CERT: no file"):
        Settings.from_env(env | {"REALTIME_SAML_SP_CERT": str(tmp_path / "absent.crt")})

"""SAML 2.0 as a service provider (ÉduConnect through a federation), with pysaml2 and
Debian's `xmlsec1` for the XML signatures and encryption.

- `GET /auth/saml/login?next=PATH`: a signed AuthnRequest (HTTP-Redirect binding) to the IdP
  named by the metadata file; its ID is kept in `saml_requests` (shared by every node).
- `POST /auth/saml/acs`: the IdP's Response (HTTP-POST binding). pysaml2 checks the signature
  against the IdP's certificate from the metadata, the audience (our entity id), the
  destination, the validity window and `InResponseTo`. The pending request is consumed, so an
  answer cannot be played twice, nor can an answer we did not ask for (unsolicited) sign
  anyone in. The assertion's ID goes into `sso_logins` like a CAS ticket.
- `GET /auth/saml/metadata`: this service's SP metadata, for the federation to register.

pysaml2 is synchronous and calls `xmlsec1` as a subprocess: every call runs in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import threading
from typing import Any

import msgspec
from aiohttp import web
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from realtime import keys
from realtime.api import cross_site_allowed
from realtime.identity import store
from realtime.settings import Settings

log = logging.getLogger(__name__)

REQUEST_MAX_AGE_S = 600.0
MAX_RESPONSE_B64 = 256 * 1024
# Pending requests kept at most (a few hundred bytes each): far above a département's
# sign-ins in ten minutes, low enough that a flood of /auth/saml/login stays harmless.
MAX_PENDING_REQUESTS = 50_000


class SamlIdentity(msgspec.Struct, frozen=True):
    name_id: str
    attributes: dict[str, list[str]]
    assertion_id: str

    def identifier(self, attribute: str) -> str | None:
        if attribute == "nameid":
            return self.name_id or None
        values = self.attributes.get(attribute) or []
        first = str(values[0]).strip() if values else ""
        return first or None


class SamlRefusal(Exception):
    """`reason`: bad_token (signature, audience, dates…), denied (the IdP said no)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def entity_id(settings: Settings) -> str:
    return f"{settings.public_url}/auth/saml/metadata"


def acs_url(settings: Settings) -> str:
    return f"{settings.public_url}/auth/saml/acs"


class SamlServiceProvider:
    """pysaml2's client, built once (it reads the metadata and the key) on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None
        self._lock = threading.Lock()

    def _config(self) -> Any:
        from saml2 import BINDING_HTTP_POST
        from saml2.config import SPConfig

        s = self.settings
        config = SPConfig()
        config.load({
            "entityid": entity_id(s),
            "key_file": str(s.saml_sp_key),
            "cert_file": str(s.saml_sp_cert),
            "encryption_keypairs": [{"key_file": str(s.saml_sp_key),
                                     "cert_file": str(s.saml_sp_cert)}],
            "metadata": {"local": [str(s.saml_idp_metadata)]},
            "allow_unknown_attributes": True,
            "service": {"sp": {
                "name": "ENT des collèges – temps réel",
                "endpoints": {"assertion_consumer_service": [(acs_url(s), BINDING_HTTP_POST)]},
                "allow_unsolicited": False,
                "authn_requests_signed": True,
                "want_assertions_signed": True,
                "want_response_signed": False,
            }},
        })
        return config

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from saml2.client import Saml2Client

                self._client = Saml2Client(self._config())
            return self._client

    def metadata(self) -> str:
        from saml2.metadata import create_metadata_string

        return create_metadata_string(None, self._config(), valid=None).decode()

    def authn_request(self) -> tuple[str, str]:
        """(request id, the IdP URL the browser goes to)."""
        from saml2 import BINDING_HTTP_REDIRECT
        from saml2.xmldsig import SIG_RSA_SHA256

        client = self.client()
        idps = client.metadata.identity_providers()
        if not idps:
            raise SamlRefusal("unavailable", "no IdP in the metadata")
        request_id, info = client.prepare_for_authenticate(
            entityid=idps[0], binding=BINDING_HTTP_REDIRECT, sign=True,
            sigalg=SIG_RSA_SHA256)
        location = dict(info["headers"])["Location"]
        return request_id, location

    def parse_response(self, response_b64: str, request_id: str, next_path: str
                       ) -> SamlIdentity:
        from saml2 import BINDING_HTTP_POST
        from saml2.response import StatusError

        try:
            response = self.client().parse_authn_request_response(
                response_b64, BINDING_HTTP_POST, outstanding={request_id: next_path})
        except StatusError as exc:
            raise SamlRefusal("denied", f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # pysaml2 raises many unrelated types for a bad response
            raise SamlRefusal("bad_token", f"{type(exc).__name__}: {exc}") from exc
        if response is None or response.assertion is None:
            raise SamlRefusal("bad_token", "no assertion")
        attributes = {k: [str(v) for v in vs] for k, vs in (response.ava or {}).items()}
        name_id = response.name_id.text if response.name_id is not None else ""
        return SamlIdentity(name_id=(name_id or "").strip(), attributes=attributes,
                            assertion_id=str(response.assertion.id))


def in_response_to(response_b64: str) -> str | None:
    """The request a Response claims to answer, read (unverified) to find that request;
    pysaml2 then checks the signed Response against it."""
    try:
        xml = base64.b64decode(response_b64, validate=False)
        root = SafeET.fromstring(xml, forbid_dtd=True)
    except (binascii.Error, ValueError, DefusedXmlException, SafeET.ParseError):
        return None
    value = root.get("InResponseTo")
    return value if value and len(value) <= 256 else None


# --- routes ----------------------------------------------------------------------------------


async def saml_login(request: web.Request) -> web.Response:
    from realtime.identity.sso import redirect, refusal_page, safe_next

    sp: SamlServiceProvider = request.app[keys.SSO].saml
    next_path = safe_next(request.query.get("next"))
    try:
        request_id, location = await asyncio.to_thread(sp.authn_request)
    except Exception as exc:  # metadata unreadable, xmlsec1 missing…
        log.warning("SAML request failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        return refusal_page("unavailable", provider="saml")
    async with request.app[keys.DB].transaction() as conn:
        kept = await store.insert_saml_request(conn, request_id, next_path,
                                               request.app[keys.IDENTITY].clock(),
                                               REQUEST_MAX_AGE_S, MAX_PENDING_REQUESTS)
    if not kept:
        log.warning("SAML: too many pending requests", extra={"max": MAX_PENDING_REQUESTS})
        return refusal_page("rate_limited", provider="saml")
    return redirect(location)


async def saml_acs(request: web.Request) -> web.Response:
    from realtime.identity.sso import find_account, limited, refuse, sign_in

    if await limited(request):
        return await refuse(request, "rate_limited", "saml", counts=False)
    form = await request.post()
    response_b64 = form.get("SAMLResponse")
    if not isinstance(response_b64, str) or len(response_b64) > MAX_RESPONSE_B64:
        return await refuse(request, "bad_token", "saml", counts=True, log_detail="no response")
    request_id = in_response_to(response_b64)
    next_path = None
    if request_id is not None:
        async with request.app[keys.DB].transaction() as conn:
            next_path = await store.take_saml_request(
                conn, request_id, request.app[keys.IDENTITY].clock(), REQUEST_MAX_AGE_S)
    if request_id is None or next_path is None:
        # Unsolicited, already answered, or too old: nothing of ours is waiting for it.
        return await refuse(request, "bad_state", "saml", counts=True,
                             log_detail=f"InResponseTo {request_id!r}")
    sp: SamlServiceProvider = request.app[keys.SSO].saml
    try:
        who = await asyncio.to_thread(sp.parse_response, response_b64, request_id, next_path)
    except SamlRefusal as exc:
        return await refuse(request, exc.reason, "saml", counts=exc.reason == "bad_token",
                             log_detail=exc.detail[:300])
    s = request.app[keys.SETTINGS]
    ident = who.identifier(s.saml_id_attribute)
    if ident is None:
        return await refuse(request, "no_identifier", "saml", counts=False,
                             log_detail=f"no {s.saml_id_attribute}")
    user = await find_account(request.app[keys.DB], s, ident)
    if user is None:
        return await refuse(request, "unknown", "saml", counts=False, detail=ident[:256])
    return await sign_in(request, user, "saml", who.assertion_id, next_path)


async def saml_metadata(request: web.Request) -> web.Response:
    sp: SamlServiceProvider = request.app[keys.SSO].saml
    xml = await asyncio.to_thread(sp.metadata)
    return web.Response(text=xml, content_type="application/samlmetadata+xml")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/auth/saml/login", saml_login)
    # The identity provider's page posts the assertion here (HTTP-POST binding): another
    # site by design; the signed assertion and its pending request are the proof.
    app.router.add_post("/auth/saml/acs", cross_site_allowed(saml_acs))
    app.router.add_get("/auth/saml/metadata", saml_metadata)

"""The CAS protocol (2.0 and 3.0) as a client: the URLs, and reading the server's XML answers.

Everything here is pure: the routes fetch, this reads. XML comes from the network, so it is
parsed with defusedxml, which refuses DTDs and entity declarations (no billion laughs, no
external entities that would make us fetch a URL or read a file).
"""

from __future__ import annotations

from urllib.parse import urlencode
from xml.etree.ElementTree import Element

import msgspec
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

CAS_NS = "{http://www.yale.edu/tp/cas}"
SAMLP_NS = "{urn:oasis:names:tc:SAML:2.0:protocol}"
MAX_RESPONSE_BYTES = 256 * 1024  # a validation answer is a few hundred bytes
MAX_TICKET_LEN = 256
# Children of <cas:authenticationSuccess> that are not attributes of the person.
_NOT_ATTRIBUTES = {"user", "attributes", "proxyGrantingTicket", "proxies"}


class CasSuccess(msgspec.Struct, frozen=True):
    user: str
    attributes: dict[str, list[str]]

    def identifier(self, field: str) -> str | None:
        """`user`, or the first value of the attribute named `field` (e.g. externalId)."""
        if field == "user":
            return self.user or None
        values = self.attributes.get(field) or []
        first = values[0].strip() if values else ""
        return first or None


class CasRefusal(Exception):
    """The CAS server refused the ticket (INVALID_TICKET, INVALID_SERVICE…) or answered
    something that is not a CAS answer."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


def login_url(cas_url: str, service: str) -> str:
    return f"{cas_url}/login?{urlencode({'service': service})}"


def logout_url(cas_url: str, service: str) -> str:
    return f"{cas_url}/logout?{urlencode({'service': service})}"


def validate_url(cas_url: str, validate_path: str, service: str, ticket: str) -> str:
    path = validate_path if validate_path.startswith("/") else f"/{validate_path}"
    return f"{cas_url}{path}?{urlencode({'service': service, 'ticket': ticket})}"


def ticket_looks_valid(ticket: str) -> bool:
    """A service ticket is short printable ASCII (CAS 3.0 §3.7: `ST-…`, at most 256 chars
    recommended); anything else is not worth a round trip to the CAS server."""
    return (0 < len(ticket) <= MAX_TICKET_LEN and ticket.isascii() and ticket.isprintable()
            and " " not in ticket)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse(body: bytes) -> Element:
    try:
        return SafeET.fromstring(body, forbid_dtd=True)
    except (DefusedXmlException, SafeET.ParseError, ValueError) as exc:
        raise CasRefusal("INVALID_RESPONSE", type(exc).__name__) from exc


def parse_validation(body: bytes) -> CasSuccess:
    """The person a `/serviceValidate` (or `/p3/serviceValidate`) answer vouches for.

    Attributes are read from `<cas:attributes>` (CAS 3.0, and Open ENT NG's CAS 2.0 answers)
    and also from direct children of `<cas:authenticationSuccess>` (the older layout some
    ENT connectors still emit)."""
    root = _parse(body)
    if root.tag != f"{CAS_NS}serviceResponse":
        raise CasRefusal("INVALID_RESPONSE", root.tag)
    success = root.find(f"{CAS_NS}authenticationSuccess")
    if success is None:
        failure = root.find(f"{CAS_NS}authenticationFailure")
        if failure is None:
            raise CasRefusal("INVALID_RESPONSE", "neither success nor failure")
        raise CasRefusal(failure.get("code") or "UNKNOWN", (failure.text or "").strip())
    user = (success.findtext(f"{CAS_NS}user") or "").strip()
    attributes: dict[str, list[str]] = {}
    holder = success.find(f"{CAS_NS}attributes")
    for child in list(holder) if holder is not None else []:
        if len(child) == 0:
            attributes.setdefault(_local(child.tag), []).append((child.text or "").strip())
    for child in success:
        name = _local(child.tag)
        if name not in _NOT_ATTRIBUTES and len(child) == 0:
            attributes.setdefault(name, []).append((child.text or "").strip())
    return CasSuccess(user=user, attributes=attributes)


def parse_logout_request(body: str) -> str:
    """The SessionIndex (our service ticket) of a CAS back-channel SAML `LogoutRequest`."""
    root = _parse(body.encode())
    if root.tag != f"{SAMLP_NS}LogoutRequest":
        raise CasRefusal("INVALID_LOGOUT_REQUEST", root.tag)
    index = (root.findtext(f"{SAMLP_NS}SessionIndex") or "").strip()
    if not ticket_looks_valid(index):
        raise CasRefusal("INVALID_LOGOUT_REQUEST", "no SessionIndex")
    return index

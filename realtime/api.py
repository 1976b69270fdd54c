"""HTTP plumbing shared by every feature's routes: errors as JSON, bodies, the caller."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from realtime import keys
from realtime.db import Unavailable
from realtime.errors import AppError, error_body, http_status
from realtime.identity.model import Principal
from realtime.validation import decode_json

log = logging.getLogger(__name__)
T = TypeVar("T")

COOKIE_NAME = "ent_session"
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")

_STATUS_CODES = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(data),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(err: AppError) -> web.Response:
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after else None
    return json_response(error_body(err), status=http_status(err), headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal leaves as `{"error": {"code", "message"}}` with a 4xx/5xx status."""
    try:
        return await handler(request)
    except AppError as err:
        return error_response(err)
    except Unavailable as exc:  # the database restarting or failing over: try again
        log.warning("request: database unreachable",
                    extra={"path": request.path, "error": str(exc)})
        return error_response(AppError("unavailable", retry_after=2))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "invalid" if exc.status < 500 else "internal")
        return error_response(AppError(code))
    except Exception:
        writer = request.writer
        if writer is not None and writer.output_size > 0:
            # The response already started (an upgraded websocket): an HTTP 500 written now
            # would land inside the websocket stream. The connection is closed instead.
            log.warning("error after the response started, connection closed",
                        extra={"path": request.path, "method": request.method},
                        exc_info=True)
            if request.transport is not None:
                request.transport.close()
            raise web.HTTPException() from None  # nothing more is written on a closed socket
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return error_response(AppError("internal"))


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CROSS_SITE_MESSAGE = "Requête refusée : elle ne vient pas d'une page de l'ENT."


def same_origin(request: web.Request) -> bool:
    """Does this request come from one of our own pages (or from no browser at all)?

    Browsers say where a request comes from: `Sec-Fetch-Site` (every current browser) and
    `Origin` (on every cross-origin request and every POST). A page of another site, even
    one of the same registrable domain, is not ours. A request with neither header did not
    come from a browser page (a script, another ENT service), and cannot carry a victim's
    cookie without their knowledge."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin == "null":  # sandboxed frames, file:// pages, some redirects
        return False
    scheme, _, rest = origin.partition("://")
    return scheme in ("http", "https") and rest.lower() == request.host.lower()


def cross_site_allowed(handler: Handler) -> Handler:
    """Mark a handler that by design receives POSTs from another site's page and proves the
    request by its own means, never by our session cookie: the SAML assertion consumer (the
    identity provider's page posts a signed assertion, checked against the pending request)."""
    handler.cross_site_allowed = True  # type: ignore[attr-defined]
    return handler


@web.middleware
async def same_origin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Cross-site request forgery: a state-changing request that a browser may send with the
    session cookie (no `Authorization` header: the cookie is what authenticates it) must come
    from the ENT's own origin, JSON body or not (logout, uploads, a version restore). A
    bearer token is never sent by a browser on its own, so those requests are left alone, as
    are the few endpoints marked `cross_site_allowed`."""
    route_handler = getattr(request.match_info, "handler", None)
    if (request.method in UNSAFE_METHODS and "Authorization" not in request.headers
            and not getattr(route_handler, "cross_site_allowed", False)
            and not same_origin(request)):
        log.info("cross-site request refused", extra={
            "path": request.path, "method": request.method,
            "origin": request.headers.get("Origin"),
            "fetch_site": request.headers.get("Sec-Fetch-Site")})
        return error_response(AppError("forbidden", CROSS_SITE_MESSAGE))
    return await handler(request)


async def read_json(request: web.Request, type_: type[T]) -> T:
    """The body decoded into `type_`; too large, not JSON or not the right shape → 4xx."""
    if request.content_type != "application/json":
        raise AppError("unsupported_media_type")
    cap = request.app[keys.SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > cap:
        raise AppError("too_large", f"Le contenu dépasse la taille maximale ({cap // 1024} Kio).")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise AppError(
            "too_large", f"Le contenu dépasse la taille maximale ({cap // 1024} Kio)."
        ) from exc
    return decode_json(raw, type_)


async def read_capped(request: web.Request, cap: int, too_large: str) -> bytes:
    """The whole body, refused (`too_large`, with that message) as soon as it exceeds `cap`.

    One `content.read(n)` returns what has arrived so far, at most n bytes, not the body: a
    large or chunked upload comes in several pieces, so it is read until the end."""
    if request.content_length is not None and request.content_length > cap:
        raise AppError("too_large", too_large)
    chunks, size = [], 0
    while True:
        chunk = await request.content.read(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > cap:
            raise AppError("too_large", too_large)
        chunks.append(chunk)


def token_of(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:].strip() or None
    return request.cookies.get(COOKIE_NAME)


async def current_principal(request: web.Request) -> Principal:
    """The caller, or 401. Cached on the request."""
    cached = request.get(PRINCIPAL)
    if cached is not None:
        return cached
    principal = await request.app[keys.IDENTITY].authenticate(token_of(request))
    if principal is None:
        raise AppError("unauthorized")
    request[PRINCIPAL] = principal
    return principal


CLIENT_ADDRESS: web.RequestKey[str] = web.RequestKey("client_address")


def _ip(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address out of a forwarded hop: `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:80`,
    `"[2001:db8::1]"`; None for `unknown`, an obfuscated `_name` or garbage."""
    value = raw.strip().strip('"')
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _hops(request: web.Request) -> list[str]:
    """The addresses the proxies recorded, nearest last: RFC 7239 `Forwarded` when
    present, else `X-Forwarded-For` (every such header, in order)."""
    if "Forwarded" in request.headers:
        return [f.get("for", "") for f in request.forwarded]
    return [hop for value in request.headers.getall("X-Forwarded-For", ())
            for hop in value.split(",")]


def client_address(request: web.Request) -> str:
    """The client's address, as login limits and logs count it.

    Behind a load balancer every request comes from the proxy, so its forwarding headers
    are believed, but only when the TCP peer is one of `REALTIME_TRUSTED_PROXIES`: reading
    them from the right, the first hop that is not a trusted proxy is the client (anything
    further left was written by the client itself and may be forged). Without trusted
    proxies the headers are ignored: anyone could write them."""
    cached = request.get(CLIENT_ADDRESS)
    if cached is not None:
        return cached
    peer = request.remote or "unknown"
    trusted = request.app[keys.SETTINGS].trusted_proxies
    address = peer
    if trusted:
        peer_ip = _ip(peer)
        if peer_ip is not None and any(peer_ip in net for net in trusted):
            for raw in reversed(_hops(request)):
                hop = _ip(raw)
                if hop is None:  # unreadable: stop trusting what lies beyond it
                    break
                address = str(hop)
                if not any(hop in net for net in trusted):
                    break
    request[CLIENT_ADDRESS] = address
    return address


def query_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise AppError("invalid", f"Le paramètre « {name} » doit être un nombre entier.") from exc
    if value < 0 or value > 2**53:
        raise AppError("invalid", f"Le paramètre « {name} » est hors limites.")
    return value


def path_int(request: web.Request, name: str) -> int:
    try:
        value = int(request.match_info[name])
    except (KeyError, ValueError) as exc:
        raise AppError("not_found") from exc
    if value < 0 or value > 2**53:
        raise AppError("not_found")
    return value


def websocket_compression(enabled: bool) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware that, unless `enabled`, refuses permessage-deflate on every websocket.

    Browsers offer it and aiohttp accepts by default, which gives each connection its own
    zlib compressor, about 90 KB once the first message is sent, and one compression per
    message. Tens of thousands of pupils' and parents' sockets would spend gigabytes and a
    good share of a core on frames of a few hundred bytes (board frames go out uncompressed
    anyway: they are encoded once for a whole class). Dropping the offer before the handshake
    is answered is the client-agnostic way: the socket is then plain RFC 6455."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (not enabled and "Sec-WebSocket-Extensions" in request.headers
                and request.headers.get("Upgrade", "").lower() == "websocket"):
            headers = request.headers.copy()
            del headers["Sec-WebSocket-Extensions"]
            request = request.clone(headers=headers)
        return await handler(request)

    return middleware

"""HTTP plumbing shared by every feature's routes: errors as JSON, bodies, the caller."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from realtime import keys
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
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "invalid" if exc.status < 500 else "internal")
        return error_response(AppError(code))
    except Exception:
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return error_response(AppError("internal"))


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


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"


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

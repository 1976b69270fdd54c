"""Structured logs: one JSON object per line on stderr, ready for any log collector."""

from __future__ import annotations

import logging
import sys

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from pythonjsonlogger.json import JsonFormatter


def configure(level: str = "INFO", json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The socket libraries are chatty at INFO about every packet.
    for noisy in ("engineio", "socketio", "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


# Query parameters whose values are credentials: a y-websocket client puts its session token
# in the URL (`/yjs/12?token=…`), CAS puts its ticket there; none of them may reach a log.
SECRET_PARAMS = frozenset({"token", "access_token", "ticket", "code", "key", "secret",
                           "password", "sig", "signature", "auth"})
REDACTED = "[masqué]"


def redact_query(query_string: str) -> str:
    """The query string with the values of credential parameters replaced."""
    if not query_string:
        return ""
    parts = []
    for part in query_string.split("&"):
        name, sep, _value = part.partition("=")
        parts.append(f"{name}{sep}{REDACTED}" if sep and name.lower() in SECRET_PARAMS
                     else part)
    return "&".join(parts)


class AccessLogger(AbstractAccessLogger):
    """One line per request, as structured fields, without credentials: aiohttp's default
    format logs the request line, query string included."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        from realtime.api import client_address

        query = redact_query(request.query_string)
        path = request.path + (f"?{query}" if query else "")
        try:
            address = client_address(request)  # type: ignore[arg-type]
        except Exception:
            address = request.remote or "unknown"
        self.logger.info(
            '%s "%s %s" %s %s %.3f', address, request.method, path, response.status,
            response.body_length, time,
            extra={"client": address, "method": request.method, "path": path,
                   "status": response.status, "bytes": response.body_length,
                   "duration_s": round(time, 4)})

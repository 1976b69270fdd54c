"""Security headers on every response (docs/security.md « Headers »).

Pages get a Content-Security-Policy without inline script: the web client is one bundled
module (`/static/app.js`), so a stored XSS that slipped into the DOM could not run a script
of its own nor send data to another site. Inline styles stay allowed (the editor and the
board set positions and colours as style attributes); a style cannot run code. Responses
that set their own policy (a course document rendered as HTML, a board SVG export) keep
their stricter one.
"""

from __future__ import annotations

import re

import socketio
from aiohttp import web

from realtime import keys

_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


def page_policy(host: str, frame_ancestors: str) -> str:
    # the Host header is the client's: only a well-formed host may enter the policy
    sockets = f" ws://{host} wss://{host}" if _HOST.fullmatch(host) else ""
    return "; ".join((
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        # course documents may show pictures from the web; data:/blob: for pasted ones
        "img-src 'self' data: blob: https:",
        "font-src 'self'",
        # websockets to this host: 'self' covers them only in recent browsers
        f"connect-src 'self'{sockets}",
        "worker-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        f"frame-ancestors {frame_ancestors}",
    ))


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    settings = request.app[keys.SETTINGS]
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    ancestors = " ".join(settings.frame_ancestors) or "'self'"
    if not settings.frame_ancestors:
        headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    if settings.cookie_secure:  # served over HTTPS
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    # Only pages get a policy: JSON cannot run with nosniff, SVG exports carry their own, and
    # a policy on a PDF would stop the browser's own PDF viewer.
    if response.content_type == "text/html" and "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = page_policy(request.host, ancestors)


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    app.on_response_prepare.append(_secure)

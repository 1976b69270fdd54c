"""Serves the bundled web client (web_client/dist) at `/` and `/static/`."""

from __future__ import annotations

import socketio
from aiohttp import web

from realtime import keys

_NOT_BUILT = """<!doctype html><html lang="fr"><meta charset="utf-8">
<title>ENT – client non construit</title>
<p>Le client web n'est pas construit. Lancez <code>npm ci &amp;&amp; npm run build</code>
dans <code>web_client/</code>, puis rechargez la page.</p></html>"""


async def index(request: web.Request) -> web.StreamResponse:
    page = request.app[keys.SETTINGS].static_dir / "index.html"
    if not page.is_file():
        return web.Response(text=_NOT_BUILT, content_type="text/html", status=503)
    return web.FileResponse(page, headers={"Cache-Control": "no-cache"})


async def client_config(request: web.Request) -> web.Response:
    """Limits are configuration, published to clients (DESIGN.md)."""
    from realtime.api import json_response
    from realtime.identity import sso

    s = request.app[keys.SETTINGS]
    return json_response(
        {
            "max_body_bytes": s.max_body_bytes,
            "token_ttl_s": s.token_ttl_s,
            "timezone": s.timezone,
            "transports": ["websocket"],
            "sso": sso.public_config(s),  # « Se connecter avec l'ENT » (docs/identity.md)
        }
    )


async def _no_source_map(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    static_dir = app[keys.SETTINGS].static_dir
    app.router.add_get("/", index)
    app.router.add_get("/api/config", client_config)
    # Source maps would hand out the client's source to anyone: never served (the production
    # build makes none; `npm run watch` inlines them for development).
    app.router.add_get(r"/static/{name:.*\.map}", _no_source_map)
    if static_dir.is_dir():
        app.router.add_static("/static/", static_dir, show_index=False, follow_symlinks=False)

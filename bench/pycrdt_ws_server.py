"""The baseline for `bench.docs`: pycrdt-websocket's `WebsocketServer`, in memory.

Same transport as the ENT server (aiohttp + uvloop websockets, one y-protocols message per
frame, `/yjs/<room>`), so the very same clients drive both; but no auth, no limits, no store
(no YStore: nothing is written to disk), no awareness bookkeeping beyond pycrdt-websocket's own.

    python -m bench.pycrdt_ws_server --port 8766
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

from aiohttp import WSMsgType, web
from pycrdt.websocket import WebsocketServer

from bench._serve import healthz, serve

SERVER: web.AppKey[WebsocketServer] = web.AppKey("ws_server")


class AiohttpChannel:
    """pycrdt's `Channel` over an aiohttp websocket."""

    def __init__(self, ws: web.WebSocketResponse, path: str) -> None:
        self._ws = ws
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> AiohttpChannel:
        return self

    async def __anext__(self) -> bytes:
        msg = await self._ws.receive()
        if msg.type is not WSMsgType.BINARY:
            raise StopAsyncIteration
        return bytes(msg.data)

    async def send(self, message: bytes) -> None:
        await self._ws.send_bytes(message)

    async def recv(self) -> bytes:
        return await self.__anext__()


async def yjs(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=1024 * 1024)
    await ws.prepare(request)
    await request.app[SERVER].serve(AiohttpChannel(ws, request.match_info["room"]))
    return ws


async def _server(app: web.Application) -> AsyncIterator[None]:
    async with WebsocketServer(auto_clean_rooms=True) as server:
        app[SERVER] = server
        yield


def create_app(_args: argparse.Namespace | None = None) -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(_server)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/yjs/{room}", yjs)
    return app


if __name__ == "__main__":
    serve(__doc__, create_app)

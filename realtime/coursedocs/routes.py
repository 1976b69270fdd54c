"""`/api/docs…` for the ENT and the web client, `/yjs/{doc_id}`, and the feature's setup."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import msgspec
import socketio
from aiohttp import web

from realtime import keys
from realtime.api import current_principal, json_response, path_int, read_capped, read_json
from realtime.coursedocs import store
from realtime.coursedocs.model import LABEL_MAX, TITLE_MAX, ClassMode, DocMeta, Version
from realtime.coursedocs.service import DocService
from realtime.coursedocs.wire import yjs_socket
from realtime.directory import reads as directory
from realtime.errors import AppError, not_found
from realtime.identity.model import Principal
from realtime.policy import Action, may
from realtime.presence.model import Kind
from realtime.validation import Payload

Id = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
FORMATS = {"json": "application/json", "html": "text/html", "md": "text/markdown",
           "markdown": "text/markdown", "yjs": "application/octet-stream"}


class TitleBody(Payload):
    title: Annotated[str, msgspec.Meta(max_length=TITLE_MAX * 2)]


class ClassShare(Payload):
    id: Id
    mode: ClassMode


class ShareBody(Payload):
    editors: Annotated[list[Id], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=list)
    classes: Annotated[list[ClassShare], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=list)


class VersionBody(Payload):
    label: Annotated[str, msgspec.Meta(max_length=LABEL_MAX * 2)]


def _service(request: web.Request) -> DocService:
    return request.app[keys.DOCS]


async def describe(request: web.Request, p: Principal, metas: list[DocMeta]
                   ) -> list[dict[str, Any]]:
    people = {m.owner_id for m in metas} | {e for m in metas for e in m.editors}
    names = await directory.names(request.app[keys.DB], people)
    out = []
    for m in metas:
        ref = m.ref()
        out.append({
            "id": m.id, "title": m.title, "school_id": m.school_id,
            "owner": {"id": m.owner_id, "name": names.get(m.owner_id, "")},
            "editors": [{"id": e, "name": names.get(e, "")} for e in sorted(m.editors)],
            "classes": [{"id": c, "mode": mode.value} for c, mode in sorted(m.classes.items())],
            "created_at": m.created_at, "updated_at": m.updated_at,
            "can_edit": may(p, Action.EDIT_DOC, ref),
            "can_version": may(p, Action.VERSION_DOC, ref),
            "can_manage": may(p, Action.MANAGE_DOC, ref),
            "ws": f"/yjs/{m.id}",
        })
    return out


def _version(v: Version) -> dict[str, Any]:
    return {"id": v.id, "label": v.label, "created_by": v.created_by,
            "created_at": v.created_at, "kind": v.kind.value}


async def list_docs(request: web.Request) -> web.Response:
    p = await current_principal(request)
    metas = await _service(request).listing(p)
    return json_response({"docs": await describe(request, p, metas)})


async def create_doc(request: web.Request) -> web.Response:
    p = await current_principal(request)
    body = await read_json(request, TitleBody)
    meta = await _service(request).create(p, body.title)
    return json_response((await describe(request, p, [meta]))[0], status=201)


def _wanted(request: web.Request) -> str:
    """?format= wins; else the Accept header; JSON by default."""
    fmt = request.query.get("format")
    if fmt is not None:
        if fmt not in FORMATS:
            raise AppError("invalid", "Format inconnu : json, html, md ou yjs.")
        return FORMATS[fmt]
    accept = request.headers.get("Accept", "")
    for part in accept.split(","):
        mime = part.split(";", 1)[0].strip().lower()
        if mime in FORMATS.values():
            return mime
    return "application/json"


async def get_doc(request: web.Request) -> web.Response:
    p = await current_principal(request)
    service = _service(request)
    meta = await service.visible(p, path_int(request, "doc_id"))
    wanted = _wanted(request)
    headers = {"Vary": "Accept", "Cache-Control": "private, no-cache"}
    if wanted == "application/octet-stream":
        return web.Response(body=await service.state(meta.id), headers=headers,
                            content_type="application/octet-stream")
    rendered = await service.rendered(meta, wanted)
    if wanted == "text/html":
        headers["Content-Security-Policy"] = "default-src 'none'; img-src * data:"
        return web.Response(text=rendered, content_type="text/html", headers=headers)
    if wanted == "text/markdown":
        return web.Response(text=rendered, content_type="text/markdown", headers=headers)
    body = (await describe(request, p, [meta]))[0]
    body["content"] = rendered
    return json_response(body, headers=headers)


async def rename_doc(request: web.Request) -> web.Response:
    p = await current_principal(request)
    body = await read_json(request, TitleBody)
    meta = await _service(request).rename(p, path_int(request, "doc_id"), body.title)
    return json_response((await describe(request, p, [meta]))[0])


async def share_doc(request: web.Request) -> web.Response:
    p = await current_principal(request)
    body = await read_json(request, ShareBody)
    classes = {c.id: c.mode for c in body.classes}
    if len(classes) != len(body.classes):
        raise AppError("invalid", "Une classe figure deux fois.")
    meta = await _service(request).share(p, path_int(request, "doc_id"), body.editors, classes)
    return json_response((await describe(request, p, [meta]))[0])


async def delete_doc(request: web.Request) -> web.Response:
    p = await current_principal(request)
    await _service(request).delete(p, path_int(request, "doc_id"))
    return web.Response(status=204)


async def list_versions(request: web.Request) -> web.Response:
    p = await current_principal(request)
    found = await _service(request).versions(p, path_int(request, "doc_id"))
    return json_response({"versions": [_version(v) for v in found]})


async def create_version(request: web.Request) -> web.Response:
    p = await current_principal(request)
    body = await read_json(request, VersionBody)
    v = await _service(request).create_version(p, path_int(request, "doc_id"), body.label)
    return json_response(_version(v), status=201)


async def restore_version(request: web.Request) -> web.Response:
    p = await current_principal(request)
    doc_id = path_int(request, "doc_id")
    kept = await _service(request).restore(p, doc_id, path_int(request, "version_id"))
    return json_response({"ok": True, "id": doc_id, "saved": _version(kept)})


async def preview_version(request: web.Request) -> web.Response:
    """A version's content (JSON by default, `?format=html|md`), to see it before restoring."""
    p = await current_principal(request)
    wanted = _wanted(request)
    if wanted == "application/octet-stream":
        raise AppError("invalid", "Format inconnu : json, html ou md.")
    rendered = await _service(request).version_preview(
        p, path_int(request, "doc_id"), path_int(request, "version_id"), wanted)
    headers = {"Vary": "Accept", "Cache-Control": "private, no-cache"}
    if wanted == "text/html":
        headers["Content-Security-Policy"] = "default-src 'none'; img-src * data:"
        return web.Response(text=rendered, content_type="text/html", headers=headers)
    if wanted == "text/markdown":
        return web.Response(text=rendered, content_type="text/markdown", headers=headers)
    return json_response({"content": rendered}, headers=headers)


IMAGE_TYPES = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",),
               "image/gif": (b"GIF87a", b"GIF89a"), "image/webp": (b"RIFF",)}


async def upload_image(request: web.Request) -> web.Response:
    """`POST /api/docs/{id}/images`, the body the image itself (PNG, JPEG, GIF, WebP), by
    whoever may edit the course: `201 {"src"}`, a path the editor inserts as is."""
    p = await current_principal(request)
    service = _service(request)
    meta = await service.allowed(p, path_int(request, "doc_id"), Action.EDIT_DOC)
    mime = request.content_type
    if mime not in IMAGE_TYPES:
        raise AppError("unsupported_media_type", "Image PNG, JPEG, WebP ou GIF attendue.")
    cap = request.app[keys.SETTINGS].docs_image_bytes
    data = await read_capped(request, cap, f"Image trop lourde ({cap // (1024 * 1024)} Mio au "
                                           "plus).")
    if not data.startswith(IMAGE_TYPES[mime]) or (mime == "image/webp"
                                                  and data[8:12] != b"WEBP"):
        raise AppError("invalid", "Le fichier n'est pas une image du type annoncé.")
    src = await service.add_image(p, meta, mime, data)
    return json_response({"src": src}, status=201)


async def get_image(request: web.Request) -> web.Response:
    """An image of a course, for whoever may read it (404 otherwise, as for a missing one);
    content-addressed, so cached for good, and never sniffed or run as anything else."""
    p = await current_principal(request)
    service = _service(request)
    meta = await service.visible(p, path_int(request, "doc_id"))
    found = await store.image(request.app[keys.DB], meta.id, request.match_info["sha256"])
    if found is None:
        raise not_found("Image introuvable.")
    mime, data = found
    return web.Response(body=data, content_type=mime, headers={
        "Cache-Control": "private, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Disposition": "inline"})


def _viewable(service: DocService) -> Callable[[Principal, int], Awaitable[bool]]:
    """Who may read a document's presence roster: whoever may see the document."""
    async def viewable(p: Principal, doc_id: int) -> bool:
        try:
            await service.visible(p, doc_id)
        except AppError:
            return False
        return True
    return viewable


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    service = DocService(app[keys.DB], app[keys.SETTINGS], redis=app[keys.REDIS])
    app[keys.DOCS] = service
    app[keys.PRESENCE].register(Kind.DOC, _viewable(service))  # who has it open
    yield
    await service.close()


async def _disconnect(app: web.Application) -> None:
    await app[keys.DOCS].disconnect_everyone()


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_disconnect)
    app.router.add_get("/yjs/{doc_id}", yjs_socket)
    app.router.add_get("/api/docs", list_docs)
    app.router.add_post("/api/docs", create_doc)
    app.router.add_get("/api/docs/{doc_id}", get_doc)
    app.router.add_patch("/api/docs/{doc_id}", rename_doc)
    app.router.add_put("/api/docs/{doc_id}/access", share_doc)
    app.router.add_delete("/api/docs/{doc_id}", delete_doc)
    app.router.add_get("/api/docs/{doc_id}/versions", list_versions)
    app.router.add_post("/api/docs/{doc_id}/versions", create_version)
    app.router.add_post("/api/docs/{doc_id}/versions/{version_id}/restore", restore_version)
    app.router.add_get("/api/docs/{doc_id}/versions/{version_id}", preview_version)
    app.router.add_post("/api/docs/{doc_id}/images", upload_image)
    app.router.add_get("/api/docs/{doc_id}/images/{sha256:[0-9a-f]{64}}", get_image)

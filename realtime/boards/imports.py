"""A PDF (or a photo) becomes board pages: `POST /api/boards/{id}/import`.

Synchronous by design: the request answers once every page exists (a 40-page worksheet takes a
few seconds), with the pages it added. Meanwhile the board's members see each page arrive as
it is rendered — an ordinary `add_page` op, so it is durable, sequenced, undoable and in
`join` like any other page — and an `import` event `{board_id, done, total, name}` after
each one, which the web client shows as a progress bar. Rendering runs in the render process
(rasterize.py), never on the event loop nor in its interpreter, one page ahead of the page
being stored; one import at a time per board and per person.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import signal
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from realtime.boards import store
from realtime.boards.live import NAMESPACE, room_name
from realtime.boards.ops import AddPage, Page, RemovePage
from realtime.boards.rasterize import (
    Unreadable,
    kind_of,
    pdf_page_count,
    render_image,
    render_pdf_page,
    render_pool,
)
from realtime.boards.service import BoardService, board_ref
from realtime.errors import AppError
from realtime.identity.model import Principal
from realtime.policy import Action, may

log = logging.getLogger(__name__)

T = TypeVar("T")
RENDER_TIMEOUT_S = 60.0  # one page (or one photo, or one thumbnail): a normal one takes 0.1 s
BUSY_RETRIES = 50  # admission control said "busy": try the page again, 100 ms apart


class PageImporter:
    def __init__(self, service: BoardService) -> None:
        self.service = service
        self.pool = render_pool()  # its process starts with the first import
        self._worker_pid: int | None = None
        self._busy: set[int] = set()  # boards with an import under way here
        self._users: set[int] = set()  # people with an import under way here

    async def check(self, p: Principal, board_id: int) -> None:
        """Before reading the upload: who may import (the teacher: pages are theirs)."""
        meta = await self.service.visible(p, board_id)
        ref = board_ref(meta)
        if not may(p, Action.DRAW_ON_BOARD, ref) or not may(p, Action.CONTROL_BOARD, ref):
            if meta.state == "ended":
                raise AppError("forbidden", "La séance est terminée : le tableau est en lecture "
                                            "seule.")
            raise AppError("forbidden", "Seul·e l'enseignant·e de la classe importe des pages.")

    async def run(self, p: Principal, board_id: int, data: bytes, name: str
                  ) -> list[dict[str, Any]]:
        await self.check(p, board_id)
        kind = kind_of(data)
        if kind is None:
            raise AppError("unsupported_media_type",
                           "Fichier PDF ou image (PNG, JPEG, WebP, GIF) attendu.")
        if board_id in self._busy:
            raise AppError("conflict", "Un import est déjà en cours sur ce tableau.")
        if p.id in self._users:  # heavy work: one at a time per person (DESIGN.md)
            raise AppError("rate_limited", "Vous avez déjà un import en cours : attendez qu'il "
                                           "se termine.")
        self._busy.add(board_id)
        self._users.add(p.id)
        try:
            return await self._run(p, board_id, kind, data, name)
        finally:
            self._busy.discard(board_id)
            self._users.discard(p.id)

    async def _run(self, p: Principal, board_id: int, kind: str, data: bytes, name: str
                   ) -> list[dict[str, Any]]:
        service, limits = self.service, self.service.limits
        live = await service.open(board_id)
        room = max(0, limits.pages_per_board - len(live.state.pages))
        path = await asyncio.to_thread(_spill, data) if kind == "pdf" else ""
        try:
            if kind == "pdf":
                count = await self.render(pdf_page_count, path)
                if count < 1:
                    raise AppError("invalid", "Ce PDF n'a aucune page.")
                if count > limits.import_pages:
                    raise AppError("too_large", f"Ce PDF a {count} pages : {limits.import_pages} "
                                                "au plus par import.")
            else:
                count = 1
            if count > room:
                raise AppError("too_large", f"Le tableau ne peut plus recevoir que {room} "
                                            f"page{'s' if room > 1 else ''} "
                                            f"({limits.pages_per_board} au plus).")

            def page(index: int) -> asyncio.Future[bytes]:
                return asyncio.ensure_future(
                    self.render(render_pdf_page, path, index) if kind == "pdf"
                    else self.render(render_image, data))

            added: list[Page] = []
            batch = secrets.token_hex(4)
            ahead = page(0)  # the next page renders while this one is stored and sent
            try:
                for index in range(count):
                    jpeg = await ahead
                    if index + 1 < count:
                        ahead = page(index + 1)
                    added.append(await self._add_page(p, board_id, jpeg, batch, index))
                    await service.sio.emit(
                        "import", {"board_id": board_id, "done": index + 1, "total": count,
                                   "name": name[:120]},
                        room=room_name(board_id), namespace=NAMESPACE)
            except BaseException:
                ahead.cancel()
                with contextlib.suppress(BaseException):
                    await ahead
                await self._undo_pages(p, board_id, added)
                raise
        except Unreadable as exc:
            raise AppError(exc.code, exc.message) from exc
        finally:
            if path:
                await asyncio.to_thread(os.unlink, path)
        return [{"id": page.id, "background": page.background, "image": page.image}
                for page in added]

    async def render(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the render process, for `RENDER_TIMEOUT_S` at most. A worker that died
        (a PDF that crashed PDFium) or that took too long (it is killed) is replaced for the
        next task, and this one is refused as unreadable."""
        loop = asyncio.get_running_loop()
        pool = self.pool
        try:
            if self._worker_pid is None:  # which process to stop, should a page never end
                self._worker_pid = await loop.run_in_executor(pool, os.getpid)
            return await asyncio.wait_for(loop.run_in_executor(pool, fn, *args),
                                          RENDER_TIMEOUT_S)
        except TimeoutError as exc:
            log.error("board render took too long; its process is stopped")
            self._replace(pool, kill=True)
            raise AppError("invalid", "Ce fichier est trop long à lire : une page dépasse "
                                      f"{RENDER_TIMEOUT_S:.0f} s.") from exc
        except BrokenProcessPool as exc:
            log.error("board render process died; starting another")
            self._replace(pool)
            raise AppError("invalid", "Ce fichier n'a pas pu être lu.") from exc

    def _replace(self, pool: ProcessPoolExecutor, kill: bool = False) -> None:
        if self.pool is not pool:
            return  # another task replaced it already
        if kill and self._worker_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._worker_pid, signal.SIGKILL)
        pool.shutdown(wait=False, cancel_futures=True)
        self.pool, self._worker_pid = render_pool(), None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def _add_page(self, p: Principal, board_id: int, jpeg: bytes, batch: str,
                        index: int) -> Page:
        """One page of the import `batch`: `imp-<batch>-<n>`, so that a client can tell the
        pages of one document (the web client offers to delete them together)."""
        digest = hashlib.sha256(jpeg).hexdigest()
        await store.put_image(self.service.db, board_id, digest, "image/jpeg", jpeg,
                              self.service.clock())
        page = Page(id=f"imp-{batch}-{index + 1}", background="image",
                    image=f"/api/boards/{board_id}/images/{digest}")
        for _ in range(BUSY_RETRIES):
            try:
                await self.service.submit_as(p, board_id, AddPage(page=page))
                return page
            except AppError as err:
                if err.code != "rate_limited":
                    raise
                await asyncio.sleep(0.1)
        raise AppError("rate_limited", "Le serveur est très sollicité : import interrompu.")

    async def _undo_pages(self, p: Principal, board_id: int, added: list[Page]) -> None:
        """A failed import leaves no half document behind: its pages go again."""
        for page in reversed(added):
            try:
                await self.service.submit_as(p, board_id, RemovePage(page_id=page.id))
            except Exception:
                log.exception("could not take back an imported page",
                              extra={"board": board_id, "page": page.id})


def _spill(data: bytes) -> str:
    """The PDF in a temporary file, that the render process opens for each page."""
    fd, path = tempfile.mkstemp(prefix="board-import-", suffix=".pdf")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path

"""`serve --workers N`: every connection of a board on one worker, the board's home.

With SO_REUSEPORT the kernel spreads new connections over the workers at random, so a class's
30 followers end up on every worker, and every worker hears, applies and frames every op of
every board: N workers did N times the per-op work for the same deliveries
(docs/performance.md, « Scale-out: one home per board »). A board's live connection carries
the board in its URL (`/socket.io/?board=<id>&…`, the web client's BoardConnection); a board
has a home, `board_id % N`, and the worker that accepts a connection looks at its first
request line before anything reads it (`MSG_PEEK`): a connection for a board whose home is
another worker is handed to that worker — the socket itself, over a Unix socket
(`SCM_RIGHTS`) — which serves it from the first byte as if it had accepted it. Then a board's
ops are heard, applied and framed once on its node; the other workers do not even follow its
stream.

Placement is an economy, never a condition of correctness: every worker still serves any
board (streams, Redis), so a connection whose home cannot take it (a worker being restarted,
its queue full), whose first line has not arrived yet, or that carries no board is simply
served where the kernel put it, as before. Nothing is read from the socket before the
decision, so nothing needs to be replayed; the worker that hands a connection over only closes
its own descriptor (no FIN: the home holds the connection).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

PEEK_BYTES = 2048  # the request line is in the first segment; a longer one is served here
FIRST_BYTES_S = 2.0  # a connection silent this long after accept is served where it landed
ACCEPT_BATCH = 64  # accepts per wake-up of a listening socket, at most
RECEIVE_BATCH = 64  # connections taken from one hand-over link per read, at most
MAX_BOARD_DIGITS = 18


class Handovers:
    """Connections handed to their board's home, taken from another worker, and kept here
    because the home could not take them: for the metrics page (realtime/metrics.py)."""

    def __init__(self) -> None:
        self.handed_over = self.received = self.home_unreachable = 0

    def counters(self) -> dict[str, int]:
        return {"handed_over": self.handed_over, "received": self.received,
                "home_unreachable": self.home_unreachable}


@dataclass(frozen=True)
class Placement:
    """This worker's index among `count`, and the private directory (0700, made by the
    supervisor) where each worker's hand-over socket lives."""

    index: int
    count: int
    directory: Path

    def home(self, board_id: int) -> int:
        return board_id % self.count

    def socket_path(self, index: int) -> Path:
        return self.directory / f"w{index}.sock"


def board_in(head: bytes) -> int | None:
    """The `board` query parameter of an HTTP request's first line, if the line is complete
    and has one (`GET /socket.io/?board=12&EIO=4&transport=websocket HTTP/1.1`)."""
    end = head.find(b"\r\n")
    if end < 0:
        return None
    parts = head[:end].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        return None
    _path, sep, query = parts[1].partition(b"?")
    if not sep:
        return None
    for pair in query.split(b"&"):
        if pair.startswith(b"board="):
            value = pair[6:]
            if value.isdigit() and len(value) <= MAX_BOARD_DIGITS:
                return int(value)
            return None
    return None


class PlacingSite(web.BaseSite):
    """aiohttp's TCP site with its own accept loop: each accepted connection is served here
    (`connect_accepted_socket` with the runner's protocol factory, as `create_server` would)
    or handed to its board's home worker; connections handed over by the others arrive on
    this worker's Unix socket and are served here the same way.

    Hand-overs travel on Unix *stream* sockets, one per pair of workers, opened on first use:
    a datagram socket's queue holds 10 messages (`net.unix.max_dgram_qlen`), which a class
    connecting at once overflows."""

    __slots__ = ("_counts", "_host", "_inbox", "_links", "_listening", "_peers", "_pending",
                 "_placement", "_port", "_tasks")

    def __init__(self, runner: web.BaseRunner, host: str | None, port: int,
                 placement: Placement, counts: Handovers | None = None,
                 backlog: int = 128) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._placement = placement
        self._listening: list[socket.socket] = []
        self._inbox: socket.socket | None = None  # where the others connect to hand over
        self._peers: set[socket.socket] = set()  # their connections to our inbox
        self._links: dict[int, socket.socket] = {}  # ours to their inboxes, by index
        self._pending: dict[int, tuple[socket.socket, asyncio.TimerHandle]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._counts = counts or Handovers()

    @property
    def name(self) -> str:
        return f"http://{self._host or '*'}:{self._port}"

    # --- starting and stopping ------------------------------------------------------------

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self._host or None, self._port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        seen = set()
        for family, kind, proto, _name, addr in infos:
            if (family, addr) in seen:
                continue
            seen.add((family, addr))
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(addr)
                sock.listen(self._backlog)
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
            self._listening.append(sock)
            loop.add_reader(sock.fileno(), self._accept, sock)
        path = self._placement.socket_path(self._placement.index)
        inbox = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # left by this worker's previous life (killed)
            inbox.bind(str(path))
            inbox.listen(self._placement.count * 4)
        except OSError as exc:  # the others find no one there and serve this home's boards
            inbox.close()
            log.error("connection hand-over socket unavailable: this worker's boards are "
                      "served wherever their connections land", extra={"path": str(path),
                                                                       "error": repr(exc)})
        else:
            inbox.setblocking(False)
            self._inbox = inbox
            loop.add_reader(inbox.fileno(), self._accept_peer)

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._listening:
            loop.remove_reader(sock.fileno())
            sock.close()
        self._listening = []
        if self._inbox is not None:
            loop.remove_reader(self._inbox.fileno())
            with contextlib.suppress(FileNotFoundError):
                self._placement.socket_path(self._placement.index).unlink()
            self._inbox.close()
            self._inbox = None
        for peer in list(self._peers):  # connections still in them are closed by the kernel
            self._drop_peer(peer)
        for link in self._links.values():
            link.close()
        self._links.clear()
        for conn, timer in list(self._pending.values()):
            timer.cancel()
            loop.remove_reader(conn.fileno())
            conn.close()
        self._pending.clear()
        await super().stop()

    # --- accepting and placing ------------------------------------------------------------

    def _accept(self, listening: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _addr = listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: the next wake-up tries again
                log.warning("accept failed", extra={"error": repr(exc)})
                return
            conn.setblocking(False)
            self._place(conn)

    def _place(self, conn: socket.socket) -> None:
        try:
            head = conn.recv(PEEK_BYTES, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            loop = asyncio.get_running_loop()  # the request line is not here yet
            fd = conn.fileno()
            timer = loop.call_later(FIRST_BYTES_S, self._decide, fd, True)
            self._pending[fd] = (conn, timer)
            loop.add_reader(fd, self._decide, fd, False)
            return
        except OSError:
            conn.close()  # reset before it said anything
            return
        self._route(conn, head)

    def _decide(self, fd: int, timed_out: bool) -> None:
        conn, timer = self._pending.pop(fd)
        timer.cancel()
        asyncio.get_running_loop().remove_reader(fd)
        if timed_out:
            self._serve_here(conn)
            return
        try:
            head = conn.recv(PEEK_BYTES, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            head = b""
        except OSError:
            conn.close()
            return
        self._route(conn, head)

    def _route(self, conn: socket.socket, head: bytes) -> None:
        board = board_in(head)
        home = self._placement.home(board) if board is not None else self._placement.index
        if home != self._placement.index:
            if self._hand_over(conn, home):
                self._counts.handed_over += 1
                conn.close()  # our descriptor only: the home holds the connection now
                return
            self._counts.home_unreachable += 1
        self._serve_here(conn)

    def _hand_over(self, conn: socket.socket, home: int) -> bool:
        """Send the connection's descriptor to `home`; False when it cannot take it now (not
        listening: being restarted; its socket full: EAGAIN): then it is served here."""
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [conn.fileno()]))]
        for _attempt in range(2):  # a link to a previous life of the home fails once
            link = self._links.get(home)
            if link is None:
                link = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                link.setblocking(False)
                try:
                    link.connect(str(self._placement.socket_path(home)))
                except OSError:
                    link.close()
                    return False
                self._links[home] = link
            try:
                link.sendmsg([b"c"], rights)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:  # EPIPE, ECONNRESET: the home was restarted
                link.close()
                del self._links[home]
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                    log.warning("connection hand-over failed",
                                extra={"home": home, "error": repr(exc)})
                    return False
                continue
            return True
        return False

    def _accept_peer(self) -> None:
        inbox = self._inbox
        if inbox is None:
            return
        while True:
            try:
                peer, _addr = inbox.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("hand-over link accept failed", extra={"error": repr(exc)})
                return
            peer.setblocking(False)
            self._peers.add(peer)
            asyncio.get_running_loop().add_reader(peer.fileno(), self._receive, peer)

    def _drop_peer(self, peer: socket.socket) -> None:
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(peer.fileno())
        peer.close()
        self._peers.discard(peer)

    def _receive(self, peer: socket.socket) -> None:
        for _ in range(RECEIVE_BATCH):
            try:
                # One byte travels with each descriptor: a read of n bytes brings ≤ n of them.
                data, fds, _flags, _addr = socket.recv_fds(peer, RECEIVE_BATCH, RECEIVE_BATCH)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("hand-over link broken", extra={"error": repr(exc)})
                self._drop_peer(peer)
                return
            for fd in fds:
                try:
                    conn = socket.socket(fileno=fd)
                except OSError:
                    os.close(fd)
                    continue
                conn.setblocking(False)
                self._counts.received += 1
                self._serve_here(conn)
            if not data and not fds:  # the other worker stopped
                self._drop_peer(peer)
                return

    def _serve_here(self, conn: socket.socket) -> None:
        server = self._runner.server
        if server is None:  # shutting down
            conn.close()
            return
        task = asyncio.ensure_future(self._connect(server, conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, server: Any, conn: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(server, conn)
        except Exception as exc:
            log.warning("accepted connection could not be served", extra={"error": repr(exc)})
            conn.close()


def serve_placed(app: web.Application, *, host: str | None, port: int, placement: Placement,
                 counts: Handovers, loop: asyncio.AbstractEventLoop,
                 **runner_kwargs: Any) -> None:
    """`web.run_app` with a `PlacingSite` instead of its TCP site: the same runner (signals
    handled, graceful shutdown, access log), the same end (remaining tasks cancelled, the
    loop closed)."""

    async def main() -> None:
        runner = web.AppRunner(app, handle_signals=True, **runner_kwargs)
        await runner.setup()
        try:
            await PlacingSite(runner, host, port, placement, counts).start()
            await asyncio.Event().wait()  # until a signal (GracefulExit) or a cancellation
        finally:
            await runner.cleanup()

    task = loop.create_task(main())
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(task)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(task)
        finally:
            rest = asyncio.all_tasks(loop)
            for t in rest:
                t.cancel()
            loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

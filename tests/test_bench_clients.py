"""The bench's lean Socket.IO client (`bench/_leanws.py`): against the real ENT server, and its
websocket parser fed byte streams cut at every offset."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from bench._leanws import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    LeanSocketIO,
    WebSocketProtocolError,
    accept_key,
    mask_frame,
    unmask,
)
from realtime import keys
from realtime.app import create_app
from tests.boards.conftest import stroke
from tests.conftest import login, make_settings, token_for

NS = "/boards"
CAFE = "élève — café"
CHARLEMAGNE = "Collège Charlemagne"


# --- against the real server ---------------------------------------------------------------

@pytest.fixture
async def quick_ping_server(aiohttp_server: Any, tmp_path: Path, demo_db_path: Path) -> str:
    """The ENT server, its Engine.IO pinging every 0.2 s and dropping a client that stays
    silent for 0.2 + 0.3 s: a client that does not answer pings is gone within a second."""
    app = create_app(make_settings(tmp_path, db_path=demo_db_path))
    app[keys.SIO].eio.ping_interval = 0.2
    app[keys.SIO].eio.ping_timeout = 0.3
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


def class_cast(accounts: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    teacher = next(a for a in accounts if a["role"] == "teacher" and a["school"] == CHARLEMAGNE)
    pupils = [a for a in accounts if a["role"] == "student" and a["school"] == CHARLEMAGNE
              and a["classes"] == [teacher["classes"][0]]]
    return teacher, pupils[:2]


async def create_board(base: str, teacher: dict[str, Any]) -> int:
    import aiohttp

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await login(s, base, teacher)
        async with s.get(f"{base}/api/classes") as r:
            classes = (await r.json())["classes"]
        class_id = next(c["id"] for c in classes if c["name"] == teacher["classes"][0])
        async with s.post(f"{base}/api/boards",
                          json={"title": "Banc d'essai — léger", "class_id": class_id}) as r:
            assert r.status == 201, await r.text()
            return int((await r.json())["id"])


class Follower:
    """A lean client's events, as `bench.boards` sees them: every op of every `ops` frame."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []
        self.other: list[str] = []
        self.changed = asyncio.Event()

    def on_event(self, name: str, data: Any) -> None:
        if name == "ops":
            self.ops.extend(data["ops"])
        else:
            self.other.append(name)
        self.changed.set()

    async def wait_ops(self, n: int, wait_s: float = 10) -> None:
        async def loop() -> None:
            while len(self.ops) < n:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(loop(), wait_s)


async def test_lean_clients_follow_a_board(quick_ping_server: str,
                                           demo_accounts: list[dict[str, Any]]) -> None:
    base = quick_ping_server
    teacher_acct, pupils = class_cast(demo_accounts)
    board = await create_board(base, teacher_acct)
    people = [Follower() for _ in range(3)]  # the teacher, then two pupils
    clients = [await LeanSocketIO.connect(base, NS, await token_for(base, acct),
                                          f.on_event, timeout_s=10)
               for acct, f in zip([teacher_acct, *pupils], people, strict=True)]
    try:
        teacher, alice, bob = clients
        # (Engine.IO announces int(0.2) s: 0 ms; it still pings every 0.2 s.)
        assert teacher.open_packet is not None and "pingInterval" in teacher.open_packet
        joins = [await c.call("join", {"board_id": board}, timeout_s=10) for c in clients]
        assert all(j["ok"] for j in joins), joins
        assert joins[0]["me"]["is_teacher"] and joins[0]["me"]["can_draw"]
        assert not joins[1]["me"]["is_teacher"] and joins[1]["snapshot"]["items"] == []

        sent: list[dict[str, Any]] = []
        for i in range(5):
            sent.append(stroke(f"s{i}", x=i + 0.25))
            sent.append({"type": "append", "item_id": f"s{i}", "points": [[50, 50], [60, 65.5]]})
        sent.append({"type": "add", "item": {
            "id": "t1", "kind": "text", "page_id": "p1", "text": CAFE,
            "box": {"x": 10, "y": 20, "w": 300, "h": 40}}})
        acks: list[dict[str, Any]] = []
        for op in sent:  # open loop, as the bench's teachers: nothing awaited between emits
            teacher.emit("op", {"board_id": board, "op": op}, callback=acks.append)
        for f in people:
            await f.wait_ops(len(sent))
        assert [a["seq"] for a in acks] == list(range(1, len(sent) + 1)), acks
        me = joins[0]["me"]["id"]
        for f in people:  # the teacher's echo included
            assert [o["seq"] for o in f.ops] == list(range(1, len(sent) + 1))
            assert all(o["author"] == me for o in f.ops)
            for got, op in zip(f.ops, sent, strict=True):
                assert got["op"]["type"] == op["type"]
                if op["type"] == "append":
                    assert got["op"]["item_id"] == op["item_id"]
                    assert got["op"]["points"] == op["points"]
                else:
                    item = got["op"]["item"]
                    assert {k: item[k] for k in op["item"]} == op["item"]
        assert people[1].ops[-1]["op"]["item"]["text"] == CAFE
        assert people[1].other == []  # nothing but `ops` frames reached a follower

        # Pings: the server pings again only once the last one was answered, and drops a
        # client silent for 0.5 s; after a second and a half the pupils are still there.
        await asyncio.sleep(1.5)
        assert alice.pings >= 3 and bob.pings >= 3
        again = await bob.call("join", {"board_id": board}, timeout_s=5)
        assert again["ok"] and len(again["snapshot"]["items"]) == 6
        assert [it["text"] for it in again["snapshot"]["items"] if it["kind"] == "text"] == [CAFE]
    finally:
        for c in clients:
            await c.disconnect(wait_s=2)
    assert all(c.closed for c in clients)


async def test_a_refused_namespace_connect_raises(demo_server: str) -> None:
    with pytest.raises(ConnectionRefusedError, match=r"/boards refused the connection.*"
                                                     r"identifiez-vous"):
        await LeanSocketIO.connect(demo_server, NS, "not-a-token", lambda _n, _d: None,
                                   timeout_s=10)


async def test_a_server_that_is_not_socketio_is_a_clear_error(
    demo_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 4xx instead of the 101 (here: an Engine.IO version the server does not speak)."""
    monkeypatch.setattr("bench._leanws.PATH", "/socket.io/?EIO=3&transport=websocket")
    with pytest.raises(WebSocketProtocolError, match="upgrade refused"):
        await LeanSocketIO.connect(demo_server, NS, "x", lambda _n, _d: None, timeout_s=10)


# --- the parser, fed by hand ----------------------------------------------------------------

class FakeTransport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closing = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closing
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True


def server_frame(payload: bytes | str, opcode: int = 0x1, fin: bool = True) -> bytes:
    """An unmasked frame as a server sends it."""
    data = payload.encode() if isinstance(payload, str) else payload
    n, b0 = len(data), (0x80 if fin else 0) | opcode
    if n < 126:
        return bytes((b0, n)) + data
    if n < 65536:
        return bytes((b0, 126)) + struct.pack("!H", n) + data
    return bytes((b0, 127)) + struct.pack("!Q", n) + data


def client_frames(raw: bytes) -> list[tuple[int, bytes]]:
    """Parse what the client wrote (after the upgrade request): every frame masked."""
    out, i = [], 0
    while i < len(raw):
        b0, b1 = raw[i], raw[i + 1]
        assert b0 & 0x80 and b1 & 0x80, "client frames are final and masked"
        n, i = b1 & 0x7F, i + 2
        if n == 126:
            n, i = struct.unpack_from("!H", raw, i)[0], i + 2
        elif n == 127:
            n, i = struct.unpack_from("!Q", raw, i)[0], i + 8
        key, i = raw[i:i + 4], i + 4
        out.append((b0 & 0x0F, unmask(raw[i:i + n], key)))
        i += n
    return out


def handshake(proto: LeanSocketIO, transport: FakeTransport) -> bytes:
    """The server's 101 for the request the client wrote (its key checked)."""
    request = bytes(transport.written).decode()
    assert request.startswith("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n")
    key = re.search(r"Sec-WebSocket-Key: (\S+)\r\n", request)
    assert key and len(base64.b64decode(key.group(1))) == 16
    transport.written.clear()
    return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key.group(1))}\r\n\r\n").encode()


OPS_FRAME = ["ops", {"board_id": 7, "ops": [
    {"seq": 1, "author": 3, "op": {"type": "add", "item": {
        "id": "t", "kind": "text", "page_id": "p1", "text": CAFE * 8}}},
]}]


def session_stream(proto: LeanSocketIO, transport: FakeTransport) -> bytes:
    long_event = "42/boards," + json.dumps(OPS_FRAME, ensure_ascii=False)
    assert 125 < len(long_event.encode()) < 65536  # a 16-bit length
    return b"".join([
        handshake(proto, transport),
        server_frame('0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000}'),
        server_frame('40/boards,{"sid":"def"}'),
        server_frame(long_event),
        server_frame("2"),  # Engine.IO ping
        server_frame(b"hello", OP_PING),  # websocket ping
        server_frame('42/boards,["pointer",{"x":1}]'),
        server_frame('42/boards,["op",{"seq":2}]'),
        server_frame('43/boards,1[{"ok":true,"seq":2}]'),
        server_frame('42/other,["op",{"seq":99}]'),  # another namespace: not ours
        server_frame('42/boards,5["ask",{"n":1}]'),  # an event that wants an ack
        server_frame("6"),  # Engine.IO noop
        server_frame(struct.pack("!H", 1000) + b"bye", OP_CLOSE),
    ])


EXPECTED_EVENTS = [tuple(OPS_FRAME), ("pointer", {"x": 1}), ("op", {"seq": 2}),
                   ("ask", {"n": 1})]


async def feed_session(chunks_of: Any) -> None:
    """Feed one whole session, cut by `chunks_of(stream)`, and check what came of it."""
    events: list[tuple[str, Any]] = []
    acks: list[Any] = []
    proto = LeanSocketIO(NS, lambda name, data: events.append((name, data)), "h:1")
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    proto.emit("op", {"seq": 1}, callback=acks.append)  # ack id 1 (written at once)
    sent_first = bytes(transport.written[transport.written.index(b"\r\n\r\n") + 4:])
    del transport.written[transport.written.index(b"\r\n\r\n") + 4:]
    stream = session_stream(proto, transport)
    for chunk in chunks_of(stream):
        proto.data_received(chunk)
    assert proto.error is None, proto.error
    assert events == EXPECTED_EVENTS
    assert acks == [{"ok": True, "seq": 2}]
    assert proto.open_packet == {"sid": "abc", "upgrades": [], "pingInterval": 25000,
                                 "pingTimeout": 20000}
    assert proto.sid == "def" and proto.pings == 1 and proto.close_code == 1000
    assert client_frames(sent_first) == [(0x1, b'42/boards,1["op",{"seq":1}]')]
    assert client_frames(bytes(transport.written)) == [
        (0x1, b"3"), (OP_PONG, b"hello"), (OP_CLOSE, struct.pack("!H", 1000))]
    assert transport.closing and proto.closed and not transport.aborted


async def test_parser_at_every_split() -> None:
    length = [0]

    def once(stream: bytes) -> list[bytes]:
        length[0] = len(stream)
        return [stream]

    await feed_session(once)
    for cut in range(1, length[0]):
        await feed_session(lambda s, cut=cut: [s[:cut], s[cut:]])
    for a in range(1, length[0], 7):  # three pieces
        await feed_session(lambda s, a=a: [s[:a], s[a:a + 131], s[a + 131:]])
    await feed_session(lambda s: [s[i:i + 1] for i in range(len(s))])  # a byte at a time


async def test_a_64_bit_length_frame() -> None:
    big = ["ops", {"board_id": 1, "ops": [{"seq": 1, "op": {"text": CAFE * 5000}}]}]
    events: list[tuple[str, Any]] = []
    proto = LeanSocketIO(NS, lambda name, data: events.append((name, data)))
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    frame = server_frame("42/boards," + json.dumps(big, ensure_ascii=False))
    assert frame[1] == 127
    stream = handshake(proto, transport) + frame + server_frame('42/boards,["op",1]')
    for cut in (1, 100, len(stream) - len(frame) + 5, len(stream) - 20):
        events.clear()
        proto._buf.clear()
        proto.upgraded = False
        proto.data_received(stream[:cut])
        proto.data_received(stream[cut:])
        assert events == [tuple(big), ("op", 1)]


async def test_a_continuation_frame_is_a_clear_error() -> None:
    proto = LeanSocketIO(NS, lambda _n, _d: None)
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    proto.data_received(handshake(proto, transport) + server_frame('42/boards,["op",', fin=False)
                        + server_frame("1]", opcode=0x0))
    assert isinstance(proto.error, WebSocketProtocolError)
    assert "continuation" in str(proto.error) or "fragmented" in str(proto.error)
    assert transport.aborted and proto.closed
    with pytest.raises(ConnectionError):
        proto.emit("op", {})


async def test_a_bad_accept_is_refused() -> None:
    proto = LeanSocketIO(NS, lambda _n, _d: None)
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    proto.data_received(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        b"Sec-WebSocket-Accept: bm9wZQ==\r\n\r\n")
    assert isinstance(proto.error, WebSocketProtocolError) and transport.aborted


@pytest.mark.parametrize("size", [0, 1, 3, 4, 125, 126, 65535, 65536, 70001])
def test_client_frames_are_masked(size: int) -> None:
    payload = bytes((i * 7 + 3) % 256 for i in range(size))
    frames = [mask_frame(payload) for _ in range(4)]
    assert all(client_frames(f) == [(0x1, payload)] for f in frames)
    header = {0: 2, 1: 2, 3: 2, 4: 2, 125: 2, 126: 4, 65535: 4}.get(size, 10)
    keys_used = {f[header:header + 4] for f in frames}
    assert len(keys_used) > 1  # a fresh random key per frame
    if size >= 8:
        assert all(f[header + 4:] != payload for f in frames)

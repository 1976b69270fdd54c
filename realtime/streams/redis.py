"""Reliable streams in Redis: shared by every process and node.

Per stream, under `<prefix>:stream:<name>`: a hash `…:meta` (epoch, seq, trimmed_to) and a
Redis Stream `…:log` whose entry ids are `<seq>-0`. One Lua script appends atomically (a new
epoch if the keys are gone, seq, entry, size and age bounds, publish on the stream's channel
`<prefix>:stream:<name>`), so seqs are gap-free across processes and nodes. Appends that
arrive together share one script call (group commit, see `append`).

Pub/sub is at-most-once. One pub/sub connection per store serves every local subscriber, and
subscribers trust only seqs: a gap is filled from the log. When that connection comes back
(redis-py resubscribes by itself, or we open a new one) every subscribed stream's head is
checked, and a slow periodic check catches a lost last message. Keys that vanish (Redis
restarted without persistence) come back with a new epoch, so old positions get a Reset.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec
import redis.asyncio as aioredis

from realtime.redis_client import ResilientPubSub
from realtime.streams.base import (
    Position,
    Replay,
    Reset,
    StreamEvent,
    StreamStore,
    Subscription,
    fail_group,
)
from realtime.streams.redis_link import LeanPubSub, RedisLink, lean_supported
from realtime.streams.rules import complete_replay, plan_resume
from realtime.streams.subscription import QueueSubscription, start_subscription

log = logging.getLogger(__name__)

# KEYS: meta, log of each append in turn (a stream may come several times). ARGV: ts, max_len,
# ttl, cutoff, then for each append: payload, fresh epoch, channel ('' = silent). The appends
# of one call are applied in order, atomically, each as the one-append script did: a new
# epoch if the keys are gone, seq, entry, size and age bounds, publish. The age bound looks at
# the few oldest entries only, so an append stays O(1); trim() sweeps the rest. trimmed_to
# only ever grows: resume trusts it to refuse what history lacks. Returns epoch, seq pairs.
_APPEND = r"""
local ts, max_len, ttl, cutoff = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local out = {}
for i = 1, #KEYS / 2 do
  local meta, log = KEYS[2 * i - 1], KEYS[2 * i]
  local payload, fresh, channel = ARGV[3 * i + 2], ARGV[3 * i + 3], ARGV[3 * i + 4]
  local epoch = redis.call('HGET', meta, 'epoch')
  if not epoch then
    epoch = fresh
    redis.call('DEL', log)
    redis.call('HSET', meta, 'epoch', epoch, 'seq', 0, 'trimmed_to', 0)
  end
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  redis.call('XADD', log, seq .. '-0', 't', ts, 'p', payload)
  local cut = seq - max_len
  for _, entry in ipairs(redis.call('XRANGE', log, '-', '+', 'COUNT', 8)) do
    if tonumber(entry[2][2]) >= cutoff then break end
    cut = math.max(cut, tonumber(string.match(entry[1], '^%d+')))
  end
  if cut > (tonumber(redis.call('HGET', meta, 'trimmed_to')) or 0) then
    redis.call('XTRIM', log, 'MINID', string.format('%d-0', cut + 1))
    redis.call('HSET', meta, 'trimmed_to', cut)
  end
  redis.call('EXPIRE', meta, ttl)
  redis.call('EXPIRE', log, ttl)
  if channel ~= '' then
    redis.call('PUBLISH', channel, epoch .. '\n' .. seq .. '\n' .. ts .. '\n' .. payload)
  end
  out[#out + 1] = epoch
  out[#out + 1] = seq
end
return out
"""

# KEYS: meta, log. ARGV: fresh epoch, ttl. An empty stream gets its epoch on first sight, so a
# client can hold a position in it.
_HEAD = r"""
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'trimmed_to')
if not meta[1] then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'seq', 0, 'trimmed_to', 0)
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return {ARGV[1], 0, 0}
end
return {meta[1], tonumber(meta[2]), tonumber(meta[3])}
"""

# KEYS: meta, log. ARGV: the epoch the sweep read, the last seq to drop. The epoch guard keeps
# a sweep of an old incarnation from cutting into a new one created meanwhile.
_TRIM = r"""
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
local cut = tonumber(ARGV[2])
local removed = redis.call('XTRIM', KEYS[2], 'MINID', string.format('%d-0', cut + 1))
if cut > (tonumber(redis.call('HGET', KEYS[1], 'trimmed_to')) or 0) then
  redis.call('HSET', KEYS[1], 'trimmed_to', cut)
end
return removed
"""

CHECK_EVERY_S = 2.0
CONFIRM_TIMEOUT_S = 5.0
SWEEP_BATCH = 200
MAX_GROUP = 100  # appends sent in one script call at most (Redis runs a script alone)


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _seq(entry_id: bytes | str) -> int:
    return int(_s(entry_id).split("-", 1)[0])


class RedisStreamStore(ResilientPubSub, StreamStore):
    name = "streams-pubsub"

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        max_len: int,
        max_age_s: int,
        clock: Callable[[], float] = time.time,
        publish: bool = True,
        *,
        check_every_s: float = CHECK_EVERY_S,
    ) -> None:
        if redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisStreamStore needs a client with decode_responses=False")
        super().__init__(redis)
        self.prefix = prefix
        self.max_len = max(1, max_len)
        self.max_age_s = max_age_s
        self.clock = clock
        # publish=False makes an appender whose messages every subscriber misses: the honest
        # way for tests to show that gaps are detected and filled from the log.
        self.publish = publish
        self.check_every_s = check_every_s
        self._append_script = redis.register_script(_APPEND)
        # The hot path's own connections (redis_link.py): the append script on one, pub/sub
        # on another; redis-py's pool for everything else (and for all of it over TLS).
        self._lean = lean_supported(redis)
        self._link = RedisLink(redis) if self._lean else None
        self._head = redis.register_script(_HEAD)
        self._trim = redis.register_script(_TRIM)
        self._subs: dict[str, set[QueueSubscription]] = {}
        # Per subscribed stream: set once Redis confirmed our SUBSCRIBE. A confirmation for a
        # stream already confirmed means the connection was re-established: check its head.
        self._ready: dict[str, asyncio.Event] = {}
        self._next_check = time.monotonic() + check_every_s
        self._queue: list[tuple[str, bytes, Any, asyncio.Future[StreamEvent]]] = []
        self._busy = False  # a script call is in flight (a caller's own, or the writer's)
        self._writer: asyncio.Task[None] | None = None

    # --- keys ---------------------------------------------------------------------------

    def _meta_key(self, stream: str) -> str:
        return f"{self.prefix}:stream:{stream}:meta"

    def _log_key(self, stream: str) -> str:
        return f"{self.prefix}:stream:{stream}:log"

    def _channel(self, stream: str) -> str:
        return f"{self.prefix}:stream:{stream}"

    @property
    def _ttl(self) -> int:
        """Idle streams expire once their whole history would have aged out anyway."""
        return max(60, 2 * self.max_age_s)

    # --- StreamStore --------------------------------------------------------------------

    async def append(self, stream: str, payload: Any) -> StreamEvent:
        """Group commit, as the SQLite store does: an append while no call is in flight is
        sent at once, by its caller (no task, no future: the common case at light load);
        appends that arrive while a call is in flight wait for it and leave together in the
        next one (one round trip, one script run, for up to MAX_GROUP appends of any
        streams). A call costs the client ~150 µs of CPU whatever it carries, so under load
        this pays it once per group instead of once per op, for no added wait. Each caller
        returns only once Redis has run the script that holds its event: an acked event is
        as durable as before. Calls never overlap, so events are handed to local
        subscribers (`offer`) in the order Redis numbered them."""
        data = msgspec.json.encode(payload)
        if self._busy:
            fut: asyncio.Future[StreamEvent] = asyncio.get_running_loop().create_future()
            self._queue.append((stream, data, payload, fut))
            return await fut
        self._busy = True
        try:
            [event] = await self._append_many([(stream, data, payload)])
        finally:
            if self._queue:  # what arrived meanwhile: the writer takes over, still busy
                self._writer = asyncio.create_task(self._write_groups())
            else:
                self._busy = False
        self._hand_over(event)
        return event

    def _hand_over(self, event: StreamEvent) -> None:
        if self.publish:  # (publish=False: tests of a lost message; nothing shortcut)
            for sub in tuple(self._subs.get(event.stream, ())):
                sub.offer(event)

    async def _write_groups(self) -> None:
        try:
            while self._queue:
                queued, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
                try:
                    events = await self._append_many([(s, d, p) for s, d, p, _f in queued])
                except BaseException as exc:
                    fail_group((f for *_, f in queued), (f for *_, f in self._queue), exc)
                    if not isinstance(exc, Exception):
                        self._queue = []
                        raise
                    continue
                for event, (*_, fut) in zip(events, queued, strict=True):
                    self._hand_over(event)
                    if not fut.done():
                        fut.set_result(event)
        finally:
            self._busy = False

    async def _append_many(self, batch: list[tuple[str, bytes, Any]]) -> list[StreamEvent]:
        now = self.clock()
        keys: list[str] = []
        args: list[Any] = [repr(now), self.max_len, self._ttl, repr(now - self.max_age_s)]
        for stream, data, _payload in batch:
            keys += (self._meta_key(stream), self._log_key(stream))
            args += (data, secrets.token_hex(8),
                     self._channel(stream) if self.publish else "")
        out = await self._append(keys=keys, args=args)
        return [StreamEvent(stream=stream, epoch=_s(out[2 * i]), seq=int(out[2 * i + 1]),
                            ts=now, payload=payload)
                for i, (stream, _data, payload) in enumerate(batch)]

    async def _append(self, keys: list[str], args: list[Any]) -> Any:
        """One call of the append script: on the store's own connection, or redis-py's."""
        if self._link is not None:
            return await self._link.script(self._append_script.sha, _APPEND, keys, args)
        return await self._append_script(keys=keys, args=args)

    async def _meta(self, stream: str) -> tuple[str, int, int]:
        epoch, seq, trimmed_to = await self._head(
            keys=[self._meta_key(stream), self._log_key(stream)],
            args=[secrets.token_hex(8), self._ttl],
        )
        return _s(epoch), int(seq), int(trimmed_to)

    async def head(self, stream: str) -> Position:
        epoch, seq, _ = await self._meta(stream)
        return Position(epoch=epoch, seq=seq)

    async def resume(
        self, stream: str, epoch: str | None, after: int, *, limit: int = 10_000
    ) -> Replay | Reset:
        current, head, trimmed_to = await self._meta(stream)
        decided = plan_resume(epoch, after, current=current, head=head,
                              trimmed_to=trimmed_to, limit=limit)
        if decided is not None:
            return decided
        entries = await self.redis.xrange(
            self._log_key(stream), min=f"{after + 1}-0", max=f"{head}-0"
        )
        events = [
            StreamEvent(stream=stream, epoch=current, seq=_seq(entry_id),
                        ts=float(fields[b"t"]), payload=msgspec.json.decode(fields[b"p"]))
            for entry_id, fields in entries
        ]
        # The keys may have been lost and recreated while we read: check the epoch again.
        now_epoch, now_head, _ = await self._meta(stream)
        if now_epoch != current:
            return Reset(epoch=now_epoch, head=now_head, reason="epoch_changed")
        return complete_replay(events, after, current=current, head=head)

    async def subscribe(self, stream: str, after: Position | None = None) -> Subscription:
        return await start_subscription(self, stream, after, self._register, self._unregister)

    async def trim(self, now: float | None = None) -> int:
        """Drop events older than max_age from every stream of this prefix."""
        cutoff = (self.clock() if now is None else now) - self.max_age_s
        removed = 0
        async for key in self.redis.scan_iter(match=self._log_key("*"), count=500):
            log_key = _s(key)
            meta_key = log_key[: -len(":log")] + ":meta"
            epoch = await self.redis.hget(meta_key, "epoch")
            if epoch is None:
                continue  # being recreated: its next append bounds it
            cut = await self._last_older_than(log_key, cutoff)
            if cut:
                removed += int(await self._trim(keys=[meta_key, log_key], args=[epoch, cut]))
        return removed

    async def _last_older_than(self, log_key: str, cutoff: float) -> int:
        last, start = 0, "-"
        while True:
            batch = await self.redis.xrange(log_key, min=start, count=SWEEP_BATCH)
            for entry_id, fields in batch:
                if float(fields[b"t"]) >= cutoff:
                    return last
                last = _seq(entry_id)
            if len(batch) < SWEEP_BATCH:
                return last
            start = f"({_s(batch[-1][0])}"

    async def drop(self, stream: str) -> None:
        await self.redis.delete(self._meta_key(stream), self._log_key(stream))
        for sub in tuple(self._subs.get(stream, ())):
            sub.check()

    async def close(self) -> None:
        if self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer})  # appends already accepted are written
        for subs in list(self._subs.values()):
            for sub in list(subs):
                await sub.close()
        await self._close_pubsub()
        if self._link is not None:
            await self._link.aclose()

    # --- one pub/sub connection per store, shared by every local subscriber --------------

    async def _register(self, sub: QueueSubscription) -> None:
        """Returns once Redis confirmed the SUBSCRIBE, so a later append cannot be missed."""
        async with self._lock:
            subs = self._subs.setdefault(sub.stream, set())
            subs.add(sub)
            if len(subs) == 1:
                self._ready[sub.stream] = asyncio.Event()
                try:
                    await self._subscribe_locked(self._channel(sub.stream))
                except BaseException:
                    self._forget(sub)
                    raise
            self._ensure_listener()
            ready = self._ready[sub.stream]
        try:
            await asyncio.wait_for(ready.wait(), CONFIRM_TIMEOUT_S)
        except TimeoutError:  # the periodic head check still brings what we miss
            log.warning("stream subscription not confirmed", extra={"stream": sub.stream})

    def _forget(self, sub: QueueSubscription) -> bool:
        """Drop a local subscriber; True when it was its stream's last one."""
        subs = self._subs.get(sub.stream)
        if subs is None:
            return False
        subs.discard(sub)
        if subs:
            return False
        del self._subs[sub.stream]
        self._ready.pop(sub.stream, None)
        return True

    async def _unregister(self, sub: QueueSubscription) -> None:
        async with self._lock:
            if self._forget(sub):
                await self._unsubscribe_locked(self._channel(sub.stream))

    def _on_message(self, msg: dict[str, Any]) -> None:
        channel = _s(msg["channel"])
        stream = channel[len(self._channel("")):]
        subs = tuple(self._subs.get(stream, ()))
        if msg["type"] == "subscribe":
            ready = self._ready.get(stream)
            if ready is not None and ready.is_set():
                for sub in subs:  # resubscribed after a lost connection: look for gaps
                    sub.check()
            elif ready is not None:
                ready.set()
        elif msg["type"] == "message":
            try:
                epoch, seq, ts, payload = msg["data"].split(b"\n", 3)
                epoch_s, seq_n = epoch.decode(), int(seq)
                if all(sub.has(epoch_s, seq_n) for sub in subs):
                    return  # our own append, handed over already (QueueSubscription.offer)
                event = StreamEvent(stream=stream, epoch=epoch_s, seq=seq_n,
                                    ts=float(ts), payload=msgspec.json.decode(payload))
            except (ValueError, msgspec.DecodeError):
                log.warning("unreadable stream message", extra={"channel": channel})
                for sub in subs:
                    sub.check()
                return
            for sub in subs:
                sub.push(event)

    async def _check_all(self) -> None:
        """Nudge every subscriber whose stream moved past it (a lost last message)."""
        streams = list(self._subs)
        if not streams:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.hmget(self._meta_key(stream), "epoch", "seq")
            metas = await pipe.execute()
        for stream, (epoch, seq) in zip(streams, metas, strict=True):
            head = None if epoch is None else Position(epoch=_s(epoch), seq=int(seq))
            for sub in tuple(self._subs.get(stream, ())):
                if head is None:
                    sub.check()  # keys gone: the subscriber's head() makes the new epoch
                elif head.epoch != sub.epoch or head.seq > sub.last:
                    sub.check(head)

    # --- ResilientPubSub hooks ----------------------------------------------------------

    def _new_pubsub(self) -> Any:
        """Messages straight from the connection's parser to `_on_message` (redis_link.py)."""
        if not self._lean:
            return super()._new_pubsub()
        # Looked up at each message, as the listener loop does (tests replace it).
        return LeanPubSub(self.redis, lambda msg: self._on_message(msg))

    def _channels(self) -> list[str]:
        return [self._channel(stream) for stream in self._subs]

    async def _after_pass(self) -> None:
        """A slow periodic head check: a lost *last* message leaves no gap to notice."""
        if time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + self.check_every_s
            await self._check_all()

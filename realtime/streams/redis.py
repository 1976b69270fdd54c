"""Reliable streams in Redis: shared by every process and node.

Per stream `<prefix>:stream:<name>` there is a hash `…:meta` (epoch, seq, trimmed_to) and a
Redis Stream `…:log` whose entry ids are `<seq>-0`. One Lua script appends atomically (seq,
entry, size bound, publish on the stream's own channel), so seqs are gap-free across nodes.
Pub/sub is at-most-once: subscribers check seqs, fill gaps from the log, and a periodic head
check catches a lost last message. Keys that vanish (Redis restarted without persistence)
come back with a new epoch, so old positions get a Reset, never a wrong replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from realtime.streams.base import Position, Replay, Reset, StreamEvent, StreamStore, Subscription
from realtime.streams.rules import complete_replay, plan_resume
from realtime.streams.subscription import QueueSubscription, start_subscription

log = logging.getLogger(__name__)

_APPEND = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0, 'trimmed_to', 0)
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], seq .. '-0', 't', ARGV[2], 'p', ARGV[1])
local max_len = tonumber(ARGV[3])
if seq > max_len then
  redis.call('XTRIM', KEYS[2], 'MAXLEN', max_len)
  redis.call('HSET', KEYS[1], 'trimmed_to', seq - max_len)
end
local ttl = tonumber(ARGV[6])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
if ARGV[5] ~= '' then
  redis.call('PUBLISH', ARGV[5], epoch .. '\\n' .. seq .. '\\n' .. ARGV[2] .. '\\n' .. ARGV[1])
end
return {epoch, seq}
"""

_HEAD = """
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'trimmed_to')
if not meta[1] then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'seq', 0, 'trimmed_to', 0)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
  return {ARGV[1], 0, 0}
end
return {meta[1], tonumber(meta[2]), tonumber(meta[3])}
"""

CHECK_EVERY_S = 2.0


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStreamStore(StreamStore):
    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        max_len: int,
        max_age_s: int,
        clock: Callable[[], float] = time.time,
        publish: bool = True,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.max_len = max_len
        self.max_age_s = max_age_s
        self.clock = clock
        # publish=False makes an appender whose messages every subscriber misses: the honest
        # way for tests to show that gaps are detected and filled from the log.
        self.publish = publish
        self._append = redis.register_script(_APPEND)
        self._head = redis.register_script(_HEAD)
        self._subs: dict[str, set[QueueSubscription]] = {}
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

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
        data = msgspec.json.encode(payload)
        now = self.clock()
        epoch, seq = await self._append(
            keys=[self._meta_key(stream), self._log_key(stream)],
            args=[data, repr(now), self.max_len, secrets.token_hex(8),
                  self._channel(stream) if self.publish else "", self._ttl],
        )
        return StreamEvent(stream=stream, epoch=_s(epoch), seq=int(seq), ts=now, payload=payload)

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
            StreamEvent(
                stream=stream,
                epoch=current,
                seq=int(_s(entry_id).split("-", 1)[0]),
                ts=float(fields[b"t"]),
                payload=msgspec.json.decode(fields[b"p"]),
            )
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
        async for key in self.redis.scan_iter(match=f"{self.prefix}:stream:*:log", count=500):
            log_key = _s(key)
            meta_key = log_key[: -len(":log")] + ":meta"
            last_old = None
            start = "-"
            while True:
                batch = await self.redis.xrange(log_key, min=start, count=200)
                if not batch:
                    break
                for entry_id, fields in batch:
                    if float(fields[b"t"]) >= cutoff:
                        break
                    last_old = int(_s(entry_id).split("-", 1)[0])
                else:
                    start = f"({_s(batch[-1][0])}"
                    continue
                break
            if last_old is not None:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.xtrim(log_key, minid=f"{last_old + 1}-0", approximate=False)
                    pipe.hget(meta_key, "trimmed_to")
                    n, trimmed_to = await pipe.execute()
                removed += int(n)
                if trimmed_to is None or int(trimmed_to) < last_old:
                    await self.redis.hset(meta_key, "trimmed_to", last_old)
        return removed

    async def drop(self, stream: str) -> None:
        await self.redis.delete(self._meta_key(stream), self._log_key(stream))
        for sub in tuple(self._subs.get(stream, ())):
            sub.check()

    async def close(self) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                await sub.close()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None

    # --- one pub/sub connection per store, shared by every local subscriber --------------

    async def _register(self, sub: QueueSubscription) -> None:
        async with self._lock:
            subs = self._subs.setdefault(sub.stream, set())
            subs.add(sub)
            if self._pubsub is None:
                self._pubsub = self.redis.pubsub()
            if len(subs) == 1:
                await self._pubsub.subscribe(self._channel(sub.stream))
            if self._listener is None or self._listener.done():
                self._listener = asyncio.create_task(self._listen(), name="streams-pubsub")

    async def _unregister(self, sub: QueueSubscription) -> None:
        async with self._lock:
            subs = self._subs.get(sub.stream)
            if subs is None:
                return
            subs.discard(sub)
            if not subs:
                del self._subs[sub.stream]
                if self._pubsub is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await self._pubsub.unsubscribe(self._channel(sub.stream))

    def _dispatch(self, channel: str, data: bytes) -> None:
        stream = channel[len(self.prefix) + len(":stream:"):]
        epoch, seq, ts, payload = data.split(b"\n", 3)
        event = StreamEvent(stream=stream, epoch=epoch.decode(), seq=int(seq), ts=float(ts),
                            payload=msgspec.json.decode(payload))
        for sub in tuple(self._subs.get(stream, ())):
            sub.push(event)

    async def _check_all(self) -> None:
        for stream, subs in list(self._subs.items()):
            head = await self.head(stream)
            for sub in tuple(subs):
                sub.check(head)

    async def _listen(self) -> None:
        next_check = time.monotonic() + CHECK_EVERY_S
        backoff = 0.1
        while True:
            try:
                if self._pubsub is None or not self._pubsub.subscribed:
                    await asyncio.sleep(0.05)
                else:
                    msg = await self._pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=0.5
                    )
                    if msg and msg["type"] == "message":
                        self._dispatch(_s(msg["channel"]), msg["data"])
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + CHECK_EVERY_S
                    await self._check_all()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("stream pub/sub lost, reconnecting", extra={"error": str(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                await self._resubscribe()

    async def _resubscribe(self) -> None:
        """A fresh pub/sub connection, then every subscriber checks what it missed."""
        async with self._lock:
            old, self._pubsub = self._pubsub, self.redis.pubsub()
            if old is not None:
                with contextlib.suppress(Exception):
                    await old.aclose()
            try:
                channels = [self._channel(s) for s in self._subs]
                if channels:
                    await self._pubsub.subscribe(*channels)
            except (RedisError, OSError):
                return  # still down: the listener retries
        with contextlib.suppress(RedisError, OSError):
            await self._check_all()

"""Reliable streams (see base.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from realtime.streams.base import Position, Replay, Reset, StreamEvent, StreamStore, Subscription

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from realtime.db import Database
    from realtime.settings import Settings

__all__ = ["Position", "Replay", "Reset", "StreamEvent", "StreamStore", "Subscription",
           "open_stream_store"]


def open_stream_store(
    settings: Settings, db: Database, redis: aioredis.Redis | None
) -> StreamStore:
    """Redis when there is one, because several processes must hear of each other's appends
    (live delivery across processes is Redis pub/sub); otherwise the database (the SQLite
    file, or PostgreSQL), durable, for the one process `serve` then allows."""
    if redis is not None:
        from realtime.streams.redis import RedisStreamStore

        return RedisStreamStore(redis, settings.redis_prefix, settings.stream_max_len,
                                settings.stream_max_age_s)
    from realtime.streams.sql import SqlStreamStore

    return SqlStreamStore(db, settings.stream_max_len, settings.stream_max_age_s,
                             group_s=settings.stream_group_ms / 1000)

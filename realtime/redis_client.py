"""One way to open a Redis client, for the app and for tools."""

from __future__ import annotations

import redis.asyncio as aioredis

MAX_CONNECTIONS = 64


def connect(url: str, max_connections: int = MAX_CONNECTIONS) -> aioredis.Redis:
    """A client whose pool waits for a free connection under a burst instead of failing
    (redis-py's default pool raises "Too many connections")."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=10, health_check_interval=15
    )
    return aioredis.Redis(connection_pool=pool, decode_responses=False)

"""One Redis connection pool per process and URL."""

from __future__ import annotations

import functools

import redis

from pipeline.settings import get_settings


@functools.lru_cache(maxsize=8)
def redis_for(url: str) -> redis.Redis:
    # Generous socket timeouts: a worker blocked on a dead Redis must notice
    # and retry rather than hang forever, but slow scripts must not time out.
    return redis.Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30
    )


def get_redis() -> redis.Redis:
    return redis_for(get_settings().redis_url)

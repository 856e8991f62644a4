"""One Redis connection pool per process and URL."""

from __future__ import annotations

import functools
import logging
import time
from typing import Callable, TypeVar

import redis

from pipeline.settings import get_settings

logger = logging.getLogger("pipeline.state")
T = TypeVar("T")


@functools.lru_cache(maxsize=8)
def redis_for(url: str) -> redis.Redis:
    # Generous socket timeouts: a worker blocked on a dead Redis must notice
    # and retry rather than hang forever, but slow scripts must not time out.
    return redis.Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30
    )


def get_redis() -> redis.Redis:
    return redis_for(get_settings().redis_url)


def wait_for_redis(call: Callable[[], T], what: str) -> T:
    """Run *call*, retrying for as long as Redis is unreachable.

    For workers: a task whose state cannot be recorded waits (its message
    stays unacked, nothing is lost) instead of running untracked.
    """
    delay = 0.5
    while True:
        try:
            return call()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            logger.warning("Redis unavailable while %s (%s); retrying in %.1fs", what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

"""An asyncio Redis client for the running event loop, for reads that need no thread.

Most engine calls go through the thread pool (:mod:`api.blocking`); the
hottest, a task's record by id, is one HGETALL that an asyncio client does
on the loop itself, which costs less than handing it to a thread and back.
A client belongs to one event loop (each API process has one; tests run
several), so it is made per loop.
"""

from __future__ import annotations

import asyncio
from typing import Optional

import redis.asyncio

from pipeline.redis_client import make_async_redis


class LoopRedis:
    def __init__(self) -> None:
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._client: Optional[redis.asyncio.Redis] = None

    def client(self, url: str) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._client = loop, make_async_redis(url)
        return self._client

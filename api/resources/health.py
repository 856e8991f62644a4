"""Liveness and readiness, without authentication (load balancers and orchestrators call them).

``/health`` says the process answers HTTP and touches nothing else, so a
Redis outage never gets healthy API processes restarted; it runs on the
event loop without a thread, so it answers while every thread of the pool
waits on a slow service. ``/ready`` checks that Redis and RabbitMQ answer,
with short timeouts, and names what failed. Its answer is kept for
:data:`READY_CACHE_SECONDS`: an orchestrator polling every instance must not
open a RabbitMQ connection per call, and concurrent calls share one check.
"""

from __future__ import annotations

import asyncio
import time
from typing import Optional

import falcon
import redis

from api.auth import PUBLIC
from api.blocking import run_blocking
from api.errors import RETRY_AFTER_SECONDS, ApiError
from api.models import Health
from api.validation import Endpoint
from pipeline.amqp import connect
from pipeline.redis_client import make_redis
from pipeline.settings import Settings

TAG = "health"
CHECK_TIMEOUT_SECONDS = 2
READY_CACHE_SECONDS = 1.5


class HealthResource:
    access = {"GET": PUBLIC}
    endpoints = {"GET": Endpoint("Liveness: the process answers", TAG, operation_id="getHealth", response=Health)}

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok", "checks": {}}


class ReadyResource:
    access = {"GET": PUBLIC}
    endpoints = {"GET": Endpoint("Readiness: Redis and RabbitMQ answer (cached 1.5 s)", TAG, operation_id="getReadiness", response=Health,
                                 errors=(503,))}

    def __init__(self, settings: Settings):
        self.broker_url = settings.broker_url
        self.redis = make_redis(
            settings.redis_url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS
        )
        self._checked_at = float("-inf")
        self._failed: dict[str, str] = {}
        self._running: Optional[asyncio.Future] = None

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        failed = await self.failures()
        if failed:
            raise ApiError(503, "Not ready", "; ".join(f"{name}: {reason}" for name, reason in failed.items()),
                           fields=failed, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        resp.media = {"status": "ready", "checks": {"redis": "ok", "rabbitmq": "ok"}}

    async def failures(self) -> dict[str, str]:
        """{service: reason} of the last check, checking again when it is older than the cache time."""
        if time.monotonic() - self._checked_at < READY_CACHE_SECONDS:
            return self._failed
        if self._running is None:  # the first caller checks; the others wait for its answer
            self._running = asyncio.ensure_future(run_blocking(self._check))
        running = self._running
        try:
            self._failed = await asyncio.shield(running)
        finally:
            if self._running is running and running.done():
                self._running = None
                self._checked_at = time.monotonic()
        return self._failed

    def _check(self) -> dict[str, str]:
        checks = (("redis", self._redis()), ("rabbitmq", self._rabbitmq()))
        return {name: reason for name, reason in checks if reason}

    def _redis(self) -> str:
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            return f"does not answer ({type(exc).__name__})"
        return ""

    def _rabbitmq(self) -> str:
        try:
            connect(self.broker_url, CHECK_TIMEOUT_SECONDS).close()  # any node of a cluster will do
        except Exception as exc:  # pika raises many unrelated types for one cause
            return f"does not answer ({type(exc).__name__})"
        return ""

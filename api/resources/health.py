"""Liveness and readiness, without authentication (load balancers and orchestrators call them).

``/health`` says the process answers HTTP and touches nothing else, so a
Redis outage never gets healthy API processes restarted. ``/ready`` checks
that Redis and RabbitMQ answer, with short timeouts, and names what failed.
"""

from __future__ import annotations

import falcon
import redis

from api.auth import PUBLIC
from api.errors import RETRY_AFTER_SECONDS, ApiError
from api.validation import Endpoint, Health
from pipeline.amqp import connect
from pipeline.redis_client import make_redis
from pipeline.settings import Settings

TAG = "health"
CHECK_TIMEOUT_SECONDS = 2


class HealthResource:
    roles = {"GET": PUBLIC}
    endpoints = {"GET": Endpoint("Liveness: the process answers", TAG, response=Health)}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok", "checks": {}}


class ReadyResource:
    roles = {"GET": PUBLIC}
    endpoints = {"GET": Endpoint("Readiness: Redis and RabbitMQ answer", TAG, response=Health, errors=(503,))}

    def __init__(self, settings: Settings):
        self.broker_url = settings.broker_url
        self.redis = make_redis(
            settings.redis_url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS
        )

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        failed = {name: reason for name, reason in (("redis", self._redis()), ("rabbitmq", self._rabbitmq())) if reason}
        if failed:
            raise ApiError(503, "Not ready", "; ".join(f"{name}: {reason}" for name, reason in failed.items()),
                           fields=failed, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        resp.media = {"status": "ready", "checks": {"redis": "ok", "rabbitmq": "ok"}}

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

"""Checks that the services named in settings answer, with a one-line diagnosis."""

from __future__ import annotations

import logging

import redis

from pipeline.amqp import connect, node_urls
from pipeline.errors import ConfigError
from pipeline.redis_client import make_redis
from pipeline.settings import Settings, redact_url

START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'
START_RABBITMQ = "rabbitmq-server -detached"


def check_redis(settings: Settings) -> None:
    try:
        make_redis(settings.redis_url, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as exc:
        raise ConfigError(
            f"CLAW_REDIS_URL: Redis at {redact_url(settings.redis_url)} does not answer ({exc}); "
            f"start it (locally: {START_REDIS}) or fix the URL"
        ) from None


def check_rabbitmq(settings: Settings) -> None:
    """Passes when one node of CLAW_BROKER_URL answers (the others may be down: that is what a cluster is for).

    pika logs a failed connection at ERROR, with a traceback, on its way to raising it: during this check
    the one line below says it all, so pika is quiet meanwhile.
    """
    pika_log = logging.getLogger("pika")
    level = pika_log.level
    pika_log.setLevel(logging.CRITICAL)
    try:
        connect(settings.broker_url, timeout=3).close()
    except Exception as exc:  # pika raises many unrelated types for one cause
        where = "; ".join(redact_url(url) for url in node_urls(settings.broker_url))
        raise ConfigError(
            f"CLAW_BROKER_URL: RabbitMQ at {where} does not answer ({type(exc).__name__}); "
            f"start it (locally: {START_RABBITMQ}) or fix the URL"
        ) from None
    finally:
        pika_log.setLevel(level)


def check_services(settings: Settings) -> None:
    check_redis(settings)
    check_rabbitmq(settings)

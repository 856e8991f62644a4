"""FreshPublisher: publishing after a long idle spell never hits a dead connection.

Dramatiq keeps one pika BlockingConnection per publishing thread, and pika
only answers heartbeats while it is in use. An API or scheduler thread that
stays quiet for longer than the heartbeat timeout finds its connection
closed by RabbitMQ, and the next publish logs errors before reconnecting.
So a connection idle for a third of the heartbeat timeout is discarded
before the publish and a fresh one is opened: one reconnect, no error. The
close of a discarded connection is silenced, since RabbitMQ may already
have dropped it and pika would log that as an error.
"""

from __future__ import annotations

import logging
import threading
import time

import pika
from dramatiq.middleware import Middleware

from pipeline.amqp import node_urls

#: RabbitMQ's default heartbeat timeout, used when the URL sets none.
DEFAULT_HEARTBEAT_SECONDS = 60
PIKA_LOGGERS = (
    "pika.adapters.utils.io_services_utils",
    "pika.adapters.base_connection",
    "pika.adapters.blocking_connection",
    "pika.adapters.utils.connection_workflow",
    "pika.connection",
    "pika.channel",
)
_local = threading.local()


class _WhileDiscarding(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_local, "discarding", False)


def _install_filter() -> None:
    for name in PIKA_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _WhileDiscarding) for f in logger.filters):
            logger.addFilter(_WhileDiscarding())


def discard_thread_connection(broker) -> None:
    """Forget this thread's publishing connection and close it quietly."""
    connection = getattr(broker.state, "connection", None)
    channel = getattr(broker.state, "channel", None)
    if channel is not None:
        del broker.state.channel
        broker.channels.discard(channel)
    if connection is None:
        return
    del broker.state.connection
    broker.connections.discard(connection)
    _local.discarding = True
    try:
        connection.close()
    except Exception:  # already dropped by RabbitMQ: nothing left to close
        pass
    finally:
        _local.discarding = False


class FreshPublisher(Middleware):
    def __init__(self, broker_url: str):
        heartbeat = pika.URLParameters(node_urls(broker_url)[0]).heartbeat
        # RabbitMQ drops a connection after two missed heartbeats.
        self.max_idle = (heartbeat or DEFAULT_HEARTBEAT_SECONDS) / 3
        _install_filter()

    def before_enqueue(self, broker, message, delay):
        now = time.monotonic()
        last = getattr(broker.state, "claw_last_publish", None)
        if last is not None and now - last > self.max_idle:
            discard_thread_connection(broker)
        broker.state.claw_last_publish = now

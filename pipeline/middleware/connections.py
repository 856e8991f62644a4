"""FreshPublisher: publishing after a long idle spell never hits a dead connection.

Dramatiq keeps one pika BlockingConnection per publishing thread, and pika
only answers heartbeats while it is in use. An API or scheduler thread that
stays quiet for longer than the heartbeat timeout finds its connection
closed by RabbitMQ, and the next publish logs errors before reconnecting.
Closing a connection that has been idle for a while, while it is still
healthy, costs one reconnect and no error.
"""

from __future__ import annotations

import time

import pika
from dramatiq.middleware import Middleware

#: RabbitMQ's default heartbeat timeout, used when the URL sets none.
DEFAULT_HEARTBEAT_SECONDS = 60


class FreshPublisher(Middleware):
    def __init__(self, broker_url: str):
        heartbeat = pika.URLParameters(broker_url.split(";")[0]).heartbeat
        # RabbitMQ drops a connection after two missed heartbeats; reconnect
        # well before the first one is missed.
        self.max_idle = (heartbeat or DEFAULT_HEARTBEAT_SECONDS) / 3

    def before_enqueue(self, broker, message, delay):
        now = time.monotonic()
        last = getattr(broker.state, "claw_last_publish", None)
        if last is not None and now - last > self.max_idle:
            del broker.connection
        broker.state.claw_last_publish = now

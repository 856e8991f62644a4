"""RabbitMQ queue depths, for the API, the dashboard and the health check.

Dramatiq keeps three queues per logical queue Q: Q itself, Q.DQ (delayed
messages, held *unacked* by a worker until their eta) and Q.XQ (dead letters).
Depths come from the management HTTP API, which knows unacked counts and
rates; when it does not answer, passive declares over AMQP still give the
ready and consumer counts (the rest is reported as None, not as zero).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Iterable
from urllib.parse import quote

import pika
import requests

from pipeline.amqp import connect, node_urls
from pipeline.errors import BrokerUnavailable
from pipeline.settings import Settings

MANAGEMENT_TIMEOUT_SECONDS = 1.5
AMQP_TIMEOUT_SECONDS = 3
STAT_FIELDS = ("ready", "unacked", "delayed", "dead_lettered", "consumers", "publish_rate", "deliver_rate")
_COLUMNS = ",".join((
    "messages_ready", "messages_unacknowledged", "consumers",
    "message_stats.publish_details.rate", "message_stats.deliver_get_details.rate",
))


class _ManagementUnavailable(Exception):
    pass


def queue_stats(settings: Settings, queue_names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Depths, consumers and rates of each queue (with its .DQ and .XQ).

    ``source`` says where the numbers came from: "management", or "amqp"
    (ready, dead_lettered and consumers only) when the management API is off.
    """
    names = list(queue_names)
    try:
        return _from_management(settings, names)
    except _ManagementUnavailable:
        return _from_amqp(settings, names)


def _vhost(settings: Settings) -> str:
    return pika.URLParameters(node_urls(settings.broker_url)[0]).virtual_host


def _from_management(settings: Settings, names: list[str]) -> dict[str, dict[str, Any]]:
    base = settings.rabbitmq_management_url.rstrip("/") + "/api/queues/" + quote(_vhost(settings), safe="")
    with requests.Session() as session:

        def get(name: str) -> dict[str, Any]:
            try:
                response = session.get(f"{base}/{quote(name, safe='')}", params={"columns": _COLUMNS},
                                       timeout=MANAGEMENT_TIMEOUT_SECONDS)
            except requests.RequestException as exc:
                raise _ManagementUnavailable(str(exc)) from None
            if response.status_code == 404:
                return {}  # never declared: empty
            if response.status_code != 200:
                raise _ManagementUnavailable(f"HTTP {response.status_code}")
            body = response.json()
            # A queue declared in the last few seconds has no statistics yet: the API answers [].
            return body if isinstance(body, dict) else {}

        stats = {}
        for name in names:
            main, delayed, dead = get(name), get(f"{name}.DQ"), get(f"{name}.XQ")
            rates = main.get("message_stats", {})
            stats[name] = {
                "ready": main.get("messages_ready", 0),
                "unacked": main.get("messages_unacknowledged", 0),
                "delayed": delayed.get("messages_ready", 0) + delayed.get("messages_unacknowledged", 0),
                "dead_lettered": dead.get("messages_ready", 0) + dead.get("messages_unacknowledged", 0),
                "consumers": main.get("consumers", 0),
                "publish_rate": rates.get("publish_details", {}).get("rate", 0.0),
                "deliver_rate": rates.get("deliver_get_details", {}).get("rate", 0.0),
                "source": "management",
            }
        return stats


def _from_amqp(settings: Settings, names: list[str]) -> dict[str, dict[str, Any]]:
    try:
        connection = connect(settings.broker_url, AMQP_TIMEOUT_SECONDS)
    except pika.exceptions.AMQPError as exc:
        raise BrokerUnavailable(f"RabbitMQ does not answer: {type(exc).__name__}") from None
    try:
        stats = {}
        for name in names:
            ready, consumers = _passive_declare(connection, name)
            dead, _ = _passive_declare(connection, f"{name}.XQ")
            stats[name] = {**dict.fromkeys(STAT_FIELDS), "ready": ready, "consumers": consumers,
                           "dead_lettered": dead, "source": "amqp"}
        return stats
    finally:
        connection.close()


def _passive_declare(connection, name: str) -> tuple[int, int]:
    channel = connection.channel()
    try:
        method = channel.queue_declare(name, passive=True).method
        return method.message_count, method.consumer_count
    except pika.exceptions.ChannelClosedByBroker:
        return 0, 0  # never declared: empty
    finally:
        if channel.is_open:
            channel.close()


class QueueStatsCache:
    """Queue stats at most *ttl* seconds old, fetched by one thread at a time.

    The management API refreshes its numbers every 5 s, so asking it on every
    API request would only add latency (about 10 ms per queue).
    """

    def __init__(self, settings: Settings, ttl: float = 2.0):
        self.settings = settings
        self.ttl = ttl
        self._lock = threading.Lock()
        self._value: dict[tuple[str, ...], tuple[float, dict[str, dict[str, Any]]]] = {}

    def get(self, queue_names: Iterable[str]) -> dict[str, dict[str, Any]]:
        key = tuple(sorted(queue_names))
        with self._lock:
            fetched_at, stats = self._value.get(key, (0.0, {}))
            if time.monotonic() - fetched_at > self.ttl:
                stats = queue_stats(self.settings, key)
                self._value[key] = (time.monotonic(), stats)
            return stats

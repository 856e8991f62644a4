"""RabbitMQ queue depths and the dead-letter queue, for the API and operators.

Dramatiq keeps three queues per logical queue Q: Q itself, Q.DQ (delayed
messages, held *unacked* by a worker until their eta) and Q.XQ (dead letters).
Depths come from the management HTTP API, which knows unacked counts and
rates; when it does not answer, passive declares over AMQP still give the
ready and consumer counts (the rest is reported as None, not as zero).

:func:`requeue_dead` moves dead-lettered messages back to their queue and
resets their task records to PENDING *before* the messages are published, so
a worker can never meet a requeued message whose record still says FAILURE
(it would dead-letter it again as a finished task).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Optional
from urllib.parse import quote

import pika
import requests
from dramatiq.errors import ConnectionClosed, DecodeError

from pipeline.encoder import CompressedJSONEncoder
from pipeline.errors import BrokerUnavailable
from pipeline.settings import Settings
from pipeline.state import scripts
from pipeline.state.store import to_json

MANAGEMENT_TIMEOUT_SECONDS = 1.5
AMQP_TIMEOUT_SECONDS = 3
MAX_REQUEUE = 10_000
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
    return pika.URLParameters(settings.broker_url.split(";")[0]).virtual_host


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
    params = pika.URLParameters(settings.broker_url.split(";")[0])
    params.socket_timeout = params.blocked_connection_timeout = AMQP_TIMEOUT_SECONDS
    params.connection_attempts = 1
    try:
        connection = pika.BlockingConnection(params)
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


# -- dead letters ----------------------------------------------------------------------------

#: FAILURE -> PENDING, undoing what FINISH did: expiry, result, error, attempts.
#: A task that was already retried by hand (``retried_by``) is not reset, so
#: requeueing its dead message can never run the work a second time.
# ARGV: P, id, now, result_key
REQUEUE = scripts.PRELUDE + r"""
local id, now = ARGV[2], ARGV[3]
local key = P..':t:'..id
local r = redis.call('HMGET', key, 'state', 'actor', 'queue', 'score', 'retried_by', 'error')
if not r[1] then return {'MISSING', ''} end
if r[1] ~= 'FAILURE' then return {r[1], ''} end
if r[5] then return {'RETRIED', ''} end
redis.call('PERSIST', key)
redis.call('ZREM', P..':exp', id..'\31'..r[2]..'\31'..r[3]..'\31FAILURE')
redis.call('HDEL', key, 'finished_at', 'error', 'result', 'runtime_ms', 'started_at', 'worker', 'eta',
           'wait_reason', 'cancel_requested')
redis.call('HSET', key, 'state', 'PENDING', 'attempts', '0')
move(id, r[4], r[2], r[3], 'FAILURE', 'PENDING')
for _, k in ipairs({P..':i:all', P..':i:a:'..r[2], P..':i:q:'..r[3]}) do redis.call('ZADD', k, r[4], id) end
redis.call('DEL', ARGV[4])
event(id, 'PENDING', now)
return {'RESET', r[6] or ''}
"""


@dataclass
class DeadMessage:
    tag: int
    properties: pika.BasicProperties
    body: bytes
    task_id: str
    actor: str
    queue: str


def requeue_dead(engine, queue: str, task_ids: Optional[Iterable[str]] = None) -> int:
    """Move dead-lettered messages of *queue* (all, or those of *task_ids*) back to it.

    Returns how many were requeued. Messages whose task cannot run again (it
    finished otherwise, or was retried by hand) and undecodable ones stay in
    the dead-letter queue. Publishes and acks happen in one AMQP transaction.
    At most MAX_REQUEUE messages are looked at per call (each is one
    basic_get and is held in memory until the commit); call again for more.
    """
    wanted = set(task_ids) if task_ids is not None else None
    channel = _channel(engine, queue)
    try:
        channel.tx_select()
        depth = min(MAX_REQUEUE, channel.queue_declare(f"{queue}.XQ", passive=True).method.message_count)
        selected, others = _drain(channel, f"{queue}.XQ", depth, wanted)
        requeued, previous_errors = [], {}
        reset = engine.store.redis.register_script(REQUEUE)
        for message in selected:
            outcome, error = _reset_record(engine, reset, message)
            if outcome in ("RESET", "MISSING"):  # MISSING: expired; the worker records it again
                channel.basic_publish("", queue, message.body,
                                      pika.BasicProperties(delivery_mode=2, priority=message.properties.priority))
                channel.basic_ack(message.tag)
                requeued.append(message)
                if outcome == "RESET":
                    previous_errors[message.task_id] = error
            else:
                others.append(message.tag)
        for tag in others:
            channel.basic_nack(tag, requeue=True)
        _commit(engine, channel, previous_errors)
        return len(requeued)
    finally:
        if channel.is_open:
            channel.close()


def _channel(engine, queue: str):
    """A channel on the broker's connection, with *queue* (and its .DQ/.XQ) declared,
    so a requeued message can never be published to a queue that does not exist."""
    try:
        engine.broker.declare_queue(queue, ensure=True)
        return engine.broker.connection.channel()
    except (pika.exceptions.AMQPError, ConnectionClosed) as exc:
        del engine.broker.connection
        raise BrokerUnavailable(f"RabbitMQ does not answer: {type(exc).__name__}") from None


def _drain(channel, name: str, depth: int, wanted: Optional[set[str]]) -> tuple[list[DeadMessage], list[int]]:
    """basic_get up to *depth* messages (the depth when we started, so messages
    put back are never fetched twice); split them into selected and others."""
    decoder = CompressedJSONEncoder()
    selected: list[DeadMessage] = []
    others: list[int] = []
    for _ in range(depth):
        method, properties, body = channel.basic_get(name, auto_ack=False)
        if method is None:
            break
        try:
            data = decoder.decode(body)
        except DecodeError:
            others.append(method.delivery_tag)  # listed by the store as undecodable; left here
            continue
        if wanted is None or data["message_id"] in wanted:
            queue = data["queue_name"].removesuffix(".DQ")
            selected.append(
                DeadMessage(method.delivery_tag, properties, body, data["message_id"], data["actor_name"], queue)
            )
            if wanted is not None and len(selected) == len(wanted):
                break
        else:
            others.append(method.delivery_tag)
    return selected, others


def _reset_record(engine, script, message: DeadMessage) -> tuple[str, str]:
    """FAILURE -> PENDING (see REQUEUE); returns (RESET | MISSING | RETRIED | the state, the previous error)."""
    from pipeline.client import result_key

    key = result_key(engine, {"task_id": message.task_id, "queue": message.queue, "actor": message.actor})
    outcome, error = script(args=[engine.store.namespace, message.task_id, f"{time.time():.6f}", key])
    return outcome, error


def _commit(engine, channel, previous_errors: dict[str, str]) -> None:
    """Commit; if RabbitMQ refuses, put the reset records back to FAILURE."""
    try:
        channel.tx_commit()
    except pika.exceptions.AMQPError as exc:
        now = f"{time.time():.6f}"
        for task_id, error in previous_errors.items():
            engine.store.finish(task_id, "FAILURE", {"finished_at": now, "error": error or to_json({})})
        raise BrokerUnavailable(f"RabbitMQ did not take the requeued messages: {type(exc).__name__}") from None

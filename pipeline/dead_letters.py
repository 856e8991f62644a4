"""Dead letters: failed tasks' messages in RabbitMQ's ``<queue>.XQ``, requeued or deleted.

A failed task lives twice: its FAILURE record in Redis and, usually, its
message in the dead-letter queue. Both operator actions keep the two in step:

* :func:`requeue_dead` moves messages back to their queue and resets their
  records to PENDING *before* the messages are published, so a worker can
  never meet a requeued message whose record still says FAILURE (it would
  dead-letter it again as a finished task);
* :func:`delete_failed` drops the messages first, in one AMQP transaction,
  and the records after them. Deleting only the record would leave a message
  that a later "requeue all" revives as an unknown task and runs again; if
  Redis fails in between, the record is still FAILURE with no message left,
  and deleting it again finishes the job.

Messages are found by reading the dead-letter queue (``basic_get``), so an
action costs one round trip per dead-lettered message of that queue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Optional

import pika
from dramatiq.errors import ConnectionClosed, DecodeError

from pipeline.encoder import CompressedJSONEncoder, to_json
from pipeline.engine import Engine
from pipeline.errors import BrokerUnavailable

#: Messages looked at per requeue call (each is one basic_get, held in memory until the commit).
MAX_REQUEUE = 10_000


@dataclass
class DeadMessage:
    tag: int
    properties: pika.BasicProperties
    body: bytes
    task_id: str
    actor: str
    queue: str


def requeue_dead(engine: Engine, queue: str, task_ids: Optional[Iterable[str]] = None) -> int:
    """Move dead-lettered messages of *queue* (all, or those of *task_ids*) back to it.

    Returns how many were requeued. Messages whose task cannot run again (it
    finished otherwise, or was retried by hand) and undecodable ones stay in
    the dead-letter queue. Publishes and acks happen in one AMQP transaction.
    At most MAX_REQUEUE messages are looked at per call; call again for more.
    """
    wanted = set(task_ids) if task_ids is not None else None
    channel = _channel(engine, queue)
    try:
        channel.tx_select()
        depth = min(MAX_REQUEUE, channel.queue_declare(f"{queue}.XQ", passive=True).method.message_count)
        selected, others = _drain(channel, f"{queue}.XQ", depth, wanted, engine.settings.max_message_bytes)
        requeued, previous_errors = [], {}
        for message in selected:
            record = {"task_id": message.task_id, "queue": message.queue, "actor": message.actor}
            outcome, error = engine.store.requeue_failed(message.task_id, engine.result_key(record))
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


def delete_failed(engine: Engine, queue: str, task_ids: Iterable[str]) -> int:
    """Delete the FAILURE tasks *task_ids* of *queue*; returns how many records were removed."""
    wanted = set(task_ids)
    if not wanted:
        return 0
    discard_dead_messages(engine, queue, wanted)
    removed = 0
    for record in engine.store.get_many(sorted(wanted)):
        if record is not None and record["queue"] == queue:
            removed += engine.store.delete_failed(record["task_id"], engine.result_key(record))
    return removed


def discard_dead_messages(engine: Engine, queue: str, task_ids: set[str]) -> int:
    """Ack (drop) the dead-lettered messages of *task_ids*; every other message is put back."""
    channel = _channel(engine, queue)
    try:
        channel.tx_select()
        depth = channel.queue_declare(f"{queue}.XQ", passive=True).method.message_count
        selected, others = _drain(channel, f"{queue}.XQ", depth, task_ids, engine.settings.max_message_bytes)
        for message in selected:
            channel.basic_ack(message.tag)
        for tag in others:
            channel.basic_nack(tag, requeue=True)
        channel.tx_commit()
        return len(selected)
    finally:
        if channel.is_open:
            channel.close()


def _channel(engine: Engine, queue: str):
    """A channel on the broker's connection, with *queue* (and its .DQ/.XQ) declared,
    so a requeued message can never be published to a queue that does not exist."""
    try:
        engine.broker.declare_queue(queue, ensure=True)
        return engine.broker.connection.channel()
    except (pika.exceptions.AMQPError, ConnectionClosed) as exc:
        del engine.broker.connection
        raise BrokerUnavailable(f"RabbitMQ does not answer: {type(exc).__name__}") from None


def _drain(channel, name: str, depth: int, wanted: Optional[set[str]], max_bytes: int) -> tuple[list[DeadMessage], list[int]]:
    """basic_get up to *depth* messages (the depth when we started, so messages
    put back are never fetched twice); split them into selected and others.
    Bodies inflate to at most *max_bytes* (a gzip bomb stays where it is)."""
    decoder = CompressedJSONEncoder(max_bytes=max_bytes)
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


def _commit(engine: Engine, channel, previous_errors: dict[str, str]) -> None:
    """Commit; if RabbitMQ refuses, put the reset records back to FAILURE."""
    try:
        channel.tx_commit()
    except pika.exceptions.AMQPError as exc:
        now = f"{time.time():.6f}"
        for task_id, error in previous_errors.items():
            engine.store.finish(task_id, "FAILURE", {"finished_at": now, "error": error or to_json({})})
        raise BrokerUnavailable(f"RabbitMQ did not take the requeued messages: {type(exc).__name__}") from None

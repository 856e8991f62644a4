"""The Python API: submit tasks, look them up, cancel and retry them.

The API resources, the scheduler and the CLI all go through here, so a
task submitted any way gets the same validation, record and guarantees:
its record exists before RabbitMQ has the message (a worker can never
start an unknown task), and a message RabbitMQ did not confirm is reported
as BrokerUnavailable with its record removed (nothing half-accepted stays).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional, Sequence

import pika
from dramatiq import Message
from dramatiq.errors import BrokerError

from pipeline.context import running_task
from pipeline.engine import Engine, get_engine
from pipeline.errors import BrokerUnavailable, InvalidArguments, InvalidTransition, SubmissionInProgress, TaskNotFound
from pipeline.owners import LOCAL, Owner
from pipeline.publisher import publish_batch
from pipeline.state import WAITING, NewTask, exception_result, idempotency_claim, new_task_id, new_task_ids, untracked
from pipeline.observability import logs
from pipeline.observability.message import stamp
from pipeline.registry import MAX_DELAY_MS, MAX_PRIORITY, get_task, policy_of, queue_names

MAX_BULK = 1000
#: A task recorded under an idempotency key but not yet published is given
#: this long to be published by the request that recorded it.
ORPHAN_AFTER_SECONDS = 10.0


@dataclass
class Submission:
    """One task to submit. ``delay_ms`` and ``eta`` (a datetime) are alternatives.

    ``user_id``/``tenant_id``: the end user the task is for (see :mod:`pipeline.owners`);
    ``submitted_by``: who submits it (a token's name; ``python`` by default). A task
    submitted while another runs belongs to the same user and is ``submitted_by``
    ``task:<its id>`` unless told otherwise.
    """

    actor: str
    args: Sequence[Any] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    priority: Optional[int] = None
    delay_ms: Optional[int] = None
    eta: Optional[datetime] = None
    idempotency_key: Optional[str] = None
    #: One of the declared queues (without CLAW_QUEUE_PREFIX); None: the actor's.
    queue: Optional[str] = None
    user_id: Optional[str] = None
    tenant_id: Optional[str] = None
    submitted_by: Optional[str] = None

    def owner(self) -> Owner:
        return owner_for(self.user_id, self.tenant_id, self.submitted_by)


def owner_for(user_id: Optional[str], tenant_id: Optional[str], submitted_by: Optional[str]) -> Owner:
    """The owner of a submission (a task's, a workflow's): as given, or, from inside a running task
    when no submitter is named, the running task's user and ``task:<its id>``."""
    current = running_task()
    if submitted_by is None and current.task_id is not None:
        if user_id is None:
            return Owner(current.owner.user_id, current.owner.tenant_id, f"task:{current.task_id}").check()
        return Owner(user_id, tenant_id, f"task:{current.task_id}").check()
    return Owner(user_id, tenant_id, submitted_by or LOCAL).check()


def message_for(record: dict, payload: dict) -> Message:
    """The message of a recorded task (to publish it again: an orphaned submission, a lost task)."""
    return Message(record["queue"], record["actor"], tuple(payload["args"]), payload["kwargs"],
                   {"broker_priority": record["priority"], **Owner.of_record(record).options()},
                   message_id=record["task_id"])


def _prepare(engine: Engine, sub: Submission, task_id: str, retry_of: Optional[str] = None):
    spec = get_task(sub.actor)
    kwargs = spec.validate_kwargs(dict(sub.kwargs or {}))
    if spec.args_model is not None and sub.args:
        raise InvalidArguments(f"{sub.actor} takes keyword arguments only", {"args": "must be empty"})
    policy = policy_of(engine.broker, sub.actor)
    priority = policy.priority if sub.priority is None else sub.priority
    if not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
        raise InvalidArguments("invalid priority", {"priority": f"must be an integer 0..{MAX_PRIORITY}"})
    delay_ms = _delay(sub)
    owner = sub.owner()
    now = time.time()
    queue = _queue(engine, sub, spec)
    record = NewTask(
        task_id=task_id,
        actor=sub.actor,
        queue=queue,
        priority=priority,
        max_retries=policy.max_retries,
        args=list(sub.args),
        kwargs=kwargs,
        eta=now + delay_ms / 1000 if delay_ms else None,
        retry_of=retry_of,
        idempotency_key=sub.idempotency_key,
        options={"delay_ms": delay_ms} if delay_ms else None,
        request_id=logs.request_id(),
        owner=owner,
    )
    message = Message(
        queue_name=queue,
        actor_name=sub.actor,
        args=tuple(sub.args),
        kwargs=kwargs,
        options=stamp({"broker_priority": priority, **owner.options()}),
        message_id=task_id,
    )
    return record, message, delay_ms or None


def _queue(engine: Engine, sub: Submission, spec) -> str:
    """The queue a message goes to: the actor's, or the one the submission names (any declared queue).

    The override moves this one message (its retries and delays follow it); the
    actor's policy (retries, limits, default priority) is the same on any queue.
    """
    if sub.queue is None:
        return spec.actor.queue_name
    declared = queue_names()
    if sub.queue not in declared:
        raise InvalidArguments(f"unknown queue {sub.queue!r}", {"queue": f"must be one of {', '.join(declared)}"})
    return engine.settings.queue_prefix + sub.queue


def _delay(sub: Submission) -> int:
    if sub.delay_ms is not None and sub.eta is not None:
        raise InvalidArguments("give delay or eta, not both", {"eta": "cannot be combined with delay"})
    if sub.eta is not None:
        eta = sub.eta if sub.eta.tzinfo else sub.eta.replace(tzinfo=timezone.utc)
        delay, field = max(0, int((eta.timestamp() - time.time()) * 1000)), "eta"
    else:
        delay, field = int(sub.delay_ms or 0), "delay"
    if delay < 0:
        raise InvalidArguments("invalid delay", {field: "must be >= 0"})
    if delay > MAX_DELAY_MS:
        raise InvalidArguments("delay too long", {field: f"at most {MAX_DELAY_MS // 1000} s ahead; use the scheduler for later runs"})
    return delay


def submit(
    actor: str,
    *,
    args: Sequence[Any] = (),
    kwargs: Optional[dict[str, Any]] = None,
    priority: Optional[int] = None,
    delay_ms: Optional[int] = None,
    eta: Optional[datetime] = None,
    idempotency_key: Optional[str] = None,
    queue: Optional[str] = None,
    user_id: Optional[str] = None,
    tenant_id: Optional[str] = None,
    submitted_by: Optional[str] = None,
    engine: Optional[Engine] = None,
    task_id: Optional[str] = None,
    _retry_of: Optional[str] = None,
) -> str:
    """Submit one task; returns its id (an existing id when *idempotency_key* was seen
    from the same *submitted_by* for the same actor).

    *queue* sends this one task to another declared queue than its actor's.
    *task_id* lets a caller choose the id (a UUID it already knows, e.g. to
    subscribe to the task's events before submitting). See :class:`Submission`
    for the owner.
    """
    engine = engine or get_engine()
    sub = Submission(actor, args, kwargs or {}, priority, delay_ms, eta, idempotency_key, queue, user_id, tenant_id,
                     submitted_by)
    chosen = _check_task_id(task_id) if task_id else None
    task_id = chosen or new_task_id()
    if idempotency_key:
        # The record is created in the shard its key is bound in (one step binds both; see pipeline.state.keys).
        task_id = engine.store.keys.id_for_claim(task_id, idempotency_claim(sub.owner().submitted_by, actor,
                                                                            idempotency_key))
        if chosen and task_id != chosen:
            raise InvalidArguments("task id and idempotency key", {
                "task_id": "cannot be chosen together with an idempotency key on a sharded state store"})
    record, message, delay = _prepare(engine, sub, task_id, _retry_of)
    if idempotency_key:
        return _submit_idempotent(engine, record, message, delay)
    try:
        with engine.store.recording([record]), untracked():
            engine.broker.enqueue(message, delay=delay)
    except (BrokerError, pika.exceptions.AMQPError) as exc:
        engine.store.forget([record])
        raise BrokerUnavailable(f"RabbitMQ did not accept the message: {type(exc).__name__}") from None
    return task_id


def _check_task_id(task_id: str) -> str:
    try:
        return str(uuid.UUID(task_id))
    except (ValueError, TypeError, AttributeError):
        raise InvalidArguments("invalid task id", {"task_id": "must be a UUID"}) from None


def _publish(engine: Engine, message: Message, delay: Optional[int]) -> None:
    try:
        with untracked():
            engine.broker.enqueue(message, delay=delay)
    except (BrokerError, pika.exceptions.AMQPError) as exc:
        raise BrokerUnavailable(f"RabbitMQ did not accept the message: {type(exc).__name__}") from None


def _submit_idempotent(engine: Engine, record: NewTask, message: Message, delay: Optional[int]) -> str:
    """Submit once per key, even when the process dies half-way through a request.

    The key, the record and an "unpublished" mark are written in one step;
    the mark is cleared once RabbitMQ confirms. A retry that finds the mark
    long after the first request began knows that request died before
    publishing, and publishes the task itself.
    """
    bound = engine.store.record_idempotent(record)
    if bound is not None:
        return _resume(engine, bound)
    try:
        _publish(engine, message, delay)
    except BrokerUnavailable:
        engine.store.forget([record])
        raise
    engine.store.mark_published(record.task_id)
    return record.task_id


def _resume(engine: Engine, task_id: str) -> str:
    since = engine.store.unpublished_since(task_id)
    if since is None:
        return task_id
    if time.time() - since < ORPHAN_AFTER_SECONDS:
        raise SubmissionInProgress(
            f"a request with this idempotency key is still being processed (task {task_id}); retry shortly", task_id
        )
    if not engine.store.claim_unpublished(task_id):
        return task_id  # another retry is publishing it
    record, payload = engine.store.get(task_id), engine.store.payload(task_id)
    message = message_for(record, payload)
    eta = record.get("eta")
    try:
        _publish(engine, message, max(0, int((eta - time.time()) * 1000)) if eta else None)
    except BrokerUnavailable:
        engine.store.restore_unpublished(task_id, since)
        raise
    return task_id


def submit_many(submissions: Sequence[Submission | dict], *, engine: Optional[Engine] = None) -> list[str]:
    """Submit up to MAX_BULK tasks at once: all validated first, recorded in one
    Redis pipeline while they are published in one AMQP transaction. Returns ids in order."""
    engine = engine or get_engine()
    subs = [s if isinstance(s, Submission) else Submission(**s) for s in submissions]
    if len(subs) > MAX_BULK:
        raise InvalidArguments("too many tasks", {"tasks": f"at most {MAX_BULK} per call"})
    prepared, errors = [], {}
    for index, (sub, task_id) in enumerate(zip(subs, new_task_ids(len(subs)))):
        try:
            if sub.idempotency_key:
                raise InvalidArguments("bulk", {"idempotency_key": "not supported in bulk submissions"})
            prepared.append(_prepare(engine, sub, task_id))
        except InvalidArguments as exc:
            errors.update({f"tasks.{index}.{name}": text for name, text in exc.fields.items()})
        except LookupError as exc:
            errors[f"tasks.{index}.actor"] = exc.args[0]
    if errors:
        raise InvalidArguments("invalid submissions", errors)
    records = [record for record, _, _ in prepared]
    try:
        with engine.store.recording(records), untracked():
            publish_batch(engine.broker, [(message, delay) for _, message, delay in prepared])
    except BrokerUnavailable:
        engine.store.forget(records)
        raise
    return [record.task_id for record in records]


def get_record(task_id: str, *, engine: Optional[Engine] = None) -> dict:
    record = (engine or get_engine()).store.get(task_id)
    if record is None:
        raise not_found(task_id)
    return record


def not_found(task_id: str) -> TaskNotFound:
    return TaskNotFound(f"no task {task_id!r} (never submitted, or its result expired)")


def get_records(task_ids: Sequence[str], *, engine: Optional[Engine] = None) -> list[Optional[dict]]:
    return (engine or get_engine()).store.get_many(list(task_ids))


def cancel(task_id: str, *, engine: Optional[Engine] = None) -> dict:
    """Cancel a task. PENDING/RETRY: it will never run. STARTED: it is interrupted.

    Raises TaskNotFound, or InvalidTransition when the task already finished.
    """
    engine = engine or get_engine()
    record = get_record(task_id, engine=engine)
    if record["state"] == WAITING:
        raise InvalidTransition(f"task waits for its workflow {record['workflow']}; cancel the workflow", WAITING)
    value = exception_result("TaskCancelled", "cancelled before it ran")
    outcome, previous = engine.store.cancel(task_id, engine.result_key(record), value)
    if outcome == "MISSING":
        raise TaskNotFound(f"no task {task_id!r}")
    if outcome == "REFUSED":
        raise InvalidTransition(f"task already finished as {previous}; only PENDING, RETRY or STARTED tasks can be cancelled", previous)
    if outcome == "CANCELLED":
        return {"task_id": task_id, "state": "CANCELLED", "previous_state": previous}
    return {"task_id": task_id, "state": "STARTED", "cancel_requested": True}


def retry(task_id: str, *, engine: Optional[Engine] = None, submitted_by: Optional[str] = None) -> str:
    """Re-run a FAILURE or CANCELLED task as a new task (same actor, original
    arguments, priority and owner; *submitted_by* the one retrying it), linked
    both ways. Returns the new id."""
    engine = engine or get_engine()
    record = get_record(task_id, engine=engine)
    if record["state"] not in ("FAILURE", "CANCELLED"):
        raise InvalidTransition(f"task is {record['state']}; only FAILURE or CANCELLED tasks can be retried", record["state"])
    if record.get("workflow"):
        raise InvalidTransition(f"task belongs to workflow {record['workflow']}; retry the workflow (it re-runs its "
                                "failed tasks and what follows them)", record["state"])
    new_id = new_task_id()
    earlier = engine.store.claim_retry(task_id, new_id)
    if earlier:
        raise InvalidTransition(f"task was already retried as {earlier}", record["state"])
    payload = engine.store.payload(task_id) or {"args": [], "kwargs": {}}
    try:
        owner = Owner.of_record(record, submitted_by or LOCAL)
        return submit(
            record["actor"], args=payload["args"], kwargs=payload["kwargs"], priority=record["priority"],
            user_id=owner.user_id, tenant_id=owner.tenant_id, submitted_by=owner.submitted_by,
            engine=engine, task_id=new_id, _retry_of=task_id,
        )
    except Exception:
        engine.store.unclaim_retry(task_id)
        raise

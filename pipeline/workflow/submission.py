"""Submitting a workflow: every record written first, then the first tasks' messages in bulk.

1. Every task is recorded, in pipelined batches of 1,000: its position, the
   tasks that run at once (a chain's first step, a group's or chord's
   members) PENDING and *due*, the follow-ups WAITING with their arguments.
2. The workflow is sealed: its record is written (and its idempotency key
   bound) in one step. Only now can anything of it run.
3. The first tasks' messages are published per batch in one AMQP transaction
   (:func:`pipeline.publisher.publish_batch`), each batch then taken off the
   due set.

A submitter that dies before sealing leaves records that nothing published;
the due-set sweep forgets them after a while. One that dies after sealing
leaves due tasks that the sweep publishes (see :mod:`pipeline.follow_ups`).
If RabbitMQ refuses the first batch, nothing ran: the workflow is forgotten
and BrokerUnavailable raised. A later batch refused leaves the workflow
accepted; its remaining members are published by the sweep.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from dramatiq import Message

from pipeline.client import owner_for
from pipeline.encoder import to_json
from pipeline.engine import Engine, get_engine
from pipeline.errors import BrokerUnavailable
from pipeline.observability import logs
from pipeline.observability.message import stamp
from pipeline.owners import Owner
from pipeline.publisher import publish_batch
from pipeline.state import NewTask, new_task_id, new_task_ids, untracked
from pipeline.registry import policy_of

logger = logging.getLogger("pipeline.workflow")

BATCH = 1000


def submit(shape, *, idempotency_key: Optional[str] = None, submitted_by: Optional[str] = None,
           name: Optional[str] = None, engine: Optional[Engine] = None, user_id: Optional[str] = None,
           tenant_id: Optional[str] = None) -> str:
    """Validate and enqueue *shape* (a :class:`pipeline.workflow.shapes.Workflow`); return the workflow id
    (the existing one for a known idempotency key of the same *submitted_by*). The workflow and every task
    of it belong to *user_id* (see :func:`pipeline.client.owner_for`)."""
    return submit_checked(shape, idempotency_key=idempotency_key, submitted_by=submitted_by, name=name,
                          engine=engine, user_id=user_id, tenant_id=tenant_id)[0]


def submit_checked(shape, *, idempotency_key: Optional[str] = None, submitted_by: Optional[str] = None,
                   name: Optional[str] = None, engine: Optional[Engine] = None, user_id: Optional[str] = None,
                   tenant_id: Optional[str] = None) -> tuple[str, bool]:
    """:func:`submit`, also saying whether the workflow is new (False: the idempotency key's)."""
    engine = engine or get_engine()
    owner = owner_for(user_id, tenant_id, submitted_by)
    validated = shape.validated()
    workflow_id, claim = new_task_id(), None
    if idempotency_key:
        # Bound per caller, like a task's: another token's key never finds (or blocks) this workflow.
        caller = owner.submitted_by or ""
        claim = f"{len(caller)}:{caller}:workflow:{idempotency_key}"
        # Sealing binds the key and writes the record in one step: both in the key's shard.
        workflow_id = engine.store.keys.id_for_claim(workflow_id, claim)
    # Every task of a workflow lives in the workflow's shard, so a member's end is counted in one step.
    ids = [engine.store.keys.id_beside(task_id, workflow_id) for task_id in new_task_ids(len(validated))]
    sigs = shape.tasks()
    tasks = [_new_task(engine, workflow_id, position, task_id, spec, kwargs, sigs[position].priority, owner)
             for position, (task_id, (spec, kwargs)) in enumerate(zip(ids, validated))]
    first = shape.first()
    chord = shape.kind == "chord"
    fields = {"kind": shape.kind, "members": str(len(tasks) - (1 if chord else 0)),
              "total": str(len(tasks)), "actors": to_json(sorted({t.actor for t in tasks}))}
    if chord:
        fields.update(policy=shape.on_failure, callback=ids[-1])
    if name:
        fields["name"] = name
    fields.update(owner.fields())
    if idempotency_key:
        fields["idempotency_key"] = idempotency_key
        idempotency_key = claim
    if idempotency_key and (bound := engine.store.bound_workflow(idempotency_key)):
        return bound, False
    engine.store.record_workflow_tasks(workflow_id, ids, tasks[:first], tasks[first:])
    bound = engine.store.seal_workflow(workflow_id, fields, idempotency_key)
    if bound is not None:  # another request with the key sealed first
        engine.store.forget_workflow(workflow_id, tasks)
        return bound, False
    for start in range(0, first, BATCH):
        batch = tasks[start:min(first, start + BATCH)]
        try:
            with untracked():
                publish_batch(engine.broker, [(message_for(task), None) for task in batch])
        except BrokerUnavailable:
            if start == 0:
                engine.store.forget_workflow(workflow_id, tasks, idempotency_key)
                raise
            logger.warning("Workflow %s: RabbitMQ refused a batch; the sweep publishes its %d remaining members.",
                           workflow_id, first - start)
            return workflow_id, True
        engine.store.follow_ups_published([task.task_id for task in batch])
    return workflow_id, True


def _new_task(engine: Engine, workflow_id: str, position: int, task_id: str, spec, kwargs: dict[str, Any],
              priority: Optional[int], owner: Owner) -> NewTask:
    policy = policy_of(engine.broker, spec.name)
    return NewTask(
        task_id=task_id, actor=spec.name, queue=spec.actor.queue_name,
        priority=policy.priority if priority is None else priority, max_retries=policy.max_retries,
        args=[], kwargs=kwargs, workflow=workflow_id, wf_index=position, request_id=logs.request_id(), owner=owner,
    )


def message_for(task: NewTask) -> Message:
    """The message of a workflow task (its record names the workflow too)."""
    return Message(queue_name=task.queue, actor_name=task.actor, args=(), kwargs=task.kwargs,
                   options=stamp({"broker_priority": task.priority, "claw_workflow": [task.workflow, task.wf_index],
                                  **task.owner.options()}),
                   message_id=task.task_id)

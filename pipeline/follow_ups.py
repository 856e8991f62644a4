"""Publishing due workflow tasks: the duty FINISH hands out.

A task is *due* when its record is PENDING and its id is in the due set
(``Keys.follow_ups_due``): a workflow's first tasks between their record and
their publish, a chain's next step or a chord's callback from the moment the
member before it finished. :func:`publish_due` builds each message from the
task's record, filling in what the workflow passes on (a chain step's
``previous``, a chord callback's ``results`` and ``failures``), publishes the
messages in one AMQP transaction and only then takes them off the due set.

It is called by whoever meets due tasks: the worker (or API process) whose
transition made them due, at once; a worker that drops a redelivered member
of a workflow; and the sweep of every worker (:mod:`pipeline.maintenance.follow_ups`)
for tasks due longer than a grace period. Publishing one twice is harmless:
the worker's START drops a second copy of a task that is running or finished.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any, Optional

from dramatiq import Message

from pipeline.observability.message import REQUEST_ID_OPTION
from pipeline.owners import Owner
from pipeline.publisher import publish_batch
from pipeline.state import StateStore, untracked

logger = logging.getLogger("pipeline.workflow")

#: The keyword argument that carries a chain step's predecessor's result.
PREVIOUS = "previous"
#: The keyword arguments of a chord's callback: its members' results, and (run_with_summary) their failures.
RESULTS, FAILURES = "results", "failures"

#: A workflow whose submission recorded tasks but has not sealed it this long after is taken
#: for abandoned (its submitter died while recording); a large submission records in seconds.
UNSEALED_SECONDS = 300.0

#: Test-only crash point: when set to a Redis key, the first process that is
#: about to publish due follow-ups (and claims that key) is SIGKILLed there,
#: i.e. after the FINISH that made them due and before their publish.
CRASH_KEY_ENV = "CLAW_TEST_KILL_BEFORE_FOLLOW_UP_KEY"


def publish_due(store: StateStore, broker, task_ids: list[str]) -> int:
    """Publish the messages of the due tasks among *task_ids*; returns how many were published."""
    if not task_ids:
        return 0
    _crash_point_for_tests(store)
    records = store.get_many(task_ids)
    messages, settled = [], []
    workflows: dict[str, Optional[dict]] = {}
    for task_id, record in zip(task_ids, records):
        if record is None or record["state"] != "PENDING":
            settled.append(task_id)  # started, finished, cancelled or expired: nothing to publish
            if record is not None and record["state"] == "CANCELLED":
                # Cancelled while due: no worker may ever drop a message of it, so its expiry starts here.
                store.mark_cancelled_dropped(task_id)
            continue
        kwargs = (store.payload(task_id) or {}).get("kwargs", {})
        workflow_id = record.get("workflow")
        if workflow_id:
            if workflow_id not in workflows:
                workflows[workflow_id] = store.get_workflow(workflow_id)
            if workflows[workflow_id] is None:  # its submission has not sealed the workflow
                if time.time() - record["enqueued_at"] > UNSEALED_SECONDS:
                    forgotten = store.forget_unsealed(workflow_id)
                    if forgotten:
                        logger.warning("Workflow %s was never sealed (its submitter stopped): forgot its %d task(s).",
                                       workflow_id, forgotten)
                continue  # else still being submitted: left due
            passed = passed_on(store, workflows[workflow_id], record["wf_index"])
            if passed:
                kwargs = {**kwargs, **passed}
                store.set_payload(task_id, [], kwargs)
        messages.append(Message(
            queue_name=record["queue"], actor_name=record["actor"], args=(), kwargs=kwargs,
            options={"broker_priority": record["priority"], "claw_workflow": [workflow_id, record.get("wf_index")],
                     # The request that submitted the workflow, for the worker's log lines (its trace ended long ago).
                     **({REQUEST_ID_OPTION: record["request_id"]} if record.get("request_id") else {}),
                     **Owner.of_record(record).options()},
            message_id=task_id,
        ))
    if messages:
        with untracked():
            publish_batch(broker, [(message, None) for message in messages])
    store.follow_ups_published([m.message_id for m in messages] + settled)
    return len(messages)


def passed_on(store: StateStore, workflow: Optional[dict], position: int) -> dict[str, Any]:
    """The keyword arguments the workflow gives the task at *position*."""
    if workflow is None:
        return {}
    workflow_id = workflow["workflow_id"]
    if workflow["kind"] == "chain" and position > 0:
        return {PREVIOUS: store.workflow_results(workflow_id, [position - 1])[0]}
    if workflow["kind"] == "chord" and position == workflow["members"]:
        members = workflow["members"]
        passed: dict[str, Any] = {RESULTS: store.workflow_results(workflow_id, list(range(members)))}
        if workflow.get("policy") == "run_with_summary":
            passed[FAILURES] = failures(store, workflow_id)
        return passed
    return {}


def failures(store: StateStore, workflow_id: str) -> list[dict[str, Any]]:
    """The members that did not succeed: position, task id, actor, state, error (type and message)."""
    errors = store.workflow_errors(workflow_id)
    positions = sorted(errors)
    ids = store.workflow_task_ids(workflow_id, 0, (positions[-1] + 1) if positions else 0)
    records = store.get_many([ids[i] for i in positions]) if positions else []
    out = []
    for index, record in zip(positions, records):
        error = errors[index]
        out.append({"index": index, "task_id": ids[index], "actor": (record or {}).get("actor"),
                    "state": (record or {}).get("state") or error.get("type"), "error": error})
    return out


def _crash_point_for_tests(store: StateStore) -> None:
    key = os.environ.get(CRASH_KEY_ENV)
    if key and store.redis.set(key, os.getpid(), nx=True, ex=600):
        logger.warning("%s: SIGKILL before publishing due follow-ups (test crash point).", CRASH_KEY_ENV)
        os.kill(os.getpid(), signal.SIGKILL)


class FollowUpPublisher:
    """The store's ``follow_ups_due`` hook: publish at once what a transition made due.

    A failure here loses nothing (the tasks stay in the due set for the
    sweep), so it is logged, never raised into the transition's caller.
    """

    def __init__(self, store: StateStore, broker):
        self.store, self.broker = store, broker

    def __call__(self, task_ids: list[str]) -> None:
        try:
            publish_due(self.store, self.broker, task_ids)
        except Exception:
            logger.warning("Could not publish %d due workflow task(s) now; the sweep will.", len(task_ids), exc_info=True)

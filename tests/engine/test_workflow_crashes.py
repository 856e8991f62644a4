"""Workflows under worker SIGKILL: no follow-up lost, none run twice, counts exact.

The dangerous window is between the FINISH that makes a follow-up due (a
chord's callback, a chain's next step) and the publish of its message.
``CLAW_TEST_KILL_BEFORE_FOLLOW_UP_KEY`` makes the first process that reaches
that point SIGKILL itself there (test-only crash point).
"""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from pipeline import workflow
from pipeline.workflow import signature as sig
from pipeline.follow_ups import CRASH_KEY_ENV
from tests import sample_tasks
from tests.conftest import due_follow_ups, namespace_keys, queue_depth, wait_until
from tests.engine.test_workflows import wait_final


def test_a_worker_killed_after_the_last_member_finished_still_runs_the_callback_once(engine, start_worker, redis_client):
    ns = engine.settings.namespace
    worker = start_worker("--processes", "1", "--threads", "2", extra_env={CRASH_KEY_ENV: f"{ns}:crash"})
    first_pid = {p.pid for p in psutil.Process(worker.pid).children()}
    members = [sig("echo", value=i) for i in range(5)]
    workflow_id = workflow.chord(members, sig("collect", runs_key=f"{ns}:runs")).submit(engine=engine)
    done = wait_final(engine, workflow_id, timeout=60)
    assert redis_client.get(f"{ns}:crash") in {str(p) for p in first_pid}  # the process died at the crash point
    assert done["state"] == "SUCCESS" and [r["value"] for r in done["result"]["results"]] == list(range(5))
    assert redis_client.get(f"{ns}:runs") == "1"
    assert done["counts"] == {"pending": 0, "succeeded": 6, "failed": 0, "cancelled": 0}


def test_a_worker_killed_after_a_chain_step_finished_still_runs_the_next_step_once(engine, start_worker, redis_client):
    ns = engine.settings.namespace
    start_worker("--processes", "1", extra_env={CRASH_KEY_ENV: f"{ns}:crash"})
    workflow_id = workflow.chain(sig("add", value=1), sig("add", value=2)).submit(engine=engine)
    done = wait_final(engine, workflow_id, timeout=60)
    assert redis_client.get(f"{ns}:crash")
    assert done["state"] == "SUCCESS" and done["result"] == 3
    second = engine.store.get(done["members"][1]["task_id"])
    assert second["attempts"] == 1


def test_the_sweep_publishes_a_follow_up_whose_publisher_never_did(engine, start_worker, redis_client):
    """A callback made due by a cancel in a process without the publishing hook (as if it died there)."""
    ns = engine.settings.namespace
    start_worker(extra_env={"CLAW_WORKFLOW_OVERDUE_SECONDS": "1"})
    members = [sig("echo", value=1), sig("cooperative", seconds=30)]
    workflow_id = workflow.chord(members, sig("collect", runs_key=f"{ns}:runs"), on_failure="run_with_summary").submit(
        engine=engine)
    slow = workflow.get(workflow_id, engine=engine)["members"][1]["task_id"]
    wait_until(lambda: engine.store.get(slow)["state"] == "STARTED")
    hook, engine.store.follow_ups_due = engine.store.follow_ups_due, None
    try:
        from pipeline import client

        client.cancel(slow, engine=engine)  # interrupted; the worker's FINISH makes the callback due
        done = wait_final(engine, workflow_id, timeout=30)
    finally:
        engine.store.follow_ups_due = hook
    assert done["state"] == "SUCCESS" and redis_client.get(f"{ns}:runs") == "1"
    assert done["result"]["failures"][0]["state"] == "CANCELLED"
    assert not due_follow_ups(engine.store)


def test_callback_runs_once_and_counts_are_exact_when_workers_are_killed_under_load(engine, start_worker, redis_client):
    ns = engine.settings.namespace
    worker = start_worker("--processes", "2", "--threads", "4", extra_env={"CLAW_WORKFLOW_OVERDUE_SECONDS": "2"})
    members = [sig("ledger", runs_key=f"{ns}:member_runs", effects_key=f"{ns}:effects", seconds=0.02)
               for _ in range(400)]
    workflow_id = workflow.chord(members, sig("collect", runs_key=f"{ns}:runs")).submit(engine=engine)
    killed = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and killed < 3:
        progress = workflow.get(workflow_id, engine=engine, limit=1)
        if progress["counts"]["succeeded"] >= 100 * (killed + 1):
            children = psutil.Process(worker.pid).children()
            if children:
                os.kill(children[0].pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.05)
    done = wait_final(engine, workflow_id, timeout=120)
    assert killed >= 1
    assert done["state"] == "SUCCESS" and redis_client.get(f"{ns}:runs") == "1"
    assert done["counts"] == {"pending": 0, "succeeded": 401, "failed": 0, "cancelled": 0}
    assert redis_client.hlen(f"{ns}:effects") == 400  # every member's effect once (runs may repeat: at-least-once)


def test_a_submission_that_dies_before_sealing_leaves_nothing_that_runs_and_is_forgotten(engine, redis_client,
                                                                                        monkeypatch):
    """The submitter recorded every task, then died before the workflow's record was written."""
    import pipeline.follow_ups
    from pipeline.maintenance.follow_ups import publish_overdue

    def die(*args, **kwargs):
        raise SystemExit("the submitter died here")

    monkeypatch.setattr(engine.store, "seal_workflow", die)
    with pytest.raises(SystemExit):
        workflow.chord([sig("echo", value=i) for i in range(3)], sig("collect")).submit(engine=engine)
    ns = engine.settings.namespace
    assert due_follow_ups(engine.store) == 3
    assert publish_overdue(engine.store, engine.broker, 0) == 0  # not sealed: nothing is published
    assert due_follow_ups(engine.store) == 3  # ... and it is left for the submitter
    monkeypatch.setattr(pipeline.follow_ups, "UNSEALED_SECONDS", 0.0)
    assert publish_overdue(engine.store, engine.broker, 0) == 0
    assert due_follow_ups(engine.store) == 0
    left = namespace_keys(redis_client, ns)
    assert not [k for k in left if ":t:" in k or ":wf:" in k], left  # no record, position or workflow key
    assert not [k for k in left if ":i:" in k and redis_client.zcard(k)], left  # no index entry
    assert queue_depth(sample_tasks.QUEUE) == 0

"""Cancelling pending, waiting and running tasks; manually retrying failed ones."""

import time

import pytest
from dramatiq import Message
from dramatiq.results import ResultFailure

from pipeline import client
from pipeline.errors import InvalidTransition, TaskNotFound
from tests import sample_tasks
from tests.conftest import QUEUE_PREFIX, wait_for_state, wait_until


def test_cancelled_pending_task_never_runs_and_reads_as_cancelled(engine, start_worker, namespace, redis_client):
    task_id = client.submit("spin", kwargs={"seconds": 0.1, "progress_key": f"{namespace}:ran"})
    assert client.cancel(task_id)["state"] == "CANCELLED"
    start_worker()
    marker = client.submit("echo", kwargs={"value": "after"})
    wait_for_state(engine, marker, "SUCCESS")
    assert redis_client.get(f"{namespace}:ran") is None
    record = engine.store.get(task_id)
    assert record["state"] == "CANCELLED" and record["attempts"] == 0
    message = Message(QUEUE_PREFIX + sample_tasks.QUEUE, "spin", (), {}, {}, message_id=task_id)
    with pytest.raises(ResultFailure) as result:
        message.get_result(backend=engine.results_backend)
    assert result.value.orig_exc_type == "TaskCancelled"


def test_cancelled_delayed_task_never_runs_however_long_it_waited(engine, start_worker, namespace, redis_client):
    start_worker()
    task_id = client.submit("spin", kwargs={"seconds": 0.1, "progress_key": f"{namespace}:ran"}, delay_ms=2000)
    time.sleep(0.5)  # now held in the worker's delay queue
    client.cancel(task_id)
    time.sleep(2.5)
    assert redis_client.get(f"{namespace}:ran") is None
    assert engine.store.get(task_id)["state"] == "CANCELLED"


def test_running_python_task_is_interrupted_and_not_retried(engine, start_worker, namespace, redis_client):
    start_worker()
    task_id = client.submit("spin", kwargs={"seconds": 60, "progress_key": f"{namespace}:ran"})
    wait_for_state(engine, task_id, "STARTED")
    assert client.cancel(task_id)["cancel_requested"] is True
    record = wait_for_state(engine, task_id, "CANCELLED", timeout=10)
    assert record["attempts"] == 1 and record["error"]["type"] == "TaskCancelled"
    time.sleep(0.5)
    assert engine.store.get(task_id)["attempts"] == 1


def test_cooperative_task_sees_the_cancel_request(engine, start_worker):
    start_worker()
    task_id = client.submit("cooperative", kwargs={"seconds": 30})
    wait_for_state(engine, task_id, "STARTED")
    time.sleep(0.3)
    client.cancel(task_id)
    record = wait_for_state(engine, task_id, ("CANCELLED", "SUCCESS"), timeout=10)
    assert record["state"] == "CANCELLED" or record["result"] == "stopped early"
    assert record["progress"]["message"].startswith("step")


def test_cancelling_a_finished_task_is_refused_with_its_state(engine, start_worker):
    start_worker()
    task_id = client.submit("echo", kwargs={"value": 1})
    wait_for_state(engine, task_id, "SUCCESS")
    with pytest.raises(InvalidTransition) as refused:
        client.cancel(task_id)
    assert refused.value.state == "SUCCESS"
    with pytest.raises(TaskNotFound):
        client.cancel("00000000-0000-0000-0000-000000000000")


def test_retry_of_a_failed_task_reruns_it_with_original_arguments_linked_both_ways(engine, start_worker):
    start_worker()
    failed = client.submit("always_fails", kwargs={"message": "x"}, priority=6)
    wait_for_state(engine, failed, "FAILURE")
    new_id = client.retry(failed)
    new = wait_for_state(engine, new_id, "FAILURE")
    assert new["retry_of"] == failed and engine.store.get(failed)["retried_by"] == new_id
    assert new["priority"] == 6 and new["kwargs"] == {"message": "x"}
    with pytest.raises(InvalidTransition):
        client.retry(failed)  # already retried


def test_retry_of_a_cancelled_task_uses_its_arguments_and_keeps_its_owner(engine, start_worker):
    cancelled = client.submit("echo", kwargs={"value": 1, "password": "s3cret"}, user_id="alice", tenant_id="acme",
                              submitted_by="backend")
    client.cancel(cancelled)
    start_worker()
    new = wait_for_state(engine, client.retry(cancelled, submitted_by="ops"), "SUCCESS")
    assert new["result"]["had_password"] is True and new["kwargs"]["password"] == "s3cret"
    assert (new["user_id"], new["tenant_id"], new["submitted_by"]) == ("alice", "acme", "ops")


def test_retry_is_refused_for_tasks_that_did_not_fail(engine, start_worker):
    start_worker()
    done = client.submit("echo", kwargs={"value": 1})
    wait_for_state(engine, done, "SUCCESS")
    with pytest.raises(InvalidTransition):
        client.retry(done)


def test_a_retry_due_at_once_is_never_taken_for_a_second_copy_of_its_running_task(engine, start_worker):
    """The retry's message is published only after RETRY is recorded: with a 1 ms backoff it used to reach
    another thread while the record still said STARTED, and was dropped as a duplicate (the task lost)."""
    import json

    overrides = {"fails_then_succeeds": {"retry_backoff_ms": 1, "retry_backoff_max_ms": 2}}
    start_worker("--threads", "4", extra_env={"CLAW_ACTOR_OVERRIDES": json.dumps(overrides)})
    ns = engine.settings.namespace
    ids = client.submit_many([{"actor": "fails_then_succeeds", "kwargs": {"counter_key": f"{ns}:r{i}", "failures": 3}}
                              for i in range(300)])
    wait_until(lambda: engine.store.count_by_state(["fails_then_succeeds"], [])["actors"]["fails_then_succeeds"]
               ["SUCCESS"] == len(ids), 60, 0.2, "every task to succeed on its fourth attempt")

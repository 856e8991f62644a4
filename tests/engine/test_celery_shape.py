"""Celery's calling shape on the real worker: apply_async / delay return an AsyncResult whose get() waits on the
task's events; per-call queue override, countdown, a chosen task id, revoke, and the options it refuses."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import pytest

from pipeline.errors import InvalidArguments, ResultTimeout, TaskFailed, TaskRevoked
from pipeline.result import AsyncResult
from tests import sample_tasks
from tests.conftest import QUEUE_PREFIX, wait_for_state

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def worker(start_worker):
    return start_worker(queues=(sample_tasks.QUEUE, sample_tasks.PRIORITY_QUEUE))


def test_delay_returns_a_handle_whose_get_returns_the_result(worker):
    result = sample_tasks.echo.delay(value=[1, "二"])
    assert isinstance(result, AsyncResult) and uuid.UUID(result.id)
    assert result.get(timeout=30) == {"value": [1, "二"], "had_password": False}
    assert result.ready() and result.successful() and result.state == "SUCCESS"
    assert AsyncResult(result.id).get(timeout=1) == result.result


def test_get_wakes_on_the_finishing_event_not_on_a_poll(worker):
    result = sample_tasks.spin.apply_async(kwargs={"seconds": 1.0})
    wait_for_state(result.engine, result.id, "STARTED")
    started = time.monotonic()
    result.get(timeout=30)
    waited = time.monotonic() - started
    record = result.record()
    after_finish = time.time() - record["finished_at"]
    assert waited < 4.0  # the record is re-read only every 5 s: a wake-up this soon came from the event
    assert after_finish < 1.0, f"get() returned {after_finish:.2f} s after the task finished"


def test_get_times_out_then_revoke_interrupts_and_get_raises_revoked(worker):
    result = sample_tasks.spin.apply_async(kwargs={"seconds": 30})
    wait_for_state(result.engine, result.id, "STARTED")
    started = time.monotonic()
    with pytest.raises(ResultTimeout):
        result.get(timeout=0.5)
    assert time.monotonic() - started < 2.5
    assert not result.ready()
    result.revoke()
    with pytest.raises(TaskRevoked):
        result.get(timeout=30)
    assert result.state == "CANCELLED"
    assert result.get(propagate=False)["type"] == "TaskCancelled"
    result.revoke()  # a finished task: nothing happens, like Celery


def test_a_failure_propagates_as_task_failed_or_returns_the_error(worker):
    result = sample_tasks.always_fails.apply_async(kwargs={"message": "no luck"})
    with pytest.raises(TaskFailed) as failed:
        result.get(timeout=30)
    assert failed.value.error["type"] == "ValueError" and "no luck" in str(failed.value)
    assert result.get(propagate=False)["message"] == "no luck" and result.failed()


def test_a_per_call_queue_override_is_consumed_from_that_queue(worker, engine):
    result = sample_tasks.echo.apply_async(kwargs={"value": "moved"}, queue=sample_tasks.PRIORITY_QUEUE, priority=7)
    assert result.get(timeout=30)["value"] == "moved"
    record = result.record()
    assert record["queue"] == QUEUE_PREFIX + sample_tasks.PRIORITY_QUEUE and record["priority"] == 7
    with pytest.raises(InvalidArguments) as unknown:
        sample_tasks.echo.apply_async(kwargs={"value": 1}, queue="no_such_queue")
    assert "queue" in unknown.value.fields


def test_countdown_and_eta_delay_the_start(worker):
    result = sample_tasks.echo.apply_async(kwargs={"value": 1}, countdown=1.5)
    result.get(timeout=30)
    record = result.record()
    assert record["started_at"] - record["enqueued_at"] >= 1.4
    with pytest.raises(InvalidArguments):
        sample_tasks.echo.apply_async(kwargs={}, countdown=1, eta=datetime.now(timezone.utc))


def test_a_chosen_task_id_is_used_once(worker):
    chosen = str(uuid.uuid4())
    assert sample_tasks.echo.apply_async(kwargs={"value": 2}, task_id=chosen).get(timeout=30)["value"] == 2
    with pytest.raises(InvalidArguments, match="already in use"):
        sample_tasks.echo.apply_async(kwargs={"value": 3}, task_id=chosen)


def test_celery_options_without_a_counterpart_are_refused_with_what_to_use(engine):
    with pytest.raises(TypeError, match=r"expires.*revoke"):
        sample_tasks.echo.apply_async(kwargs={"value": 1}, expires=30)
    with pytest.raises(TypeError, match="link"):
        sample_tasks.echo.apply_async(kwargs={"value": 1}, link=None)

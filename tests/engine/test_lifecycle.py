"""A task's life through a real worker: states, results, retries, failures, redaction."""

import json
import time

import pytest
from dramatiq import Message
from dramatiq.results import ResultFailure

from pipeline import client
from pipeline.errors import InvalidArguments, UnknownActor
from tests import sample_tasks
from tests.conftest import QUEUE_PREFIX, queue_depth, wait_for_state, wait_until


def test_record_exists_as_pending_before_any_worker_runs(engine):
    task_id = client.submit("echo", kwargs={"value": 1}, priority=7)
    record = engine.store.get(task_id)
    assert record["state"] == "PENDING"
    assert record["actor"] == "echo" and record["queue"] == QUEUE_PREFIX + sample_tasks.QUEUE
    assert record["priority"] == 7 and record["attempts"] == 0 and record["max_retries"] == 3
    assert record["enqueued_at"] == pytest.approx(time.time(), abs=5)


def test_task_goes_to_success_with_result_timestamps_and_worker(engine, start_worker):
    start_worker()
    task_id = client.submit("echo", kwargs={"value": [1, "二"]})
    record = wait_for_state(engine, task_id, "SUCCESS")
    assert record["result"] == {"value": [1, "二"], "had_password": False}
    assert record["attempts"] == 1
    assert record["enqueued_at"] <= record["started_at"] <= record["finished_at"]
    assert record["runtime_ms"] >= 0 and record["worker"]


def test_result_is_readable_the_dramatiq_way(engine, start_worker):
    start_worker()
    task_id = client.submit("echo", kwargs={"value": "via results"})
    wait_for_state(engine, task_id, "SUCCESS")
    message = Message(QUEUE_PREFIX + sample_tasks.QUEUE, "echo", (), {}, {}, message_id=task_id)
    assert message.get_result(backend=_backend(engine))["value"] == "via results"


def test_transient_errors_are_retried_until_success(engine, start_worker, namespace):
    start_worker()
    task_id = client.submit("fails_then_succeeds", kwargs={"counter_key": f"{namespace}:c", "failures": 2})
    record = wait_for_state(engine, task_id, "SUCCESS")
    assert record["attempts"] == 3 and record["result"] == "ok"


def test_exhausted_retries_end_in_failure_with_error_and_dead_letter(engine, start_worker):
    start_worker()
    task_id = client.submit("always_fails", kwargs={"message": "kaputt"})
    record = wait_for_state(engine, task_id, "FAILURE")
    assert record["attempts"] == 3  # 1 + max_retries=2
    assert record["error"]["type"] == "ValueError" and record["error"]["message"] == "kaputt"
    assert "raise ValueError(message)" in record["error"]["traceback"]
    wait_until(lambda: queue_depth(f"{sample_tasks.QUEUE}.XQ") == 1, 10, message="the message in the dead-letter queue")
    message = Message(QUEUE_PREFIX + sample_tasks.QUEUE, "always_fails", (), {}, {}, message_id=task_id)
    with pytest.raises(ResultFailure) as failure:
        message.get_result(backend=_backend(engine))
    assert failure.value.orig_exc_type == "ValueError"


def test_permanent_errors_fail_at_once_without_retrying(engine, start_worker):
    start_worker()
    task_id = client.submit("permanent_failure")
    record = wait_for_state(engine, task_id, "FAILURE")
    assert record["attempts"] == 1 and record["error"]["type"] == "PermanentError"


def test_a_result_that_is_not_json_fails_the_task_clearly(engine, start_worker):
    start_worker()
    record = wait_for_state(engine, client.submit("returns_unserialisable"), "FAILURE")
    assert record["error"]["type"] == "TypeError"


def test_retry_state_shows_error_and_eta_of_next_attempt(engine, start_worker, settings, namespace):
    from pipeline.engine import make_engine, set_engine

    overrides = {"fails_then_succeeds": {"retry_backoff_ms": 3000, "retry_backoff_max_ms": 3000}}
    slow = make_engine(settings.model_copy(update={"actor_overrides": overrides}))
    set_engine(slow)
    start_worker(extra_env={"CLAW_ACTOR_OVERRIDES": json.dumps(overrides)})
    task_id = client.submit("fails_then_succeeds", kwargs={"counter_key": f"{namespace}:c", "failures": 1})
    record = wait_for_state(slow, task_id, "RETRY")
    assert record["error"]["type"] == "ConnectionError"
    assert time.time() + 1.5 < record["eta"] < time.time() + 4
    assert wait_for_state(slow, task_id, "SUCCESS")["attempts"] == 2
    slow.close()


def test_declared_sensitive_arguments_reach_the_task_and_are_masked_for_whoever_may_not_see_them(engine, start_worker):
    from pipeline.registry import REGISTRY
    from pipeline.sensitive import mask_record

    start_worker()
    task_id = client.submit("echo", kwargs={"value": {"api_key": "k-123", "ok": 1}, "password": "hunter2"})
    record = wait_for_state(engine, task_id, "SUCCESS")
    assert record["kwargs"]["password"] == "hunter2" and record["result"]["had_password"] is True  # kept for its owner
    spec = REGISTRY["echo"]
    shown = mask_record(record, spec.sensitive_arguments, spec.sensitive_output)
    # Declared fields only: a key inside an undeclared value is no longer guessed at from its name.
    assert shown["kwargs"] == {"value": {"api_key": "k-123", "ok": 1}, "password": "***"}
    assert "hunter2" not in json.dumps(shown)


def test_bad_arguments_and_unknown_actors_are_refused_before_enqueue(engine):
    with pytest.raises(InvalidArguments) as bad:
        client.submit("echo", kwargs={"nope": 1})
    assert "nope" in bad.value.fields
    with pytest.raises(UnknownActor):
        client.submit("no_such_actor")
    with pytest.raises(InvalidArguments):
        client.submit("echo", priority=10)
    assert engine.store.count_by_state([], [])["states"]["PENDING"] == 0
    assert queue_depth(sample_tasks.QUEUE) == 0


def test_same_idempotency_key_returns_the_same_task(engine):
    first = client.submit("echo", kwargs={"value": 1}, idempotency_key="order-42")
    second = client.submit("echo", kwargs={"value": 1}, idempotency_key="order-42")
    assert first == second
    assert queue_depth(sample_tasks.QUEUE) == 1


def test_large_messages_are_compressed_and_still_processed(engine, start_worker):
    start_worker()
    big = "长文本 long text " * 2000
    task_id = client.submit("echo", kwargs={"value": big})
    assert wait_for_state(engine, task_id, "SUCCESS")["result"]["value"] == big


def test_delayed_task_waits_and_records_its_eta(engine, start_worker):
    start_worker()
    task_id = client.submit("echo", kwargs={"value": 1}, delay_ms=1500)
    record = engine.store.get(task_id)
    assert record["wait_reason"] == "delay" and record["eta"] > time.time() + 1
    time.sleep(0.8)
    assert engine.store.get(task_id)["state"] == "PENDING"
    assert wait_for_state(engine, task_id, "SUCCESS")["started_at"] >= record["eta"] - 0.1


def _backend(engine):
    return engine.results_backend


def test_idempotent_submit_killed_before_publishing_is_published_by_the_retry(engine, start_worker, monkeypatch):
    from pipeline import client as client_module
    from pipeline.errors import SubmissionInProgress

    def die(*_args, **_kwargs):
        raise SystemExit("the API process dies between recording and publishing")

    monkeypatch.setattr(client_module, "_publish", die)
    with pytest.raises(SystemExit):
        client.submit("echo", kwargs={"value": "once"}, idempotency_key="crash-1")
    monkeypatch.undo()
    with pytest.raises(SubmissionInProgress):  # the first request might still be publishing
        client.submit("echo", kwargs={"value": "once"}, idempotency_key="crash-1")
    monkeypatch.setattr(client_module, "ORPHAN_AFTER_SECONDS", 0.0)
    start_worker()
    task_id = client.submit("echo", kwargs={"value": "once"}, idempotency_key="crash-1")
    assert wait_for_state(engine, task_id, "SUCCESS")["result"]["value"] == "once"
    assert client.submit("echo", kwargs={"value": "once"}, idempotency_key="crash-1") == task_id
    assert engine.store.count_by_state(["echo"], [])["actors"]["echo"]["SUCCESS"] == 1


def test_failing_task_logs_show_its_declared_sensitive_arguments_masked(engine, start_worker):
    worker = start_worker()
    failed = client.submit("always_fails", kwargs={"message": "boom", "api_key": "sk-live-hunter2"})
    wait_for_state(engine, failed, "FAILURE")
    log = worker.output()
    assert "always_fails(" in log and "'api_key': '***'" in log
    assert "sk-live-hunter2" not in log


def test_a_message_for_an_actor_no_worker_knows_ends_as_failure(engine, start_worker):
    from dramatiq import Message

    start_worker()
    record_only = Message(QUEUE_PREFIX + sample_tasks.QUEUE, "ghost_actor", (), {"x": 1}, {}, message_id="00000000-0000-4000-8000-000000000001")
    from pipeline.state import NewTask

    engine.store.record_enqueued([NewTask(record_only.message_id, "ghost_actor", record_only.queue_name, 0, 0, [], {"x": 1})])
    engine.broker.channel.basic_publish("", record_only.queue_name, record_only.encode())
    record = wait_for_state(engine, record_only.message_id, "FAILURE")
    assert record["error"]["type"] == "ActorNotFound"

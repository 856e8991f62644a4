"""The notification actors: called directly, and through real workers (RabbitMQ + Redis + subprocess workers)."""

from __future__ import annotations

import json
import threading

import pytest

import pipeline.actors.notifications  # noqa: F401  (declares the actors before the engine binds them)
from pipeline import client, workflow
from pipeline.actors.notifications import send_notification, send_notification_batch
from pipeline.context import TaskContext, set_current
from pipeline.errors import InvalidArguments, PermanentError
from pipeline.notifications.config import get_notification_settings
from pipeline.notifications.models import NotificationArgs
from tests.conftest import wait_for_state, wait_until

NOTIFY_MODULES = "tests.sample_tasks,pipeline.actors.notifications"


def smtp_env(server) -> dict[str, str]:
    return {
        "CLAW_SMTP_HOST": server.host,
        "CLAW_SMTP_PORT": str(server.port),
        "CLAW_SMTP_MODE": "plain",
        "CLAW_SMTP_FROM": "alerts@claw.example",
        "CLAW_SMTP_TIMEOUT_SECONDS": "5",
    }


@pytest.fixture
def notify_env(settings, monkeypatch):
    """Process settings from the engine fixtures plus notification variables set by the test."""

    def apply(values: dict[str, str]) -> None:
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        get_notification_settings.cache_clear()

    get_notification_settings.cache_clear()
    yield apply
    get_notification_settings.cache_clear()


def email_kwargs(**overrides):
    values = dict(channel="email", recipient="ada@example.com", subject="Hi", body="Hello Ada")
    values.update(overrides)
    return values


# --- declaration ----------------------------------------------------------------------------------
def test_actors_are_declared_with_their_policy():
    assert send_notification.policy.queue == "notification_default"
    assert send_notification.policy.max_retries == 3
    assert send_notification.args_model is NotificationArgs
    assert send_notification_batch.policy.queue == "default"  # never starves the workers its children need


def test_submit_time_validation_names_the_field():
    with pytest.raises(InvalidArguments) as info:
        send_notification.validate_kwargs({"channel": "sms", "recipient": "0800 123", "body": "x"})
    assert "recipient" in info.value.fields and "E.164" in info.value.fields["recipient"]
    normalised = send_notification.validate_kwargs({"channel": "sms", "recipient": "+1 415 555 0100", "body": "x"})
    assert normalised["recipient"] == "+14155550100"


# --- direct calls ---------------------------------------------------------------------------------
def test_called_directly_it_sends_and_two_calls_are_two_notifications(notify_env, smtp_plain):
    notify_env(smtp_env(smtp_plain))
    first = send_notification(**email_kwargs())
    second = send_notification(**email_kwargs())
    assert len(smtp_plain.messages) == 2
    assert first["duplicate"] is False and second["duplicate"] is False
    assert first["dedup_key"] != second["dedup_key"]


def test_inside_a_task_the_task_id_is_the_default_dedup_key(notify_env, smtp_plain):
    notify_env(smtp_env(smtp_plain))
    set_current(TaskContext(task_id="task-redelivered-1", actor="send_notification", attempt=1, store=None))
    try:
        first = send_notification(**email_kwargs())
        again = send_notification(**email_kwargs())  # the same task run again (redelivery / retry)
    finally:
        set_current(None)
    assert len(smtp_plain.messages) == 1
    assert first["dedup_key"] == again["dedup_key"] == "task-redelivered-1"
    assert again["duplicate"] is True


def test_run_time_validation_fails_permanently_naming_the_field(notify_env):
    with pytest.raises(PermanentError, match="recipient: must be an email address"):
        send_notification(channel="email", recipient="not-an-address", subject="s", body="b")


def test_bad_configuration_fails_permanently_without_sending(notify_env):
    notify_env({"CLAW_PUSH_APPS": '{"shop": {"url": "ftp://nope", "secret": "0123456789abcdef"}}'})
    with pytest.raises(PermanentError, match=r"CLAW_PUSH_APPS \(shop.url\)"):
        send_notification(channel="push", recipient="user-1", body="hello")


# --- through real workers -------------------------------------------------------------------------
def worker_env(**values: str) -> dict[str, str]:
    return {"CLAW_TASK_MODULES": NOTIFY_MODULES, "CLAW_WORKER_PROCESSES": "1", "CLAW_WORKER_THREADS": "4", **values}


def test_batch_through_a_worker_is_a_group_that_counts_sent_and_failed(engine, start_worker, smtp_plain):
    smtp_plain.handler.rcpt_replies["bounce@example.com"] = "550 5.1.1 no such user"
    start_worker(queues=("notification_default", "default"), extra_env=worker_env(**smtp_env(smtp_plain)))
    recipients = ["a@example.com", "b@example.com", "bounce@example.com", "c@example.com", "a@EXAMPLE.com"]
    task_id = client.submit(
        "send_notification_batch",
        kwargs={"channel": "email", "recipients": recipients, "subject": "News", "body": "Hello all"},
    )
    record = wait_for_state(engine, task_id, ("SUCCESS", "FAILURE"), timeout=60)
    assert record["state"] == "SUCCESS", record.get("error")
    assert record["result"]["total"] == 4  # a@EXAMPLE.com is a@example.com
    group_id = record["result"]["workflow_id"]
    done = wait_until(lambda: (g := workflow.get(group_id))["state"] != "RUNNING" and g, 60, message="the group")
    assert done["kind"] == "group" and done["state"] == "FAILURE" and done["percent"] == 100
    assert done["counts"] == {"pending": 0, "succeeded": 3, "failed": 1, "cancelled": 0}
    failed = [m for m in done["members"] if m["state"] == "FAILURE"]
    assert len(failed) == 1 and "550" in failed[0]["error"]["message"]
    assert client.get_record(failed[0]["task_id"])["attempts"] == 1  # a permanent bounce is not retried
    assert sorted(m.rcpt_tos[0] for m in smtp_plain.messages) == ["a@example.com", "b@example.com", "c@example.com"]


def test_batch_called_twice_with_one_key_submits_one_group_and_sends_each_recipient_once(
        engine, start_worker, smtp_plain, notify_env):
    notify_env(smtp_env(smtp_plain))
    start_worker(queues=("notification_default",), extra_env=worker_env(**smtp_env(smtp_plain)))
    kwargs = dict(channel="email", recipients=["x@example.com", "y@example.com"], subject="S", body="B",
                  dedup_key="newsletter-42")
    first = send_notification_batch(**kwargs)
    again = send_notification_batch(**kwargs)  # e.g. the batch task redelivered: the same group
    assert again["workflow_id"] == first["workflow_id"]
    done = wait_until(lambda: (g := workflow.get(first["workflow_id"]))["state"] != "RUNNING" and g, 60)
    assert done["state"] == "SUCCESS" and done["counts"]["succeeded"] == 2
    assert len(smtp_plain.messages) == 2


def test_worker_killed_mid_send_is_redelivered_and_delivered_once(engine, start_worker, http_server):
    """Kill -9 the worker while the provider holds the request; the redelivery must not deliver twice.

    The provider got the request but the worker died before its answer (the window no local
    record can close). After the claim's lease the redelivered task resends with the same
    Idempotency-Key, which this provider (like Stripe-style gateways) answers from its record.
    """
    http_server.idempotent = True
    workers: list = []
    killed = threading.Event()

    def kill_the_worker_once(request):
        if not killed.is_set():
            killed.set()
            workers[0].kill_group()

    http_server.on_request = kill_the_worker_once
    extra = worker_env(
        CLAW_PUSH_APPS=json.dumps({"shop": {"url": f"{http_server.url}/hook", "secret": "kill-test-secret-123456"}}),
        CLAW_PUSH_DEFAULT_APP="shop",
        CLAW_PUSH_TIMEOUT_SECONDS="1",
        CLAW_SMS_TIMEOUT_SECONDS="1",
        CLAW_SMTP_TIMEOUT_SECONDS="0.5",
        CLAW_NOTIFY_CLAIM_LEASE_SECONDS="2",
        CLAW_ACTOR_OVERRIDES=json.dumps({"send_notification": {"retry_backoff_ms": 500, "retry_backoff_max_ms": 1000}}),
    )
    workers.append(start_worker(queues=("notification_default",), extra_env=extra))
    task_id = client.submit("send_notification", kwargs={"channel": "push", "recipient": "user-9", "body": "Hello"})
    wait_until(killed.is_set, 30, message="the push request")
    start_worker(queues=("notification_default",), extra_env=extra)

    record = wait_for_state(engine, task_id, ("SUCCESS", "FAILURE"), timeout=60)
    assert record["state"] == "SUCCESS", record.get("error")
    assert record["attempts"] >= 2
    keys = [r.headers["Idempotency-Key"] for r in http_server.requests]
    assert len(keys) >= 2 and len(set(keys)) == 1
    assert len(http_server.delivered) == 1


def test_worker_killed_after_sending_and_recording_is_redelivered_without_sending(engine, start_worker, smtp_plain, namespace, redis_client):
    """Kill -9 after the provider accepted and the marker was written, before the ack: no second email."""
    start_worker(
        queues=("notification_default",),
        extra_env=worker_env(
            CLAW_TASK_MODULES=f"{NOTIFY_MODULES},tests.notifications.worker_hooks",
            CLAW_TEST_KILL_AFTER_SENT="1",
            **smtp_env(smtp_plain),
        ),
    )
    task_id = client.submit("send_notification", kwargs=email_kwargs(subject="Once only"))
    record = wait_for_state(engine, task_id, ("SUCCESS", "FAILURE"), timeout=60)
    assert redis_client.get(f"{namespace}:test:killed-after-sent"), "the worker was not killed"
    assert record["state"] == "SUCCESS", record.get("error")
    assert record["attempts"] >= 2  # the killed delivery counts
    assert record["result"]["duplicate"] is True and record["result"]["dedup_key"] == task_id
    assert len(smtp_plain.messages) == 1


def test_cancelling_a_batch_group_cancels_its_unfinished_children(engine, notify_env):
    # no worker consumes notification_default here: the children stay PENDING
    result = send_notification_batch(channel="system", recipients=["u1", "u2", "u3"], body="hello", dedup_key="b-c1")
    assert workflow.cancel(result["workflow_id"])["cancelled"] == 3
    done = workflow.get(result["workflow_id"])
    assert done["state"] == "CANCELLED" and done["counts"]["cancelled"] == 3
    assert [m["state"] for m in done["members"]] == ["CANCELLED"] * 3

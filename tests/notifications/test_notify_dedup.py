"""At-least-once delivery must not become at-least-twice sending (real SMTP / HTTP servers, real Redis)."""

from __future__ import annotations

import email
import email.policy
import time

import pytest

from notify_helpers import Answer
from pipeline.errors import PermanentError, TransientError
from pipeline.notifications.channels.base import OutcomeUnknown
from pipeline.notifications.channels.email import SmtpEmail
from pipeline.notifications.channels.push import WebhookPush
from pipeline.notifications.channels.sms import HttpSms
from pipeline.notifications.channels.system import Inbox, InboxSystem
from pipeline.notifications.dedup import Deduplicator, delivery_token
from pipeline.notifications.models import NotificationArgs
from pipeline.notifications.service import deliver
from tests.threads import at_once


class SimulatedCrash(BaseException):
    """Stands for the worker process dying (SIGKILL, OOM): no except/finally of ours handles it."""


def email_note(**overrides) -> NotificationArgs:
    values = dict(channel="email", recipient="ada@example.com", subject="Report", body="Your report is ready")
    values.update(overrides)
    return NotificationArgs(**values)


def dedup(redis_ns, **kwargs) -> Deduplicator:
    return Deduplicator(redis_ns.client, redis_ns.namespace, **kwargs)


def accepted_then_crashed(adapter):
    """A send the provider accepts, after which the worker dies before any post-processing."""

    def send(notification, token):
        adapter.send(notification, token)
        raise SimulatedCrash()

    return send


def crash_after_acceptance_and_outlive_the_lease(redis_ns, adapter, note, task_id: str, lease_seconds: float) -> None:
    with pytest.raises(SimulatedCrash):
        dedup(redis_ns, lease_seconds=lease_seconds).deliver(note, task_id, accepted_then_crashed(adapter))
    time.sleep(lease_seconds + 0.1)


def message_ids(server) -> list[str]:
    return [email.message_from_bytes(m.content, policy=email.policy.default)["Message-ID"] for m in server.messages]


def test_same_dedup_key_sends_once(smtp_plain, email_settings, redis_ns):
    settings = email_settings(smtp_plain)
    first = deliver(email_note(), "task-1", settings=settings, redis=redis_ns.client, namespace=redis_ns.namespace)
    second = deliver(email_note(), "task-1", settings=settings, redis=redis_ns.client, namespace=redis_ns.namespace)
    assert len(smtp_plain.messages) == 1
    assert first["duplicate"] is False and second["duplicate"] is True
    assert second["message_id"] == first["message_id"] and second["dedup_key"] == "task-1"


def test_same_text_with_two_keys_is_two_notifications(smtp_plain, email_settings, redis_ns):
    settings = email_settings(smtp_plain)
    for key in ("task-1", "task-2"):
        deliver(email_note(), key, settings=settings, redis=redis_ns.client, namespace=redis_ns.namespace)
    assert len(smtp_plain.messages) == 2
    assert len(set(message_ids(smtp_plain))) == 2


def test_one_key_is_scoped_by_channel_and_recipient(smtp_plain, email_settings, redis_ns):
    settings = email_settings(smtp_plain)
    for recipient in ("ada@example.com", "bob@example.com"):
        deliver(email_note(recipient=recipient), "campaign-9", settings=settings, redis=redis_ns.client, namespace=redis_ns.namespace)
    assert len(smtp_plain.messages) == 2
    assert delivery_token("email", "a@x.io", "k") != delivery_token("sms", "a@x.io", "k")


def test_crash_after_provider_accepted_is_not_sent_again_on_redelivery(smtp_plain, email_settings, redis_ns):
    adapter = SmtpEmail(email_settings(smtp_plain))
    guard = dedup(redis_ns, lease_seconds=30)
    with pytest.raises(SimulatedCrash):
        guard.deliver(email_note(), "task-7", accepted_then_crashed(adapter))
    assert len(smtp_plain.messages) == 1

    # RabbitMQ redelivers the unacked message to another worker
    with pytest.raises(TransientError, match="another attempt holds the send"):
        dedup(redis_ns, lease_seconds=30).deliver(email_note(), "task-7", adapter.send)
    assert len(smtp_plain.messages) == 1


def test_crash_after_acceptance_and_after_recording_returns_the_stored_receipt(http_server, push_settings, redis_ns):
    adapter = WebhookPush(push_settings())
    guard = dedup(redis_ns)
    note = NotificationArgs(channel="push", recipient="user-1", subject="Hi", body="Hello")
    receipt = guard.deliver(note, "task-8", adapter.send)
    # the crash happens after the marker was written (e.g. while acking): the redelivery sends nothing
    again = dedup(redis_ns).deliver(note, "task-8", adapter.send)
    assert len(http_server.requests) == 1
    assert again["duplicate"] is True and again["provider_message_id"] == receipt["provider_message_id"]


def test_after_the_lease_an_unknown_outcome_is_resent_with_the_same_idempotency_key(http_server, sms_settings, redis_ns):
    """The documented window: died between acceptance and recording, lease over -> resend, same key."""
    adapter = HttpSms(sms_settings())
    note = NotificationArgs(channel="sms", recipient="+14155550100", body="code 1")
    crash_after_acceptance_and_outlive_the_lease(redis_ns, adapter, note, "task-9", lease_seconds=0.3)
    receipt = dedup(redis_ns, lease_seconds=0.3, unknown_outcome="resend").deliver(note, "task-9", adapter.send)
    assert receipt["duplicate"] is False
    keys = [r.headers["Idempotency-Key"] for r in http_server.requests]
    assert len(keys) == 2 and keys[0] == keys[1] == delivery_token("sms", "+14155550100", "task-9")


def test_unknown_outcome_policy_fail_never_resends(http_server, sms_settings, redis_ns):
    adapter = HttpSms(sms_settings())
    note = NotificationArgs(channel="sms", recipient="+14155550100", body="code 2")
    crash_after_acceptance_and_outlive_the_lease(redis_ns, adapter, note, "task-10", lease_seconds=0.2)
    with pytest.raises(PermanentError, match="may have been sent; not resending"):
        dedup(redis_ns, lease_seconds=0.2, unknown_outcome="fail").deliver(note, "task-10", adapter.send)
    assert len(http_server.requests) == 1


def test_lost_smtp_answer_keeps_the_claim_so_a_retry_does_not_resend(smtp_plain, email_settings, redis_ns):
    smtp_plain.handler.data_delay = 1.5
    settings = email_settings(smtp_plain, smtp_timeout_seconds=0.4)
    with pytest.raises(OutcomeUnknown):
        deliver(email_note(), "task-11", settings=settings, redis=redis_ns.client, namespace=redis_ns.namespace)
    smtp_plain.handler.data_delay = 0
    with pytest.raises(TransientError, match="another attempt holds the send"):
        deliver(email_note(), "task-11", settings=settings, redis=redis_ns.client, namespace=redis_ns.namespace)
    assert len(smtp_plain.messages) == 1


def test_failure_before_acceptance_releases_the_claim_so_the_retry_sends(http_server, push_settings, redis_ns):
    http_server.answer(Answer(503, {"error": "busy"}))
    settings = push_settings()
    note = NotificationArgs(channel="push", recipient="user-2", body="Hello")
    with pytest.raises(TransientError, match="503"):
        deliver(note, "task-12", settings=settings, redis=redis_ns.client, namespace=redis_ns.namespace)
    receipt = deliver(note, "task-12", settings=settings, redis=redis_ns.client, namespace=redis_ns.namespace)
    assert receipt["duplicate"] is False and len(http_server.requests) == 2
    state = dedup(redis_ns).state(delivery_token("push", "user-2", "task-12"))
    assert state["state"] == "sent" and state["attempts"] == "1"  # the failed attempt's claim was deleted


def test_concurrent_deliveries_of_one_key_send_once(http_server, push_settings, redis_ns):
    http_server.answer(Answer(200, {"id": "slow"}, delay=0.3))
    settings = push_settings()
    note = NotificationArgs(channel="push", recipient="user-3", body="Hello")
    receipts, errors = at_once(
        lambda: deliver(note, "task-13", settings=settings, redis=redis_ns.client, namespace=redis_ns.namespace), 4)
    assert len(http_server.requests) == 1
    assert len(receipts) == 1 and len(errors) == 3 and all(isinstance(e, TransientError) for e in errors)


def test_system_inbox_has_no_duplicate_window_even_after_the_lease(redis_ns, make_settings):
    adapter = InboxSystem(make_settings(), redis=redis_ns.client, namespace=redis_ns.namespace)
    note = NotificationArgs(channel="system", recipient="user-4", subject="Done", body="Export done")

    def accept_then_crash(notification, token):
        adapter.send(notification, token)
        raise SimulatedCrash()

    with pytest.raises(SimulatedCrash):
        dedup(redis_ns, lease_seconds=0.1).deliver(note, "task-14", accept_then_crash)
    time.sleep(0.2)
    receipt = dedup(redis_ns, lease_seconds=0.1).deliver(note, "task-14", adapter.send)
    assert receipt["created"] is False  # the resend found its item
    assert Inbox(redis_ns.client, redis_ns.namespace).list("user-4")["total"] == 1


def test_markers_live_under_the_namespace_with_a_ttl(smtp_plain, email_settings, redis_ns):
    settings = email_settings(smtp_plain, notify_dedup_ttl_seconds=600)
    deliver(email_note(), "task-15", settings=settings, redis=redis_ns.client, namespace=redis_ns.namespace)
    key = f"{redis_ns.namespace}:notify:dedup:{delivery_token('email', 'ada@example.com', 'task-15')}"
    assert redis_ns.client.hget(key, "state") == "sent"
    assert 0 < redis_ns.client.ttl(key) <= 600


def test_redis_down_before_sending_means_no_send(smtp_plain, email_settings):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    dead = redis.Redis(host="127.0.0.1", port=1, decode_responses=True, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    with pytest.raises(TransientError, match="dedup store unavailable"):
        deliver(email_note(), "task-16", settings=email_settings(smtp_plain), redis=dead, namespace="x")
    assert smtp_plain.messages == []

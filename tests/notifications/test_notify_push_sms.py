"""Push webhook and SMS gateway adapters against a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from notify_helpers import HMAC_SECRET, SMS_KEY, Answer, free_port
from pipeline.errors import PermanentError, TransientError
from pipeline.notifications.channels.base import OutcomeUnknown
from pipeline.notifications.channels.push import WebhookPush, verify_signature
from pipeline.notifications.channels.sms import HttpSms
from pipeline.notifications.models import NotificationArgs

TOKEN = "fedcba9876543210fedcba9876543210"


def push_note(**overrides) -> NotificationArgs:
    values = dict(channel="push", recipient="user-42", subject="New reply", body="Ada replied to you", data={"thread": 7})
    values.update(overrides)
    return NotificationArgs(**values)


def sms_note(**overrides) -> NotificationArgs:
    values = dict(channel="sms", recipient="+86 138-0013-8000", body="Your code is 123456", data={"code": "123456"})
    values.update(overrides)
    return NotificationArgs(**values)


# --- push -----------------------------------------------------------------------------------------
def test_push_webhook_is_signed_over_timestamp_and_body(http_server, push_settings):
    before = int(time.time())
    receipt = WebhookPush(push_settings()).send(push_note(), TOKEN)

    assert len(http_server.requests) == 1
    req = http_server.requests[0]
    assert req.path == "/hooks/push"
    timestamp = req.headers["X-Claw-Timestamp"]
    assert before - 1 <= int(timestamp) <= int(time.time()) + 1
    # recompute independently of the adapter's own sign()
    expected = hmac.new(HMAC_SECRET.encode(), timestamp.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-Claw-Signature"] == f"sha256={expected}"
    assert req.headers["Idempotency-Key"] == TOKEN
    assert req.headers["Content-Type"] == "application/json"
    payload = req.json()
    assert payload == {
        "id": TOKEN,
        "app": "shop",
        "user_id": "user-42",
        "title": "New reply",
        "body": "Ada replied to you",
        "data": {"thread": 7},
        "sent_at": payload["sent_at"],
    }
    assert verify_signature(HMAC_SECRET, timestamp, req.body, req.headers["X-Claw-Signature"])
    assert receipt["app"] == "shop" and receipt["status"] == 200 and receipt["provider_message_id"] == "prov-1"
    assert receipt["endpoint"] == f"{http_server.url}/hooks/push"


def test_receiver_check_rejects_tampering_replay_and_wrong_secret(http_server, push_settings):
    WebhookPush(push_settings()).send(push_note(), TOKEN)
    req = http_server.requests[0]
    ts, sig = req.headers["X-Claw-Timestamp"], req.headers["X-Claw-Signature"]
    assert verify_signature(HMAC_SECRET, ts, req.body, sig)
    assert not verify_signature(HMAC_SECRET, ts, req.body.replace(b"user-42", b"user-43"), sig)
    assert not verify_signature(HMAC_SECRET, str(int(ts) + 1), req.body, sig)
    assert not verify_signature("some-other-secret-value", ts, req.body, sig)
    assert not verify_signature(HMAC_SECRET, ts, req.body, sig, now=int(ts) + 301)  # too old: replay


def test_push_goes_to_the_named_app_with_its_own_secret(http_server, push_settings):
    WebhookPush(push_settings()).send(push_note(app="admin"), TOKEN)
    req = http_server.requests[0]
    assert req.path == "/hooks/admin"
    assert verify_signature("another-secret-value-42", req.headers["X-Claw-Timestamp"], req.body, req.headers["X-Claw-Signature"])


def test_push_to_unknown_app_is_permanent(push_settings, http_server):
    with pytest.raises(PermanentError, match="unknown push app 'nope'"):
        WebhookPush(push_settings()).send(push_note(app="nope"), TOKEN)
    assert http_server.requests == []


def test_push_5xx_is_transient_and_4xx_permanent(http_server, push_settings):
    http_server.answer(Answer(503, {"error": "maintenance"}), Answer(410, {"reason": "device unregistered"}))
    adapter = WebhookPush(push_settings())
    with pytest.raises(TransientError, match="HTTP 503: maintenance"):
        adapter.send(push_note(), TOKEN)
    with pytest.raises(PermanentError, match="HTTP 410: device unregistered"):
        adapter.send(push_note(), TOKEN)


# --- sms ------------------------------------------------------------------------------------------
def test_sms_gateway_200_429_500_400_in_turn(http_server, sms_settings):
    http_server.answer(
        Answer(200, {"message_id": "gw-77", "status": "queued"}),
        Answer(429, {"message": "rate limit exceeded"}, headers={"Retry-After": "30"}),
        Answer(500, {"error": "upstream carrier down"}),
        Answer(400, {"code": 21211, "message": "The 'To' number is not a mobile number"}),
    )
    adapter = HttpSms(sms_settings())

    receipt = adapter.send(sms_note(), TOKEN)
    assert receipt["provider_message_id"] == "gw-77" and receipt["status"] == 200
    assert receipt["recipient"] == "+8613800138000"

    with pytest.raises(TransientError) as too_many:
        adapter.send(sms_note(), TOKEN)
    assert "HTTP 429: rate limit exceeded" in str(too_many.value) and "Retry-After: 30" in str(too_many.value)

    with pytest.raises(TransientError, match="HTTP 500: upstream carrier down"):
        adapter.send(sms_note(), TOKEN)

    with pytest.raises(PermanentError) as bad:
        adapter.send(sms_note(), TOKEN)
    assert not isinstance(bad.value, TransientError)
    assert "HTTP 400: The 'To' number is not a mobile number" in str(bad.value)

    assert len(http_server.requests) == 4
    first = http_server.requests[0]
    assert first.path == "/v1/sms"
    assert first.headers["Authorization"] == f"Bearer {SMS_KEY}"
    assert first.headers["Idempotency-Key"] == TOKEN
    assert first.json() == {
        "to": "+8613800138000",
        "from": "CLAW",
        "template_id": "tpl-otp-1",
        "text": "Your code is 123456",
        "params": {"code": "123456"},
        "reference": TOKEN,
    }


def test_sms_gateway_plain_text_error_is_the_reason(http_server, sms_settings):
    http_server.answer(Answer(422, b"sender id not approved"))
    with pytest.raises(PermanentError, match="HTTP 422: sender id not approved"):
        HttpSms(sms_settings()).send(sms_note(), TOKEN)


def test_sms_connection_refused_is_transient(sms_settings):
    settings = sms_settings(sms_url=f"http://127.0.0.1:{free_port()}/v1/sms")
    with pytest.raises(TransientError, match="connection refused") as info:
        HttpSms(settings).send(sms_note(), TOKEN)
    assert not isinstance(info.value, OutcomeUnknown)


def test_sms_read_timeout_is_outcome_unknown(http_server, sms_settings):
    http_server.answer(Answer(200, {"id": "late"}, delay=1.5))
    with pytest.raises(OutcomeUnknown, match="may have accepted"):
        HttpSms(sms_settings(sms_timeout_seconds=0.3)).send(sms_note(), TOKEN)
    assert len(http_server.requests) == 1


def test_sms_without_gateway_configured_is_permanent(make_settings):
    with pytest.raises(PermanentError, match="CLAW_SMS_URL and CLAW_SMS_API_KEY"):
        HttpSms(make_settings()).send(sms_note(), TOKEN)


@pytest.mark.parametrize(
    "number, normalised",
    [("+14155550100", "+14155550100"), ("+1 (415) 555-0100", "+14155550100"), ("+44.20.7946.0958", "+442079460958")],
)
def test_e164_numbers_are_accepted_and_normalised(number, normalised):
    assert sms_note(recipient=number).recipient == normalised


@pytest.mark.parametrize(
    "number", ["14155550100", "+04155550100", "+1415", "+1234567890123456", "+1415555010x", "tel:+14155550100"]
)
def test_non_e164_numbers_are_rejected(number):
    with pytest.raises(ValueError, match="E.164"):
        sms_note(recipient=number)

"""Argument and settings validation of the notifications domain."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from pipeline.errors import PermanentError
from pipeline.notifications.channels.base import get_adapter_class
from pipeline.notifications.config import load_notification_settings
from pipeline.notifications.models import MAX_BATCH, NotificationArgs, NotificationBatchArgs


def fields_of(exc: ValidationError) -> dict[str, str]:
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.errors()}


def invalid(**values) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        NotificationArgs(**values)
    return fields_of(info.value)


@pytest.mark.parametrize("address", ["ada@example.com", "first.last+tag@mail.example.co.uk", "o'neil@example.org"])
def test_valid_email_addresses(address):
    assert NotificationArgs(channel="email", recipient=address, subject="s", body="b").recipient == address


def test_email_domain_is_lowercased_local_part_kept():
    assert NotificationArgs(channel="email", recipient="Ada@Example.COM", subject="s", body="b").recipient == "Ada@example.com"


@pytest.mark.parametrize(
    "address",
    ["ada", "ada@", "@example.com", "ada@example", "ada@@example.com", "a da@example.com", "ada@example.com\r\nBcc: x@y.z",
     "ada..b@example.com", "x" * 65 + "@example.com"],
)
def test_invalid_email_addresses_name_recipient(address):
    assert "recipient" in invalid(channel="email", recipient=address, subject="s", body="b")


@pytest.mark.parametrize("user", ["user-1", "42", "u_a.b@tenant:7"])
def test_user_ids_for_push_and_system(user):
    for channel in ("push", "system"):
        assert NotificationArgs(channel=channel, recipient=user, body="b").recipient == user


@pytest.mark.parametrize("user", ["", "-lead", "has space", "a/b", "x" * 129, "ümlaut"])
def test_bad_user_ids_are_refused(user):
    assert "recipient" in invalid(channel="system", recipient=user, body="b")


def test_per_channel_rules_name_their_field():
    assert "subject" in invalid(channel="email", recipient="a@example.com", body="b")  # email needs a subject
    assert "subject" in invalid(channel="email", recipient="a@example.com", subject="a\r\nBcc: x@y.z", body="b")
    assert "subject" in invalid(channel="sms", recipient="+14155550100", subject="hi", body="b")
    assert "html_body" in invalid(channel="push", recipient="u1", body="b", html_body="<p>x</p>")
    assert "app" in invalid(channel="email", recipient="a@example.com", subject="s", body="b", app="shop")
    assert "channel" in invalid(channel="fax", recipient="u1", body="b")
    assert "body" in invalid(channel="system", recipient="u1", body="   ")
    assert "extra" in invalid(channel="system", recipient="u1", body="b", extra=1)
    assert "dedup_key" in invalid(channel="system", recipient="u1", body="b", dedup_key="has space")


def test_sizes_are_bounded_per_channel():
    assert "body" in invalid(channel="sms", recipient="+14155550100", body="x" * 1601)
    assert NotificationArgs(channel="sms", recipient="+14155550100", body="x" * 1600)
    assert "body" in invalid(channel="push", recipient="u1", body="x" * 4001)
    assert "subject" in invalid(channel="push", recipient="u1", subject="x" * 201, body="b")
    assert "data" in invalid(channel="push", recipient="u1", body="b", data={"blob": "x" * 9000})
    assert "data" in invalid(channel="push", recipient="u1", body="b", data={"when": object()})


def test_batch_normalises_dedupes_and_reports_bad_recipients_by_index():
    batch = NotificationBatchArgs(channel="sms", recipients=["+1 415 555 0100", "+14155550100", "+442079460958"], body="b")
    assert batch.recipients == ["+14155550100", "+442079460958"]
    with pytest.raises(ValidationError) as info:
        NotificationBatchArgs(channel="sms", recipients=["+14155550100", "0800", "+1"], body="b")
    message = fields_of(info.value)["recipients"]
    assert "[1]" in message and "[2]" in message and "[0]" not in message
    with pytest.raises(ValidationError):
        NotificationBatchArgs(channel="sms", recipients=[], body="b")
    with pytest.raises(ValidationError):
        NotificationBatchArgs(channel="system", recipients=[f"u{i}" for i in range(MAX_BATCH + 1)], body="b")


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("CLAW_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("CLAW_SMTP_PORT", "465")
    monkeypatch.setenv("CLAW_SMTP_MODE", "ssl")
    monkeypatch.setenv("CLAW_SMTP_USER", "mailer")
    monkeypatch.setenv("CLAW_SMTP_PASSWORD", "pw-value-123")
    monkeypatch.setenv("CLAW_PUSH_APPS", json.dumps({"shop": {"url": "https://push.example/h", "secret": "s" * 32}}))
    monkeypatch.setenv("CLAW_SMS_URL", "https://sms.example/v1/messages")
    monkeypatch.setenv("CLAW_SMS_API_KEY", "key-value-123")
    monkeypatch.setenv("CLAW_NOTIFY_UNKNOWN_OUTCOME", "fail")
    settings = load_notification_settings()
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_mode) == ("smtp.example.com", 465, "ssl")
    assert settings.smtp_password.get_secret_value() == "pw-value-123"
    assert settings.push_app(None)[0] == "shop"  # the only app is the default
    assert settings.notify_unknown_outcome == "fail"
    assert set(settings.secret_values()) == {"pw-value-123", "key-value-123", "s" * 32}


def test_claim_lease_must_outlast_the_slowest_send(monkeypatch):
    from pipeline.errors import ConfigError

    monkeypatch.setenv("CLAW_SMTP_TIMEOUT_SECONDS", "30")
    monkeypatch.setenv("CLAW_NOTIFY_CLAIM_LEASE_SECONDS", "60")
    with pytest.raises(ConfigError, match="CLAW_NOTIFY_CLAIM_LEASE_SECONDS: must be at least 120"):
        load_notification_settings()


def test_unknown_provider_is_permanent_and_a_provider_module_registers_itself():
    with pytest.raises(PermanentError, match="no push provider named 'carrier_pigeon'"):
        get_adapter_class("push", "carrier_pigeon")
    assert get_adapter_class("sms", "http").__name__ == "HttpSms"

"""Secrets (SMTP password, SMS API key, push HMAC secrets) never show in exceptions, logs, receipts or records."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from notify_helpers import ALL_SECRETS, HMAC_SECRET, SMS_KEY, SMTP_PASSWORD, SMTP_USER, Answer
import pipeline.actors.notifications  # noqa: F401  (declares the actors for the worker test)
from pipeline.errors import ConfigError, PermanentError, TransientError
from pipeline.notifications.channels.email import SmtpEmail
from pipeline.notifications.channels.push import WebhookPush
from pipeline.notifications.channels.sms import HttpSms
from pipeline.notifications.config import load_notification_settings
from pipeline.notifications.models import NotificationArgs
from pipeline.notifications.service import deliver


def forms(secret: str) -> list[str]:
    return [secret, base64.b64encode(secret.encode()).decode()]


def assert_clean(*texts: object) -> None:
    for text in texts:
        blob = text if isinstance(text, str) else json.dumps(text, default=str)
        for secret in ALL_SECRETS:
            for form in forms(secret):
                assert form not in blob, f"secret leaked into: {blob[:200]}"


class ClientLogs:
    """Every log line of the client side at DEBUG (the test SMTP server's own "mail.log" is not ours)."""

    def __init__(self, caplog):
        self.caplog = caplog
        self.formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    @property
    def text(self) -> str:
        records = [r for r in self.caplog.records if not r.name.startswith("mail.log")]
        return "\n".join(self.formatter.format(r) for r in records)


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG)  # everything, including urllib3's connection logs
    return ClientLogs(caplog)


def everything(make_settings, smtp_server, http_server, cert=None, **extra):
    return make_settings(
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_mode="starttls" if cert else "plain",
        smtp_ca_file=cert,
        smtp_user=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_from="alerts@claw.example",
        push_apps={"shop": {"url": f"{http_server.url}/hook", "secret": HMAC_SECRET}},
        push_default_app="shop",
        sms_url=f"{http_server.url}/sms",
        sms_api_key=SMS_KEY,
        **extra,
    )


def test_settings_never_print_secrets(make_settings, smtp_plain, http_server):
    settings = everything(make_settings, smtp_plain, http_server)
    assert_clean(repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump()))
    assert settings.smtp_password.get_secret_value() == SMTP_PASSWORD  # still usable


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"CLAW_PUSH_APPS": '{"shop": {"url": "https://x.test/h", "secret": "short"}}'}, "CLAW_PUSH_APPS (shop.secret)"),
        ({"CLAW_PUSH_APPS": '{"shop": {"url": "https://x.test/h", "secret": "' + HMAC_SECRET + '"'}, "CLAW_PUSH_APPS: is not valid JSON"),
        ({"CLAW_PUSH_APPS": '{"shop": {"url": "mailto:' + HMAC_SECRET + '", "secret": "' + HMAC_SECRET + '"}}'}, "CLAW_PUSH_APPS (shop.url)"),
        ({"CLAW_SMTP_PASSWORD": SMTP_PASSWORD}, "CLAW_SMTP_USER: must be set"),
        ({"CLAW_PUSH_DEFAULT_APP": "nope"}, "CLAW_PUSH_DEFAULT_APP"),
        ({"CLAW_SMTP_MODE": "tls13"}, "CLAW_SMTP_MODE"),
    ],
)
def test_config_errors_name_the_variable_but_not_the_value(monkeypatch, env, expected):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_notification_settings()
    assert str(info.value).startswith(expected)
    assert_clean(str(info.value))


def test_smtp_password_stays_out_of_receipts_and_logs(smtp_starttls, http_server, make_settings, self_signed_cert, debug_logs, redis_ns):
    settings = everything(make_settings, smtp_starttls, http_server, cert=self_signed_cert.cert)
    note = NotificationArgs(channel="email", recipient="ada@example.com", subject="Hi", body="Hello")
    receipt = deliver(note, "k1", settings=settings, redis=redis_ns.client, namespace=redis_ns.namespace)
    again = deliver(note, "k1", settings=settings, redis=redis_ns.client, namespace=redis_ns.namespace)
    assert smtp_starttls.messages[0].authenticated is True and again["duplicate"] is True
    assert "email accepted" in debug_logs.text and "already sent" in debug_logs.text
    stored = {k: redis_ns.client.hgetall(k) for k in redis_ns.client.scan_iter(f"{redis_ns.namespace}:*")}
    assert_clean(receipt, again, stored, debug_logs.text)


def test_smtp_server_echoing_the_password_is_redacted(smtp_starttls, http_server, make_settings, self_signed_cert, debug_logs):
    smtp_starttls.handler.rcpt_replies["ada@example.com"] = f"550 5.7.1 relay denied for pass={SMTP_PASSWORD}"
    settings = everything(make_settings, smtp_starttls, http_server, cert=self_signed_cert.cert)
    with pytest.raises(PermanentError) as info:
        SmtpEmail(settings).send(NotificationArgs(channel="email", recipient="ada@example.com", subject="s", body="b"), "t")
    assert "relay denied for pass=***" in str(info.value)
    assert_clean(str(info.value), debug_logs.text)


def test_hmac_secret_stays_out_of_receipts_errors_and_logs(http_server, make_settings, smtp_plain, debug_logs):
    settings = everything(make_settings, smtp_plain, http_server)
    http_server.answer(Answer(200, {"id": "p1", "echo": HMAC_SECRET}), Answer(500, {"error": f"bad signature, key {HMAC_SECRET}"}))
    adapter = WebhookPush(settings)
    note = NotificationArgs(channel="push", recipient="user-1", body="hello")
    receipt = adapter.send(note, "t1")
    with pytest.raises(TransientError) as info:
        adapter.send(note, "t2")
    assert "bad signature, key ***" in str(info.value)
    assert_clean(receipt, str(info.value), debug_logs.text)
    assert "push accepted" in debug_logs.text and "urllib3" in debug_logs.text  # the logs were really captured
    assert receipt["endpoint"] == f"{http_server.url}/hook"


def test_sms_key_echoed_by_the_gateway_is_redacted(http_server, make_settings, smtp_plain, debug_logs):
    settings = everything(make_settings, smtp_plain, http_server)
    http_server.answer(
        Answer(401, {"message": f"invalid key {SMS_KEY}"}),
        Answer(429, {"message": f"slow down {SMS_KEY}"}, headers={"Retry-After": SMS_KEY}),
        Answer(200, {"id": "m1", "key": SMS_KEY}),
    )
    adapter = HttpSms(settings)
    note = NotificationArgs(channel="sms", recipient="+14155550100", body="code 1")
    with pytest.raises(PermanentError) as unauthorized:
        adapter.send(note, "t1")
    with pytest.raises(TransientError) as throttled:
        adapter.send(note, "t2")
    receipt = adapter.send(note, "t3")
    assert "HTTP 401: invalid key ***" in str(unauthorized.value)
    assert_clean(str(unauthorized.value), str(throttled.value), receipt, debug_logs.text)
    assert http_server.requests[0].headers["Authorization"] == f"Bearer {SMS_KEY}"  # it was sent, just never shown


def test_sms_key_in_the_gateway_url_is_not_echoed(make_settings, debug_logs):
    from notify_helpers import free_port

    settings = make_settings(sms_url=f"http://user:{SMS_KEY}@127.0.0.1:{free_port()}/sms?key={SMS_KEY}", sms_api_key=SMS_KEY)
    with pytest.raises(TransientError) as info:
        HttpSms(settings).send(NotificationArgs(channel="sms", recipient="+14155550100", body="x"), "t")
    assert_clean(str(info.value), debug_logs.text)


def test_failed_task_record_and_worker_log_hold_no_secret(engine, start_worker, http_server):
    """Through a real worker: the FAILURE record (message, traceback) and the worker's output are clean."""
    from pipeline import client
    from tests.conftest import wait_for_state

    http_server.answer(Answer(401, {"message": f"invalid key {SMS_KEY}"}))
    worker = start_worker(
        queues=("notification_default",),
        extra_env={
            "CLAW_TASK_MODULES": "tests.sample_tasks,pipeline.actors.notifications",
            "CLAW_SMS_URL": f"{http_server.url}/sms",
            "CLAW_SMS_API_KEY": SMS_KEY,
        },
    )
    task_id = client.submit("send_notification", kwargs={"channel": "sms", "recipient": "+14155550100", "body": "x"})
    record = wait_for_state(engine, task_id, "FAILURE", timeout=30)
    assert record["attempts"] == 1 and record["error"]["type"] == "PermanentError"
    assert "invalid key ***" in record["error"]["message"]
    assert_clean(record, worker.output())

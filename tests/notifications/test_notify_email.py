"""The SMTP adapter against real aiosmtpd servers on loopback."""

from __future__ import annotations

import email
import email.policy

import pytest

from notify_helpers import SMTP_PASSWORD, SMTP_USER, free_port
from pipeline.errors import PermanentError, TransientError
from pipeline.notifications.channels.base import OutcomeUnknown
from pipeline.notifications.channels.email import SmtpEmail
from pipeline.notifications.models import NotificationArgs

TOKEN = "0123456789abcdef0123456789abcdef"


def note(**overrides) -> NotificationArgs:
    values = dict(
        channel="email",
        recipient="ada@example.com",
        subject="Your report is ready",
        body="Hello Ada,\nyour report is ready.\n.\nA line with a single dot above.",
        html_body="<p>Hello <b>Ada</b>, your report is ready.</p>",
    )
    values.update(overrides)
    return NotificationArgs(**values)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_plain_smtp_delivers_text_and_html_alternatives(smtp_plain, email_settings):
    adapter = SmtpEmail(email_settings(smtp_plain))
    receipt = adapter.send(note(), TOKEN)

    assert len(smtp_plain.messages) == 1
    got = smtp_plain.messages[0]
    assert got.mail_from == "alerts@claw.example"
    assert got.rcpt_tos == ["ada@example.com"]
    msg = parse(got.content)
    assert msg["Subject"] == "Your report is ready"
    assert msg["To"] == "ada@example.com"
    assert msg["From"] == "Claw Alerts <alerts@claw.example>"
    assert msg["Message-ID"] == f"<{TOKEN}@claw.example>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = msg.get_body(("html",)).get_content()
    assert "your report is ready." in text and "\n.\nA line with a single dot" in text  # dot-stuffing undone
    assert "<b>Ada</b>" in html
    assert receipt["message_id"] == f"<{TOKEN}@claw.example>"
    assert receipt["channel"] == "email" and receipt["provider"] == "smtp" and receipt["delivery_id"] == TOKEN


def test_text_only_email_is_not_multipart(smtp_plain, email_settings):
    SmtpEmail(email_settings(smtp_plain)).send(note(html_body=None), TOKEN)
    msg = parse(smtp_plain.messages[0].content)
    assert msg.get_content_type() == "text/plain"


def test_starttls_with_auth_login_and_self_signed_ca(smtp_starttls, email_settings, self_signed_cert):
    settings = email_settings(
        smtp_starttls,
        smtp_mode="starttls",
        smtp_user=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_ca_file=self_signed_cert.cert,
    )
    SmtpEmail(settings).send(note(), TOKEN)
    assert len(smtp_starttls.messages) == 1
    got = smtp_starttls.messages[0]
    assert got.tls is True and got.authenticated is True
    assert smtp_starttls.handler.auth_mechanisms == ["LOGIN"]
    assert parse(got.content).get_body(("html",)) is not None


def test_implicit_tls_mode(smtp_ssl, email_settings, self_signed_cert):
    settings = email_settings(smtp_ssl, smtp_mode="ssl", smtp_ca_file=self_signed_cert.cert)
    SmtpEmail(settings).send(note(), TOKEN)
    assert smtp_ssl.messages[0].tls is True


def test_wrong_password_is_permanent_and_never_shows_the_password(smtp_starttls, email_settings, self_signed_cert, caplog):
    wrong = "Wrong-Pa55word-XYZ"
    settings = email_settings(
        smtp_starttls, smtp_mode="starttls", smtp_user=SMTP_USER, smtp_password=wrong, smtp_ca_file=self_signed_cert.cert
    )
    caplog.set_level("DEBUG")
    with pytest.raises(PermanentError) as info:
        SmtpEmail(settings).send(note(), TOKEN)
    assert "login failed" in str(info.value) and "535" in str(info.value)
    assert wrong not in str(info.value) and wrong not in caplog.text
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert smtp_starttls.messages == []


def test_untrusted_certificate_is_permanent(smtp_starttls, email_settings):
    settings = email_settings(smtp_starttls, smtp_mode="starttls", smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD)
    with pytest.raises(PermanentError, match="certificate not trusted"):
        SmtpEmail(settings).send(note(), TOKEN)


def test_starttls_mode_refuses_a_server_without_starttls(smtp_plain, email_settings):
    with pytest.raises(PermanentError, match="does not offer STARTTLS"):
        SmtpEmail(email_settings(smtp_plain, smtp_mode="starttls")).send(note(), TOKEN)
    assert smtp_plain.messages == []


def test_smtp_5xx_recipient_is_permanent_with_the_servers_reason(smtp_plain, email_settings):
    smtp_plain.handler.rcpt_replies["ghost@example.com"] = "550 5.1.1 <ghost@example.com>: mailbox unavailable"
    with pytest.raises(PermanentError) as info:
        SmtpEmail(email_settings(smtp_plain)).send(note(recipient="ghost@example.com"), TOKEN)
    assert "550" in str(info.value) and "mailbox unavailable" in str(info.value)


def test_smtp_4xx_recipient_is_transient(smtp_plain, email_settings):
    smtp_plain.handler.rcpt_replies["busy@example.com"] = "451 4.3.0 greylisted, try again later"
    with pytest.raises(TransientError) as info:
        SmtpEmail(email_settings(smtp_plain)).send(note(recipient="busy@example.com"), TOKEN)
    assert not isinstance(info.value, OutcomeUnknown)
    assert "451" in str(info.value) and "greylisted" in str(info.value)


def test_connection_refused_is_transient(email_settings, smtp_plain):
    settings = email_settings(smtp_plain, smtp_port=free_port())
    with pytest.raises(TransientError, match="connection refused"):
        SmtpEmail(settings).send(note(), TOKEN)


def test_lost_answer_after_data_is_outcome_unknown(smtp_plain, email_settings):
    smtp_plain.handler.data_delay = 2.0
    with pytest.raises(OutcomeUnknown, match="may have queued"):
        SmtpEmail(email_settings(smtp_plain, smtp_timeout_seconds=0.5)).send(note(), TOKEN)
    assert len(smtp_plain.messages) == 1  # the server did get it: that is why it is "unknown"

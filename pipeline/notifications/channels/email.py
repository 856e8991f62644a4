"""Email over SMTP (smtplib): STARTTLS / implicit TLS / plain, optional AUTH, text + HTML.

The Message-ID is derived from the delivery token, so a resend after an unknown
outcome carries the same Message-ID (mail clients collapse such duplicates; the
SMTP protocol itself has no idempotency, see :mod:`pipeline.notifications.dedup`).

Error mapping: connection refused/reset, timeouts, TLS handshake failures and SMTP
4xx replies are transient; SMTP 5xx replies (bad address, rejected sender, auth
failure), certificate verification failures and a server without STARTTLS are
permanent. A failure while waiting for the reply to the end of DATA is
:class:`OutcomeUnknown`: the server may have queued the mail. Nothing after the
server's 250 to DATA can fail the send (QUIT errors are ignored).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any, Optional

from pipeline.errors import PermanentError, TransientError
from pipeline.notifications.channels.base import OutcomeUnknown, ProviderAdapter, log, register
from pipeline.notifications.config import NotificationSettings
from pipeline.notifications.redaction import mask_recipient, short_reason


class _PhaseMixin:
    """Marks the moment the whole message has been handed to the server."""

    outcome_unknown = False

    def data(self, msg):  # same steps as smtplib.SMTP.data, with the phase recorded
        self.putcmd("data")
        code, repl = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, repl)
        if isinstance(msg, str):
            msg = smtplib._fix_eols(msg).encode("ascii")
        q = smtplib._quote_periods(msg)
        if q[-2:] != smtplib.bCRLF:
            q = q + smtplib.bCRLF
        q = q + b"." + smtplib.bCRLF
        self.send(q)
        self.outcome_unknown = True
        code, repl = self.getreply()
        self.outcome_unknown = False
        return code, repl


class _SMTP(_PhaseMixin, smtplib.SMTP):
    pass


class _SMTP_SSL(_PhaseMixin, smtplib.SMTP_SSL):
    pass


def _reply_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@register
class SmtpEmail(ProviderAdapter):
    channel = "email"
    provider = "smtp"
    settings: NotificationSettings

    # --- building ---------------------------------------------------------------------------------
    def message_id(self, dedup_key: str) -> str:
        domain = self.settings.smtp_from.rpartition("@")[2]
        return f"<{dedup_key}@{domain}>"

    def build_message(self, notification: Any, dedup_key: str) -> EmailMessage:
        s = self.settings
        msg = EmailMessage()
        msg["From"] = formataddr((s.smtp_from_name, s.smtp_from)) if s.smtp_from_name else s.smtp_from
        msg["To"] = notification.recipient
        msg["Subject"] = notification.subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = self.message_id(dedup_key)
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(notification.body)
        if notification.html_body:
            msg.add_alternative(notification.html_body, subtype="html")
        return msg

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.settings.smtp_ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    # --- sending ----------------------------------------------------------------------------------
    def send(self, notification: Any, dedup_key: str) -> dict:
        s = self.settings
        msg = self.build_message(notification, dedup_key)
        where = f"email/smtp {s.smtp_host}:{s.smtp_port}"
        client: Optional[smtplib.SMTP] = None
        try:
            if s.smtp_mode == "ssl":
                client = _SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds, context=self._tls_context())
            else:
                client = _SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)
            client.ehlo()
            if s.smtp_mode == "starttls":
                if not client.has_extn("starttls"):
                    raise PermanentError(f"{where}: server does not offer STARTTLS (set CLAW_SMTP_MODE)")
                client.starttls(context=self._tls_context())
                client.ehlo()
            if s.smtp_user:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                client.login(s.smtp_user, password)
            refused = client.send_message(msg, from_addr=s.smtp_from, to_addrs=[notification.recipient])
        except (PermanentError, TransientError):
            self._close(client)
            raise
        except Exception as exc:
            unknown = bool(client is not None and client.outcome_unknown)
            self._close(client)
            raise self._map_error(exc, where, unknown) from None
        # accepted: from here on nothing may raise
        try:
            client.quit()
        except Exception:
            self._close(client)
        log.info(
            "email accepted: to=%s message_id=%s",
            mask_recipient(notification.recipient),
            msg["Message-ID"],
        )
        return self._receipt(notification, dedup_key, message_id=msg["Message-ID"], refused=sorted(refused or {}))

    @staticmethod
    def _close(client: Optional[smtplib.SMTP]) -> None:
        if client is None:
            return
        try:
            client.close()
        except Exception:
            pass

    def _map_error(self, exc: Exception, where: str, unknown: bool) -> Exception:
        secrets = self.secrets
        if unknown:
            return OutcomeUnknown(
                f"{where}: lost the answer to the end of DATA ({type(exc).__name__}); the server may have queued it"
            )
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            code, text = next(iter(exc.recipients.values()), (550, b""))
            return self._by_code(code, f"{where}: recipient refused: {code} {short_reason(_reply_text(text), secrets)}")
        if isinstance(exc, smtplib.SMTPResponseException):  # sender refused, data error, auth error, connect error
            text = short_reason(_reply_text(exc.smtp_error), secrets)
            label = {
                smtplib.SMTPAuthenticationError: "login failed",
                smtplib.SMTPSenderRefused: "sender refused",
                smtplib.SMTPDataError: "message refused",
                smtplib.SMTPConnectError: "connect refused",
                smtplib.SMTPHeloError: "HELO refused",
            }.get(type(exc), "server said")
            return self._by_code(exc.smtp_code, f"{where}: {label}: {exc.smtp_code} {text}")
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return PermanentError(f"{where}: server does not support a required extension: {short_reason(exc, secrets)}")
        if isinstance(exc, ssl.SSLCertVerificationError):
            return PermanentError(f"{where}: TLS certificate not trusted: {short_reason(exc.verify_message, secrets)}")
        if isinstance(exc, ssl.SSLError):
            return TransientError(f"{where}: TLS failed: {short_reason(exc.reason or exc, secrets)}")
        if isinstance(exc, ConnectionRefusedError):
            return TransientError(f"{where}: connection refused")
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return TransientError(f"{where}: timed out after {self.settings.smtp_timeout_seconds:g}s")
        if isinstance(exc, socket.gaierror):
            return TransientError(f"{where}: host name lookup failed")
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return TransientError(f"{where}: connection lost")
        if isinstance(exc, smtplib.SMTPException):  # e.g. no AUTH mechanism in common
            return PermanentError(f"{where}: {type(exc).__name__}: {short_reason(exc, secrets)}")
        if isinstance(exc, OSError):
            return TransientError(f"{where}: connection failed ({type(exc).__name__})")
        if isinstance(exc, (UnicodeError, ValueError)):
            return PermanentError(f"{where}: message could not be encoded: {type(exc).__name__}")
        return PermanentError(f"{where}: unexpected {type(exc).__name__}: {short_reason(exc, secrets)}")

    @staticmethod
    def _by_code(code: int, message: str) -> Exception:
        if 400 <= int(code) < 500:
            return TransientError(message)
        return PermanentError(message)

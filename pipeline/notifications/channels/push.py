"""Push as a signed JSON webhook to the app's own push service.

Request::

    POST <CLAW_PUSH_APPS[app].url>
    Content-Type: application/json
    X-Claw-Timestamp: <unix seconds>
    X-Claw-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
    Idempotency-Key: <delivery token>

    {"id": <delivery token>, "app": ..., "user_id": ..., "title": ..., "body": ..., "data": {...}, "sent_at": ...}

The receiver recomputes the HMAC over the raw bytes, compares in constant time,
rejects timestamps older than a few minutes (replay) and drops a repeated
Idempotency-Key. :func:`verify_signature` does exactly that check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, Optional

import requests

from pipeline.errors import PermanentError
from pipeline.notifications.channels.base import endpoint_of, http_post_json, log, now_iso, receipt, register
from pipeline.notifications.config import NotificationSettings

SIGNATURE_HEADER = "X-Claw-Signature"
TIMESTAMP_HEADER = "X-Claw-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str, timestamp: str, body: bytes, signature: str, *, tolerance_seconds: int = 300, now: Optional[float] = None
) -> bool:
    """Receiver side: is ``signature`` valid for ``body`` and ``timestamp`` recent?"""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except (TypeError, ValueError):
        return False
    if age > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


@register
class WebhookPush:
    channel = "push"
    provider = "webhook"

    def __init__(self, settings: NotificationSettings, *, session: Optional[requests.Session] = None, **_: Any):
        self.settings = settings
        self.secrets = settings.secret_values()
        self.session = session

    def send(self, notification: Any, dedup_key: str) -> dict:
        try:
            app_name, app = self.settings.push_app(notification.app)
        except ValueError as exc:
            raise PermanentError(f"push/webhook: {exc}") from None
        payload = {
            "id": dedup_key,
            "app": app_name,
            "user_id": notification.recipient,
            "title": notification.subject,
            "body": notification.body,
            "data": notification.data,
            "sent_at": now_iso(),
        }
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(app.secret.get_secret_value(), timestamp, body),
            IDEMPOTENCY_HEADER: dedup_key,
        }
        status, answer = http_post_json(
            channel=self.channel,
            provider=self.provider,
            url=app.url,
            body=body,
            headers=headers,
            timeout=self.settings.push_timeout_seconds,
            secrets=self.secrets,
            session=self.session,
        )
        provider_id = answer.get("id") if isinstance(answer, dict) else None
        log.info("push accepted: app=%s user=%s id=%s status=%s", app_name, notification.recipient, dedup_key, status)
        return receipt(
            self.channel,
            self.provider,
            notification.recipient,
            dedup_key,
            self.secrets,
            app=app_name,
            endpoint=endpoint_of(app.url),
            status=status,
            provider_message_id=str(provider_id) if provider_id is not None else None,
        )

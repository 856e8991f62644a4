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
import time
from typing import Any, Optional

from pipeline.errors import PermanentError
from pipeline.notifications.channels.base import HttpJsonAdapter, JsonPost, endpoint_of, now_iso, register

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
class WebhookPush(HttpJsonAdapter):
    channel = "push"
    provider = "webhook"

    def post(self, notification: Any, dedup_key: str) -> JsonPost:
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
        return JsonPost(app.url, payload, self.settings.push_timeout_seconds,
                        receipt={"app": app_name, "endpoint": endpoint_of(app.url)}, secret=app.secret.get_secret_value())

    def headers(self, post: JsonPost, body: bytes, dedup_key: str) -> dict[str, str]:
        timestamp = str(int(time.time()))
        return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(post.secret, timestamp, body), IDEMPOTENCY_HEADER: dedup_key}

    def described(self, notification: Any, post: JsonPost, dedup_key: str) -> str:
        return f"app={post.receipt['app']} user={notification.recipient} id={dedup_key}"

"""SMS through an HTTP gateway.

Request::

    POST <CLAW_SMS_URL>
    Authorization: Bearer <CLAW_SMS_API_KEY>
    Idempotency-Key: <delivery token>

    {"to": "+14155550100", "from": <CLAW_SMS_SENDER>, "template_id": <CLAW_SMS_TEMPLATE_ID or null>,
     "text": <body>, "params": <data>, "reference": <delivery token>}

2xx = accepted (the gateway's ``id``/``message_id`` is kept in the receipt);
408/409/425/429/5xx and network errors are transient; other 4xx are permanent
with the gateway's reason (``reason``/``message``/``error``/``detail`` field or text).
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import PermanentError
from pipeline.notifications.channels.base import HttpJsonAdapter, JsonPost, register
from pipeline.notifications.redaction import mask_recipient


@register
class HttpSms(HttpJsonAdapter):
    channel = "sms"
    provider = "http"
    id_fields = ("message_id", "id")

    def post(self, notification: Any, dedup_key: str) -> JsonPost:
        s = self.settings
        if not s.sms_url or s.sms_api_key is None:
            raise PermanentError("sms/http: CLAW_SMS_URL and CLAW_SMS_API_KEY must be set")
        payload = {
            "to": notification.recipient,
            "from": s.sms_sender or None,
            "template_id": s.sms_template_id or None,
            "text": notification.body,
            "params": notification.data,
            "reference": dedup_key,
        }
        return JsonPost(s.sms_url, payload, s.sms_timeout_seconds)

    def headers(self, post: JsonPost, body: bytes, dedup_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.sms_api_key.get_secret_value()}", "Idempotency-Key": dedup_key}

    def described(self, notification: Any, post: JsonPost, dedup_key: str) -> str:
        return f"to={mask_recipient(notification.recipient)} id={dedup_key}"

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

import json
from typing import Any, Optional

import requests

from pipeline.errors import PermanentError
from pipeline.notifications.channels.base import http_post_json, log, receipt, register
from pipeline.notifications.config import NotificationSettings
from pipeline.notifications.redaction import mask_recipient


@register
class HttpSms:
    channel = "sms"
    provider = "http"

    def __init__(self, settings: NotificationSettings, *, session: Optional[requests.Session] = None, **_: Any):
        self.settings = settings
        self.secrets = settings.secret_values()
        self.session = session

    def send(self, notification: Any, dedup_key: str) -> dict:
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
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "Authorization": f"Bearer {s.sms_api_key.get_secret_value()}",
            "Idempotency-Key": dedup_key,
        }
        status, answer = http_post_json(
            channel=self.channel,
            provider=self.provider,
            url=s.sms_url,
            body=body,
            headers=headers,
            timeout=s.sms_timeout_seconds,
            secrets=self.secrets,
            session=self.session,
        )
        provider_id = None
        if isinstance(answer, dict):
            provider_id = answer.get("message_id") or answer.get("id")
        log.info("sms accepted: to=%s id=%s status=%s", mask_recipient(notification.recipient), dedup_key, status)
        return receipt(
            self.channel,
            self.provider,
            notification.recipient,
            dedup_key,
            self.secrets,
            status=status,
            provider_message_id=str(provider_id) if provider_id is not None else None,
        )

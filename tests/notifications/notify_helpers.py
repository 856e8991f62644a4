"""Values and helpers shared by the notification tests (imported as ``notify_helpers``)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

SMTP_USER = "mailer"
SMTP_PASSWORD = "s3cret-Smtp-Pa55word!"
HMAC_SECRET = "hmac-secret-0123456789-abcdef"
SMS_KEY = "sk_live_SMSKEY_0123456789abcdef"
ALL_SECRETS = (SMTP_PASSWORD, HMAC_SECRET, SMS_KEY)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=lambda: {"id": "prov-1"})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

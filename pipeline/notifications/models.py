"""Arguments of the notification actors.

What each channel takes (its recipient rule, body limit, subject, html and
app) is its entry in :mod:`pipeline.notifications.registry`. Every text is
bounded, and subject/recipient may not contain line breaks (no header
injection).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from pipeline.sensitive import Sensitive

from pipeline.notifications.registry import CHANNEL_NAMES, E164_RE, EMAIL_RE, USER_ID_RE, channel_list, only_for  # noqa: F401  (E164_RE, EMAIL_RE, USER_ID_RE: read here by the API and settings)
from pipeline.notifications.registry import CHANNELS as CHANNEL_SPECS

Channel = Literal[CHANNEL_NAMES]
CHANNELS = CHANNEL_NAMES

DEDUP_KEY_RE = re.compile(r"^[A-Za-z0-9_.:@/+=-]{1,200}$")
APP_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

MAX_SUBJECT = 200
MAX_BODY = {name: spec.max_body for name, spec in CHANNEL_SPECS.items()}
MAX_HTML = 500_000
MAX_DATA_BYTES = 8_192
MAX_BATCH = 5_000


def normalise_recipient(channel: str, value: str) -> str:
    """The recipient in canonical form, or ValueError saying what is wrong."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    spec = CHANNEL_SPECS.get(channel)
    if spec is None:
        raise ValueError(f"unknown channel {channel!r}")
    return spec.recipient(value.strip())


class _Content(BaseModel):
    """What is sent: shared by one notification and a batch."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    channel: Channel = Field(description=f"{channel_list()}.")
    subject: str = Sensitive(
        "", max_length=MAX_SUBJECT, validate_default=True, description="Email subject / push and inbox title; none for sms."
    )
    body: str = Sensitive(min_length=1, max_length=max(MAX_BODY.values()), description="Plain-text content.")
    html_body: Optional[str] = Sensitive(None, max_length=MAX_HTML, description="HTML alternative (email only).")
    data: dict[str, Any] = Sensitive(default_factory=dict, description="Extra JSON data (push payload, sms template params, inbox).")
    app: Optional[str] = Field(None, description="Push app (CLAW_PUSH_APPS key); default CLAW_PUSH_DEFAULT_APP.")
    dedup_key: Optional[str] = Field(
        None, description="De-duplication key; a second send with the same key (per channel and recipient) is skipped."
    )

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str, info: ValidationInfo) -> str:
        if any(c in value for c in "\r\n\0"):
            raise ValueError("must not contain line breaks")
        spec = CHANNEL_SPECS.get(info.data.get("channel"))
        if spec is not None and spec.subject == "none" and value:
            raise ValueError(f"{spec.name} has no subject; put everything in body")
        if spec is not None and spec.subject == "required" and not value.strip():
            raise ValueError(f"is required for {spec.name}")
        return value

    @field_validator("body")
    @classmethod
    def _body(cls, value: str, info: ValidationInfo) -> str:
        channel = info.data.get("channel")
        if "\0" in value:
            raise ValueError("must not contain NUL characters")
        if not value.strip():
            raise ValueError("must not be blank")
        limit = MAX_BODY.get(channel or "", max(MAX_BODY.values()))
        if len(value) > limit:
            raise ValueError(f"is {len(value)} characters; {channel} allows at most {limit}")
        return value

    @field_validator("html_body")
    @classmethod
    def _html(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        spec = CHANNEL_SPECS.get(info.data.get("channel"))
        if value is not None and not (spec and spec.html):
            raise ValueError(f"is only for {only_for('html')}")
        return value

    @field_validator("data")
    @classmethod
    def _data(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        except (TypeError, ValueError):
            raise ValueError("must be JSON-serialisable") from None
        if size > MAX_DATA_BYTES:
            raise ValueError(f"is {size} bytes as JSON; at most {MAX_DATA_BYTES}")
        return value

    @field_validator("app")
    @classmethod
    def _app(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        if value is None:
            return None
        spec = CHANNEL_SPECS.get(info.data.get("channel"))
        if not (spec and spec.app):
            raise ValueError(f"is only for {only_for('app')}")
        if not APP_RE.match(value):
            raise ValueError(f"must match {APP_RE.pattern}")
        return value

    @field_validator("dedup_key")
    @classmethod
    def _dedup(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not DEDUP_KEY_RE.match(value):
            raise ValueError("must be 1-200 characters of letters, digits and _ . : @ / + = -")
        return value


class NotificationArgs(_Content):
    """One notification to one recipient (arguments of ``send_notification``)."""

    recipient: str = Sensitive(
        min_length=1, max_length=320, description="Email address, E.164 phone number or user id, per channel."
    )

    @field_validator("recipient")
    @classmethod
    def _recipient(cls, value: str, info: ValidationInfo) -> str:
        channel = info.data.get("channel")
        if channel is None:  # channel itself failed; that error is reported
            return value
        return normalise_recipient(channel, value)


class NotificationBatchArgs(_Content):
    """The same notification to many recipients (arguments of ``send_notification_batch``)."""

    recipients: list[str] = Sensitive(min_length=1, max_length=MAX_BATCH, description="Recipients, per channel.")

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str], info: ValidationInfo) -> list[str]:
        channel = info.data.get("channel")
        if channel is None:
            return value
        seen: dict[str, None] = {}
        errors = []
        for index, item in enumerate(value):
            try:
                seen.setdefault(normalise_recipient(channel, item), None)
            except ValueError as exc:
                errors.append(f"[{index}] {exc}")
        if errors:
            more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
            raise ValueError("; ".join(errors[:5]) + more)
        return list(seen)  # duplicates (after normalising) are sent once

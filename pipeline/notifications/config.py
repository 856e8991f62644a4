"""Settings of the notifications domain, read from ``CLAW_*`` environment variables.

Flat field names map to ``CLAW_<NAME>`` (e.g. ``smtp_host`` -> ``CLAW_SMTP_HOST``).
Secrets (SMTP password, SMS API key, push HMAC secrets) are :class:`SecretStr`:
they print as ``**********`` in ``repr``, ``str``, ``model_dump_json`` and in
every error this module raises.

Push apps are one JSON object::

    CLAW_PUSH_APPS='{"shop": {"url": "https://push.example/hook", "secret": "..."}}'
    CLAW_PUSH_DEFAULT_APP=shop

Providers are chosen per channel (``CLAW_NOTIFY_EMAIL_PROVIDER=smtp`` ...); a new
provider is one more module in :mod:`pipeline.notifications.channels` (see there).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Literal, Optional
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from pipeline.errors import ConfigError
from pipeline.notifications.registry import CHANNELS, EMAIL_RE

ENV_PREFIX = "CLAW_"
_APP_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    return value


class PushApp(BaseModel):
    """One receiving app of the signed push webhook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="Webhook URL that receives the signed JSON.")
    secret: SecretStr = Field(description="HMAC-SHA256 key shared with the receiver (at least 16 characters).")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_http_url(value)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("secret must be at least 16 characters")
        return value


class _ChannelSettings(BaseSettings):
    """Everything the notification channels need but their providers (added below). Field names map to ``CLAW_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # --- email (SMTP) -------------------------------------------------------------------------------
    smtp_host: str = Field("localhost", min_length=1, description="SMTP server host name.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP server port (587 starttls, 465 ssl, 25 plain).")
    smtp_user: str = Field("", description="SMTP login user; empty means no AUTH.")
    smtp_password: Optional[SecretStr] = Field(None, description="SMTP login password (never printed).")
    smtp_mode: Literal["starttls", "ssl", "plain"] = Field(
        "starttls", description="starttls (upgrade after connect), ssl (TLS from the start) or plain (no TLS)."
    )
    smtp_from: str = Field("no-reply@claw.localdomain", description="Envelope and header sender address.")
    smtp_from_name: str = Field("", max_length=100, description="Display name of the sender (optional).")
    smtp_timeout_seconds: float = Field(10.0, gt=0, le=300, description="Socket timeout of each SMTP operation.")
    smtp_ca_file: Optional[str] = Field(
        None, description="PEM file of CAs to trust for the SMTP server's certificate instead of the system store."
    )

    # --- push (signed webhook) ----------------------------------------------------------------------
    push_apps: dict[str, PushApp] = Field(
        default_factory=dict,
        description='Push apps as JSON {"app": {"url": "https://...", "secret": "..."}}; secrets are never printed.',
    )
    push_default_app: Optional[str] = Field(None, description="App used when a push notification names none.")
    push_timeout_seconds: float = Field(10.0, gt=0, le=300, description="HTTP timeout of a push webhook call.")

    # --- sms (HTTP gateway) -------------------------------------------------------------------------
    sms_url: Optional[str] = Field(None, description="SMS gateway endpoint (POST JSON).")
    sms_api_key: Optional[SecretStr] = Field(None, description="SMS gateway API key, sent as a Bearer token.")
    sms_sender: str = Field("", max_length=20, description="Sender id or number shown to the recipient.")
    sms_template_id: str = Field("", max_length=100, description="Gateway template id (empty: plain text).")
    sms_timeout_seconds: float = Field(10.0, gt=0, le=300, description="HTTP timeout of an SMS gateway call.")

    # --- de-duplication -----------------------------------------------------------------------------
    notify_dedup_ttl_seconds: int = Field(
        7 * 24 * 3600, ge=60, description="How long a sent notification's marker blocks a second send of its key."
    )
    notify_claim_lease_seconds: int = Field(
        120, ge=1, description="How long a 'sending' claim blocks other attempts (must exceed the slowest send)."
    )
    notify_unknown_outcome: Literal["resend", "fail"] = Field(
        "resend",
        description="What a later attempt does when an earlier one died mid-send: resend (same Idempotency-Key / "
        "Message-ID) or fail without sending.",
    )

    # --- in-app inbox (system channel) --------------------------------------------------------------
    notify_inbox_max_items: int = Field(500, ge=1, le=100_000, description="Items kept per user inbox (oldest read go first).")
    notify_inbox_ttl_seconds: int = Field(
        90 * 24 * 3600, ge=60, description="An inbox with no new item for this long is removed."
    )

    @field_validator("smtp_from")
    @classmethod
    def _from(cls, value: str) -> str:
        if not EMAIL_RE.match(value) or len(value) > 254:
            raise ValueError("must be a plain email address like no-reply@example.com")
        return value

    @field_validator("smtp_from_name")
    @classmethod
    def _from_name(cls, value: str) -> str:
        if any(ord(c) < 32 for c in value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("sms_url")
    @classmethod
    def _sms_url(cls, value: Optional[str]) -> Optional[str]:
        return _check_http_url(value) if value else None

    @field_validator("push_apps")
    @classmethod
    def _apps(cls, value: dict[str, PushApp]) -> dict[str, PushApp]:
        for name in value:
            if not _APP_NAME.match(name):
                raise ValueError(f"app name {name!r} must match {_APP_NAME.pattern}")
        return value

    @model_validator(mode="after")
    def _cross(self) -> "NotificationSettings":
        if self.push_default_app and self.push_default_app not in self.push_apps:
            raise ValueError(f"push_default_app: {self.push_default_app!r} is not a key of CLAW_PUSH_APPS")
        if self.smtp_password is not None and not self.smtp_user:
            raise ValueError("smtp_user: must be set when CLAW_SMTP_PASSWORD is")
        slowest = max(self.smtp_timeout_seconds * 4, self.push_timeout_seconds * 2, self.sms_timeout_seconds * 2)
        if self.notify_claim_lease_seconds < slowest:
            raise ValueError(
                f"notify_claim_lease_seconds: must be at least {slowest:g} (longer than the slowest send)"
            )
        return self

    def secret_values(self) -> list[str]:
        """Every secret this configuration holds, for redaction."""
        values = [s.get_secret_value() for s in (self.smtp_password, self.sms_api_key) if s is not None]
        values += [app.secret.get_secret_value() for app in self.push_apps.values()]
        return [v for v in values if v]

    def push_app(self, name: Optional[str]) -> tuple[str, PushApp]:
        """The app called ``name`` (or the default one); PermanentError-worthy ValueError if unknown."""
        chosen = name or self.push_default_app or (next(iter(self.push_apps)) if len(self.push_apps) == 1 else None)
        if chosen is None:
            raise ValueError("no push app named and CLAW_PUSH_DEFAULT_APP is not set")
        try:
            return chosen, self.push_apps[chosen]
        except KeyError:
            raise ValueError(f"unknown push app {chosen!r} (configured: {sorted(self.push_apps)})") from None


#: The settings, with ``notify_<channel>_provider`` (``CLAW_NOTIFY_<CHANNEL>_PROVIDER``) for every channel
#: of :mod:`pipeline.notifications.registry`.
NotificationSettings = create_model(
    "NotificationSettings",
    __base__=_ChannelSettings,
    __module__=__name__,
    __doc__="Everything the notification channels need. Field names map to ``CLAW_<NAME>``.",
    **{
        spec.provider_setting: (str, Field(spec.default_provider, pattern=r"^[a-z0-9_]{1,40}$",
                                           description=f"Provider of the {spec.name} channel."))
        for spec in CHANNELS.values()
    },
)


def _env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def load_notification_settings(**overrides: Any) -> NotificationSettings:
    """Read and validate; raise :class:`ConfigError` naming the variable (never its value) on failure."""
    try:
        return NotificationSettings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(p) for p in error["loc"]]
        message = str(error["msg"]).removeprefix("Value error, ")
        if not loc:
            # cross-field check: its message starts with "<field>: "
            field, _, message = message.partition(": ")
            raise ConfigError(f"{_env_name(field)}: {message}") from None
        where = f" ({'.'.join(loc[1:])})" if len(loc) > 1 else ""
        raise ConfigError(f"{_env_name(loc[0])}{where}: {message}") from None
    except SettingsError as exc:
        # pydantic-settings names the field but not the value; keep it that way
        match = re.search(r'field "([a-z_]+)"', str(exc))
        field = match.group(1) if match else "?"
        raise ConfigError(f"{_env_name(field)}: is not valid JSON") from None


@functools.lru_cache(maxsize=1)
def get_notification_settings() -> NotificationSettings:
    """The process-wide notification settings (read once)."""
    return load_notification_settings()

"""The notification channels: one entry each, read by everything that knows channels.

The argument models (recipient rule, body limit, which fields a channel
takes), the settings (``CLAW_NOTIFY_<CHANNEL>_PROVIDER``), the adapter
lookup and the health check's alert channel all derive from :data:`CHANNELS`.
A new channel is one entry here and its adapter module in :mod:`.channels`
(plus the adapter's own settings, if it has any, in :mod:`.config`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Literal

#: dot-atom local part, LDH domain labels with at least one dot (RFC 5321 subset that providers accept).
EMAIL_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
USER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")


def email_address(value: str) -> str:
    if len(value) > 254 or not EMAIL_RE.match(value) or len(value.partition("@")[0]) > 64:
        raise ValueError("must be an email address like name@example.com")
    local, _, domain = value.partition("@")
    return f"{local}@{domain.lower()}"


def phone_number(value: str) -> str:
    """E.164, after removing spaces, dashes, dots and parentheses (``+1 (415) 555-0100``)."""
    phone = _PHONE_SEPARATORS.sub("", value)
    if not E164_RE.match(phone):
        raise ValueError("must be an E.164 phone number like +14155550100")
    return phone


def user_id(value: str) -> str:
    if not USER_ID_RE.match(value):
        raise ValueError("must be a user id (letters, digits, _ . @ : -, at most 128 characters)")
    return value


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    #: The recipient in canonical form, or ValueError saying what is wrong.
    recipient: Callable[[str], str]
    max_body: int
    subject: Literal["required", "optional", "none"] = "optional"
    #: Takes ``html_body`` / ``app`` (a push app of CLAW_PUSH_APPS).
    html: bool = False
    app: bool = False
    default_provider: str = ""
    #: Providers shipped here -> their module in :mod:`pipeline.notifications.channels`
    #: (another provider is looked for in the module named like it).
    providers: dict[str, str] = field(default_factory=dict)
    #: How the channel is named to people, where the name alone does not say it.
    label: str = ""

    @property
    def provider_setting(self) -> str:
        return f"notify_{self.name}_provider"


CHANNELS: dict[str, ChannelSpec] = {spec.name: spec for spec in (
    ChannelSpec("email", email_address, 100_000, subject="required", html=True, default_provider="smtp",
                providers={"smtp": "email"}),
    ChannelSpec("push", user_id, 4_000, app=True, default_provider="webhook", providers={"webhook": "push"}),
    ChannelSpec("sms", phone_number, 1_600, subject="none", default_provider="http", providers={"http": "sms"}),
    ChannelSpec("system", user_id, 10_000, default_provider="inbox", providers={"inbox": "system"},
                label="system (in-app inbox)"),
)}
CHANNEL_NAMES: tuple[str, ...] = tuple(CHANNELS)


def channel_list() -> str:
    """``email, push, sms or system (in-app inbox)``: the channels, for descriptions and messages."""
    names = [spec.label or spec.name for spec in CHANNELS.values()]
    return ", ".join(names[:-1]) + " or " + names[-1]


def only_for(flag: str) -> str:
    """``the email channel``: the channels that take a field (by its ChannelSpec flag)."""
    names = [spec.name for spec in CHANNELS.values() if getattr(spec, flag)]
    return f"the {' / '.join(names)} channel"

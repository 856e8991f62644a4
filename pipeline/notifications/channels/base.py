"""The common interface of channel adapters, their registry, and the HTTP helper.

An adapter is a class with ``channel`` and ``provider`` names, built from
``(settings, **deps)``, whose ``send(notification, dedup_key) -> dict`` either
returns a receipt (the provider accepted the notification) or raises:

* :class:`pipeline.errors.TransientError` — not accepted, worth retrying
  (connection refused, timeouts, SMTP 4xx, HTTP 408/409/425/429/5xx);
* :class:`OutcomeUnknown` (a TransientError) — the request reached the provider
  but its answer was lost, so it may have been accepted;
* :class:`pipeline.errors.PermanentError` — refused for good (bad address,
  SMTP 5xx, HTTP 4xx, a configuration problem), with the provider's reason.

``dedup_key`` is the stable delivery token from :mod:`pipeline.notifications.dedup`;
adapters pass it to the provider (Idempotency-Key header, Message-ID) so the
provider can drop a repeat. Messages and receipts never contain secrets.

HTTP-JSON providers (push, sms) subclass :class:`HttpJsonAdapter`. Adding a
provider is one more module in this package::

    # pipeline/notifications/channels/fcm.py
    @register
    class FcmPush:
        channel, provider = "push", "fcm"
        def __init__(self, settings, **deps): ...
        def send(self, notification, dedup_key): ...

and ``CLAW_NOTIFY_PUSH_PROVIDER=fcm``: :func:`get_adapter_class` imports
``pipeline.notifications.channels.fcm`` on first use.
"""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Optional, Protocol
from urllib.parse import urlsplit

import requests

from pipeline.errors import PermanentError, TransientError
from pipeline.notifications.redaction import redact_obj, short_reason
from pipeline.notifications.registry import CHANNELS

log = logging.getLogger("pipeline.notifications")

TRANSIENT_HTTP = frozenset({408, 409, 425, 429})


class OutcomeUnknown(TransientError):
    """The provider may have accepted the notification: its answer was lost."""


class ChannelAdapter(Protocol):
    channel: str
    provider: str

    def send(self, notification: Any, dedup_key: str) -> dict: ...


_REGISTRY: dict[tuple[str, str], type] = {}


def register(cls: type) -> type:
    """Class decorator: make an adapter selectable by its (channel, provider)."""
    _REGISTRY[(cls.channel, cls.provider)] = cls
    return cls


def get_adapter_class(channel: str, provider: str) -> type:
    key = (channel, provider)
    if key not in _REGISTRY:
        spec = CHANNELS.get(channel)
        module = spec.providers.get(provider, provider) if spec is not None else provider
        try:
            importlib.import_module(f"pipeline.notifications.channels.{module}")
        except ModuleNotFoundError:
            pass
    try:
        return _REGISTRY[key]
    except KeyError:
        raise PermanentError(f"no {channel} provider named {provider!r}") from None


def endpoint_of(url: str) -> str:
    """Scheme, host, port and path of a URL: no user info, no query (either may hold a key)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def receipt(channel: str, provider: str, recipient: str, dedup_key: str, secrets: Iterable[str], **extra: Any) -> dict:
    """The JSON-ready record of an accepted notification (redacted)."""
    body = {
        "channel": channel,
        "provider": provider,
        "recipient": recipient,
        "delivery_id": dedup_key,
        "accepted_at": now_iso(),
        **extra,
    }
    return redact_obj(body, list(secrets))


def _reason_from_response(response: requests.Response, secrets: Iterable[str]) -> str:
    text = ""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        for name in ("reason", "message", "error_description", "error", "detail", "title"):
            value = payload.get(name)
            if isinstance(value, dict):
                value = value.get("message") or json.dumps(value)
            if value:
                text = str(value)
                break
    if not text:
        text = response.text or response.reason or ""
    return short_reason(text or "no reason given", secrets)


def http_post_json(
    *,
    channel: str,
    provider: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    secrets: Iterable[str],
    session: Optional[requests.Session] = None,
) -> tuple[int, Any]:
    """POST ``body`` and map the outcome to (status, parsed JSON or text) / Transient / Permanent errors.

    The URL is never echoed (it may carry credentials); error text is redacted.
    A 2xx is success whatever its body: nothing after acceptance may raise.
    """
    secrets = list(secrets)
    what = f"{channel}/{provider}"
    poster = session or requests
    try:
        response = poster.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.exceptions.ConnectTimeout:
        raise TransientError(f"{what}: connection timed out after {timeout:g}s") from None
    except requests.exceptions.ReadTimeout:
        # The request was sent and may have been accepted: the de-duplicator keeps its claim, and
        # a later resend carries the same Idempotency-Key.
        raise OutcomeUnknown(f"{what}: no answer within {timeout:g}s (the provider may have accepted it)") from None
    except requests.exceptions.ConnectionError as exc:
        text = str(exc)
        sent = "RemoteDisconnected" in text or "Connection aborted" in text
        kind = OutcomeUnknown if sent else TransientError
        reason = "connection refused" if "refused" in text.lower() else "connection failed"
        if sent:
            reason = "connection dropped before the answer"
        raise kind(f"{what}: {reason}") from None
    except requests.exceptions.RequestException as exc:
        raise PermanentError(f"{what}: request failed: {type(exc).__name__}") from None

    status = response.status_code
    if 200 <= status < 300:
        try:
            payload: Any = response.json()
        except ValueError:
            payload = response.text[:500]
        return status, redact_obj(payload, secrets)
    reason = _reason_from_response(response, secrets)
    if status in TRANSIENT_HTTP or status >= 500:
        retry_after = response.headers.get("Retry-After")
        hint = f" (Retry-After: {short_reason(retry_after, secrets, 40)})" if retry_after else ""
        raise TransientError(f"{what}: HTTP {status}: {reason}{hint}")
    if 300 <= status < 400:
        raise PermanentError(f"{what}: HTTP {status}: unexpected redirect; fix the configured URL")
    raise PermanentError(f"{what}: HTTP {status}: {reason}")


@dataclass
class JsonPost:
    """What an HTTP-JSON adapter sends: where, the payload, and what the receipt adds."""

    url: str
    payload: dict
    timeout: float
    receipt: dict = field(default_factory=dict)
    #: The key a signature over the body is made with (push), if any.
    secret: str = ""


class ProviderAdapter:
    """What adapters of an outside provider share: their settings, the secrets to keep out of
    messages and receipts, and the receipt itself."""

    channel: str
    provider: str

    def __init__(self, settings: Any, **_: Any):
        self.settings = settings
        self.secrets = settings.secret_values()

    def _receipt(self, notification: Any, dedup_key: str, **extra: Any) -> dict:
        return receipt(self.channel, self.provider, notification.recipient, dedup_key, self.secrets, **extra)


class HttpJsonAdapter(ProviderAdapter):
    """An adapter that sends a notification as one JSON POST (push webhook, SMS gateway).

    A subclass says what: :meth:`post` builds the :class:`JsonPost`,
    :meth:`headers` the headers for its encoded body (a signature may cover
    it), :meth:`described` how the log names it. Posting, error mapping,
    redaction, the log line and the receipt are the same for all, here.
    """

    #: Fields of the provider's answer holding its message id, in order of preference.
    id_fields: tuple[str, ...] = ("id",)

    def __init__(self, settings: Any, *, session: Optional[requests.Session] = None, **_: Any):
        super().__init__(settings)
        self.session = session

    def post(self, notification: Any, dedup_key: str) -> JsonPost:
        raise NotImplementedError

    def headers(self, post: JsonPost, body: bytes, dedup_key: str) -> dict[str, str]:
        raise NotImplementedError

    def described(self, notification: Any, post: JsonPost, dedup_key: str) -> str:
        """How the log line names the accepted notification (never with secrets)."""
        raise NotImplementedError

    def send(self, notification: Any, dedup_key: str) -> dict:
        post = self.post(notification, dedup_key)
        body = json.dumps(post.payload, separators=(",", ":"), ensure_ascii=False).encode()
        status, answer = http_post_json(
            channel=self.channel,
            provider=self.provider,
            url=post.url,
            body=body,
            headers=self.headers(post, body, dedup_key),
            timeout=post.timeout,
            secrets=self.secrets,
            session=self.session,
        )
        provider_id = None
        for name in self.id_fields if isinstance(answer, dict) else ():
            provider_id = answer.get(name)
            if provider_id:
                break
        log.info("%s accepted: %s status=%s", self.channel, self.described(notification, post, dedup_key), status)
        provider_id = str(provider_id) if provider_id is not None else None
        return self._receipt(notification, dedup_key, **post.receipt, status=status, provider_message_id=provider_id)

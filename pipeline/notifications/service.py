"""Sending one notification: pick the channel's adapter, then send it through the de-duplicator.

Everything it needs can be passed in (tests, other callers); what is not comes
from the process-wide settings and Redis client.
"""

from __future__ import annotations

from typing import Any, Optional

from pipeline.errors import ConfigError, PermanentError
from pipeline.notifications.channels.base import get_adapter_class
from pipeline.notifications.config import NotificationSettings, get_notification_settings
from pipeline.notifications.dedup import Deduplicator
from pipeline.notifications.models import NotificationArgs
from pipeline.notifications.registry import CHANNELS
from pipeline.redis_client import get_redis
from pipeline.settings import get_settings
from pipeline.state.keys import shared_namespace


def provider_for(channel: str, settings: NotificationSettings) -> str:
    return getattr(settings, CHANNELS[channel].provider_setting)


def build_adapter(channel: str, settings: NotificationSettings, **deps: Any) -> Any:
    """The configured adapter of ``channel`` (deps: ``redis``, ``namespace``, ``session``...)."""
    cls = get_adapter_class(channel, provider_for(channel, settings))
    return cls(settings, **deps)


def _defaults(settings, redis, namespace):
    try:
        settings = settings or get_notification_settings()
    except ConfigError as exc:
        raise PermanentError(str(exc)) from None
    if redis is None:
        redis = get_redis()
    if namespace is None:
        namespace = shared_namespace(get_settings())
    return settings, redis, namespace


def deliver(
    notification: NotificationArgs,
    dedup_key: str,
    *,
    settings: Optional[NotificationSettings] = None,
    redis: Any = None,
    namespace: Optional[str] = None,
    adapter: Any = None,
) -> dict:
    """Send once per (channel, recipient, dedup_key); returns the receipt (``duplicate`` tells a repeat)."""
    settings, redis, namespace = _defaults(settings, redis, namespace)
    if adapter is None:
        adapter = build_adapter(notification.channel, settings, redis=redis, namespace=namespace)
    dedup = Deduplicator.from_settings(redis, namespace, settings)
    return dedup.deliver(notification, dedup_key, adapter.send, secrets=settings.secret_values())

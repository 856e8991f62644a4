"""Notifications: email (SMTP), push (signed webhook), sms (HTTP gateway) and the in-app inbox.

* :mod:`.registry` — the channels: what each one takes, its providers (a new channel starts here)
* :mod:`.config` — :class:`NotificationSettings` (``CLAW_SMTP_*``, ``CLAW_PUSH_*``, ``CLAW_SMS_*``, ``CLAW_NOTIFY_*``)
* :mod:`.models` — :class:`NotificationArgs`, :class:`NotificationBatchArgs`
* :mod:`.channels` — one adapter per provider, ``send(notification, dedup_key) -> receipt``
* :mod:`.dedup` — at-least-once delivery without sending twice
* :mod:`.service` — :func:`deliver`, what the actor calls
"""

from pipeline.notifications.models import NotificationArgs, NotificationBatchArgs

__all__ = ["NotificationArgs", "NotificationBatchArgs"]

"""Actors the scheduler tests need besides tests.sample_tasks, on the same per-run test queue."""

from __future__ import annotations

import json
from typing import Optional

from pipeline.notifications.models import NotificationArgs
from pipeline.redis_client import get_redis
from pipeline.settings import get_settings
from pipeline.task import task
from tests.sample_tasks import FAST


def alerts_key(namespace: str) -> str:
    return f"{namespace}:test:alerts"


@task(args_model=NotificationArgs, **FAST)
def record_alert(channel: str, recipient: str, body: str, subject: str = "", html_body: Optional[str] = None,
                 data: Optional[dict] = None, app: Optional[str] = None, dedup_key: Optional[str] = None):
    """Stands in for send_notification (same argument model) without touching the shared notification queue."""
    entry = {"channel": channel, "recipient": recipient, "subject": subject, "body": body, "data": data or {}}
    get_redis().rpush(alerts_key(get_settings().namespace), json.dumps(entry))


@task(max_retries=0, soft_time_limit=1, time_limit=2, lost_policy="fail", **FAST)
def lost_fails():
    """A task whose lost runs must be failed, not re-queued."""

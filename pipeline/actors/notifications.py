"""Notification actors: one notification, or the same one to many recipients.

``send_notification`` sends through the configured channel adapter, at most once
per (channel, recipient, de-duplication key) — see :mod:`pipeline.notifications.dedup`.
The key is the caller's ``dedup_key`` or else the task id, which stays the same
across retries and redeliveries of this task.

``send_notification_batch`` submits one ``send_notification`` per recipient and
follows them to the end (see :mod:`pipeline.notifications.batch`).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Optional

import pydantic

from pipeline.errors import PermanentError, SoftTimeLimitExceeded
from pipeline.notifications.batch import run_batch
from pipeline.notifications.models import NotificationArgs, NotificationBatchArgs
from pipeline.notifications.service import deliver
from pipeline.task import task

log = logging.getLogger("pipeline.notifications")


def _validated(model: type[pydantic.BaseModel], kwargs: dict[str, Any]) -> Any:
    """Validate again at run time (the message may predate a model change); bad arguments never retry."""
    try:
        return model.model_validate({k: v for k, v in kwargs.items() if v is not None})
    except pydantic.ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'kwargs'}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise PermanentError(f"invalid arguments: {fields}") from None


def _current_task() -> Optional[Any]:
    """The running task's context, or None when called outside a worker (unit tests, scripts)."""
    try:
        from pipeline.context import current_task
    except ImportError:
        return None
    try:
        return current_task()
    except (LookupError, RuntimeError):
        return None


@task(
    queue="notification_default",
    max_retries=3,
    soft_time_limit=90,
    time_limit=120,
    args_model=NotificationArgs,
)
def send_notification(
    *,
    channel: str,
    recipient: str,
    body: str,
    subject: str = "",
    html_body: Optional[str] = None,
    data: Optional[dict] = None,
    app: Optional[str] = None,
    dedup_key: Optional[str] = None,
) -> dict:
    """Send one email, push, sms or in-app notification (once per de-duplication key)."""
    args = _validated(NotificationArgs, dict(
        channel=channel, recipient=recipient, body=body, subject=subject, html_body=html_body,
        data=data, app=app, dedup_key=dedup_key,
    ))
    key = args.dedup_key
    if key is None:
        ctx = _current_task()
        key = getattr(ctx, "task_id", None) if ctx is not None else None
    if key is None:
        # Outside a worker nothing is redelivered: a fresh key keeps two calls two notifications.
        key = uuid.uuid4().hex
    return deliver(args, key)


@task(
    queue="default",
    max_retries=3,
    soft_time_limit=3300,
    time_limit=3600,
    args_model=NotificationBatchArgs,
)
def send_notification_batch(
    *,
    channel: str,
    recipients: list[str],
    body: str,
    subject: str = "",
    html_body: Optional[str] = None,
    data: Optional[dict] = None,
    app: Optional[str] = None,
    dedup_key: Optional[str] = None,
    wait_seconds: float = 1800.0,
) -> dict:
    """Send the same notification to many recipients; report progress until all are done."""
    from pipeline import client
    from pipeline.redis_client import get_redis
    from pipeline.settings import get_settings

    args = _validated(NotificationBatchArgs, dict(
        channel=channel, recipients=recipients, body=body, subject=subject, html_body=html_body,
        data=data, app=app, dedup_key=dedup_key, wait_seconds=wait_seconds,
    ))
    ctx = _current_task()
    batch_key = args.dedup_key or (getattr(ctx, "task_id", None) if ctx is not None else None) or uuid.uuid4().hex
    settings = get_settings()

    def report(percent: float, message: str = "", **extra: Any) -> None:
        if ctx is not None:
            ctx.report_progress(percent, message, **extra)

    try:
        return run_batch(
            args,
            batch_key=batch_key,
            submit_many=client.submit_many,
            get_records=client.get_records,
            redis=get_redis(),
            namespace=settings.namespace,
            report_progress=report,
            cancel_requested=(ctx.cancel_requested if ctx is not None else (lambda: False)),
            cancel_task=client.cancel,
            children_ttl_seconds=settings.result_ttl_seconds,
        )
    except SoftTimeLimitExceeded:
        # children are stored: the retry follows them instead of submitting new ones
        log.warning("batch %s hit its soft time limit; its retry will follow the same children", batch_key)
        raise

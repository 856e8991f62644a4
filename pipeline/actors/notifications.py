"""Notification actors: one notification, or the same one to many recipients.

``send_notification`` sends through the configured channel adapter, at most once
per (channel, recipient, de-duplication key) — see :mod:`pipeline.notifications.dedup`.
The key is the caller's ``dedup_key`` or else the task id, which stays the same
across retries and redeliveries of this task.

``send_notification_batch`` submits one ``send_notification`` per recipient as
a workflow group and returns its id (see :mod:`pipeline.notifications.batch`).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Optional

import pydantic

from pipeline import workflow
from pipeline.context import running_task
from pipeline.errors import PermanentError
from pipeline.notifications.batch import run_batch
from pipeline.notifications.models import NotificationArgs, NotificationBatchArgs
from pipeline.notifications.service import deliver
from pipeline.task import task

log = logging.getLogger("pipeline.notifications")


def _validated(model: type[pydantic.BaseModel], kwargs: dict[str, Any]) -> Any:
    """Validate again at run time (the message may predate a model change, or the actor is called
    directly); bad arguments never retry."""
    try:
        return model.model_validate({k: v for k, v in kwargs.items() if v is not None})
    except pydantic.ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'kwargs'}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise PermanentError(f"invalid arguments: {fields}") from None


@task(
    queue="notification_default",
    max_retries=3,
    soft_time_limit=90,
    time_limit=120,
    args_model=NotificationArgs,
    submit_scope="notifications:send",
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
    args = _validated(NotificationArgs, locals())  # the parameters, as they arrived
    # Outside a worker nothing is redelivered: a fresh key keeps two calls two notifications.
    return deliver(args, args.dedup_key or running_task().task_id or uuid.uuid4().hex)


@task(queue="default", max_retries=3, soft_time_limit=120, time_limit=180, args_model=NotificationBatchArgs,
      submit_scope="notifications:send")
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
) -> dict:
    """Send the same notification to many recipients, as a workflow group (its id is the result)."""
    args = _validated(NotificationBatchArgs, locals())  # the parameters, as they arrived
    batch_key = args.dedup_key or running_task().task_id or uuid.uuid4().hex
    return run_batch(args, batch_key=batch_key, submit=workflow.submit)

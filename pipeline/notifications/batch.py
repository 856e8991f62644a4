"""Fan a notification out to many recipients as a workflow group.

:func:`run_batch` is what the ``send_notification_batch`` actor does: it
submits a :func:`pipeline.workflow.group` of ``send_notification`` tasks, one
per recipient, and returns at once with the group's workflow id. The group
counts sent and failed deliveries as they finish (``GET /api/v1/workflows/{id}``
shows state, counts, percent and each member); nothing waits for the
children inside the batch task's own time limit.

* every child carries the batch's de-duplication key (the caller's, or the
  batch task id): the recipient keeps their delivery tokens apart, and a
  re-run batch sends nobody twice;
* the group is submitted under the idempotency key ``notify-batch:<key>``, so
  a re-run batch (redelivery, retry) returns the group it already submitted
  instead of submitting another;
* cancelling the group (``POST /api/v1/workflows/{id}/cancel``) cancels the
  children that have not finished.
"""

from __future__ import annotations

import logging
from typing import Callable

from pipeline.notifications.models import NotificationBatchArgs
from pipeline.workflow import Group, group, signature

log = logging.getLogger("pipeline.notifications.batch")

CHILD_ACTOR = "send_notification"


def child_kwargs(args: NotificationBatchArgs, recipient: str, dedup_key: str) -> dict:
    kwargs = {
        "channel": args.channel,
        "recipient": recipient,
        "subject": args.subject,
        "body": args.body,
        "data": args.data,
        "dedup_key": dedup_key,
    }
    if args.html_body is not None:
        kwargs["html_body"] = args.html_body
    if args.app is not None:
        kwargs["app"] = args.app
    return kwargs


def batch_group(args: NotificationBatchArgs, batch_key: str) -> Group:
    return group([signature(CHILD_ACTOR, **child_kwargs(args, r, batch_key)) for r in args.recipients])


def run_batch(args: NotificationBatchArgs, *, batch_key: str, submit: Callable[..., str]) -> dict:
    """Submit the batch's group (once per key); return its workflow id and size."""
    workflow_id = submit(batch_group(args, batch_key), idempotency_key=f"notify-batch:{batch_key}",
                         name=f"notification batch {batch_key}")
    log.info("batch %s: group %s of %d notifications", batch_key, workflow_id, len(args.recipients))
    return {"batch_key": batch_key, "workflow_id": workflow_id, "total": len(args.recipients)}

"""Fan a notification out to many recipients and follow the children to the end.

:func:`run_batch` is what the ``send_notification_batch`` actor does, with the
engine's functions passed in (so it runs the same in a worker and in a test):

* every child is a ``send_notification`` task with the batch's de-duplication
  key (the caller's, or the batch task id); the recipient keeps their delivery
  tokens apart, and a re-run batch (redelivery, retry) sends nobody twice;
* the child ids are stored under ``<ns>:notify:batch:<hash of key>`` so a
  re-run batch follows the children it already submitted instead of
  submitting new ones;
* it polls the child records, reports progress when the counts change (and
  every few seconds anyway), stops on cancellation (cancelling the children
  that are not final yet), and gives up waiting
  after ``wait_seconds`` (the result then says ``timed_out`` and how many are
  still pending).

A batch occupies a worker thread while it waits. It is declared on the
``default`` queue so it cannot starve ``notification_default`` workers that
must run its children.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any, Callable, Iterable, Optional, Sequence

from pipeline.errors import TaskCancelled
from pipeline.notifications.models import NotificationBatchArgs
from pipeline.state.keys import Keys

log = logging.getLogger("pipeline.notifications.batch")

CHILD_ACTOR = "send_notification"
SUBMIT_CHUNK = 500
POLL_CHUNK = 1000
FINAL_OK = {"SUCCESS"}
FINAL_BAD = {"FAILURE", "CANCELLED"}


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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


def children_key(namespace: str, batch_key: str) -> str:
    return Keys(namespace).notification_batch(hashlib.sha256(batch_key.encode()).hexdigest()[:32])


def run_batch(
    args: NotificationBatchArgs,
    *,
    batch_key: str,
    submit_many: Callable[[list[dict]], list[str]],
    get_records: Callable[[list[str]], list[Optional[dict]]],
    redis: Any,
    namespace: str,
    report_progress: Callable[..., None] = lambda *a, **k: None,
    cancel_requested: Callable[[], bool] = lambda: False,
    cancel_task: Optional[Callable[[str], Any]] = None,
    children_ttl_seconds: int = 7 * 24 * 3600,
    poll_interval: float = 0.2,
    max_poll_interval: float = 3.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    key = children_key(namespace, batch_key)
    stored = redis.get(key)
    if stored:
        child_ids = json.loads(stored)
        log.info("batch %s: following %d children submitted earlier", batch_key, len(child_ids))
    else:
        child_ids = []
        items = [{"actor": CHILD_ACTOR, "kwargs": child_kwargs(args, r, batch_key)} for r in args.recipients]
        for chunk in _chunks(items, SUBMIT_CHUNK):
            child_ids.extend(submit_many(list(chunk)))
        # first writer wins: a concurrent duplicate run keeps its own list, sends are deduplicated anyway
        redis.set(key, json.dumps(child_ids), nx=True, ex=children_ttl_seconds)
        log.info("batch %s: submitted %d children", batch_key, len(child_ids))

    try:
        return _follow(
            args, batch_key, child_ids, get_records, report_progress, cancel_requested, poll_interval, max_poll_interval, sleep
        )
    except TaskCancelled:
        if cancel_task is not None:
            _cancel_children(child_ids, get_records, cancel_task)
        raise


def _cancel_children(child_ids: list[str], get_records, cancel_task) -> None:
    """Best effort: children not yet final are cancelled with the batch."""
    records = []
    for chunk in _chunks(child_ids, POLL_CHUNK):
        records.extend(get_records(list(chunk)))
    for task_id, record in zip(child_ids, records):
        if record and record.get("state") not in FINAL_OK | FINAL_BAD:
            try:
                cancel_task(task_id)
            except Exception as exc:  # finished meanwhile, expired...
                log.debug("could not cancel child %s: %s", task_id, type(exc).__name__)


def _follow(args, batch_key, child_ids, get_records, report_progress, cancel_requested, poll_interval, max_poll_interval, sleep):
    total = len(child_ids)
    deadline = time.monotonic() + args.wait_seconds
    interval = poll_interval
    last_counts: Optional[tuple] = None
    last_report = 0.0
    timed_out = False
    while True:
        records: list[Optional[dict]] = []
        for chunk in _chunks(child_ids, POLL_CHUNK):
            records.extend(get_records(list(chunk)))
        sent = failed = duplicates = 0
        failed_ids: list[str] = []
        for task_id, record in zip(child_ids, records):
            state = (record or {}).get("state")
            if state in FINAL_OK:
                sent += 1
                result = (record or {}).get("result")
                if isinstance(result, dict) and result.get("duplicate"):
                    duplicates += 1
            elif state in FINAL_BAD:
                failed += 1
                failed_ids.append(task_id)
        pending = total - sent - failed
        counts = (sent, failed, pending)
        now = time.monotonic()
        if counts != last_counts or now - last_report >= 5.0:
            percent = 100.0 * (sent + failed) / total if total else 100.0
            report_progress(
                percent, f"{sent + failed}/{total} done", total=total, sent=sent, failed=failed, pending=pending
            )
            last_counts, last_report = counts, now
        if pending == 0:
            break
        if cancel_requested():
            raise TaskCancelled(f"batch cancelled with {pending} of {total} notifications pending")
        if now >= deadline:
            timed_out = True
            log.warning("batch %s: stopped waiting with %d of %d pending", batch_key, pending, total)
            break
        sleep(min(interval, max(0.0, deadline - now)))
        interval = min(interval * 1.5, max_poll_interval)

    return {
        "batch_key": batch_key,
        "total": total,
        "sent": sent,
        "failed": failed,
        "pending": pending,
        "duplicates": duplicates,
        "timed_out": timed_out,
        "child_ids": child_ids,
        "failed_ids": failed_ids,
    }

"""An example task module: a report actor with its whole policy declared next to it,
and two small actors that take reports from workflows (a chord's callback, a chain's next step).

Every process that submits or runs it imports it through CLAW_TASK_MODULES:

    PYTHONPATH=. CLAW_TASK_MODULES=examples.report_tasks claw-pipeline worker --queues reports
"""

import time
from typing import Optional

import pydantic

from pipeline.context import current_task
from pipeline.errors import PermanentError, SoftTimeLimitExceeded
from pipeline.task import task


class ReportArgs(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    account_id: str = pydantic.Field(..., min_length=1, max_length=100)
    months: int = pydantic.Field(12, ge=1, le=36)


@task(
    queue="reports",          # its own queue; workers consume it when told to (--queues reports)
    priority=3,               # default priority 0-9 (9 first); a submission may choose another
    max_retries=5,            # retries after the first attempt, with exponential backoff and jitter
    retry_backoff_ms=10_000,  # first retry after ~10 s, then ~20 s, ~40 s ... (at most 20 minutes)
    soft_time_limit=60,       # SoftTimeLimitExceeded is raised inside the task after 60 s
    time_limit=90,            # HardTimeLimitExceeded after 90 s (never retried)
    rate_limit="60/m",        # at most 60 starts per minute across all workers; extra ones wait
    args_model=ReportArgs,    # arguments checked at submit (HTTP 422) and again when the task runs
)
def build_report(*, account_id: str, months: int = 12) -> dict:
    """Build the monthly usage report of one account."""
    if account_id.startswith("closed-"):
        raise PermanentError(f"account {account_id} is closed")  # fails at once: no retry can help
    me = current_task()
    rows = []
    try:
        for month in range(1, months + 1):
            if me.cancel_requested():  # cooperative cancellation between steps
                break
            rows.append({"month": month, "requests": 1000 + 10 * month})
            me.report_progress(100 * month / months, f"month {month} of {months}")
            time.sleep(0.2)  # the real work: queries, rendering, ...
    except SoftTimeLimitExceeded:
        me.report_progress(100 * len(rows) / months, "stopped at the soft time limit")
        raise  # counts as a failed attempt and is retried
    return {"account_id": account_id, "months": len(rows), "total_requests": sum(r["requests"] for r in rows)}


class DigestArgs(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    results: list[Optional[dict]]  # filled in by the chord: its members' results, in order
    failures: list[dict] = []      # with on_failure="run_with_summary": the members that failed


@task(queue="reports", max_retries=3, args_model=DigestArgs)
def report_digest(*, results: list, failures: list = ()) -> dict:
    """Sum up the reports of a chord of build_report tasks (its callback)."""
    reports = [r for r in results if r]
    return {"reports": len(reports), "failed": [f["error"]["message"] for f in failures],
            "total_requests": sum(r["total_requests"] for r in reports)}


class ArchiveArgs(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    previous: Optional[dict] = None  # filled in by the chain: the previous step's result
    bucket: str = "reports-archive"


@task(queue="reports", max_retries=3, args_model=ArchiveArgs)
def archive_report(*, previous: Optional[dict] = None, bucket: str = "reports-archive") -> dict:
    """Archive a report: the step after build_report in a chain."""
    return {"archived": f"{bucket}/{previous['account_id']}-{previous['months']}m.json"}

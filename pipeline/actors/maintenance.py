"""Maintenance actors, run by the built-in schedules (see :mod:`scheduler.builtin`).

They take no arguments; the empty argument model makes a schedule that
passes some fail when it is saved rather than when it fires. The work lives
in :mod:`scheduler.cleanup` and :mod:`scheduler.health`, imported when a task
runs, so declaring these actors (every process does) stays cheap.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from pipeline.engine import get_engine
from pipeline.task import task


class NoArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


@task(queue="default", max_retries=1, soft_time_limit=1500, time_limit=1800, args_model=NoArguments)
def cleanup_expired_results() -> dict[str, int]:
    """Remove expired and orphaned index entries, old counters and stale records; returns counts."""
    from scheduler.cleanup import cleanup

    return cleanup(get_engine())


@task(queue="default", max_retries=0, soft_time_limit=240, time_limit=300, args_model=NoArguments)
def check_task_health() -> dict[str, Any]:
    """Check services, backlogs, workers, failure rates and lost tasks; store a snapshot and alert."""
    from scheduler.config import get_scheduler_settings
    from scheduler.health import check_health

    snapshot = check_health(get_engine(), get_scheduler_settings())
    return {"ok": snapshot["ok"], "problems": [p["key"] for p in snapshot["problems"]], "alert": snapshot["alert"]}

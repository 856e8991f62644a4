"""Maintenance actors, run by the built-in schedules (see :mod:`scheduler.builtin`).

They take no arguments; the empty argument model makes a schedule that
passes some fail when it is saved rather than when it fires. The work is in
:mod:`pipeline.maintenance`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from pipeline.engine import get_engine
from pipeline.maintenance.cleanup import cleanup
from pipeline.maintenance.config import get_health_settings
from pipeline.maintenance.health import check_health
from pipeline.task import task


class NoArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


@task(queue="default", max_retries=1, soft_time_limit=1500, time_limit=1800, args_model=NoArguments)
def cleanup_expired_results() -> dict[str, int]:
    """Remove expired and orphaned index entries, old counters and stale records; returns counts."""
    return cleanup(get_engine())


@task(queue="default", max_retries=0, soft_time_limit=240, time_limit=300, args_model=NoArguments)
def check_task_health() -> dict[str, Any]:
    """Check services, backlogs, workers, failure rates and lost tasks; store a snapshot and alert."""
    snapshot = check_health(get_engine(), get_health_settings())
    return {"ok": snapshot["ok"], "problems": [p["key"] for p in snapshot["problems"]], "alert": snapshot["alert"]}

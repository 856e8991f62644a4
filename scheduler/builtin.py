"""The schedules every deployment has, registered when a scheduler starts.

They are ordinary schedules: registered only if their id is absent, so an
operator may retime, pause or delete them and a restart keeps that choice.
"""

from __future__ import annotations

import logging

import pipeline.actors.maintenance  # noqa: F401  (declares the actors these schedules run)
from scheduler.store import ScheduleStore

logger = logging.getLogger("scheduler.builtin")

BUILTIN_SCHEDULES = (
    {"id": "cleanup_expired_results", "actor": "cleanup_expired_results", "cron": "0 2 * * *"},
    {"id": "check_task_health", "actor": "check_task_health", "interval_seconds": 1800},
)


def register_builtins(store: ScheduleStore) -> list[str]:
    """Add the built-in schedules that are missing (cron ones in the settings timezone); returns their ids."""
    added = [spec["id"] for spec in BUILTIN_SCHEDULES if store.add_if_absent(dict(spec))]
    for schedule_id in added:
        logger.info("Registered built-in schedule %s.", schedule_id)
    return added

"""Scheduler fixtures: fast leader-lock settings, the schedule store, real scheduler processes.

Scheduler processes are ``python -m scheduler.cli scheduler`` subprocesses with
the test's environment (namespace, queues). The built-in schedules are off
(they would fire maintenance tasks onto the shared ``default`` queue); one test
registers them in-process. Alerts go to ``record_alert`` on the test queue
rather than to ``send_notification`` on the shared notification queue.
"""

from __future__ import annotations

import sys
from datetime import datetime

import pytest

from tests.conftest import Subprocess, wait_until

LOCK_TTL_SECONDS = 3


@pytest.fixture
def env(env):
    return {
        **env,
        "CLAW_TASK_MODULES": "tests.sample_tasks,tests.scheduler.sched_tasks,pipeline.actors.maintenance",
        "CLAW_SCHEDULER_LOCK_TTL_SECONDS": str(LOCK_TTL_SECONDS),
        "CLAW_SCHEDULER_POLL_SECONDS": "0.5",
        "CLAW_SCHEDULER_BUILTINS": "false",
        "CLAW_HEALTH_ALERT_ACTOR": "record_alert",
        "CLAW_HEALTH_ALERT_CHANNEL": "system",
        "CLAW_HEALTH_ALERT_RECIPIENT": "ops-team",
        "CLAW_HEALTH_BACKLOG_DEPTH": "3",
        "CLAW_HEALTH_OLDEST_PENDING_SECONDS": "1",
        "CLAW_HEALTH_FAILURE_RATE": "0.5",
        "CLAW_HEALTH_FAILURE_MIN_TASKS": "3",
    }


@pytest.fixture
def health_config(settings):
    from pipeline.maintenance.config import get_health_settings, load_health_settings

    get_health_settings.cache_clear()
    yield load_health_settings()
    get_health_settings.cache_clear()


@pytest.fixture
def schedules(engine):
    from scheduler.store import ScheduleStore

    return ScheduleStore.for_engine(engine)


class SchedulerProcess(Subprocess):
    def __init__(self, env: dict):
        super().__init__([sys.executable, "-m", "scheduler.cli", "scheduler"], env, "scheduler")


@pytest.fixture
def start_scheduler(env, engine):
    """Start scheduler processes; all stopped at the end of the test."""
    started: list[SchedulerProcess] = []

    def start(extra_env: dict | None = None) -> SchedulerProcess:
        process = SchedulerProcess({**env, **(extra_env or {})})
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop(15)
        process.log.close()


@pytest.fixture
def leader_pid(redis_client, namespace):
    """The pid in the leader lock's token (host:pid:random), or None when nobody leads."""
    from pipeline.state import Keys

    def read() -> int | None:
        token = redis_client.get(Keys(namespace).scheduler_leader)
        return int(token.rsplit(":", 2)[1]) if token else None

    return read


def fire_times(engine, actor: str = "echo") -> list[float]:
    """Scheduled fire times of the tasks schedules submitted, from their keys ``schedule:{id}:{ISO time}``."""
    records, _ = engine.store.list(actor=actor, limit=500)
    return sorted(datetime.fromisoformat(r["idempotency_key"].split(":", 2)[2]).timestamp() for r in records)


def wait_for_runs(schedules, schedule_id: str, count: int, timeout: float = 10.0) -> dict:
    """The schedule's view once it has fired at least *count* times."""
    return wait_until(lambda: (view := schedules.get(schedule_id))["run_count"] >= count and view, timeout,
                      message=f"{schedule_id} to fire {count} time(s)")

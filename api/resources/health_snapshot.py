"""``GET /api/v1/tasks/health``: the latest snapshot of the ``check_task_health`` task.

The check runs as a scheduled task (every 30 minutes by default), not per
request: it walks indexes and asks RabbitMQ about every queue. This resource
only reads what it stored, and adds ``age_seconds`` so a client can tell a
stale snapshot (the check stopped running) from a fresh one.

Mount: ``create_app(extra_routes=[("/api/v1/tasks/health", HealthSnapshotResource(provider))])``.
"""

from __future__ import annotations

import time
from typing import Any

import falcon
from pydantic import BaseModel, ConfigDict, Field

from api.errors import ApiError
from api.resources import EngineProvider
from api.validation import Endpoint


class HealthSnapshot(BaseModel):
    """What the last health check found. Times are epoch seconds."""

    model_config = ConfigDict(extra="allow")

    ok: bool = Field(..., description="True when no problem was found.")
    checked_at: float
    age_seconds: float
    problems: list[dict[str, str]] = Field(..., description="Each with a stable `key` (e.g. backlog:default) and a `message`.")
    queues: dict[str, dict[str, Any]] = Field(..., description="Per queue: ready, consumers, pending, oldest_pending_seconds.")
    workers: dict[str, Any]
    actors: dict[str, dict[str, Any]] = Field(..., description="Per actor with finished tasks in the window: success, failure, failure_rate.")
    lost_tasks: list[dict[str, Any]] = Field(..., description="Tasks found STARTED past their limit on a dead worker, and what was done.")
    alert: dict[str, Any] = Field(..., description="Whether an alert was sent for the new problems, and why not otherwise.")
    redis: dict[str, Any]
    rabbitmq: dict[str, Any]


class HealthSnapshotResource:
    roles = {"GET": "read"}
    endpoints = {"GET": Endpoint("The latest health check: backlogs, workers, failure rates, lost tasks", "tasks",
                                 response=HealthSnapshot, errors=(404,))}

    def __init__(self, engine: EngineProvider):
        self.engine = engine

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        snapshot = self.engine().store.health_snapshot()
        if snapshot is None:
            raise ApiError(404, "No health snapshot",
                           "check_task_health has not run yet (the scheduler runs it every 30 minutes)")
        snapshot["age_seconds"] = round(time.time() - snapshot["checked_at"], 1)
        resp.media = snapshot

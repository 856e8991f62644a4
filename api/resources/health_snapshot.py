"""``GET /api/v1/tasks/health``: the latest snapshot of the ``check_task_health`` task.

The check runs as a scheduled task (every 30 minutes by default), not per
request: it walks indexes and asks RabbitMQ about every queue. This resource
only reads what it stored, and adds ``age_seconds`` so a client can tell a
stale snapshot (the check stopped running) from a fresh one.
"""

from __future__ import annotations

import time

import falcon

from api.auth import Access
from api.blocking import run_blocking
from api.errors import ApiError
from api.models import HealthSnapshot
from api.resources import EngineResource
from api.validation import Endpoint


class HealthSnapshotResource(EngineResource):
    access = {"GET": Access("tasks:read", users=False)}
    endpoints = {"GET": Endpoint("The latest health check: backlogs, workers, failure rates, lost tasks", "tasks", operation_id="getHealthSnapshot",
                                 response=HealthSnapshot, errors=(404,))}

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        snapshot = await run_blocking(self.engine().store.health_snapshot)
        if snapshot is None:
            raise ApiError(404, "No health snapshot",
                           "check_task_health has not run yet (the scheduler runs it every 30 minutes)")
        snapshot["age_seconds"] = round(time.time() - snapshot["checked_at"], 1)
        resp.media = snapshot

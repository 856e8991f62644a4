"""Schedules over HTTP (admin only): what RedBeat's dynamic entries were.

* ``GET    /api/v1/schedules`` — every schedule with next/last run, last task id and run count
* ``POST   /api/v1/schedules`` — add one (cron + timezone, or interval_seconds)
* ``GET    /api/v1/schedules/{schedule_id}`` — one schedule
* ``PATCH  /api/v1/schedules/{schedule_id}`` — change fields; ``{"enabled": false}`` pauses, ``true`` resumes
* ``DELETE /api/v1/schedules/{schedule_id}``

A change reaches the running scheduler within its poll interval (at most
2 s), without a restart. Bodies that are JSON but wrong answer 422 naming
the field, like an unknown actor, arguments the actor's model refuses or
an invalid cron expression; malformed JSON answers 400.

Mount: ``create_app(extra_routes=schedule_routes(provider))``.
"""

from __future__ import annotations

from typing import Any, Optional

import falcon
from pydantic import BaseModel, ConfigDict, Field

import scheduler.builtin  # noqa: F401  (declares the built-in schedules' actors, so they validate)
from api.errors import ApiError
from api.resources import EngineProvider
from api.validation import Endpoint
from pipeline.task import MAX_PRIORITY
from scheduler.store import ID_PATTERN, MAX_INTERVAL_SECONDS, ScheduleExists, ScheduleNotFound, ScheduleStore

TAG = "schedules"
PREFIX = "/api/v1/schedules"
CRON_HELP = '5-field crontab expression, e.g. "0 2 * * *" (day of week: 0 and 7 = Sunday). Give cron or interval_seconds.'


class ScheduleCreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Optional[str] = Field(None, pattern=ID_PATTERN, description="Letters, digits, _ . - (default: a random id).")
    actor: str = Field(..., min_length=1, max_length=200, description="The task to submit at each fire.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="The task's keyword arguments.")
    priority: Optional[int] = Field(None, ge=0, le=MAX_PRIORITY, description="0-9; default: the actor's.")
    cron: Optional[str] = Field(None, min_length=1, max_length=200, description=CRON_HELP)
    timezone: Optional[str] = Field(None, description="Timezone of the cron expression (default CLAW_TIMEZONE).")
    interval_seconds: Optional[int] = Field(None, ge=1, le=MAX_INTERVAL_SECONDS, description="Fire every this many seconds.")
    enabled: bool = Field(True, description="False adds it paused.")


class ScheduleChangeBody(BaseModel):
    """Only the fields given change. A new cron replaces an interval and vice versa."""

    model_config = ConfigDict(extra="forbid")

    actor: Optional[str] = Field(None, min_length=1, max_length=200)
    kwargs: Optional[dict[str, Any]] = None
    priority: Optional[int] = Field(None, ge=0, le=MAX_PRIORITY, description="null: the actor's default.")
    cron: Optional[str] = Field(None, min_length=1, max_length=200, description=CRON_HELP)
    timezone: Optional[str] = None
    interval_seconds: Optional[int] = Field(None, ge=1, le=MAX_INTERVAL_SECONDS)
    enabled: Optional[bool] = Field(None, description="false pauses, true resumes (missed fires are not caught up).")


class ScheduleView(BaseModel):
    """A schedule and its run state. Times are epoch seconds."""

    id: str
    actor: str
    kwargs: dict[str, Any]
    priority: Optional[int]
    cron: Optional[str]
    timezone: Optional[str]
    interval_seconds: Optional[int]
    enabled: bool
    created_at: float
    updated_at: float
    next_run: Optional[float] = Field(..., description="Null when paused.")
    last_run: Optional[float] = Field(..., description="Scheduled time of the last fire.")
    last_task_id: Optional[str]
    run_count: int
    last_error: Optional[dict[str, Any]] = Field(..., description="Why the last fire could not be submitted, if it could not.")


class ScheduleList(BaseModel):
    schedules: list[ScheduleView]
    count: int


class _ScheduleResource:
    def __init__(self, engine: EngineProvider):
        self.engine = engine
        self._store: Optional[ScheduleStore] = None

    def store(self) -> ScheduleStore:
        if self._store is None:
            self._store = ScheduleStore.for_engine(self.engine())
        return self._store


def _not_found(exc: ScheduleNotFound) -> ApiError:
    return ApiError(404, "Schedule not found", str(exc), fields={"schedule_id": "no such schedule"})


class ScheduleListResource(_ScheduleResource):
    roles = {"GET": "admin", "POST": "admin"}
    endpoints = {
        "GET": Endpoint("Every schedule with its next and last run", TAG, response=ScheduleList),
        "POST": Endpoint("Add a schedule", TAG, body=ScheduleCreateBody, response=ScheduleView, status=201,
                         errors=(400, 409, 422)),
    }

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        schedules = self.store().list()
        resp.media = {"schedules": schedules, "count": len(schedules)}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = self.endpoints["POST"].parse_body(req)
        try:
            schedule = self.store().add(body.model_dump(exclude_none=True))
        except ScheduleExists as exc:
            raise ApiError(409, "Schedule exists", f"{exc}; PATCH it instead", fields={"id": "already exists"}) from None
        resp.status = falcon.HTTP_201
        resp.location = f"{PREFIX}/{schedule['id']}"
        resp.media = schedule


class ScheduleItemResource(_ScheduleResource):
    roles = {"GET": "admin", "PATCH": "admin", "DELETE": "admin"}
    endpoints = {
        "GET": Endpoint("One schedule", TAG, response=ScheduleView, errors=(404,)),
        "PATCH": Endpoint("Change a schedule; {\"enabled\": false} pauses it", TAG, body=ScheduleChangeBody,
                          response=ScheduleView, errors=(400, 404, 422)),
        "DELETE": Endpoint("Delete a schedule", TAG, status=204, errors=(404,)),
    }

    def on_get(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        try:
            resp.media = self.store().get(schedule_id)
        except ScheduleNotFound as exc:
            raise _not_found(exc) from None

    def on_patch(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        changes = self.endpoints["PATCH"].parse_body(req).model_dump(exclude_unset=True)
        try:
            resp.media = self.store().update(schedule_id, changes)
        except ScheduleNotFound as exc:
            raise _not_found(exc) from None

    def on_delete(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        try:
            self.store().delete(schedule_id)
        except ScheduleNotFound as exc:
            raise _not_found(exc) from None
        resp.status = falcon.HTTP_204


def schedule_routes(engine: EngineProvider) -> list[tuple[str, Any]]:
    """The (path, resource) pairs to mount."""
    return [(PREFIX, ScheduleListResource(engine)), (f"{PREFIX}/{{schedule_id}}", ScheduleItemResource(engine))]

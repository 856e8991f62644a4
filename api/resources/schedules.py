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
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import falcon

import scheduler.builtin  # noqa: F401  (declares the built-in schedules' actors, so they validate)
from api.auth import Access
from api.blocking import run_blocking
from api.errors import ApiError
from api.models import ScheduleChangeBody, ScheduleCreateBody, ScheduleList, ScheduleView
from api.resources import EngineProvider
from api.validation import Endpoint
from scheduler.store import ScheduleExists, ScheduleNotFound, ScheduleStore

TAG = "schedules"
PREFIX = "/api/v1/schedules"


class _ScheduleResource:
    def __init__(self, engine: EngineProvider):
        self.engine = engine
        self._store: Optional[ScheduleStore] = None

    def store(self) -> ScheduleStore:
        if self._store is None:
            self._store = ScheduleStore.for_engine(self.engine())
        return self._store

    async def call(self, method: Callable[[ScheduleStore], Any]) -> Any:
        """``method(store)`` in the blocking pool; a missing schedule is a 404."""
        try:
            return await run_blocking(lambda: method(self.store()))
        except ScheduleNotFound as exc:
            raise ApiError(404, "Schedule not found", str(exc), fields={"schedule_id": "no such schedule"}) from None


class ScheduleListResource(_ScheduleResource):
    access = {"GET": Access("schedules:read", users=False), "POST": Access("schedules:write", users=False, audit=True)}
    endpoints = {
        "GET": Endpoint("Every schedule with its next and last run", TAG, operation_id="listSchedules", response=ScheduleList),
        "POST": Endpoint("Add a schedule", TAG, operation_id="createSchedule", body=ScheduleCreateBody, response=ScheduleView, status=201,
                         errors=(400, 409, 422)),
    }

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        schedules = await self.call(ScheduleStore.list)
        resp.media = {"schedules": schedules, "count": len(schedules)}

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = await self.endpoints["POST"].parse_body(req)
        try:
            schedule = await self.call(lambda store: store.add(body.model_dump(exclude_none=True)))
        except ScheduleExists as exc:
            raise ApiError(409, "Schedule exists", f"{exc}; PATCH it instead", fields={"id": "already exists"}) from None
        resp.status = falcon.HTTP_201
        resp.location = f"{PREFIX}/{schedule['id']}"
        resp.media = schedule


class ScheduleItemResource(_ScheduleResource):
    access = {"GET": Access("schedules:read", users=False), "PATCH": Access("schedules:write", users=False, audit=True),
              "DELETE": Access("schedules:write", users=False, audit=True)}
    endpoints = {
        "GET": Endpoint("One schedule", TAG, operation_id="getSchedule", response=ScheduleView, errors=(404,)),
        "PATCH": Endpoint("Change a schedule; {\"enabled\": false} pauses it", TAG, operation_id="updateSchedule", body=ScheduleChangeBody,
                          response=ScheduleView, errors=(400, 404, 422)),
        "DELETE": Endpoint("Delete a schedule", TAG, operation_id="deleteSchedule", status=204, errors=(404,)),
    }

    async def on_get(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        resp.media = await self.call(lambda store: store.get(schedule_id))

    async def on_patch(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        changes = (await self.endpoints["PATCH"].parse_body(req)).model_dump(exclude_unset=True)
        resp.media = await self.call(lambda store: store.update(schedule_id, changes))

    async def on_delete(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        await self.call(lambda store: store.delete(schedule_id))
        resp.status = falcon.HTTP_204

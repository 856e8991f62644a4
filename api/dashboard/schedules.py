"""Schedules: every stored schedule with its next and last run; pause and resume.

Reads and writes go through :class:`scheduler.store.ScheduleStore`, the
same store the scheduler's leader reloads every second, so a pause here
stops the next fire without restarting anything.
"""

from __future__ import annotations

from typing import Optional

import falcon

import scheduler.builtin  # noqa: F401  (declares the built-in schedules' actors, so pausing them validates)
from api.dashboard.web import PREFIX, Resource, redirect, responder
from pipeline.errors import InvalidArguments
from scheduler.store import ScheduleNotFound, ScheduleStore


class SchedulesResource(Resource):
    def __init__(self, dashboard):
        super().__init__(dashboard)
        self._store: Optional[ScheduleStore] = None

    @property
    def store(self) -> ScheduleStore:
        if self._store is None:
            self._store = ScheduleStore.for_engine(self.dashboard.engine())
        return self._store


class SchedulesPage(SchedulesResource):
    @responder("schedules:read")
    def on_get(self, req: falcon.Request, resp: falcon.Response, session) -> None:
        self.dashboard.render(req, resp, session, "schedules.html", section="schedules", schedules=self.store.list())


class ScheduleActionPage(SchedulesResource):
    """POST pause or resume one schedule."""

    @responder("schedules:write")
    def on_post(self, req: falcon.Request, resp: falcon.Response, session, form: dict, schedule_id: str,
                action: str) -> None:
        change = {"pause": self.store.pause, "resume": self.store.resume}.get(action)
        try:
            if change is None:
                raise ScheduleNotFound(f"there is no schedule action {action!r}")
            change(schedule_id)
        except ScheduleNotFound as exc:
            self.dashboard.error(req, resp, session, 404, "Schedule not found", str(exc).strip("'\""))
            return
        except InvalidArguments as exc:  # the stored definition no longer validates (e.g. its actor is gone)
            fields = "; ".join(f"{name}: {text}" for name, text in exc.fields.items())
            self.dashboard.error(req, resp, session, 409, "Schedule cannot change", f"{exc} ({fields})")
            return
        redirect(resp, f"{PREFIX}/schedules?notice={'paused' if action == 'pause' else 'resumed'}")

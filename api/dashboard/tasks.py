"""Tasks: the filtered list, one task's page, and cancel / retry.

The list is a page of the store's index for the chosen filters, paged with
the store's cursor. The search box looks a task up by its exact id first
(one HGETALL); any other text is matched against the (redacted) arguments
of at most :data:`SEARCH_WINDOW` most recent tasks matching the filters:
the store has no full-text index, and scanning every record would make the
page's cost grow with the history. The page says so.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional
from urllib.parse import urlencode

import falcon

from api.dashboard.web import PREFIX, Resource, control, redirect, responder
from api.resources import known_actors, known_queues
from pipeline import client
from pipeline.state.keys import FINAL_STATES, STATES

PAGE_SIZE = 50
SEARCH_WINDOW = 500
RANGES = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400}
CANCELLABLE = ("PENDING", "RETRY", "STARTED")
RETRYABLE = ("FAILURE", "CANCELLED")


@dataclass
class Filters:
    """The list's query string, checked."""

    state: str = ""
    actor: str = ""
    queue: str = ""
    range: str = ""
    since: str = ""
    until: str = ""
    q: str = ""
    cursor: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_request(cls, req: falcon.Request, queues: list[str]) -> "Filters":
        names = ("state", "actor", "queue", "range", "since", "until", "q", "cursor")
        filters = cls(**{name: (req.get_param(name) or "").strip() for name in names})
        choices = {"state": STATES, "actor": known_actors(), "queue": queues, "range": tuple(RANGES)}
        for name, allowed in choices.items():
            value = getattr(filters, name)
            if value and value not in allowed:
                filters.errors[name] = f"unknown {name} {value!r}"
                setattr(filters, name, "")
        for name in ("since", "until"):
            if getattr(filters, name) and parse_utc(getattr(filters, name)) is None:
                filters.errors[name] = "not a date and time like 2026-11-27 14:30"
                setattr(filters, name, "")
        return filters

    def store_filters(self, now: float) -> dict[str, Any]:
        since = parse_utc(self.since) if self.since else None
        if self.range:
            since = max(since or 0.0, now - RANGES[self.range])
        return {"state": self.state or None, "actor": self.actor or None, "queue": self.queue or None,
                "since": since, "until": parse_utc(self.until) if self.until else None}

    def query(self, **changes: str) -> str:
        values = {name: getattr(self, name) for name in ("state", "actor", "queue", "range", "since", "until", "q")}
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v})


def parse_utc(text: str) -> Optional[float]:
    """'2026-11-27 14:30' or '2026-11-27T14:30[:ss]' (the browser's datetime-local), read as UTC."""
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def matches(record: dict, needle: str) -> bool:
    haystack = json.dumps([record.get("args"), record.get("kwargs")], ensure_ascii=False, default=str)
    return needle.casefold() in haystack.casefold()


class TaskListPage(Resource):
    @responder("tasks:read")
    def on_get(self, req: falcon.Request, resp: falcon.Response, session) -> None:
        engine = self.dashboard.engine()
        queues = known_queues(engine)
        filters = Filters.from_request(req, queues)
        if filters.q and len(filters.q) <= 200 and not any(c.isspace() for c in filters.q):
            if engine.store.get(filters.q) is not None:
                redirect(resp, f"{PREFIX}/tasks/{filters.q}")
                return
        wanted = filters.store_filters(time.time())
        search = None
        try:
            if filters.q:  # matched against what this token may see, so masked values cannot be probed
                window, _ = engine.store.list(limit=SEARCH_WINDOW, **wanted)
                tasks, next_cursor = [r for r in map(session.caller.view, window) if matches(r, filters.q)], None
                search = {"window": len(window), "limit": SEARCH_WINDOW}
            else:
                tasks, next_cursor = engine.store.list(limit=PAGE_SIZE, cursor=filters.cursor or None, **wanted)
        except ValueError as exc:  # a cursor this store did not make
            filters.errors["cursor"] = str(exc)
            tasks, next_cursor = [], None
        self.dashboard.render(
            req, resp, session, "tasks.html", status=400 if filters.errors else 200, section="tasks",
            filters=filters, tasks=tasks, next_cursor=next_cursor, search=search, states=STATES,
            actors=known_actors(), queues=queues, ranges=RANGES,
        )


class TaskPage(Resource):
    @responder("tasks:read")
    def on_get(self, req: falcon.Request, resp: falcon.Response, session, task_id: str) -> None:
        show_task(self.dashboard, req, resp, session, task_id)


def show_task(ui, req, resp, session, task_id: str, status: int = 200, problem: str = "") -> None:
    record = ui.engine().store.get(task_id)
    if record is None:
        ui.error(req, resp, session, 404, "Task not found",
                 f"No task {task_id!r}: it was never submitted, or its record expired.")
        return
    ui.render(req, resp, session, "task.html", status=status, section="tasks", task=record, problem=problem,
              final=record["state"] in FINAL_STATES, can_cancel=record["state"] in CANCELLABLE,
              can_retry=record["state"] in RETRYABLE and not record.get("retried_by") and not record.get("workflow"))


class TaskActionPage(Resource):
    """POST cancel or retry; then back to the task (or to the new task, for a retry)."""

    @responder("tasks:control")
    def on_post(self, req: falcon.Request, resp: falcon.Response, session, form, task_id: str, action: str) -> None:
        def cancel() -> str:
            outcome = client.cancel(task_id, engine=self.dashboard.engine())
            notice = "cancelled" if outcome["state"] == "CANCELLED" else "interrupting"
            return f"{PREFIX}/tasks/{task_id}?notice={notice}"

        def retry() -> str:
            new_id = client.retry(task_id, engine=self.dashboard.engine(), submitted_by=f"dashboard:{session.name}")
            return f"{PREFIX}/tasks/{new_id}?notice=retried"

        control(self.dashboard, req, resp, session, "task", action, {"cancel": cancel, "retry": retry},
                lambda **problem: show_task(self.dashboard, req, resp, session, task_id, **problem))


class TaskJson(Resource):
    """One task's record, for the task page's live refresh."""

    @responder("tasks:read", json_api=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response, session, task_id: str) -> None:
        record = self.dashboard.engine().store.get(task_id)
        if record is None:
            resp.status = falcon.HTTP_404
            resp.media = {"error": {"status": 404, "title": "Task not found", "description": f"no task {task_id!r}"}}
            return
        resp.media = session.caller.view(record)

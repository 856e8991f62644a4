"""Queues: depths per queue, and each queue's standard / delayed / failed tasks.

dramatiq-dashboard lists a queue's messages by reading the Redis broker's
keys. RabbitMQ only shows a message's body by taking it off the queue, so
these lists come from the state store instead, never from draining RabbitMQ:

* standard: PENDING tasks of the queue that are due;
* delayed: RETRY tasks (waiting for their backoff or a rate-limit slot) and
  PENDING tasks submitted with a delay that is not over yet;
* failed: FAILURE tasks (their messages are in ``<queue>.XQ``).

Actions (:mod:`pipeline.dead_letters`): requeue failed tasks, and delete:
a failed task's message and record go;
a waiting task is cancelled, so it never runs.
"""

from __future__ import annotations

import time
from typing import Any

import falcon

from api.dashboard.overview import queue_rows
from api.dashboard.web import PREFIX, Resource, redirect, responder
from api.resources import known_queues
from pipeline import client
from pipeline.dead_letters import delete_failed, requeue_dead
from pipeline.errors import InvalidTransition, TaskNotFound

PAGE_SIZE = 50
#: The delayed tab merges two indexes by due time, so it shows this many of
#: the most recent of each instead of paging.
DELAYED_WINDOW = 500
MAX_SELECTED = 500
TABS = ("standard", "delayed", "failed")


class QueueListPage(Resource):
    @responder("tasks:read")
    def on_get(self, req: falcon.Request, resp: falcon.Response, session) -> None:
        engine = self.dashboard.engine()
        counts = engine.store.count_by_state([], known_queues(engine))["queues"]
        rows, broker_error = queue_rows(self.dashboard, counts)
        self.dashboard.render(req, resp, session, "queues.html", section="queues", rows=rows, broker_error=broker_error)


class QueuePage(Resource):
    @responder("tasks:read")
    def on_get(self, req: falcon.Request, resp: falcon.Response, session, queue: str) -> None:
        self.show(req, resp, session, queue)

    @responder("tasks:control")
    def on_post(self, req: falcon.Request, resp: falcon.Response, session, form: dict, queue: str) -> None:
        engine = self.dashboard.engine()
        if queue not in known_queues(engine):
            self.show(req, resp, session, queue)
            return
        action, tab = form.get("action"), form.get("tab") if form.get("tab") in TABS else "standard"
        selected = form.get("task_id", [])
        selected = [selected] if isinstance(selected, str) else list(selected)
        back = f"{PREFIX}/queues/{queue}?tab={tab}"
        if action == "requeue_all" and tab == "failed":
            redirect(resp, f"{back}&notice=requeued&count={requeue_dead(engine, queue)}")
            return
        if action not in ("requeue", "delete") or (action == "requeue" and tab != "failed"):
            self.show(req, resp, session, queue, tab, status=400, problem=f"Unknown action {action!r} on this tab.")
            return
        if not selected or len(selected) > MAX_SELECTED:
            self.show(req, resp, session, queue, tab, status=400,
                      problem=f"Select between 1 and {MAX_SELECTED} tasks first.")
            return
        if action == "requeue":
            redirect(resp, f"{back}&notice=requeued&count={requeue_dead(engine, queue, selected)}")
        elif tab == "failed":
            redirect(resp, f"{back}&notice=deleted&count={delete_failed(engine, queue, selected)}")
        else:
            redirect(resp, f"{back}&notice=cancelled_many&count={cancel_all(engine, selected)}")

    def show(self, req, resp, session, queue: str, tab: str = "", status: int = 200, problem: str = "") -> None:
        ui = self.dashboard
        if queue not in known_queues(ui.engine()):
            ui.error(req, resp, session, 404, "Queue not found", f"No queue {queue!r} is declared.")
            return
        tab = tab or (req.get_param("tab") if req.get_param("tab") in TABS else "standard")
        counts = ui.engine().store.count_by_state([], [queue])["queues"]
        rows, broker_error = queue_rows(ui, counts)
        try:
            tasks, next_cursor, note = self.tasks(queue, tab, req.get_param("cursor"))
        except ValueError as exc:  # a cursor this store did not make
            tasks, next_cursor, note, status, problem = [], None, "", 400, str(exc)
        ui.render(req, resp, session, "queue.html", status=status, section="queues", queue=queue, tab=tab, tabs=TABS,
                  stats=rows[queue], broker_error=broker_error, tasks=tasks, next_cursor=next_cursor, note=note,
                  problem=problem, now=time.time())

    def tasks(self, queue: str, tab: str, cursor: str | None) -> tuple[list[dict], str | None, str]:
        store, now = self.dashboard.engine().store, time.time()
        if tab == "failed":
            tasks, next_cursor = store.list(state="FAILURE", queue=queue, limit=PAGE_SIZE, cursor=cursor)
            return tasks, next_cursor, ""
        if tab == "standard":
            page, next_cursor = store.list(state="PENDING", queue=queue, limit=PAGE_SIZE, cursor=cursor)
            due = [r for r in page if not is_waiting(r, now)]
            note = f"{len(page) - len(due)} task(s) of this page wait for a delay: see Delayed." if len(due) < len(page) else ""
            return due, next_cursor, note
        retrying, _ = store.list(state="RETRY", queue=queue, limit=DELAYED_WINDOW)
        pending, _ = store.list(state="PENDING", queue=queue, limit=DELAYED_WINDOW)
        waiting = retrying + [r for r in pending if is_waiting(r, now)]
        waiting.sort(key=lambda r: r.get("eta") or 0)
        note = f"Due soonest first, from the {DELAYED_WINDOW} most recent RETRY and PENDING tasks of this queue."
        return waiting, None, note


def is_waiting(record: dict[str, Any], now: float) -> bool:
    return bool(record.get("eta")) and record["eta"] > now


def cancel_all(engine, task_ids: list[str]) -> int:
    """Cancel each task that can still be cancelled; returns how many were."""
    cancelled = 0
    for task_id in task_ids:
        try:
            client.cancel(task_id, engine=engine)
            cancelled += 1
        except (TaskNotFound, InvalidTransition):
            continue  # finished meanwhile: nothing to delete
    return cancelled

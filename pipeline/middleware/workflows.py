"""WorkflowFollowUps: the worker's part in publishing due workflow tasks.

* It installs :class:`~pipeline.follow_ups.FollowUpPublisher` as the
  store's hook, so the thread whose FINISH made a chain's next step or a
  chord's callback due publishes it at once (in every process: a cancel
  through the API can make a callback due too).
* A redelivered member that is already final (its worker died after FINISH,
  maybe before publishing) is dropped by TaskState; this middleware then
  publishes what that member left due.
* A thread sweeps the due set for tasks left there longer than a grace
  period (:mod:`pipeline.maintenance.follow_ups`).

This replaces Dramatiq's Callbacks and Pipelines middleware: their
``on_success``/``pipe_target`` messages are published by the worker after
the task with nothing recorded in between, so a worker killed there loses
them, and nothing counts a group.
"""

from __future__ import annotations

import logging

from pipeline.maintenance.follow_ups import publish_overdue
from pipeline.middleware.background import BackgroundThread
from pipeline.state import FINAL_STATES, StateStore
from pipeline.follow_ups import FollowUpPublisher, publish_due

logger = logging.getLogger("pipeline.workflow")


class WorkflowFollowUps(BackgroundThread):
    thread_name = "claw-follow-ups"

    def __init__(self, store: StateStore, overdue_seconds: float):
        super().__init__()
        self.store = store
        self.overdue_seconds = overdue_seconds
        self.broker = None

    def bind(self, broker) -> None:
        """Called once the broker exists: publish due tasks through it."""
        self.broker = broker
        self.store.follow_ups_due = FollowUpPublisher(self.store, broker)

    def after_skip_message(self, broker, message):
        place = message.options.get("claw_workflow")
        if not place or not place[0]:
            return
        record = self.store.get(message.message_id)
        if record is None or record["state"] not in FINAL_STATES:
            return
        try:
            candidates = self._follow_ups_of(place[0], int(place[1]))
            publish_due(self.store, broker, self.store.due_among(candidates))
        except Exception:
            logger.warning("Could not publish the follow-up of redelivered %s; the sweep will.", message.message_id,
                           exc_info=True)

    def _follow_ups_of(self, workflow_id: str, position: int) -> list[str]:
        workflow = self.store.get_workflow(workflow_id)
        if workflow is None:
            return []
        if workflow["kind"] == "chord":
            return [workflow["callback"]]
        if workflow["kind"] == "chain" and position + 1 < workflow["members"]:
            return [i for i in self.store.workflow_task_ids(workflow_id, position + 1, position + 2) if i]
        return []

    def run_in_background(self) -> None:
        """Sweep the due set for follow-ups left there past the grace period."""
        while not self.stopping.wait(self.overdue_seconds / 3):
            try:
                publish_overdue(self.store, self.broker, self.overdue_seconds)
            except Exception as exc:  # RabbitMQ or Redis away: the next sweep tries again
                logger.warning("Follow-up sweep failed (%s); will retry.", exc)

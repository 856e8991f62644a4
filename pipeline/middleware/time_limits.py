"""Soft and hard time limits per actor, Celery-style.

At the soft limit the task gets a catchable SoftTimeLimitExceeded (to save
progress). At the hard limit it gets HardTimeLimitExceeded, which is never
retried. Both are asynchronous exceptions, so they only land when the
thread runs Python bytecode: a task blocked in a C call (``time.sleep``, a
socket read) is still running ``BLOCKED_GRACE_SECONDS`` later. Then the
only way to stop it is to replace the process, so ``on_blocked`` is called:
the worker records the failure and exits gracefully, letting the other
threads finish; RabbitMQ redelivers whatever the process held, and the
stuck task's copy is dead-lettered because its record is already FAILURE.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from dramatiq.middleware.threading import raise_thread_exception

from pipeline.delivery import delivery_of
from pipeline.errors import HardTimeLimitExceeded, SoftTimeLimitExceeded
from pipeline.middleware.background import BackgroundThread
from pipeline.registry import policy_of

logger = logging.getLogger("pipeline.time_limits")
BLOCKED_GRACE_SECONDS = 2.0
CHECK_INTERVAL_SECONDS = 0.2


@dataclass
class Deadline:
    message: object
    soft: float
    hard: float
    soft_fired: bool = False
    hard_fired: bool = False
    blocked_reported: bool = False


class TimeLimits(BackgroundThread):
    thread_name = "claw-time-limits"

    def __init__(self, on_blocked: Optional[Callable[[object, float], None]] = None):
        super().__init__()
        #: Called with (message, seconds the other running tasks may still need).
        self.on_blocked = on_blocked
        self.deadlines: dict[int, Deadline] = {}
        self.lock = threading.Lock()

    def before_process_message(self, broker, message):
        delivery = delivery_of(message)
        if delivery is None or not delivery.running:
            return
        policy = policy_of(broker, message.actor_name)
        now = time.monotonic()
        soft = now + policy.soft_time_limit if policy.soft_time_limit < policy.time_limit else float("inf")
        with self.lock:
            self.deadlines[threading.get_ident()] = Deadline(message, soft, now + policy.time_limit)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        with self.lock:
            self.deadlines.pop(threading.get_ident(), None)

    after_skip_message = after_process_message

    def longest_remaining(self, excluding: object) -> float:
        """Seconds until the last other running task hits its hard limit."""
        now = time.monotonic()
        with self.lock:
            others = [d.hard - now for d in self.deadlines.values() if d.message is not excluding]
        return max([0.0, *others])

    def run_in_background(self) -> None:
        """Check the running tasks' deadlines every CHECK_INTERVAL_SECONDS."""
        while not self.stopping.wait(CHECK_INTERVAL_SECONDS):
            now = time.monotonic()
            with self.lock:
                items = list(self.deadlines.items())
            for thread_id, deadline in items:
                self._check(thread_id, deadline, now)

    def _check(self, thread_id: int, deadline: Deadline, now: float) -> None:
        message_id = deadline.message.message_id
        if not deadline.soft_fired and now >= deadline.soft:
            deadline.soft_fired = True
            logger.warning("Task %s passed its soft time limit.", message_id)
            raise_thread_exception(thread_id, SoftTimeLimitExceeded)
        if not deadline.hard_fired and now >= deadline.hard:
            deadline.hard_fired = True
            logger.error("Task %s passed its hard time limit; stopping it.", message_id)
            raise_thread_exception(thread_id, HardTimeLimitExceeded)
        elif deadline.hard_fired and not deadline.blocked_reported and now >= deadline.hard + BLOCKED_GRACE_SECONDS:
            deadline.blocked_reported = True
            logger.error("Task %s is blocked past its hard time limit; replacing this worker process.", message_id)
            if self.on_blocked is not None:
                self.on_blocked(deadline.message, self.longest_remaining(deadline.message))

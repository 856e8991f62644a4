"""Cancellation of running tasks.

The state store marks PENDING/RETRY tasks CANCELLED directly (TaskState then
drops their messages whenever they arrive, however late). For a STARTED task
the store publishes its id; the worker process running it sets the task's
cancel event (for cooperative checks) and raises TaskCancelled in the task's
thread, which interrupts pure-Python code. Dramatiq-abort was not used: its
cancel marks expire after ``abort_ttl`` and an aborted task reads as a
``None`` result and is retried.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from dramatiq.middleware.threading import raise_thread_exception

from pipeline.context import peek_current
from pipeline.errors import TaskCancelled
from pipeline.middleware.background import BackgroundThread

logger = logging.getLogger("pipeline.cancellation")
#: A cancel heard before its task registered here is remembered this long.
EARLY_CANCEL_MEMORY_SECONDS = 60


class Cancellation(BackgroundThread):
    thread_name = "claw-cancel-listener"

    def __init__(self, client: redis.Redis, channel: str):
        super().__init__()
        self.redis = client
        self.channel = channel
        self.lock = threading.Lock()
        self.running: dict[str, tuple[int, threading.Event]] = {}
        self.early: dict[str, float] = {}

    def before_process_message(self, broker, message):
        ctx = peek_current()
        if ctx is None:
            return
        with self.lock:
            self.running[message.message_id] = (threading.get_ident(), ctx.cancel_event)
            early = self.early.pop(message.message_id, None) is not None
        if early:
            ctx.cancel_event.set()
            raise TaskCancelled("cancelled by request")

    def after_process_message(self, broker, message, *, result=None, exception=None):
        with self.lock:
            self.running.pop(message.message_id, None)

    after_skip_message = after_process_message

    def cancel_local(self, task_id: str) -> bool:
        """Interrupt *task_id* if it runs in this process; returns whether it did."""
        with self.lock:
            entry = self.running.get(task_id)
            if entry is None:
                now = time.time()
                self.early = {k: t for k, t in self.early.items() if now - t < EARLY_CANCEL_MEMORY_SECONDS}
                self.early[task_id] = now
                return False
            thread_id, event = entry
            event.set()
            raise_thread_exception(thread_id, TaskCancelled)
            return True

    def run_in_background(self) -> None:
        """Hear the cancel requests published for running tasks (resubscribing after a lost connection)."""
        while not self.stopping.is_set():
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                while not self.stopping.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and message["type"] == "message":
                        if self.cancel_local(message["data"]):
                            logger.info("Interrupting task %s: cancel requested.", message["data"])
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                logger.warning("Cancel listener lost Redis (%s); reconnecting.", exc)
                time.sleep(1)

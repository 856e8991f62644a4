"""What a running task can see of itself: its id, attempt, progress and cancellation."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from pipeline.errors import TaskCancelled
from pipeline.owners import NOBODY, Owner

logger = logging.getLogger("pipeline.context")


@dataclass
class TaskContext:
    task_id: str
    actor: str
    attempt: int
    store: Any
    #: Whom the task works for, and who submitted it (from the message).
    owner: Owner = NOBODY
    cancel_event: threading.Event = field(default_factory=threading.Event)
    started_monotonic: float = field(default_factory=time.monotonic)

    def report_progress(self, percent: float, message: str = "", **extra: Any) -> None:
        """Record progress (0-100) in the task record and publish it to the task's event stream."""
        progress = {"percent": round(max(0.0, min(100.0, float(percent))), 2), "message": message, **extra}
        self.store.report_progress(self.task_id, progress)

    def cancel_requested(self) -> bool:
        """True once an operator asked to cancel this task: long tasks check it between steps."""
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise TaskCancelled("cancelled by request")


_current: contextvars.ContextVar[Optional[TaskContext]] = contextvars.ContextVar("claw_task", default=None)


def current_task() -> TaskContext:
    """The context of the task running in this thread; RuntimeError outside a task."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("current_task() called outside a running task")
    return ctx


class NoTask:
    """Stands in for the context when task code runs outside a worker (CLI, scripts, direct calls).

    It has no id, reports progress to the debug log only, and is never cancelled.
    """

    task_id = None
    actor = None
    attempt = 0
    owner = NOBODY

    def report_progress(self, percent: float, message: str = "", **extra: Any) -> None:
        logger.debug("%.0f%% %s", percent, message)

    def cancel_requested(self) -> bool:
        return False

    def check_cancelled(self) -> None:
        pass


NO_TASK = NoTask()


def running_task() -> TaskContext | NoTask:
    """The context of the task running in this thread, or :data:`NO_TASK` outside one."""
    return _current.get() or NO_TASK


def set_current(ctx: Optional[TaskContext]) -> None:
    _current.set(ctx)


def peek_current() -> Optional[TaskContext]:
    return _current.get()

"""MaxTasksPerChild: replace a worker process after N tasks (Celery's max_tasks_per_child).

Dramatiq has no per-process recycling (its SIGHUP restarts every process at
once). Here the process asks its supervisor to be replaced; it stops taking
messages, finishes what it runs, hands back what it prefetched, and exits,
while its siblings keep working.
"""

from __future__ import annotations

import threading
from typing import Callable

from dramatiq.middleware import Middleware


class MaxTasksPerChild(Middleware):
    def __init__(self, limit: int, on_limit: Callable[[], None]):
        self.limit = limit
        self.on_limit = on_limit
        self.count = 0
        self.lock = threading.Lock()

    def after_process_message(self, broker, message, *, result=None, exception=None):
        with self.lock:
            self.count += 1
            reached = self.count == self.limit
        if reached:
            self.on_limit()

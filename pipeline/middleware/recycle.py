"""Recycle: replace a worker process after N tasks or once it holds too much memory.

These are Celery's ``worker_max_tasks_per_child`` and
``worker_max_memory_per_child``. Dramatiq has no per-process recycling (its
SIGHUP restarts every process at once). Here the process asks its
supervisor to be replaced; it stops taking messages, finishes what it runs,
hands back what it prefetched, and exits, while its siblings keep working.

The memory limit is the default guard because it aims at the reason for
recycling (a library that leaks) without a price on short tasks: a count
of 100 (the Celery design's setting) replaces a process every few hundred
milliseconds when tasks take a millisecond.
"""

from __future__ import annotations

import os
import threading
import resource
import sys
import time
from typing import Callable

from dramatiq.middleware import Middleware

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
#: Memory is read at most this often (a /proc read per task would cost as much as a short task).
MEMORY_CHECK_SECONDS = 1.0


def resident_mib() -> float:
    """This process's resident set size now (not its peak, which never comes down).

    Read from /proc on Linux; elsewhere (a developer's macOS) the peak is the
    best the standard library offers, so a process is recycled once it ever
    went above the limit.
    """
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE_BYTES / 2**20
    except FileNotFoundError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


class Recycle(Middleware):
    def __init__(self, on_limit: Callable[[], None], max_tasks: int = 0, max_memory_mib: int = 0):
        self.on_limit = on_limit
        self.max_tasks = max_tasks
        self.max_memory_mib = max_memory_mib
        self.count = 0
        self.memory_checked_at = 0.0
        self.lock = threading.Lock()

    def after_process_message(self, broker, message, *, result=None, exception=None):
        now = time.monotonic()
        with self.lock:
            self.count += 1
            count = self.count
            check_memory = self.max_memory_mib and now - self.memory_checked_at >= MEMORY_CHECK_SECONDS
            if check_memory:
                self.memory_checked_at = now
        if self.max_tasks and count >= self.max_tasks:
            self.on_limit()
        elif check_memory and resident_mib() > self.max_memory_mib:
            self.on_limit()

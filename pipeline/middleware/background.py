"""BackgroundThread: a middleware's loop beside the tasks, one daemon thread in each worker process."""

from __future__ import annotations

import threading

from dramatiq.middleware import Middleware


class BackgroundThread(Middleware):
    """Runs :meth:`run_in_background` in a daemon thread from the worker's boot; sets ``stopping`` at its
    shutdown, which the loop watches to return."""

    #: The thread's name, as thread dumps and logs show it.
    thread_name: str

    def __init__(self) -> None:
        self.stopping = threading.Event()

    def after_worker_boot(self, broker, worker):
        threading.Thread(target=self.run_in_background, name=self.thread_name, daemon=True).start()

    def before_worker_shutdown(self, broker, worker):
        self.stopping.set()

    def run_in_background(self) -> None:
        raise NotImplementedError

"""Loaded into test workers through CLAW_TASK_MODULES: crash points for the worker-kill tests.

With ``CLAW_TEST_KILL_AFTER_SENT=1`` the worker process SIGKILLs itself the
first time (per namespace) the de-duplicator logs ``sent:`` — i.e. right
after the provider accepted and the marker was written, before the task
returns and before its message is acked. RabbitMQ then redelivers it.
"""

from __future__ import annotations

import logging
import os
import signal

from pipeline.redis_client import get_redis
from pipeline.settings import get_settings


class _KillAfterSent(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if not record.getMessage().startswith("sent:"):
            return
        key = f"{get_settings().namespace}:test:killed-after-sent"
        if get_redis().set(key, str(os.getpid()), nx=True, ex=300):
            os.kill(os.getpid(), signal.SIGKILL)


if os.environ.get("CLAW_TEST_KILL_AFTER_SENT") == "1":
    _logger = logging.getLogger("pipeline.notifications.dedup")
    _logger.setLevel(logging.INFO)
    _logger.addHandler(_KillAfterSent())

"""Log lines that say which request and which task they belong to.

A context variable holds the request id (set by the API's middleware for one
request, or by the worker for the task a message of that request runs) and
the running task's id and actor. Every line logged meanwhile carries them:
in JSON (``CLAW_LOG_FORMAT=json``, one object per line, for log shippers) as
the fields ``task_id``, ``actor``, ``request_id``, ``worker``; in text as a
``[task … req …]`` suffix only when there is one, so lines outside a request
or task look as before.

A context variable rather than a thread-local because the API's engine calls
run in a thread pool that copies the caller's context (``api.blocking``), and
a worker's task runs with a context of its own per thread.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Optional

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s%(claw_context)s"
#: A request id a client may choose: printable, no spaces or quotes, short enough for a log line.
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


@dataclass(frozen=True)
class LogContext:
    request_id: Optional[str] = None
    task_id: Optional[str] = None
    actor: Optional[str] = None


_EMPTY = LogContext()
_context: contextvars.ContextVar[LogContext] = contextvars.ContextVar("claw_log_context", default=_EMPTY)
#: This process's worker id (host:pid) in a worker process; None elsewhere.
_worker: Optional[str] = None


def current() -> LogContext:
    return _context.get()


def bind(**fields: Optional[str]) -> contextvars.Token:
    """Add *fields* to the context of what runs from here on (until :func:`reset`)."""
    return _context.set(replace(_context.get(), **fields))


def reset(token: contextvars.Token) -> None:
    _context.reset(token)


def clear() -> None:
    """Forget the context of this thread (a worker thread between two tasks)."""
    _context.set(_EMPTY)


def request_id() -> Optional[str]:
    return _context.get().request_id


def accept_request_id(given: Optional[str]) -> str:
    """The client's request id when it is sane (printable, at most 128 characters), else a new one."""
    if given and SANE_REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


def set_worker(name: Optional[str]) -> None:
    global _worker
    _worker = name


class ContextFilter(logging.Filter):
    """Puts the context's fields on every record (a field given with ``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        for name in ("request_id", "task_id", "actor"):
            if not hasattr(record, name):
                setattr(record, name, getattr(context, name))
        if not hasattr(record, "worker"):
            record.worker = _worker
        parts = [f"task {record.task_id}" if record.task_id else "", f"req {record.request_id}" if record.request_id else ""]
        record.claw_context = f" [{' '.join(p for p in parts if p)}]" if any(parts) else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message and the context's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "task_id": getattr(record, "task_id", None),
            "actor": getattr(record, "actor", None),
            "request_id": getattr(record, "request_id", None),
            "worker": getattr(record, "worker", None),
            "pid": record.process,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def make_handler(log_format: str = "text", stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def setup_logging(level: str = "INFO", log_format: str = "text") -> None:
    """The root logger of this process: one handler on stderr in *log_format*, at *level*.

    Called once when a process starts; handlers others put on the root (a
    server's default configuration) are replaced, so no line is written twice.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(make_handler(log_format))
    root.setLevel(level.upper())
    logging.getLogger("pika").setLevel(logging.WARNING)

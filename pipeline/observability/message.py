"""What a message carries for observability, and the worker middleware that reads it.

A submission stamps its message's options with the request id of the API
request that made it (``request_id``) and, when tracing is on, the trace
context (``trace``). Options survive every copy the engine makes of a
message (retries, delay hops, rate-limit waits), so each run of the task logs
and traces under the request that caused it.
"""

from __future__ import annotations

from typing import Any

from dramatiq.middleware import Middleware

from pipeline.observability import logs, tracing

#: The message option holding the submitting request's id.
REQUEST_ID_OPTION = "request_id"


def stamp(options: dict[str, Any]) -> dict[str, Any]:
    """Add the current request id and trace context to a new message's *options*; returns them."""
    rid = logs.request_id()
    if rid:
        options[REQUEST_ID_OPTION] = rid
    tracing.inject(options)
    return options


class LogContext(Middleware):
    """Binds the task id, actor and request id to every log line the worker writes while a message is processed.

    First of the engine's middleware (see :func:`pipeline.broker.engine_middleware`):
    its before-hook runs before any other, its after-hooks after all of them,
    so lines about starting, retrying or dropping the task carry its ids too.
    """

    def before_process_message(self, broker, message) -> None:
        logs.bind(task_id=message.message_id, actor=message.actor_name,
                  request_id=message.options.get(REQUEST_ID_OPTION))

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        logs.clear()

    def after_skip_message(self, broker, message) -> None:
        logs.clear()

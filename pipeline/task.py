"""Declaring tasks: one decorator holds every fact about an actor.

::

    @task(queue="reports", max_retries=5, time_limit=120, args_model=ReportArgs)
    def build_report(*, account_id: str) -> dict: ...

    build_report.send(account_id="acme")      # submit with the defaults
    build_report(account_id="acme")           # call the function directly

The policy fields are :class:`TaskPolicy`'s; the declared task goes into
:data:`REGISTRY` (see :mod:`pipeline.registry`), where the engine reads it.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import pydantic

from pipeline import client
from pipeline.workflow.shapes import Signature, signature
from pipeline.registry import (  # noqa: F401  (what task modules and the API read about tasks)
    MAX_DELAY_MS,
    FromSetting,
    MAX_PRIORITY,
    QUEUES,
    REGISTRY,
    TaskPolicy,
    TaskSpec,
    get_task,
    policy_of,
    queue_names,
)


class Task(TaskSpec):
    def s(self, priority: Optional[int] = None, **kwargs: Any) -> Signature:
        """This task with *kwargs*, to put in a workflow (Celery's ``task.s(...)``)."""
        return signature(self.name, priority, **kwargs)

    def send(self, *args: Any, **kwargs: Any) -> str:
        """Submit with default options (see :func:`pipeline.client.submit` for all of them)."""
        return client.submit(self.name, args=args, kwargs=kwargs)


def task(
    fn: Optional[Callable[..., Any]] = None,
    *,
    name: Optional[str] = None,
    args_model: Optional[type[pydantic.BaseModel]] = None,
    **policy: Any,
):
    """Declare a task. ``policy`` takes the fields of :class:`TaskPolicy`."""

    def decorate(func: Callable[..., Any]) -> Task:
        spec = Task(
            name=name or func.__name__,
            fn=func,
            policy=TaskPolicy(**policy),
            args_model=args_model,
            description=(func.__doc__ or "").strip().split("\n")[0],
        )
        if spec.name in REGISTRY and REGISTRY[spec.name].fn is not func:
            raise ValueError(f"a task named {spec.name!r} is already declared")
        REGISTRY[spec.name] = spec
        return spec

    return decorate(fn) if fn is not None else decorate

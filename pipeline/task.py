"""Declaring tasks: one decorator holds every fact about an actor.

::

    @task(queue="reports", max_retries=5, time_limit=120, args_model=ReportArgs)
    def build_report(*, account_id: str) -> dict: ...

    build_report.send(account_id="acme")      # submit with the defaults; returns the task id
    build_report(account_id="acme")           # call the function directly

    # Celery's shape, for code migrating from it: an AsyncResult handle
    result = build_report.apply_async(kwargs={"account_id": "acme"}, queue="default", countdown=10)
    result = build_report.delay(account_id="acme")
    result.get(timeout=60)

The policy fields are :class:`TaskPolicy`'s; the declared task goes into
:data:`REGISTRY` (see :mod:`pipeline.registry`), where the engine reads it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Optional, Sequence

import pydantic

from pipeline import client
from pipeline.engine import get_engine
from pipeline.errors import InvalidArguments
from pipeline.result import AsyncResult
from pipeline.workflow.shapes import Signature, signature
from pipeline.registry import (  # noqa: F401  (what task modules and the API read about tasks)
    MAX_DELAY_MS,
    FromSetting,
    MAX_PRIORITY,
    OwnerOr,
    QUEUES,
    REGISTRY,
    TaskPolicy,
    TaskSpec,
    get_task,
    policy_of,
    queue_names,
)


#: Celery's apply_async options this engine has no counterpart for, and what to use instead.
UNSUPPORTED_OPTIONS = {
    "expires": "no expiry of waiting tasks; cancel with result.revoke()",
    "link": "use pipeline.workflow (chain) for what runs after",
    "link_error": "use pipeline.workflow (chord with on_failure) or the dead-letter queue",
    "retry": "publishing is confirmed or raises BrokerUnavailable; there is no silent publish retry",
    "retry_policy": "publishing is confirmed or raises BrokerUnavailable; there is no silent publish retry",
    "routing_key": "use queue=",
    "exchange": "use queue=",
    "serializer": "messages are JSON",
    "compression": "large messages are compressed by the engine (CLAW_COMPRESSION_THRESHOLD_BYTES)",
    "time_limit": "time limits are the actor's policy (@task(time_limit=...), CLAW_ACTOR_OVERRIDES)",
    "soft_time_limit": "time limits are the actor's policy (@task(soft_time_limit=...), CLAW_ACTOR_OVERRIDES)",
    "ignore_result": "every task keeps its record and result for CLAW_RESULT_TTL_SECONDS",
    "headers": "the request id and trace context travel by themselves",
    "shadow": "not supported",
    "add_to_parent": "not supported",
}


class Task(TaskSpec):
    def s(self, priority: Optional[int] = None, **kwargs: Any) -> Signature:
        """This task with *kwargs*, to put in a workflow (Celery's ``task.s(...)``)."""
        return signature(self.name, priority, **kwargs)

    def send(self, *args: Any, **kwargs: Any) -> str:
        """Submit with default options (see :func:`pipeline.client.submit` for all of them)."""
        return client.submit(self.name, args=args, kwargs=kwargs)

    def apply_async(
        self,
        args: Optional[Sequence[Any]] = None,
        kwargs: Optional[dict[str, Any]] = None,
        *,
        queue: Optional[str] = None,
        priority: Optional[int] = None,
        countdown: Optional[float] = None,
        eta: Optional[datetime] = None,
        task_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        **options: Any,
    ) -> AsyncResult:
        """Submit like Celery's ``apply_async``; returns an :class:`~pipeline.result.AsyncResult`.

        *queue*: any declared queue (``pipeline.task.queue_names()``), for this
        call only; the actor's policy is unchanged and its retries stay on that
        queue; a worker must consume it (all do unless started with ``-Q``).
        *priority*: 0-9, higher first. *countdown* (seconds) or *eta* (a
        datetime, naive = UTC): start no earlier. *task_id*: a UUID of your
        choosing, which must not be in use. Options Celery has and this engine
        does not (``expires``, ``link``, ...) raise TypeError saying what to use.
        """
        unsupported = sorted(set(options))
        if unsupported:
            reasons = "; ".join(f"{name}: {UNSUPPORTED_OPTIONS.get(name, 'not an option')}" for name in unsupported)
            raise TypeError(f"apply_async() does not take {', '.join(unsupported)} ({reasons})")
        if countdown is not None and eta is not None:
            raise InvalidArguments("give countdown or eta, not both", {"countdown": "cannot be combined with eta"})
        engine = get_engine()
        if task_id is not None and engine.store.get(task_id) is not None:
            raise InvalidArguments(f"task id {task_id} is already in use", {"task_id": "already in use"})
        submitted = client.submit(
            self.name, args=tuple(args or ()), kwargs=dict(kwargs or {}), priority=priority,
            delay_ms=None if countdown is None else int(countdown * 1000), eta=eta, idempotency_key=idempotency_key,
            queue=queue, task_id=task_id, engine=engine,
        )
        return AsyncResult(submitted, engine=engine)

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        """``apply_async(args, kwargs)`` with the defaults, like Celery's ``delay``."""
        return self.apply_async(args, kwargs)

    def AsyncResult(self, task_id: str) -> AsyncResult:  # noqa: N802  (Celery's name)
        return AsyncResult(task_id)


def task(
    fn: Optional[Callable[..., Any]] = None,
    *,
    name: Optional[str] = None,
    args_model: Optional[type[pydantic.BaseModel]] = None,
    submit_scope: Optional[str] = None,
    sensitive_output: tuple[str, ...] = (),
    **policy: Any,
):
    """Declare a task. ``policy`` takes the fields of :class:`TaskPolicy`; *submit_scope* and
    *sensitive_output* are :class:`TaskSpec`'s."""

    def decorate(func: Callable[..., Any]) -> Task:
        spec = Task(
            name=name or func.__name__,
            fn=func,
            policy=TaskPolicy(**policy),
            args_model=args_model,
            description=(func.__doc__ or "").strip().split("\n")[0],
            submit_scope=submit_scope,
            sensitive_output=tuple(sensitive_output),
        )
        if spec.name in REGISTRY and REGISTRY[spec.name].fn is not func:
            raise ValueError(f"a task named {spec.name!r} is already declared")
        REGISTRY[spec.name] = spec
        return spec

    return decorate(fn) if fn is not None else decorate

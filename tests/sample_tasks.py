"""Small actors for the engine's own tests, on per-run test queues.

The worker processes started by tests import this module through
CLAW_TASK_MODULES; queue names carry CLAW_TEST_RUN so concurrent runs on one
RabbitMQ never share a queue.
"""

from __future__ import annotations

import os
import signal
import time

import pydantic

from pipeline.context import current_task
from pipeline.errors import PermanentError, SoftTimeLimitExceeded
from pipeline.redis_client import get_redis, redis_for
from pipeline.sensitive import Sensitive
from pipeline.task import task

RUN = os.environ.setdefault("CLAW_TEST_RUN", str(os.getpid()))
QUEUE = f"test_{RUN}"
PRIORITY_QUEUE = f"test_{RUN}_prio"
FAST = dict(queue=QUEUE, retry_backoff_ms=50, retry_backoff_max_ms=200)


class EchoArgs(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    value: object = None
    password: str | None = Sensitive(None)


@task(args_model=EchoArgs, **FAST)
def echo(value=None, password=None):
    return {"value": value, "had_password": password is not None}


class FailArgs(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    message: str = "boom"
    api_key: str | None = Sensitive(None)


@task(max_retries=2, args_model=FailArgs, **FAST)
def always_fails(message: str = "boom", api_key: str | None = None):
    raise ValueError(message)


@task(max_retries=3, **FAST)
def fails_then_succeeds(counter_key: str, failures: int, previous=None):
    if get_redis().incr(counter_key) <= failures:
        raise ConnectionError("transient")
    return "ok"


@task(max_retries=3, **FAST)
def permanent_failure(previous=None):
    raise PermanentError("bad arguments: cannot be fixed by retrying")


@task(max_retries=0, soft_time_limit=60, time_limit=60, **FAST)
def spin(seconds: float, progress_key: str | None = None):
    """Pure-Python busy loop: interruptible at any bytecode."""
    deadline = time.monotonic() + seconds
    if progress_key:
        get_redis().set(progress_key, "running", ex=60)
    while time.monotonic() < deadline:
        sum(range(1000))
    return "finished"


@task(max_retries=0, soft_time_limit=60, time_limit=60, **FAST)
def cooperative(seconds: float):
    """Checks for cancellation between steps."""
    ctx = current_task()
    for step in range(int(seconds * 10)):
        ctx.report_progress(step * 100 / (seconds * 10), f"step {step}")
        if ctx.cancel_requested():
            return "stopped early"
        time.sleep(0.1)
    return "finished"


@task(max_retries=2, soft_time_limit=0.5, time_limit=2, **FAST)
def saves_at_soft_limit(state_key: str):
    try:
        while True:
            sum(range(1000))
    except SoftTimeLimitExceeded:
        get_redis().set(state_key, "saved", ex=60)
        return "saved progress"


@task(max_retries=3, soft_time_limit=0.5, time_limit=1, **FAST)
def blocks_in_c(seconds: float):
    time.sleep(seconds)
    return "woke"


@task(max_retries=3, soft_time_limit=1, time_limit=1, **FAST)
def spins_past_hard_limit():
    while True:
        sum(range(1000))


@task(queue=PRIORITY_QUEUE, retry_backoff_ms=50)
def record_order(list_key: str, tag: str):
    get_redis().rpush(list_key, tag)


@task(rate_limit="2/s", **FAST)
def rate_limited(list_key: str):
    get_redis().rpush(list_key, f"{time.time():.3f}")


class StartArgs(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    list_key: str
    user: str = ""


@task(rate_limit="5/s", rate_limit_per_key="2/s", rate_limit_key="user", args_model=StartArgs, **FAST)
def shared_fairly(list_key: str, user: str = ""):
    """Records when it started and for whom (the backlog tests override its limits)."""
    get_redis().rpush(list_key, f"{time.time():.6f} {current_task().task_id} {user}")


@task(max_retries=1, **FAST)
def kills_its_worker():
    os.kill(os.getpid(), signal.SIGKILL)


@task(max_retries=3, **FAST)
def slow_side_effect(key: str, seconds: float):
    """Idempotent side effect: one SET NX per task id, then work."""
    ctx = current_task()
    get_redis().hsetnx(key, ctx.task_id, ctx.attempt)
    time.sleep(seconds)
    return ctx.task_id


@task(**FAST)
def returns_unserialisable():
    return object()


@task(max_retries=3, **FAST)
def ledger(runs_key: str, effects_key: str, seconds: float = 0.05, ledger_url: str | None = None):
    """Counts every execution (at-least-once shows here) and applies its
    side effect idempotently (exactly-once shows here). *ledger_url* keeps the
    ledger in another Redis than the engine's (one that a test does not fail over)."""
    ctx = current_task()
    redis = redis_for(ledger_url) if ledger_url else get_redis()
    redis.hincrby(runs_key, ctx.task_id, 1)
    time.sleep(seconds)
    redis.hsetnx(effects_key, ctx.task_id, ctx.attempt)
    return ctx.attempt


def _soak(queue: str):
    @task(name=f"soak_{queue}", queue=queue, retry_backoff_ms=50, max_retries=3)
    def soak(i: int = 0):
        return i

    return soak


SOAK_TASKS = [_soak(q) for q in ("ai_high_priority", "knowledge_default", "notification_default", "default")]


# -- workflows ---------------------------------------------------------------------------


class AddArgs(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    value: int = 0
    previous: int | None = None


@task(args_model=AddArgs, **FAST)
def add(value: int = 0, previous: int | None = None):
    """A chain step: the previous step's result plus *value*."""
    return (previous or 0) + value


class CollectArgs(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    results: list | None = None
    failures: list | None = None
    runs_key: str | None = None


@task(args_model=CollectArgs, **FAST)
def collect(results=None, failures=None, runs_key=None):
    """A chord callback that counts its runs (exactly-once shows here)."""
    if runs_key:
        get_redis().incr(runs_key)
    return {"results": results, "failures": failures}


@task(max_retries=0, **FAST)
def noop():
    return None


@task(**FAST)
def passthrough(previous=None):
    """A chain step without an argument model: returns what it was passed."""
    return {"got": previous}

"""The declared tasks: each one's function, argument model and policy, read by the whole engine.

Queue, default priority, retries, time limits and rate limit are written once,
next to the function (the :func:`pipeline.task.task` decorator), in
:class:`TaskPolicy`. Everything else (the broker, the middleware, the API, the
scheduler, the docs) reads them from :data:`REGISTRY`.

Declaring does not touch a broker: :func:`pipeline.broker.make_broker` binds
every registered task to the broker it builds, applying the per-actor overrides
from settings. That keeps imports side-effect free and lets tests build a
broker per test.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Optional

import pydantic

from pipeline.errors import InvalidArguments, UnknownActor
from pipeline.sensitive import sensitive_fields

QUEUES = ("ai_high_priority", "knowledge_default", "notification_default", "default")
MAX_PRIORITY = 9
#: The longest delay (delay, eta, retry backoff) a message may be given. Long
#: waits travel in hops of at most CLAW_MAX_HOLD_SECONDS (:mod:`pipeline.holds`),
#: so this bound is about what a queue is for, not RabbitMQ's consumer_timeout:
#: runs further ahead belong to the scheduler.
MAX_DELAY_MS = 86_400_000
#: The default cap of a retry's backoff.
DEFAULT_MAX_BACKOFF_MS = 1_200_000

_QUEUE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,60}$")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour)s?\s*$")
_UNIT_MS = {"s": 1000, "sec": 1000, "second": 1000, "m": 60_000, "min": 60_000, "minute": 60_000, "h": 3_600_000, "hour": 3_600_000}


def parse_rate_limit(text: str) -> tuple[int, int]:
    """``"10/m"`` -> (10, 60000): at most *limit* starts per *window* milliseconds."""
    match = _RATE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"rate limit {text!r} is not like '10/m', '5/30s' or '100/h'")
    count = int(match.group(2) or 1)
    return int(match.group(1)), count * _UNIT_MS[match.group(3)]


@dataclasses.dataclass(frozen=True)
class FromSetting:
    """A policy value an operator sets: read from the engine's settings when the actor is bound.

    ``rate_limit=FromSetting("ai_global_rate_limit")`` takes the value of
    ``CLAW_AI_GLOBAL_RATE_LIMIT``; CLAW_ACTOR_OVERRIDES still wins over it.
    """

    name: str

    def __str__(self) -> str:
        return f"CLAW_{self.name.upper()}"


@dataclasses.dataclass(frozen=True)
class OwnerOr:
    """A rate-limit key: the submission's owner (its ``user_id``), else the keyword argument *argument*.

    ``rate_limit_key=OwnerOr("conversation_id")``: a user's tasks share the
    user's limit, whichever conversation they answer; a task submitted for
    nobody in particular is limited per conversation.
    """

    argument: str

    def __str__(self) -> str:
        return f"the owner, else {self.argument}"


@dataclasses.dataclass(frozen=True)
class TaskPolicy:
    """How the engine treats one actor. Times are in seconds unless named ``_ms``."""

    queue: str = "default"
    priority: int = 0
    max_retries: int = 3
    retry_backoff_ms: int = 60_000
    retry_backoff_max_ms: int = DEFAULT_MAX_BACKOFF_MS
    soft_time_limit: float = 300.0
    time_limit: float = 600.0
    #: At most that many starts per window across all workers and keys ("10/m", "5/30s", "100/h").
    rate_limit: Optional[str | FromSetting] = None
    #: At most that many starts per window for each key (a user, a conversation), under rate_limit.
    rate_limit_per_key: Optional[str] = None
    #: Where a task's key comes from: the name of one of its keyword arguments,
    #: or :class:`OwnerOr` (:func:`pipeline.middleware.rate_limits.rate_key` reads it).
    #: Tasks of different keys share rate_limit fairly, taking turns.
    rate_limit_key: Optional[str | OwnerOr] = None
    #: Whether browsers' user tokens may submit this task (for their own user), and how
    #: often each user may: at most that many submissions per window ("20/m"; None: never).
    user_quota: Optional[str | FromSetting] = None
    #: What the health check does with a task STARTED for longer than its hard
    #: limit whose worker is gone: "requeue" it or mark it "fail"ed.
    lost_policy: str = "requeue"

    def __post_init__(self) -> None:
        if not _QUEUE_NAME.match(self.queue):
            raise ValueError(f"queue {self.queue!r} must be lower-case letters, digits and underscores")
        if not 0 <= self.priority <= MAX_PRIORITY:
            raise ValueError(f"priority must be 0..{MAX_PRIORITY}")
        if self.max_retries < 0 or self.retry_backoff_ms < 1:
            raise ValueError("max_retries must be >= 0 and retry_backoff_ms >= 1")
        if not self.retry_backoff_ms <= self.retry_backoff_max_ms <= MAX_DELAY_MS:
            raise ValueError(f"need retry_backoff_ms <= retry_backoff_max_ms <= {MAX_DELAY_MS}")
        if not 0 < self.soft_time_limit <= self.time_limit:
            raise ValueError("need 0 < soft_time_limit <= time_limit")
        for limit in (self.rate_limit, self.rate_limit_per_key, self.user_quota):
            if isinstance(limit, str):
                parse_rate_limit(limit)
        if self.rate_limit_per_key and not self.rate_limit_key:
            raise ValueError("rate_limit_per_key needs rate_limit_key (the argument the key comes from)")
        if self.rate_limit_key and not (self.rate_limit or self.rate_limit_per_key):
            raise ValueError("rate_limit_key needs rate_limit or rate_limit_per_key")
        if self.lost_policy not in ("requeue", "fail"):
            raise ValueError("lost_policy must be 'requeue' or 'fail'")

    @property
    def rate(self) -> Optional[tuple[int, int]]:
        """The global limit as (starts, window ms)."""
        return parse_rate_limit(self.rate_limit) if isinstance(self.rate_limit, str) else None

    @property
    def key_rate(self) -> Optional[tuple[int, int]]:
        """The per-key limit as (starts, window ms)."""
        return parse_rate_limit(self.rate_limit_per_key) if self.rate_limit_per_key else None

    @property
    def user_rate(self) -> Optional[tuple[int, int]]:
        """The per-user submission quota of user tokens as (submissions, window ms); None: user tokens may not submit."""
        return parse_rate_limit(self.user_quota) if isinstance(self.user_quota, str) else None

    def with_settings(self, settings: Any) -> "TaskPolicy":
        """This policy with each :class:`FromSetting` value replaced by the setting's value."""
        values = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, FromSetting):
                if not hasattr(settings, value.name):
                    raise ValueError(f"{field.name}: no setting named {value.name!r}")
                values[field.name] = getattr(settings, value.name)
        return dataclasses.replace(self, **values) if values else self

    def with_overrides(self, overrides: dict[str, Any]) -> "TaskPolicy":
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)} - {"queue"}
        if unknown:
            raise ValueError(f"unknown policy fields {sorted(unknown)}")
        if "queue" in overrides:
            raise ValueError("an actor's queue cannot be overridden")
        return dataclasses.replace(self, **overrides)


@dataclasses.dataclass
class TaskSpec:
    """A declared task: its function, policy and argument model.

    ``actor`` is the Dramatiq actor bound by the last :func:`make_broker` call.
    Declared with :func:`pipeline.task.task`, which adds ``send``.
    """

    name: str
    fn: Callable[..., Any]
    policy: TaskPolicy
    args_model: Optional[type[pydantic.BaseModel]] = None
    description: str = ""
    actor: Any = None
    #: A scope that lets a service token submit this task besides ``tasks:submit:<name>``
    #: (e.g. ``notifications:send``); see :mod:`api.scopes`.
    submit_scope: Optional[str] = None
    #: Keys of the result and of the progress that hold a user's data (masked like
    #: the argument fields declared with :func:`pipeline.sensitive.Sensitive`).
    sensitive_output: tuple[str, ...] = ()

    @property
    def sensitive_arguments(self) -> frozenset[str]:
        """The argument fields its model declares sensitive."""
        return sensitive_fields(self.args_model)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def validate_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Check kwargs against the argument model; return them normalised (JSON-ready)."""
        if self.args_model is None:
            return kwargs
        try:
            return self.args_model.model_validate(kwargs).model_dump(mode="json", exclude_none=True)
        except pydantic.ValidationError as exc:
            fields = {".".join(str(p) for p in e["loc"]) or "kwargs": e["msg"] for e in exc.errors()}
            raise InvalidArguments(f"invalid arguments for {self.name}", fields) from None


REGISTRY: dict[str, TaskSpec] = {}


def get_task(name: str) -> TaskSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownActor(f"unknown actor {name!r}") from None


def queue_names(prefix: str = "") -> list[str]:
    """Every queue the engine uses, as named in RabbitMQ (with the deployment's prefix)."""
    return sorted({prefix + q for q in QUEUES} | {prefix + spec.policy.queue for spec in REGISTRY.values()})


def policy_of(broker: Any, actor_name: str) -> TaskPolicy:
    """The effective policy (declaration + settings overrides) of a bound actor."""
    return broker.get_actor(actor_name).options["claw_policy"]

"""make_broker(): the one place a broker is built, for every process.

API, worker, scheduler and CLI all call it, so queue arguments
(``x-max-priority``, the dead-letter queue's TTL), the wire encoder and the
middleware order can never disagree between processes (RabbitMQ refuses a
queue re-declared with other arguments).
"""

from __future__ import annotations

import importlib
import logging
from typing import Callable, Iterable

import dramatiq
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.encoder import JSONEncoder
from dramatiq.middleware import Middleware, MiddlewareError
from dramatiq.results.backends import RedisBackend

from pipeline.amqp import broker_url_for_process
from pipeline.encoder import CompressedJSONEncoder
from pipeline.errors import ConfigError
from pipeline.holds import DUE, hop
from pipeline.middleware.cancellation import Cancellation
from pipeline.middleware.connections import FreshPublisher
from pipeline.middleware.rate_limits import RateLimits
from pipeline.middleware.results import StateStoreResults
from pipeline.middleware.retries import RetryPolicy
from pipeline.middleware.state import QuietWorkerLog, TaskState
from pipeline.middleware.time_limits import TimeLimits
from pipeline.middleware.workflows import WorkflowFollowUps
from pipeline.observability import tracing
from pipeline.observability.message import LogContext
from pipeline.redis_client import make_redis
from pipeline.settings import Settings
from pipeline.state import Keys, StateStore
from pipeline.registry import MAX_PRIORITY, QUEUES, REGISTRY, OwnerOr, TaskPolicy


class ClawBroker(RabbitmqBroker):
    """Dramatiq's RabbitmqBroker, sending long waits in hops, and calling each hook only on the
    middleware that define it.

    Dramatiq calls every hook on every middleware, and most of them are the
    base class's no-ops: with a dozen middleware and four hooks per message
    (process before/after, ack before/after), the empty calls cost a worker
    CPU on every message. What is called, in which order and with which
    error handling is Dramatiq's.
    """

    def __init__(self, *args, max_hold_ms: int = 300_000, still_waiting: Callable[[str], bool] = lambda _: True,
                 **kwargs):
        self._hooks: dict[str, tuple] = {}
        #: The longest a worker may hold a delayed message (see :mod:`pipeline.holds`).
        self.max_hold_ms = max_hold_ms
        #: Whether the task of a message between two hops still needs it (by task id).
        self.still_waiting = still_waiting
        super().__init__(*args, **kwargs)

    def enqueue(self, message, *, delay=None):
        """Publish *message*; a wait longer than ``max_hold_ms`` goes in hops (:func:`pipeline.holds.hop`).

        Dramatiq's delay consumer enqueues each message whose eta has come
        through here, so a message with wait left goes back to the delay queue,
        unless its task was cancelled or finished meanwhile: then the message
        ends here (the consumer acks it), instead of hopping until its due time.
        """
        if delay is None and DUE in message.options and not self._still_waiting(message):
            self.logger.info("Dropping waiting message %s: its task was cancelled or has finished.", message.message_id)
            return message
        message, delay = hop(message, delay, self.max_hold_ms)
        return super().enqueue(message, delay=delay)

    def _still_waiting(self, message) -> bool:
        try:
            return self.still_waiting(message.message_id)
        except redis.RedisError:
            return True  # keep it: the worker that takes it checks again

    def add_middleware(self, middleware: Middleware, **kwargs) -> None:
        super().add_middleware(middleware, **kwargs)
        self._hooks = {}

    def _defining(self, hook: str) -> tuple:
        found = self._hooks.get(hook)
        if found is None:
            noop = getattr(Middleware, hook, None)
            found = tuple(m for m in self.middleware if noop is None or getattr(type(m), hook, None) is not noop)
            self._hooks[hook] = found
        return found

    def emit_before(self, signal: str, *args, **kwargs) -> None:
        hook = "before_" + signal
        for middleware in self._defining(hook):
            try:
                getattr(middleware, hook)(self, *args, **kwargs)
            except MiddlewareError:
                raise
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", hook, middleware, exc_info=True)

    def emit_after(self, signal: str, *args, **kwargs) -> None:
        hook = "after_" + signal
        for middleware in reversed(self._defining(hook)):
            try:
                getattr(middleware, hook)(self, *args, **kwargs)
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", hook, middleware, exc_info=True)


def make_results_backend(settings: Settings) -> RedisBackend:
    # Results are plain JSON text (not the gzip wire format) so that any
    # Redis client can read them; the backend gets its own binary client,
    # without a read timeout (a blocking get_result waits as long as asked).
    client = make_redis(settings.redis_url, decode_responses=False, socket_timeout=None, health_check_interval=0)
    keys = Keys(settings.namespace, settings.shards)
    backend = RedisBackend if keys.shards == 1 else ShardedResults
    backend = backend(client=client, namespace=keys.results_namespace, encoder=JSONEncoder())
    backend.keys = keys
    return backend


class ShardedResults(RedisBackend):
    """Results kept in their task's shard: FINISH writes a task's result in the step that finishes it,
    so on a Redis Cluster the result's key must share the record's slot (one shard: Dramatiq's own names)."""

    keys: Keys

    def build_message_key(self, message) -> str:
        return f"{self.keys.of(message.message_id).prefix}:r:{super().build_message_key(message)}"


def engine_middleware(
    settings: Settings,
    store: StateStore,
    results_backend: RedisBackend,
    process_middleware: Iterable[Middleware],
    time_limits: TimeLimits,
    follow_ups: WorkflowFollowUps,
) -> list[Middleware]:
    """The engine's middleware in the one order that works, and why.

    Dramatiq runs before-hooks in this order and after-hooks in reverse.

    0. LogContext: every log line about the message, from the first hook to
       the last, carries its task id, actor and request id.
    1. The process's own (heartbeat, metrics, recycling): they see every
       message first and hear of its end last, whatever the others decide.
    2. FreshPublisher: it replaces an idle publishing connection before any
       other hook enqueues (a retry, a rate-limited message).
    3. WorkflowFollowUps before TaskState: its after-skip hook runs after
       TaskState's drop, so a redelivered workflow member is known final when
       it publishes what that member left due. (It replaces Dramatiq's
       Callbacks and Pipelines, whose follow-up publish had no durable hand-over.)
    4. StateStoreResults: makes ``get_result`` work; TaskState writes the values.
    5. RateLimits before TaskState: a message over its rate is put back before
       it is STARTED, so its attempts and retries stay untouched.
    6. TaskState opens the message's :class:`~pipeline.delivery.Delivery`;
       everything after it acts only on a delivery that runs.
    7. TaskTracing (only when tracing is on) right after TaskState: it spans
       only deliveries that run, and its after-hook runs after RetryPolicy's,
       so the span's outcome is the one TaskState records.
    8. RetryPolicy after TaskState: its after-hook runs first and leaves on the
       Delivery what TaskState then records (RETRY, FAILURE or CANCELLED).
    9. TimeLimits and Cancellation last: their after-hooks run first, so a task
       that has returned is never interrupted any more.
    """
    return [
        LogContext(),
        *process_middleware,
        FreshPublisher(settings.broker_url),
        follow_ups,
        StateStoreResults(backend=results_backend),
        RateLimits(store),
        TaskState(store, results_backend),
        *tracing.worker_middleware(),
        RetryPolicy(),
        time_limits,
        Cancellation(store.redis, store.keys.cancel_channel),
    ]


def make_broker(
    settings: Settings,
    store: StateStore,
    *,
    extra_middleware: Iterable[Middleware] = (),
    time_limits: TimeLimits | None = None,
) -> ClawBroker:
    """Build the broker, install the encoder and bind every declared task to it."""
    encoder = CompressedJSONEncoder(settings.compression_threshold_bytes, on_decode_error=store.record_undecodable,
                                    max_bytes=settings.max_message_bytes)
    dramatiq.set_encoder(encoder)
    results_backend = make_results_backend(settings)
    follow_ups = WorkflowFollowUps(store, settings.workflow_overdue_seconds)
    middleware = engine_middleware(settings, store, results_backend, extra_middleware, time_limits or TimeLimits(),
                                   follow_ups)
    broker = ClawBroker(
        url=broker_url_for_process(settings.broker_url), max_priority=MAX_PRIORITY, confirm_delivery=True,
        middleware=middleware, max_hold_ms=int(settings.max_hold_seconds * 1000), still_waiting=store.still_waiting,
    )
    follow_ups.bind(broker)
    for queue in QUEUES:
        broker.declare_queue(settings.queue_prefix + queue)
    bind_tasks(broker, settings)
    dramatiq.set_broker(broker)
    for name in ("dramatiq.worker.WorkerThread", "dramatiq.worker.ConsumerThread"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietWorkerLog) for f in logger.filters):
            logger.addFilter(QuietWorkerLog())
    return broker


#: The modules declaring the built-in tasks, loaded like those named in CLAW_TASK_MODULES:
#: by name, since the tasks build on the engine this module is part of.
BUILTIN_TASK_MODULES = ("pipeline.actors",)


def import_task_modules(settings: Settings) -> None:
    """Import the modules that declare tasks: ours, and any named in settings."""
    for name in BUILTIN_TASK_MODULES:
        importlib.import_module(name)
    for name in settings.task_modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"CLAW_TASK_MODULES: cannot import {name!r} ({exc})") from None


def resolve_policies(settings: Settings) -> dict[str, TaskPolicy]:
    """Every declared task's policy with settings' overrides applied (ConfigError if they are wrong)."""
    import_task_modules(settings)
    unknown = set(settings.actor_overrides) - set(REGISTRY)
    if unknown:
        raise ConfigError(f"CLAW_ACTOR_OVERRIDES: unknown actor(s) {', '.join(sorted(unknown))}")
    policies = {}
    for spec in REGISTRY.values():
        try:
            policy = spec.policy.with_settings(settings).with_overrides(settings.actor_overrides.get(spec.name, {}))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"CLAW_ACTOR_OVERRIDES: {spec.name}: {exc}") from None
        fields = spec.args_model.model_fields if spec.args_model is not None else None
        argument = policy.rate_limit_key.argument if isinstance(policy.rate_limit_key, OwnerOr) else policy.rate_limit_key
        if argument and fields is not None and argument not in fields:
            raise ConfigError(f"{spec.name}: rate_limit_key {argument!r} is not one of its arguments")
        policies[spec.name] = policy
    return policies


def bind_tasks(broker: RabbitmqBroker, settings: Settings) -> None:
    """Create a Dramatiq actor for every declared task, with settings' overrides applied."""
    for name, policy in resolve_policies(settings).items():
        spec = REGISTRY[name]
        spec.actor = dramatiq.Actor(
            _validating(spec),
            broker=broker,
            actor_name=spec.name,
            queue_name=settings.queue_prefix + policy.queue,
            priority=0,
            options={"claw_policy": policy},
        )


def _validating(spec):
    """The task function, with its keyword arguments validated again at run time."""

    def run(*args, **kwargs):
        return spec.fn(*args, **spec.validate_kwargs(kwargs))

    run.__name__ = spec.fn.__name__
    run.__module__ = spec.fn.__module__
    return run

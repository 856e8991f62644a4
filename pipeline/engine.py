"""The engine of one process: settings, state store, worker registry and broker.

Built once per process by :func:`get_engine` (or explicitly by
:func:`make_engine`, which tests and the worker use with their own options).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterable, Optional

from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import Middleware
from dramatiq.results import Results

from pipeline.broker import make_broker
from pipeline.middleware.time_limits import TimeLimits
from pipeline.redis_client import redis_for
from pipeline.settings import Settings, get_settings
from pipeline.state import StateStore, WorkerRegistry
from pipeline.state.keys import shared_namespace
from pipeline.state.replicas import ReplicaWait


@dataclass
class Engine:
    settings: Settings
    store: StateStore
    workers: WorkerRegistry
    broker: RabbitmqBroker

    def close(self) -> None:
        self.broker.close()

    @property
    def results_backend(self):
        for middleware in self.broker.middleware:
            if isinstance(middleware, Results):
                return middleware.backend
        raise RuntimeError("the broker has no Results middleware")

    def result_key(self, record: dict) -> str:
        """The Dramatiq Results key of a task, from its record (``task_id``, ``actor``, ``queue``)."""
        message = Message(record["queue"], record["actor"], (), {}, {}, message_id=record["task_id"])
        return self.results_backend.build_message_key(message)


def make_store(settings: Settings) -> StateStore:
    client = redis_for(settings.redis_url)
    # Heartbeats trim expired index entries, so a few heartbeats of grace suffice.
    grace = max(5.0, 3 * settings.heartbeat_interval_seconds)
    durable = ReplicaWait(settings.wait_replicas, settings.redis_wait_timeout_ms)
    return StateStore(
        client, settings.namespace, settings.result_ttl_seconds, settings.idempotency_ttl_seconds, grace, durable,
        settings.audit_max_entries, settings.shards,
    )


def make_registry(settings: Settings) -> WorkerRegistry:
    return WorkerRegistry(redis_for(settings.redis_url), shared_namespace(settings), settings.worker_ttl_seconds)


def make_engine(
    settings: Optional[Settings] = None,
    *,
    store: Optional[StateStore] = None,
    workers: Optional[WorkerRegistry] = None,
    extra_middleware: Iterable[Middleware] = (),
    time_limits: Optional[TimeLimits] = None,
) -> Engine:
    settings = settings or get_settings()
    store = store or make_store(settings)
    workers = workers or make_registry(settings)
    broker = make_broker(settings, store, extra_middleware=extra_middleware, time_limits=time_limits)
    return Engine(settings, store, workers, broker)


_engine: Optional[Engine] = None
_lock = threading.Lock()


def get_engine() -> Engine:
    """The process-wide engine, built on first use."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = make_engine()
        return _engine


def set_engine(engine: Optional[Engine]) -> None:
    global _engine
    with _lock:
        _engine = engine

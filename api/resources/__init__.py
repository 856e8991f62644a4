"""Falcon resources, one module per area.

Resources get the engine through an :data:`EngineProvider` rather than the
engine itself: the app is built at import, before any service needs
to answer, and the engine (and its connections) comes on first use.
"""

from __future__ import annotations

from typing import Callable, Optional

from pipeline.engine import Engine
from pipeline.settings import get_settings
from pipeline.task import REGISTRY, queue_names

EngineProvider = Callable[[], Engine]


class EngineResource:
    """A resource that needs nothing but the engine: ``self.engine()``."""

    def __init__(self, engine: EngineProvider):
        self.engine = engine

API_PREFIX = "/api/v1/tasks"


def status_url(task_id: str) -> str:
    return f"{API_PREFIX}/status/{task_id}"


def known_actors() -> list[str]:
    return sorted(REGISTRY)


def known_queues(engine: Optional[Engine] = None) -> list[str]:
    """Every queue of this deployment as named in RabbitMQ (and in task records).

    The prefix is the engine's (``CLAW_QUEUE_PREFIX``); without an engine, the process settings'.
    """
    settings = engine.settings if engine is not None else get_settings()
    return queue_names(settings.queue_prefix)


def queue_of(engine: Engine, actor: str) -> str:
    return engine.settings.queue_prefix + REGISTRY[actor].policy.queue

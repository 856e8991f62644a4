"""Fixtures for the high-availability tests: clustered services of the tests' own, and engines and workers on them.

Imported by tests/ha/conftest.py and tests/reliability/conftest.py.
"""

from __future__ import annotations

import pytest

from tests.conftest import purge_test_queues, wait_until
from tests.ha.servers import SentinelGroup


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory):
    """Master + 1 replica + 3 Sentinels shared by a module's tests (which leave it as they found it)."""
    group = SentinelGroup(tmp_path_factory.mktemp("sentinel")).start()
    yield group
    group.stop()


@pytest.fixture
def own_sentinels(tmp_path):
    """A Sentinel group for one test (one that fails it over)."""
    group = SentinelGroup(tmp_path).start()
    yield group
    group.stop()


@pytest.fixture
def engine_on(settings):
    """Build engines on another Redis URL (and other settings); all closed at the end of the test."""
    from pipeline.engine import make_engine, set_engine

    purge_test_queues()
    built = []

    def make(redis_url: str, **updates):
        engine = make_engine(settings.model_copy(update={"redis_url": redis_url, **updates}))
        set_engine(engine)
        built.append(engine)
        return engine

    yield make
    set_engine(None)
    for engine in built:
        engine.close()
    purge_test_queues(delete=True)


def start_workers_on(start_worker, engine, *args: str, processes: int = 1):
    """Start a worker supervisor (conftest's ``start_worker``) on *engine*'s Redis and RabbitMQ."""
    extra = {"CLAW_REDIS_URL": engine.settings.redis_url, "CLAW_BROKER_URL": engine.settings.broker_url}
    worker = start_worker("--processes", str(processes), *args, extra_env=extra, wait=False)
    wait_until(lambda: len(engine.workers.list()) >= processes or worker.proc.poll() is not None, 60,
               message=f"{processes} worker heartbeat(s)")
    assert worker.proc.poll() is None, worker.output()
    return worker

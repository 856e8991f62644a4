"""Fixtures for the high-availability tests: clustered services of the tests' own, and engines and workers on them.

Imported by tests/ha/conftest.py and tests/reliability/conftest.py.
"""

from __future__ import annotations

import contextlib

import pytest

from tests import sample_tasks
from tests.conftest import REDIS_URL, purge_test_queues, wait_until
from tests.ha.servers import RabbitCluster, RedisClusterGroup, SentinelGroup


@contextlib.contextmanager
def running(service):
    """*service* (a SentinelGroup, RedisClusterGroup or RabbitCluster) started, and stopped afterwards, also when it failed to start."""
    try:
        yield service.start()
    finally:
        service.stop()


def service_fixture(kind, scope: str, doc: str):
    """A fixture yielding a running *kind* (SentinelGroup or RabbitCluster) with its data in a temporary directory."""

    @pytest.fixture(scope=scope)
    def fixture(tmp_path_factory):
        with running(kind(tmp_path_factory.mktemp(kind.__name__.lower()))) as service:
            yield service

    fixture.__doc__ = doc
    return fixture


sentinels = service_fixture(SentinelGroup, "module", "Master + 1 replica + 3 Sentinels shared by a module's tests "
                                                     "(which leave it as they found it).")
own_sentinels = service_fixture(SentinelGroup, "function", "A Sentinel group for one test (one that fails it over).")
rabbit_cluster = service_fixture(RabbitCluster, "module", "Three RabbitMQ nodes in one cluster with the HA policies, "
                                                          "shared by a module's tests (about 35 s to start).")
redis_cluster = service_fixture(RedisClusterGroup, "module", "A 3-master Redis Cluster shared by a module's tests "
                                                            "(about 2 s to start).")
own_redis_cluster = service_fixture(RedisClusterGroup, "function", "A Redis Cluster for one test (one that moves slots).")
own_rabbit_cluster = service_fixture(RabbitCluster, "function", "A RabbitMQ cluster for one test (one that stops a node).")


@pytest.fixture
def engine_on(settings):
    """Build engines on another Redis URL (and other settings); all closed at the end of the test."""
    from pipeline.engine import make_engine, set_engine

    purge_test_queues()
    built = []

    def make(redis_url: str = REDIS_URL, **updates):
        engine = make_engine(settings.model_copy(update={"redis_url": redis_url, **updates}))
        set_engine(engine)
        built.append(engine)
        return engine

    yield make
    set_engine(None)
    for engine in built:
        engine.close()
    purge_test_queues(delete=True)


def start_workers_on(start_worker, engine, *args: str, processes: int = 1, queues=(sample_tasks.QUEUE,)):
    """Start a worker supervisor (conftest's ``start_worker``) on *engine*'s Redis and RabbitMQ."""
    extra = {"CLAW_REDIS_URL": engine.settings.redis_url, "CLAW_BROKER_URL": engine.settings.broker_url}
    before = len(engine.workers.list())
    worker = start_worker("--processes", str(processes), *args, queues=queues, extra_env=extra, wait=False)
    wait_until(lambda: len(engine.workers.list()) >= before + processes or worker.proc.poll() is not None, 60,
               message=f"{processes} worker heartbeat(s)")
    assert worker.proc.poll() is None, worker.output()
    return worker

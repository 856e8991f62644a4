"""Fixtures of the high-availability tests (defined in tests/ha/fixtures.py)."""

from tests.ha.fixtures import (  # noqa: F401
    engine_on, own_rabbit_cluster, own_redis_cluster, own_sentinels, rabbit_cluster, redis_cluster, sentinels,
)

"""Fixtures of the high-availability tests (defined in tests/ha/fixtures.py)."""

from tests.ha.fixtures import engine_on, own_rabbit_cluster, own_sentinels, rabbit_cluster, sentinels  # noqa: F401

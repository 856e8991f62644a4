"""Fixtures of the high-availability tests (defined in tests/ha/fixtures.py)."""

from tests.ha.fixtures import engine_on, own_sentinels, sentinels  # noqa: F401

"""Fixtures for the reliability suite: its scale and its report rows.

``make test`` runs the short scale; ``make test-reliability`` runs the full
one (CLAW_RELIABILITY=full) and writes docs/reliability.md from the rows
each test records in test-artifacts/reliability/.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.api.conftest import api, api_settings, make_api, server  # noqa: F401  (the API fixtures, shared)
from tests.conftest import ROOT
from tests.ha.fixtures import (  # noqa: F401  (clustered services)
    engine_on, own_rabbit_cluster, own_redis_cluster, own_sentinels,
)

ARTIFACTS = ROOT / "test-artifacts" / "reliability"
FULL = os.environ.get("CLAW_RELIABILITY") == "full"


def scale(short: int, full: int) -> int:
    return full if FULL else short


@pytest.fixture
def report(request):
    """Record one row of the report: report(fault=..., accepted=..., completed=..., ...)."""

    def write(**row):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        row = {"test": request.node.name, "scale": "full" if FULL else "short", "at": time.strftime("%Y-%m-%d %H:%M"), **row}
        (ARTIFACTS / f"{request.node.name}.json").write_text(json.dumps(row, indent=2))

    return write


def final_counts(engine, ids: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in engine.store.get_many(ids):
        state = record["state"] if record else "MISSING"
        counts[state] = counts.get(state, 0) + 1
    return counts


def wait_all_final(engine, ids: list[str], timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = final_counts(engine, ids)
        if sum(counts.get(s, 0) for s in ("SUCCESS", "FAILURE", "CANCELLED")) == len(ids):
            return counts
        time.sleep(0.25)
    return final_counts(engine, ids)

"""``make bench`` cannot rot: a tiny run of every part, in the suite.

Benchmarks are not tests: nothing here asserts a timing. What is proved is
that one run measures all five parts, reports every section and every ratio
of issue 8 with a number, hits the API's endpoints successfully, and leaves
no Redis key or queue behind.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import urllib.request
import uuid

import redis

from bench.api import FLOOR
from tests.conftest import BROKER_URL, REDIS_URL, ROOT

SECTIONS = ("## Throughput", "## CPU per message", "## Bulk enqueue", "## API under wrk", "## Vectorize", "## Ratios and targets")
ENDPOINTS = ("status lookup", "list (limit 50)", "stats", "submit")
RATIOS = (
    "process claw/raw-Dramatiq", "process claw/Celery", "enqueue claw/raw-Dramatiq", "enqueue claw/Celery",
    "bulk Python API/raw pika", "bulk HTTP/raw pika",
    *(f"cost 400/200 {endpoint} (req/s at 200 / req/s at 400)" for endpoint in ENDPOINTS),
    "status lookup req/s at 200 records", "status lookup req/s at 400 records",
    *(f"status lookup at {n} records / floor (same gunicorn, fixed JSON)" for n in (200, 400)),
    "vectorize/raw embedder",
)


def rabbit_queues() -> list[str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request("http://127.0.0.1:15672/api/queues/%2F?columns=name")
    request.add_header("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")  # guest:guest
    with opener.open(request, timeout=10) as response:
        return [queue["name"] for queue in json.load(response)]


def assert_nothing_left(run: str) -> None:
    """No Redis key and no queue of bench run *run* is left."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert list(client.scan_iter(f"bench-{run}-*", count=10_000)) == []
    finally:
        client.close()
    assert [q for q in rabbit_queues() if q.startswith(f"bench{run}_")] == []


def numbers(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from numbers(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def test_tiny_bench_run_reports_every_section_and_ratio_and_leaves_nothing_behind(tmp_path):
    run = f"t{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "BENCH_RUN": run, "CLAW_REDIS_URL": REDIS_URL, "CLAW_BROKER_URL": BROKER_URL}
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--n", "40", "--reps", "1", "--latency", "5", "--api-records", "200,400",
         "--api-duration", "1s", "--vectorize-copies", "1", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    report = (tmp_path / "latest.md").read_text()
    for section in SECTIONS:
        assert section in report, section
    ratio_rows = {line.split(" | ")[0].lstrip("| ") for line in report.split("## Ratios and targets")[1].splitlines()
                  if line.startswith("| ")}
    assert set(RATIOS) <= ratio_rows, set(RATIOS) - ratio_rows
    for system in ("claw-pipeline", "raw Dramatiq", "Celery"):
        assert f"| {system} |" in report

    (result_file,) = tmp_path.glob("*.json")
    results = json.loads(result_file.read_text())
    assert set(results["systems"]) == {"claw-pipeline", "raw Dramatiq", "Celery"}
    assert len(results["bulk"]) == 3
    assert {name: set(by_count) for name, by_count in results["api"].items()} == {
        **{e: {"200", "400"} for e in ENDPOINTS}, FLOOR: {"0"}}
    for by_count in results["api"].values():
        for row in by_count.values():
            assert row["non_2xx"] == 0, row  # every endpoint answered: the bench hits real routes
            assert row["requests"] > 0
    # CPU per message may round to 0 (raw Dramatiq never touches Redis); every other figure is a rate or a time.
    cpu = [{k: v for k, v in x.items() if "_cpu_" in k} for x in results["systems"].values()]
    assert all(math.isfinite(v) and v >= 0 for v in numbers(cpu)) and any(v > 0 for v in numbers(cpu))
    systems = [{k: v for k, v in x.items() if "_cpu_" not in k} for x in results["systems"].values()]
    measured = [systems] + [results[part] for part in ("bulk", "vectorize")]
    measured += [{k: v for k, v in row.items() if k in ("rps", "p99_ms")}
                 for by_count in results["api"].values() for row in by_count.values()]
    measured += [row["value"] for row in results["ratios"]]
    values = list(numbers(measured))
    assert values and all(math.isfinite(v) and v > 0 for v in values)
    assert {row["name"] for row in results["ratios"]} == set(RATIOS)

    assert_nothing_left(run)


def test_tiny_streams_bench_reports_every_figure_met_where_it_is_deterministic_and_leaves_nothing_behind(tmp_path):
    """20 streams, 10 stalled clients, one streamed AI reply: every row present, every stream in order."""
    run = f"t{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "BENCH_RUN": run, "CLAW_REDIS_URL": REDIS_URL, "CLAW_BROKER_URL": BROKER_URL}
    done = subprocess.run(
        [sys.executable, "-m", "bench.streams", "--streams", "20", "--stalled", "10", "--duration", "1s", "--reps", "1",
         "--ai-replies", "1", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = (tmp_path / "streams.md").read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in report.splitlines() if line.startswith("| ")}
    assert rows["streams opened / answered 200"].startswith("| streams opened / answered 200 | 20 / 20")
    assert rows["streams with PENDING, STARTED (id 1), SUCCESS (id 2), final record, in order"].endswith("| 20 | all | met |")
    assert rows["stalled connections answered 408 and closed by the header time-out"].endswith("| 10 / 10 | all | met |")
    assert any(name.startswith("streamed AI reply") for name in rows) and "nan" not in report
    assert_nothing_left(run)


def test_tiny_observability_bench_reports_every_side_and_leaves_nothing_behind(tmp_path):
    """Tracing off and on (spans to the bench's own OTLP sink): both rows with numbers, nothing left."""
    run = f"t{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "BENCH_RUN": run, "CLAW_REDIS_URL": REDIS_URL, "CLAW_BROKER_URL": BROKER_URL}
    out = tmp_path / "observability.md"
    done = subprocess.run([sys.executable, "-m", "bench.observability", "--tasks", "40", "--reps", "1", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in out.read_text().splitlines() if line.startswith("| ")}
    assert set(rows) >= {"off", "on"} and rows["off"].count("| 1.00 |") == 2
    assert "export requests" in out.read_text() and "(0 export requests)" not in out.read_text()


def test_tiny_ownership_bench_measures_both_tokens_on_every_endpoint_without_errors_and_leaves_nothing_behind(tmp_path):
    """200 records, 20 of one user, one 1-second rep per endpoint and token: every row has both, no errors."""
    run = f"t{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "BENCH_RUN": run, "CLAW_REDIS_URL": REDIS_URL, "CLAW_BROKER_URL": BROKER_URL}
    out = tmp_path / "ownership.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench.ownership", "--records", "200", "--user-tasks", "20", "--reps", "1",
         "--duration", "1s", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [line.split(" | ") for line in out.read_text().splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row[0].lstrip("| ") for row in rows] == ["submit", "status lookup", "list (limit 50)", "list of one user (limit 50)"]
    for row in rows:
        figures = [float(n.replace(",", "")) for cell in row[1:4] for n in re.findall(r"\d[\d,]*(?:\.\d+)?", cell)]
        assert len(figures) == 7 and all(value > 0 for value in figures), row
        assert row[-1].strip(" |") == "0/0", row  # every answer a 2xx, with either token
    assert_nothing_left(run)

"""What every part of the benchmark shares: where the services are, this run's names, clean-up.

Every Redis namespace of a run starts with ``bench-<run>-`` and every queue
with ``bench<run>_``, so two runs (or a run and the test suite) never touch
each other's keys or messages, and a run deletes exactly what it made. The
run id comes from ``BENCH_RUN`` (set here when absent, so worker
subprocesses inherit it).
"""

from __future__ import annotations

import http.client
import importlib
import itertools
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pika
import redis
from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
BROKER_URL = os.environ.get("CLAW_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
REDIS_URL = os.environ.get("CLAW_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN = os.environ.setdefault("BENCH_RUN", uuid.uuid4().hex[:6])
#: Progress (``console.log``, timestamped) and the report; wide enough for the tables when not a terminal.
console = Console(log_path=False, width=None if sys.stdout.isatty() else 150)
#: Queue prefix of this run (claw-pipeline's CLAW_QUEUE_PREFIX, and the raw systems' queue names).
QUEUE_PREFIX = f"bench{RUN}_"


def namespace(part: str) -> str:
    """A Redis namespace of this run, e.g. ``bench-1a2b3c-claw``."""
    return f"bench-{RUN}-{part}"


def run_queues() -> list[str]:
    """Every queue this run may have declared, with Dramatiq's delay and dead-letter queues."""
    from pipeline.task import queue_names

    importlib.import_module("bench.tasks")  # declares bench_noop, so its queue is among queue_names
    bases = set(queue_names(QUEUE_PREFIX)) | {QUEUE_PREFIX + name for name in ("raw", "celery", "pika")}
    return [base + suffix for base in sorted(bases) for suffix in ("", ".DQ", ".XQ")]


def purge_queues(*names: str, delete: bool = False) -> None:
    """Empty (or delete) queues and, when deleting, exchanges of the same name (Celery declares one per queue).

    Queues are purged, not deleted, between measurements: Celery's producer
    caches its queue declarations and would publish into a deleted queue's void.
    """
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        for name in names:
            for method in ("queue_delete", "exchange_delete") if delete else ("queue_purge",):
                channel = connection.channel()
                try:
                    getattr(channel, method)(name)
                except pika.exceptions.ChannelClosedByBroker:
                    continue  # not declared (yet)
                channel.close()
    finally:
        connection.close()


def delete_namespace(client: redis.Redis, name: str) -> int:
    deleted = 0
    scan = client.scan_iter(f"{name}:*", count=10_000)
    while batch := list(itertools.islice(scan, 10_000)):
        deleted += client.unlink(*batch)
    return deleted


def clean_run() -> None:
    """Delete every Redis key and queue of this run."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        delete_namespace(client, f"bench-{RUN}-*")
    finally:
        client.close()
    purge_queues(*run_queues(), delete=True)


def stop(*processes: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM all (graceful, in parallel), then SIGKILL whichever still runs after *timeout*."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_http(port: int, path: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until ``127.0.0.1:port`` answers *path* with 2xx; fail early if *process* exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server for port {port} exited with {process.returncode}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", path)
            if connection.getresponse().status < 300:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.2)
    raise RuntimeError(f"127.0.0.1:{port}{path} did not answer within {timeout}s")


def report(lines: list[str], out: Path) -> None:
    """Print a results table and write it to *out*."""
    text = "\n".join(lines) + "\n"
    console.print(text)
    out.write_text(text)


def summary(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}

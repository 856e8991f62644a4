"""What the shared RabbitMQ saw during a test: channels it closed, redeliveries, per-queue counts.

The consumer timeout is lowered with ``rabbitmqctl eval`` on the shared node.
A channel takes the value in force when it opens and keeps it, so a test
lowers it, starts its workers, and puts the default back as soon as their
channels are open (and again when it ends, whatever happens): other sessions'
channels opened meanwhile would otherwise be closed under them. A distinctive
value (e.g. 5001 ms) lets the broker's log lines about timed-out channels be
told apart from anyone else's.
"""

from __future__ import annotations

import contextlib
import glob
import os
import subprocess
import time
from typing import Iterator
from urllib.parse import quote

import pytest
import requests

from tests.conftest import QUEUE_PREFIX

DEFAULT_CONSUMER_TIMEOUT_MS = 1_800_000
MANAGEMENT_URL = os.environ.get("CLAW_TEST_RABBITMQ_MANAGEMENT", "http://127.0.0.1:15672")
AUTH = ("guest", "guest")
#: RabbitMQ's management statistics are refreshed this often.
STATS_INTERVAL_SECONDS = 5.5


def set_consumer_timeout(ms: int) -> None:
    subprocess.run(["rabbitmqctl", "eval", f"application:set_env(rabbit, consumer_timeout, {ms})."],
                   check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def lowered_consumer_timeout(ms: int) -> Iterator[callable]:
    """Channels opened inside the block time out after *ms*; call the yielded function once
    the workers' channels are open to give the node its default back early."""
    try:
        set_consumer_timeout(ms)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot change RabbitMQ's consumer_timeout here: {exc}")
    restored = False

    def restore() -> None:
        nonlocal restored
        if not restored:
            set_consumer_timeout(DEFAULT_CONSUMER_TIMEOUT_MS)
            restored = True

    try:
        yield restore
    finally:
        restore()


def _get(path: str, **params):
    response = requests.get(f"{MANAGEMENT_URL}/api/{path}", auth=AUTH, params=params, timeout=5)
    response.raise_for_status()
    return response.json()


def queue_counts(name: str) -> dict[str, int]:
    """Publishes, deliveries, redeliveries, acks and unacked now of one test queue (named without the prefix)."""
    body = _get(f"queues/%2F/{quote(QUEUE_PREFIX + name, safe='')}")
    stats = body.get("message_stats", {}) if isinstance(body, dict) else {}
    counts = {field: stats.get(field, 0) for field in ("publish", "deliver_get", "redeliver", "ack")}
    counts["unacked"] = body.get("messages_unacknowledged", 0) if isinstance(body, dict) else 0
    return counts


def consumer_channels(names: list[str]) -> set[str]:
    """The channels consuming the given test queues (a channel closed and reopened gets a new name)."""
    wanted = {QUEUE_PREFIX + name for name in names}
    return {_channel(c) for c in _get("consumers") if c["queue"]["name"] in wanted}


def _channel(consumer: dict) -> str:
    return (consumer.get("channel_details") or {}).get("name", "")


def wait_for_consumers(names: list[str], per_queue: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    wanted = {QUEUE_PREFIX + name for name in names}
    while time.monotonic() < deadline:
        counts = {}
        for consumer in _get("consumers"):
            queue = consumer["queue"]["name"]
            if queue in wanted and _channel(consumer):
                counts[queue] = counts.get(queue, 0) + 1
        if len(counts) == len(wanted) and min(counts.values()) >= per_queue:
            return
        time.sleep(0.2)
    raise AssertionError(f"workers did not start consuming {sorted(wanted)}")


class BrokerLog:
    """RabbitMQ's log from now on: lines saying a channel timed out with a given timeout."""

    def __init__(self) -> None:
        self.files = [p for p in glob.glob("/var/log/rabbitmq/*.log") if not p.endswith("_upgrade.log")]
        self.offsets = {path: os.path.getsize(path) for path in self.files if os.access(path, os.R_OK)}

    def timed_out(self, timeout_ms: int) -> list[str]:
        marker = f"Timeout used: {timeout_ms} ms"
        lines = []
        for path, offset in self.offsets.items():
            with open(path, errors="replace") as log:
                log.seek(offset)
                lines += [line.strip() for line in log if marker in line]
        return lines

"""CPU per message, by process: the client, the workers, Redis and RabbitMQ.

Messages per second say who is faster on this machine; CPU per message says
where the time goes, and holds up better when the machine is shared. Read
from /proc (psutil) before and after a phase; Redis and RabbitMQ are found by
process name, so this measures the local services the benchmark uses.
"""

from __future__ import annotations

import os

import psutil

PARTS = ("client", "workers", "Redis", "RabbitMQ")


def _service(name_part: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if name_part in (p.info["name"] or "")]


def _seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:  # a worker process recycled in between: its time is lost, not invented
            continue
    return total


class CpuMeter:
    """``start()`` then ``stop(messages)`` -> microseconds of CPU per message for each part."""

    def __init__(self, worker_pid: int | None = None):
        self.groups = {
            "client": [psutil.Process(os.getpid())],
            "workers": self._worker_tree(worker_pid),
            "Redis": _service("redis-server"),
            "RabbitMQ": _service("beam"),
        }
        self.before: dict[str, float] = {}

    @staticmethod
    def _worker_tree(pid: int | None) -> list[psutil.Process]:
        if pid is None:
            return []
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]

    def start(self) -> "CpuMeter":
        self.before = {part: _seconds(group) for part, group in self.groups.items()}
        return self

    def stop(self, messages: int) -> dict[str, float]:
        return {part: (_seconds(group) - self.before[part]) * 1e6 / messages for part, group in self.groups.items()}

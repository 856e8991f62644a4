"""Worker heartbeats and the control channel.

Each worker process refreshes a short-lived record; a process that dies
simply stops refreshing and its record expires, so the list never needs a
janitor. Commands (pool restart, shutdown) go over Redis pub/sub, which
reaches every worker on every host that shares the Redis server.
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional

import redis

from pipeline.state.keys import Keys

LIST_FIELDS = ("queues", "current_tasks")
INT_FIELDS = ("pid", "concurrency", "processed", "failed", "threads")
FLOAT_FIELDS = ("started_at", "last_seen")
COMMANDS = ("pool_restart", "shutdown")


class WorkerRegistry:
    def __init__(self, client: redis.Redis, namespace: str, ttl_seconds: float):
        self.redis = client
        self.keys = Keys(namespace)
        self.ttl = ttl_seconds

    def beat(self, record: dict[str, Any]) -> None:
        now = time.time()
        fields = {k: json.dumps(v) if k in LIST_FIELDS else str(v) for k, v in record.items()}
        fields["last_seen"] = f"{now:.3f}"
        key = self.keys.worker(record["id"])
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, int(self.ttl * 1000))
            pipe.zadd(self.keys.workers, {record["id"]: now})
            pipe.execute()

    def remove(self, worker_id: str) -> None:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.keys.worker(worker_id))
            pipe.zrem(self.keys.workers, worker_id)
            pipe.execute()

    def list(self) -> list[dict[str, Any]]:
        """Live workers, oldest first. Entries of dead ones are dropped on the way."""
        cutoff = time.time() - self.ttl
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self.keys.workers, "-inf", cutoff)
            pipe.zrange(self.keys.workers, 0, -1)
            _, ids = pipe.execute()
        with self.redis.pipeline(transaction=False) as pipe:
            for worker_id in ids:
                pipe.hgetall(self.keys.worker(worker_id))
            raws = pipe.execute()
        workers = [decode_worker(raw) for raw in raws if raw]
        return sorted(workers, key=lambda w: w.get("started_at", 0))

    def count(self) -> int:
        return int(self.redis.zcount(self.keys.workers, time.time() - self.ttl, "+inf"))

    def send_command(self, command: str, worker: Optional[str] = None) -> int:
        """Publish *command* for one worker id (or all); returns how many processes heard it."""
        if command not in COMMANDS:
            raise ValueError(f"unknown command {command!r}")
        body = json.dumps({"command": command, "worker": worker or "*"})
        return int(self.redis.publish(self.keys.control_channel, body))


def decode_worker(raw: dict[str, str]) -> dict[str, Any]:
    record: dict[str, Any] = dict(raw)
    for name in LIST_FIELDS:
        if name in record:
            record[name] = json.loads(record[name])
    for name in INT_FIELDS:
        if name in record:
            record[name] = int(record[name])
    for name in FLOAT_FIELDS:
        if name in record:
            record[name] = float(record[name])
    return record

"""Worker heartbeats and the control channel.

Each worker process refreshes a short-lived record; a process that dies
simply stops refreshing and its record expires, so the list never needs a
janitor. Commands (pool restart, shutdown) go over Redis pub/sub, which
reaches every worker on every host that shares the Redis server.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any, Optional

import redis

from pipeline.state.keys import Keys
from pipeline.state.queries import decode_hash

LIST_FIELDS = ("queues", "current_tasks")
INT_FIELDS = ("pid", "concurrency", "processed", "failed", "threads", "held")
FLOAT_FIELDS = ("started_at", "last_seen")
COMMANDS = ("pool_restart", "shutdown")
_HOSTNAME = socket.gethostname()


def worker_identity() -> str:
    """This process's worker id, as task records (``worker``) and heartbeats name it."""
    return f"{_HOSTNAME}:{os.getpid()}"


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

    def live_and_dead(self, now: float) -> tuple[set[str], list[tuple[str, float]]]:
        """Ids of workers heard from within the TTL, and (id, last seen) of those that stopped
        without deregistering (killed): the health check's view, which prunes nothing."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(self.keys.workers, now - self.ttl, "+inf")
            pipe.zrangebyscore(self.keys.workers, "-inf", f"({now - self.ttl}", withscores=True)
            live, dead = pipe.execute()
        return set(live), dead

    def remove_stale(self, cutoff: float) -> int:
        """Worker entries (and any hash left behind) whose last heartbeat is older than *cutoff*."""
        stale = self.redis.zrangebyscore(self.keys.workers, "-inf", cutoff)
        if stale:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(self.keys.workers, *stale)
                pipe.delete(*(self.keys.worker(worker_id) for worker_id in stale))
                pipe.execute()
        return len(stale)

    def send_command(self, command: str, worker: Optional[str] = None) -> int:
        """Publish *command* for one worker id (or all); returns how many processes heard it."""
        if command not in COMMANDS:
            raise ValueError(f"unknown command {command!r}")
        body = json.dumps({"command": command, "worker": worker or "*"})
        return int(self.redis.publish(self.keys.control_channel, body))


def decode_worker(raw: dict[str, str]) -> dict[str, Any]:
    return decode_hash(raw, LIST_FIELDS, INT_FIELDS, FLOAT_FIELDS)

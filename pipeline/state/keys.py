"""Every Redis key and channel name the engine uses, in one place."""

from __future__ import annotations

STATES = ("PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "CANCELLED")
FINAL_STATES = ("SUCCESS", "FAILURE", "CANCELLED")


class Keys:
    """Key names under one namespace (``settings.namespace``; tests use their own)."""

    def __init__(self, namespace: str):
        self.prefix = namespace

    def task(self, task_id: str) -> str:
        return f"{self.prefix}:t:{task_id}"

    def index(self, state: str | None = None, actor: str | None = None, queue: str | None = None) -> str:
        """The sorted set (score = enqueue time in µs) holding tasks matching the filter.

        An actor has one queue, so actor+queue is the actor index; every other
        combination has its own set, which keeps filtered listing O(log N + page).
        """
        if state and actor:
            return f"{self.prefix}:i:sa:{state}:{actor}"
        if state and queue:
            return f"{self.prefix}:i:sq:{state}:{queue}"
        if state:
            return f"{self.prefix}:i:s:{state}"
        if actor:
            return f"{self.prefix}:i:a:{actor}"
        if queue:
            return f"{self.prefix}:i:q:{queue}"
        return f"{self.prefix}:i:all"

    @property
    def expiry(self) -> str:
        return f"{self.prefix}:exp"

    def idempotency(self, key: str) -> str:
        return f"{self.prefix}:idem:{key}"

    def runtimes(self, actor: str) -> str:
        return f"{self.prefix}:rt:{actor}"

    def throughput(self, bucket: int) -> str:
        return f"{self.prefix}:tp:{bucket}"

    @property
    def undecodable(self) -> str:
        return f"{self.prefix}:undecodable"

    def rate_limit(self, actor: str) -> str:
        return f"{self.prefix}:rl:{actor}"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:w:{worker_id}"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    @property
    def control_channel(self) -> str:
        return f"{self.prefix}:ctl"

    @property
    def cancel_channel(self) -> str:
        return f"{self.prefix}:cancel"

    def events_channel(self, task_id: str) -> str:
        return f"{self.prefix}:ev:{task_id}"

    def namespaced(self, name: str) -> str:
        """A key for another component (scheduler, notifications) under this namespace."""
        return f"{self.prefix}:{name}"

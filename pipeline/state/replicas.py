"""ReplicaWait: the writes that must survive the loss of the Redis master.

Redis replicates asynchronously, so a write the master has acknowledged is
lost if the master dies before a replica has it and that replica is then
promoted (Sentinel failover). Two writes carry promises:

- a submission's records: once the client hears "accepted", its task can be
  looked up, and its idempotency key holds;
- a task's final state: once it is written the worker acks the message, and
  nothing would ever finish the task again if the write were lost.

For those, the store appends ``WAIT <replicas> <timeout>`` to the round trip
that carries the write (so it costs no extra round trip), and only treats the
write as done once a replica has it. WAIT is never sent when no replica is
configured. When replicas do not answer in time (none connected, e.g. right
after a failover, or lagging), the write still counts: the master has it and
refusing would not make it safer. The shortfall is logged, and for a few
seconds no WAIT is sent, so a deployment missing its replica does not pay the
timeout on every write; then the next durable write tries again.
"""

from __future__ import annotations

import logging
import time
from typing import Optional

logger = logging.getLogger("pipeline.state")

#: After a shortfall, durable writes skip WAIT for this long before trying again.
RETRY_AFTER_SECONDS = 5.0


class ReplicaWait:
    def __init__(self, replicas: int = 0, timeout_ms: int = 500, retry_after: float = RETRY_AFTER_SECONDS):
        if replicas and timeout_ms < 1:
            raise ValueError("timeout_ms must be at least 1 (WAIT 0 would block forever)")
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self.retry_after = retry_after
        #: Writes that returned before enough replicas had them (for tests and operators).
        self.shortfalls = 0
        self._skip_until = 0.0

    def command(self) -> Optional[tuple]:
        """The WAIT to append to a durable write's round trip, or None (no replicas, or skipping)."""
        if not self.replicas or time.monotonic() < self._skip_until:
            return None
        return ("WAIT", self.replicas, self.timeout_ms)

    def acknowledged(self, replicas: int) -> None:
        """Record WAIT's answer (how many replicas have the writes)."""
        if int(replicas) >= self.replicas:
            self._skip_until = 0.0
            return
        self.shortfalls += 1
        self._skip_until = time.monotonic() + self.retry_after
        logger.warning(
            "Only %d of %d Redis replica(s) confirmed a write within %d ms; writes go on unconfirmed for %.0f s "
            "(a failover meanwhile may lose the latest of them).",
            int(replicas), self.replicas, self.timeout_ms, self.retry_after,
        )

"""One delivery of a message to this worker, as the engine's middleware see it.

TaskState opens it when the task starts (or when it decides not to run the
message); RetryPolicy writes what a failure leads to; TaskState records that;
TimeLimits, Cancellation, Heartbeat and the worker log read it. It rides on
the message itself because Dramatiq calls the ack/nack hooks from the
consumer thread, where a thread-local or context variable would not reach.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

_ATTRIBUTE = "_claw_delivery"


@dataclass(eq=False)
class Delivery:
    #: Names this delivery in the task record, so a START sent twice is recognised.
    token: str = field(default_factory=lambda: os.urandom(6).hex())
    attempt: int = 0
    #: time.monotonic() when the task started running; None while it has not.
    started: Optional[float] = None
    #: The engine chose not to run it (cancelled, finished, a duplicate, rate-limited):
    #: its record says so, and the worker log stays quiet about the skip.
    dropped: bool = False
    #: After an exception: RETRY, CANCELLED or FAILURE (decided by RetryPolicy).
    outcome: str = "FAILURE"
    retry_eta: Optional[float] = None
    #: The retry's message and its delay (ms), published by TaskState once RETRY is recorded: published
    #: earlier, a short backoff could deliver it while the record still says STARTED, and START would drop
    #: it as a second copy of a running task (the retry lost).
    retry_message: Optional[tuple[Any, int]] = None

    @property
    def running(self) -> bool:
        return self.started is not None

    def retry_at(self, eta: float, message: Any = None, delay_ms: int = 0) -> None:
        self.outcome, self.retry_eta = "RETRY", eta
        self.retry_message = (message, delay_ms) if message is not None else None


def delivery_of(message) -> Optional[Delivery]:
    """The message's delivery, or None when no engine middleware has looked at it."""
    return getattr(message, _ATTRIBUTE, None)


def open_delivery(message) -> Delivery:
    """The message's delivery, opened on first use."""
    delivery = getattr(message, _ATTRIBUTE, None)
    if delivery is None:
        delivery = Delivery()
        setattr(message, _ATTRIBUTE, delivery)
    return delivery


def outcome_of(message) -> str:
    """What the delivery's exception leads to (FAILURE when nobody decided)."""
    delivery = getattr(message, _ATTRIBUTE, None)
    return "FAILURE" if delivery is None else delivery.outcome

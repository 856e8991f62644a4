"""RetryPolicy: retries per actor policy, with exponential backoff and jitter.

Replaces Dramatiq's Retries so that the decision uses the attempts counted in
the state store (which include deliveries lost to a killed worker) and so
that cancellation, permanent errors and the hard time limit never retry.
The decision (and the retry's message) is left on the message's Delivery
for TaskState to record and then publish.
"""

from __future__ import annotations

import random
import time

from dramatiq.middleware import Middleware

from pipeline.delivery import delivery_of
from pipeline.errors import HardTimeLimitExceeded, InvalidArguments, PermanentError, TaskCancelled
from pipeline.registry import TaskPolicy, policy_of

NEVER_RETRIED = (PermanentError, InvalidArguments, HardTimeLimitExceeded)


def backoff_ms(policy: TaskPolicy, attempt: int) -> int:
    """Delay before attempt *attempt* + 1: base x 2^(attempt-1), +/-20 % jitter, capped."""
    delay = policy.retry_backoff_ms * 2 ** (attempt - 1)
    return int(min(delay, policy.retry_backoff_max_ms) * random.uniform(0.8, 1.2))


class RetryPolicy(Middleware):
    def after_process_message(self, broker, message, *, result=None, exception=None):
        delivery = delivery_of(message)
        if exception is None or delivery is None or not delivery.running:
            return
        if isinstance(exception, TaskCancelled):
            delivery.outcome = "CANCELLED"
            return
        policy = policy_of(broker, message.actor_name)
        attempt = delivery.attempt
        if isinstance(exception, NEVER_RETRIED) or attempt > policy.max_retries:
            delivery.outcome = "FAILURE"
            message.fail()
            return
        delay = backoff_ms(policy, attempt)
        # Published by TaskState once it has recorded RETRY (see Delivery.retry_message).
        delivery.retry_at(time.time() + delay / 1000, message.copy(options={"retries": attempt}), delay)

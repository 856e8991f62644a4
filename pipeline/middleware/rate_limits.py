"""RateLimits: per-actor start rates across every worker, per key, shared fairly between keys.

An actor's policy declares its limits: ``rate_limit`` (all starts), and
``rate_limit_per_key`` with ``rate_limit_key`` (the argument a task's key, e.g.
its user, comes from). Each delivery of a rate-limited message asks the state
store whether its task may start now (:mod:`pipeline.state.admission`: both
windows, turns between keys, priority first). When it may not, the message
goes back to RabbitMQ until its turn should come, in hops no worker holds for
long (:mod:`pipeline.holds`); its record says until when, and its retries are
untouched (Dramatiq's own rate limiters raise, use up a retry and end in the
dead-letter queue when busy).
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Optional

from dramatiq.middleware import Middleware, SkipMessage

from pipeline.delivery import open_delivery
from pipeline.owners import Owner
from pipeline.redis_client import wait_for_redis
from pipeline.state import StateStore, untracked
from pipeline.state.admission import Limits
from pipeline.registry import OwnerOr, TaskPolicy, policy_of

#: Longest key kept as it is; longer ones are hashed (a key is part of Redis key names).
MAX_KEY_CHARS = 128
#: A waiting message this long past its hold (the broker's ``max_hold_ms``) is taken to be gone.
LOST_AFTER_MS = 60_000


def rate_key(policy: TaskPolicy, message) -> str:
    """The key a task is limited and shared under: the keyword argument its policy names, or with
    :class:`OwnerOr` the submission's owner (``user:<user_id>``) when it has one.

    This is the one place the key is read. Tasks without the argument share the key "".
    """
    source = policy.rate_limit_key
    if not source:
        return ""
    if isinstance(source, OwnerOr):
        user_id = Owner.of_message(message).user_id
        if user_id is not None:
            return "user:" + user_id
        source = source.argument
    value = message.kwargs.get(source)
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= MAX_KEY_CHARS else "sha1:" + hashlib.sha1(text.encode()).hexdigest()


def window_ms(window: int) -> int:
    """The window the store enforces: a start is counted when its task is admitted, a few
    milliseconds before the task begins, so each window is kept a little longer (1 %, at
    most 50 ms) and two starts a window apart never begin closer than that."""
    return window + min(50, window // 100)


@functools.lru_cache(maxsize=256)
def limits_of(policy: TaskPolicy) -> Optional[Limits]:
    """The policy's limits as the store takes them (None: not rate-limited); worked out once per policy."""
    if not (policy.rate or policy.key_rate):
        return None
    (glimit, gwindow), (klimit, kwindow) = policy.rate or (0, 0), policy.key_rate or (0, 0)
    return Limits(glimit, window_ms(gwindow) if glimit else 0, klimit, window_ms(kwindow) if klimit else 0)


class RateLimits(Middleware):
    def __init__(self, store: StateStore):
        self.store = store

    def before_process_message(self, broker, message):
        policy = policy_of(broker, message.actor_name)
        limits = limits_of(policy)
        if limits is None:
            return
        priority = message.options.get("broker_priority", policy.priority) or 0

        def admit():
            return self.store.admit(
                message.actor_name, message.message_id, rate_key(policy, message), priority, limits,
                stale_ms=broker.max_hold_ms + LOST_AFTER_MS, redelivered=bool(getattr(message, "redelivered", False)),
            )

        decision = wait_for_redis(admit, "checking a rate limit")
        if decision.outcome != "WAIT":
            return  # RUN, or PASS: a finished or duplicate task, which TaskState drops
        with untracked():
            broker.enqueue(message.copy(), delay=decision.wait_ms)
        open_delivery(message).dropped = True
        raise SkipMessage(f"rate limited for {decision.wait_ms} ms")

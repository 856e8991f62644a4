"""RateLimits: per-actor start rate across every worker, shared through Redis.

Unlike Dramatiq's rate limiters (which raise, use up a retry and end in the
dead-letter queue when busy), a message over the limit here books the next
free slot in a sliding window and is re-enqueued with that delay: it waits,
its record says until when, and its retries are untouched.
"""

from __future__ import annotations

from dramatiq.middleware import Middleware, SkipMessage

from pipeline.redis_client import wait_for_redis
from pipeline.state import StateStore, untracked
from pipeline.registry import policy_of


class RateLimits(Middleware):
    def __init__(self, store: StateStore):
        self.store = store

    def before_process_message(self, broker, message):
        rate = policy_of(broker, message.actor_name).rate
        if rate is None:
            return
        limit, window_ms = rate
        # One reservation per attempt: a retry must queue for a slot again.
        member = f"{message.message_id}:{message.options.get('retries', 0)}"
        reserve = lambda: self.store.reserve_rate_slot(message.actor_name, member, message.message_id, limit, window_ms)  # noqa: E731
        wait_ms = wait_for_redis(reserve, "checking a rate limit")
        if wait_ms <= 0:
            return
        with untracked():
            broker.enqueue(message.copy(), delay=wait_ms)
        message._claw_quiet_skip = True
        raise SkipMessage(f"rate limited for {wait_ms} ms")

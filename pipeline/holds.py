"""Bounded holds: no worker keeps a waiting message unacknowledged for longer than a bound.

Dramatiq's RabbitMQ broker sends a delayed message to the delay queue ``Q.DQ``
with its ``eta``; a worker's delay consumer takes it and holds it in memory,
unacknowledged, until the eta, then publishes it to ``Q`` and acks it. A
delivery held past RabbitMQ's ``consumer_timeout`` (30 min by default) makes
RabbitMQ close the channel and redeliver everything that channel held, again
and again (Dramatiq issue #827).

So every wait longer than the bound (``CLAW_MAX_HOLD_SECONDS``) travels in
hops: the message goes to the delay queue with an eta at most one bound away
and carries the wait's real end in its ``due`` option. When the delay consumer
moves it on at that eta, the broker (:class:`pipeline.broker.ClawBroker`)
sends it back to the delay queue with what is left of the wait, until the last
hop lands it on its queue. A hop is one publish and one ack, so a wait of W
costs ceil(W / bound) publishes. Delays, retry backoff and rate-limit waits all
go through :func:`hop`, which is why ``delay_seconds`` may be a day.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Optional

from dramatiq import Message

#: Message option: when (epoch milliseconds) the message's wait ends.
DUE = "due"


def hop(message: Message, delay: Optional[int], max_hold_ms: int, now_ms: Optional[int] = None) -> tuple[Message, Optional[int]]:
    """The message to publish and its delay for the next hop of a wait.

    *delay* starts a new wait (milliseconds from now); None continues the
    message's own wait (its ``due``), or sends it to its queue when it has none
    left. The delay returned is never longer than *max_hold_ms*; None means
    "publish to the queue itself".
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    due = now + delay if delay is not None else message.options.get(DUE)
    if due is None:
        return message, None
    remaining = due - now
    if remaining > max_hold_ms:
        return message.copy(options={DUE: due}), max_hold_ms
    if DUE in message.options:
        message = dataclasses.replace(message, options={k: v for k, v in message.options.items() if k != DUE})
    return message, (remaining if remaining > 0 else None)

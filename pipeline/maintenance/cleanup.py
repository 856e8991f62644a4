"""What ``cleanup_expired_results`` removes: what has outlived its use, and nothing else.

The engine expires most things by itself (record hashes, results, worker
hashes, throughput buckets, idempotency keys all carry TTLs; worker
heartbeats trim index entries in small batches). This daily pass catches
what those mechanisms leave behind:

* index entries of finished tasks past their result TTL (``trim_expired``
  until it has nothing left, for when no worker heartbeat ran for a while);
* index entries whose task record no longer exists (evicted or deleted by
  hand), found by walking each per-state index in pages with a pipelined
  EXISTS per page (:meth:`StateStore.remove_orphaned_entries`);
* throughput buckets older than the hour :meth:`StateStore.throughput` reads;
* undecodable-message records older than the dead-letter TTL, after which
  RabbitMQ has dropped the dead-lettered message they describe;
* worker entries whose last heartbeat is older than an hour (by then the
  health check has reported the dead worker).

It is a maintenance job, not a request path: the index walks and the bucket
SCAN are bounded by the data, not by a request.
"""

from __future__ import annotations

import time

from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL

from pipeline.engine import Engine
from pipeline.registry import REGISTRY, queue_names

TRIM_BATCH = 1000
THROUGHPUT_BUCKETS_READ = 360  # StateStore.throughput reads the last hour of 10-second buckets
DEAD_LETTER_TTL_SECONDS = DEAD_MESSAGE_TTL / 1000  # the x-message-ttl Dramatiq gives its .XQ queues
STALE_WORKER_SECONDS = 3600


def cleanup(engine: Engine) -> dict[str, int]:
    """Run every pass; returns how many of each kind were removed."""
    now = time.time()
    store = engine.store
    return {
        "expired_index_entries": trim_expired(engine, now),
        "orphaned_index_entries": store.remove_orphaned_entries(sorted(REGISTRY), queue_names(engine.settings.queue_prefix)),
        "throughput_buckets": store.remove_old_buckets(int(now // 10) - THROUGHPUT_BUCKETS_READ + 1),
        "undecodable_records": store.trim_undecodable(now - DEAD_LETTER_TTL_SECONDS),
        "stale_workers": engine.workers.remove_stale(now - STALE_WORKER_SECONDS),
    }


def trim_expired(engine: Engine, now: float) -> int:
    """Index entries of expired records, in batches until none is left (heartbeats may not have run)."""
    total = 0
    while removed := engine.store.trim_expired(TRIM_BATCH, now=now):
        total += removed
    return total

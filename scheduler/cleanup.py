"""What ``cleanup_expired_results`` removes: what has outlived its use, and nothing else.

The engine expires most things by itself (record hashes, results, worker
hashes, throughput buckets, idempotency keys all carry TTLs; worker
heartbeats trim index entries in small batches). This daily pass catches
what those mechanisms leave behind:

* index entries of finished tasks past their result TTL (``trim_expired``
  until it has nothing left, for when no worker heartbeat ran for a while);
* index entries whose task record no longer exists (evicted or deleted by
  hand), found by walking each per-state index in pages with a pipelined
  EXISTS per page;
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
from typing import Iterable

from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL

from pipeline.engine import Engine
from pipeline.state.keys import STATES
from pipeline.state.store import StateStore
from pipeline.task import REGISTRY, queue_names

PAGE = 500
TRIM_BATCH = 1000
THROUGHPUT_BUCKETS_READ = 360  # StateStore.throughput reads the last hour of 10-second buckets
DEAD_LETTER_TTL_SECONDS = DEAD_MESSAGE_TTL / 1000  # the x-message-ttl Dramatiq gives its .XQ queues
STALE_WORKER_SECONDS = 3600

# KEYS: undecodable list (newest first). ARGV: cutoff. Pops the oldest entries while older than cutoff.
TRIM_UNDECODABLE = r"""
local removed = 0
while true do
  local entry = redis.call('LINDEX', KEYS[1], -1)
  if not entry then break end
  local ok, decoded = pcall(cjson.decode, entry)
  if ok and type(decoded) == 'table' and tonumber(decoded['at']) and tonumber(decoded['at']) >= tonumber(ARGV[1]) then break end
  redis.call('RPOP', KEYS[1])
  removed = removed + 1
end
return removed
"""


def cleanup(engine: Engine) -> dict[str, int]:
    """Run every pass; returns how many of each kind were removed."""
    now = time.time()
    store = engine.store
    actors = sorted(REGISTRY)
    queues = queue_names(engine.settings.queue_prefix)
    return {
        "expired_index_entries": trim_expired(store, now),
        "orphaned_index_entries": remove_orphaned_entries(store, actors, queues),
        "throughput_buckets": remove_old_buckets(store, now),
        "undecodable_records": trim_undecodable(store, now - DEAD_LETTER_TTL_SECONDS),
        "stale_workers": remove_stale_workers(store, now - STALE_WORKER_SECONDS),
    }


def trim_expired(store: StateStore, now: float) -> int:
    total = 0
    while removed := store.trim_expired(TRIM_BATCH, now=now):
        total += removed
    return total


def remove_orphaned_entries(store: StateStore, actors: Iterable[str], queues: Iterable[str]) -> int:
    """Drop index entries whose record is gone, from every index of that state.

    Entries are paged by rank; removing some of a page moves later ones up
    by that many, which the next offset accounts for. An entry missed
    because a concurrent trim shifted the ranks is caught by the next run.
    """
    actors, queues = list(actors), list(queues)
    removed = 0
    for state in STATES:
        index = store.keys.index(state=state)
        offset = 0
        while ids := store.redis.zrange(index, offset, offset + PAGE - 1):
            with store.redis.pipeline(transaction=False) as pipe:
                for task_id in ids:
                    pipe.exists(store.keys.task(task_id))
                gone = [task_id for task_id, exists in zip(ids, pipe.execute()) if not exists]
            if gone:
                _remove_from_indexes(store, gone, state, actors, queues)
                removed += len(gone)
            offset += len(ids) - len(gone)
    return removed


def _remove_from_indexes(store: StateStore, ids: list[str], state: str, actors: list[str], queues: list[str]) -> None:
    """The record (and with it the actor and queue) is gone, so remove from every index it could be in."""
    keys = store.keys
    names = [keys.index(), keys.index(state=state)]
    for actor in actors:
        names += [keys.index(actor=actor), keys.index(state=state, actor=actor)]
    for queue in queues:
        names += [keys.index(queue=queue), keys.index(state=state, queue=queue)]
    with store.redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.zrem(name, *ids)
        pipe.execute()


def remove_old_buckets(store: StateStore, now: float) -> int:
    """Throughput buckets older than the hour anyone reads (normally they expire by themselves)."""
    oldest_read = int(now // 10) - THROUGHPUT_BUCKETS_READ + 1
    prefix = store.keys.namespaced("tp:")
    old = []
    for name in store.redis.scan_iter(match=f"{prefix}*", count=1000):
        suffix = name[len(prefix):]
        if suffix.isdigit() and int(suffix) < oldest_read:
            old.append(name)
    for start in range(0, len(old), PAGE):
        store.redis.delete(*old[start : start + PAGE])
    return len(old)


def trim_undecodable(store: StateStore, cutoff: float) -> int:
    return int(store.redis.eval(TRIM_UNDECODABLE, 1, store.keys.undecodable, repr(cutoff)))


def remove_stale_workers(store: StateStore, cutoff: float) -> int:
    """Worker entries (and any hash left behind) whose last heartbeat is older than *cutoff*."""
    keys = store.keys
    stale = store.redis.zrangebyscore(keys.workers, "-inf", cutoff)
    if stale:
        with store.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.workers, *stale)
            pipe.delete(*(keys.worker(worker_id) for worker_id in stale))
            pipe.execute()
    return len(stale)

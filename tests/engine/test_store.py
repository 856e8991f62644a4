"""The state store on the real Redis: pages, filters, counts and expiry."""

import functools
import operator
import time
import uuid

import pytest

from pipeline.state import NewTask, StateStore, new_task_ids
from tests.conftest import store_shards

#: With shards an actor's samples are spread over them and each shard's latest 500/N are read; these
#: tests put every sample in one shard.
ONE_SHARD = pytest.mark.skipif(store_shards() > 1, reason="the samples of one shard only")
from pipeline.state.queries import decode_cursor, encode_cursor


@pytest.fixture
def store(redis_client, namespace):
    return StateStore(redis_client, namespace, result_ttl=60, shards=store_shards())


def _task(i: int, actor: str = "a", queue: str = "q") -> NewTask:
    return NewTask(task_id=f"t{i:04d}", actor=actor, queue=queue, priority=0, max_retries=1, args=[], kwargs={"i": i})


def test_pages_walk_every_task_once_newest_first_even_with_equal_timestamps(store):
    now = time.time()
    store.record_enqueued([_task(i) for i in range(25)], now=now)  # all share one score
    store.record_enqueued([_task(i) for i in range(25, 40)], now=now + 1)
    seen, cursor = [], None
    while True:
        page, cursor = store.list(limit=7, cursor=cursor)
        seen += [r["task_id"] for r in page]
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"t{i:04d}" for i in range(40))
    assert len(seen) == 40
    assert set(seen[:15]) == {f"t{i:04d}" for i in range(25, 40)}


def test_filters_by_state_actor_queue_and_time_range(store):
    now = time.time()
    store.record_enqueued([_task(1, "a", "q1"), _task(2, "b", "q2")], now=now - 100)
    store.record_enqueued([_task(3, "a", "q1")], now=now)
    store.start("t0001", "w", 5)
    assert [r["task_id"] for r in store.list(state="STARTED")[0]] == ["t0001"]
    assert [r["task_id"] for r in store.list(actor="a")[0]] == ["t0003", "t0001"]
    assert [r["task_id"] for r in store.list(queue="q2")[0]] == ["t0002"]
    assert [r["task_id"] for r in store.list(state="PENDING", actor="a")[0]] == ["t0003"]
    assert [r["task_id"] for r in store.list(actor="a", queue="q2")[0]] == []
    assert [r["task_id"] for r in store.list(since=now - 10)[0]] == ["t0003"]
    assert [r["task_id"] for r in store.list(until=now - 10)[0]] == ["t0002", "t0001"]


def test_counts_follow_every_transition_exactly(store):
    store.record_enqueued([_task(i) for i in range(3)])
    store.start("t0000", "w", 5)
    store.finish("t0000", "SUCCESS", {"result": "1"})
    store.start("t0001", "w", 5)
    store.finish("t0001", "RETRY", {"eta": "0"})
    store.finish("t0001", "SUCCESS", {"result": "1"})  # a finished task cannot finish twice:
    assert store.finish("t0001", "FAILURE", {}) == "SUCCESS"
    counts = store.count_by_state(["a"], ["q"])
    assert counts["states"] == {"PENDING": 1, "STARTED": 0, "RETRY": 0, "SUCCESS": 2, "FAILURE": 0, "CANCELLED": 0}
    assert counts["actors"]["a"]["SUCCESS"] == 2 and counts["queues"]["q"]["PENDING"] == 1
    assert store.throughput()["last_minute"]["SUCCESS"] == 2


def test_start_refuses_finished_cancelled_and_over_delivered_tasks(store):
    store.record_enqueued([_task(1), _task(2)])
    assert store.start("t0001", "w", 2) == ("STARTED", 1)
    assert store.start("t0001", "w", 2, redelivered=False) == ("DUPLICATE", 1)  # a second copy, not a redelivery
    assert store.start("t0001", "w", 2) == ("STARTED", 2)  # redelivered after a crash
    assert store.start("t0001", "w", 2) == ("EXHAUSTED", 2)
    store.cancel("t0002", "", "")
    assert store.start("t0002", "w", 2)[0] == "CANCELLED"
    assert store.start("nope", "w", 2)[0] == "MISSING"


def test_expired_records_leave_the_indexes_and_nothing_else_does(store, redis_client):
    store.record_enqueued([_task(1), _task(2)])
    store.start("t0001", "w", 5)
    store.finish("t0001", "SUCCESS", {"result": "1"})
    assert store.trim_expired(now=time.time() + 30) == 0
    assert store.trim_expired(now=time.time() + 61) == 1
    assert [r["task_id"] for r in store.list()[0]] == ["t0002"]
    assert store.count_by_state(["a"], ["q"])["states"]["SUCCESS"] == 0
    assert 0 < redis_client.ttl(store.keys.task("t0001")) <= 60 + 120
    assert redis_client.ttl(store.keys.task("t0002")) == -1  # pending records never expire


def test_bad_cursors_are_rejected(store):
    assert decode_cursor(encode_cursor(123, 4)) == (123, 4)
    for bad in ("", "!!!", encode_cursor(1, -1).replace("-", ""), "MTIz"):
        with pytest.raises(ValueError):
            decode_cursor(bad)


@ONE_SHARD
def test_runtime_percentiles_come_from_the_recent_samples(store, redis_client):
    redis_client.rpush(store.keys.shard(0).runtimes("a"), *range(1, 101))
    stats = store.runtimes(["a", "idle"])
    assert stats["a"] == {"p50": 51.0, "p95": 95.0, "samples": 100}
    assert stats["idle"] == {"p50": None, "p95": None, "samples": 0}


@ONE_SHARD
def test_runtime_percentiles_read_only_the_last_500_samples_while_the_list_is_trimmed_lazily(store):
    for i, runtime_ms in enumerate([1] * 200 + [1000] * 500):  # the 200 oldest must not count
        task = _task(i)
        store.record_enqueued([task])
        store.start(task.task_id, "w:1", 5)
        store.finish(task.task_id, "SUCCESS", {"result": "null"}, runtime_ms=runtime_ms)
    stats = store.runtimes(["a"])["a"]
    assert stats == {"p50": 1000.0, "p95": 1000.0, "samples": 500}
    assert store.redis.llen(store.keys.shard(0).runtimes("a")) <= 600


def test_new_task_ids_are_distinct_random_version_4_uuids():
    ids = new_task_ids(2000)
    assert len(set(ids)) == 2000
    parsed = [uuid.UUID(task_id) for task_id in ids]
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 and str(u) == task_id for u, task_id in zip(parsed, ids))
    # Every random bit varies across ids (none stuck at 0 or 1 by a wrong mask).
    fixed = 0x4000 << 64 | 0xC000 << 48 | 0xF000 << 64
    random_bits = ~fixed & (1 << 128) - 1
    assert functools.reduce(operator.or_, (u.int for u in parsed)) & random_bits == random_bits
    assert functools.reduce(operator.and_, (u.int for u in parsed)) & random_bits == 0

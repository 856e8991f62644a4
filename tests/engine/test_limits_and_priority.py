"""Priorities, time limits and rate limits, on a real worker."""

import time

from pipeline import client
from tests import sample_tasks
from tests.conftest import queue_depth, wait_for_state, wait_until


def test_priority_nine_overtakes_two_hundred_queued_zeros(engine, start_worker, namespace, redis_client):
    order_key = f"{namespace}:order"
    client.submit_many([
        {"actor": "record_order", "kwargs": {"list_key": order_key, "tag": f"low-{i}"}, "priority": 0} for i in range(200)
    ])
    high = [client.submit("record_order", kwargs={"list_key": order_key, "tag": f"high-{i}"}, priority=9) for i in range(5)]
    # One consumer: RabbitMQ hands it the 9s first. (With several processes, one that
    # holds prefetched 9s but is slow to run them can be overtaken by another's 0s.)
    start_worker("--processes", "1", "--threads", "2", queues=(sample_tasks.PRIORITY_QUEUE,))
    wait_until(lambda: redis_client.llen(order_key) == 205, 60, message="all 205 tasks")
    order = redis_client.lrange(order_key, 0, -1)
    last_high = max(order.index(f"high-{i}") for i in range(5))
    lows_before = sum(1 for tag in order[:last_high] if tag.startswith("low"))
    assert lows_before <= 10, f"{lows_before} priority-0 tasks ran before the last priority-9 one"
    assert all(engine.store.get(t)["state"] == "SUCCESS" for t in high)


def test_soft_time_limit_lets_the_task_save_progress(engine, start_worker, namespace, redis_client):
    start_worker()
    task_id = client.submit("saves_at_soft_limit", kwargs={"state_key": f"{namespace}:saved"})
    record = wait_for_state(engine, task_id, "SUCCESS", timeout=15)
    assert record["result"] == "saved progress" and redis_client.get(f"{namespace}:saved") == "saved"


def test_hard_time_limit_stops_python_code_and_is_not_retried(engine, start_worker):
    start_worker()
    task_id = client.submit("spins_past_hard_limit")
    record = wait_for_state(engine, task_id, "FAILURE", timeout=15)
    assert record["error"]["type"] == "HardTimeLimitExceeded"
    assert record["attempts"] == 1
    assert 900 <= record["runtime_ms"] < 4000


def test_hard_time_limit_replaces_a_process_blocked_in_c_without_losing_other_work(engine, start_worker, namespace):
    worker = start_worker("--processes", "1", "--threads", "2")
    pid_before = engine.workers.list()[0]["pid"]
    stuck = client.submit("blocks_in_c", kwargs={"seconds": 120})
    wait_for_state(engine, stuck, "STARTED")
    neighbour = client.submit("slow_side_effect", kwargs={"key": f"{namespace}:fx", "seconds": 1.5})
    record = wait_for_state(engine, stuck, "FAILURE", timeout=20)
    assert record["error"]["type"] == "HardTimeLimitExceeded" and "replaced" in record["error"]["message"]
    assert wait_for_state(engine, neighbour, "SUCCESS", timeout=30)["attempts"] == 1
    wait_until(lambda: [w for w in engine.workers.list() if w["pid"] != pid_before], 30, message="a replacement process")
    wait_until(lambda: queue_depth(f"{sample_tasks.QUEUE}.XQ") == 1, 20, message="the stuck message dead-lettered")
    after = client.submit("echo", kwargs={"value": "still working"})
    assert wait_for_state(engine, after, "SUCCESS")["result"]["value"] == "still working"
    assert worker.proc.poll() is None


def test_rate_limited_messages_wait_without_using_retries(engine, start_worker, namespace, redis_client):
    start_worker()
    starts_key = f"{namespace}:starts"
    ids = [client.submit("rate_limited", kwargs={"list_key": starts_key}) for _ in range(6)]
    waiting = wait_until(
        lambda: [r for r in engine.store.get_many(ids) if r and r.get("wait_reason") == "rate_limit"], 10,
        message="a task waiting for the rate limit",
    )
    assert waiting[0]["state"] == "PENDING" and waiting[0]["eta"] > time.time() - 1
    for task_id in ids:
        record = wait_for_state(engine, task_id, "SUCCESS", timeout=20)
        assert record["attempts"] == 1
    starts = sorted(float(x) for x in redis_client.lrange(starts_key, 0, -1))
    for i in range(len(starts) - 2):  # at most 2 starts in any 1 s window
        assert starts[i + 2] - starts[i] >= 0.95, starts

"""Soak: many small tasks across every queue; nothing lost, memory flat, Redis bounded by the TTL."""

import time

import pytest

from pipeline import client
from tests.conftest import wait_until
from tests.reliability.conftest import scale, wait_all_final
from tests.sample_tasks import SOAK_TASKS

# Records must outlive the run until every task is counted final: at the full
# scale (100,000 tasks, a minute or more) a 10 s TTL expired the first ones first.
RESULT_TTL = scale(10, 300)
GRACE = 5  # the store's expiry grace at the tests' 0.5 s heartbeat


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def namespace_keys(redis_client, namespace: str) -> int:
    return sum(1 for _ in redis_client.scan_iter(f"{namespace}:*", count=5000))


@pytest.mark.timeout(scale(300, 3600))
def test_soak_accounts_for_every_task_with_flat_memory(settings, start_worker, redis_client, namespace, report):
    from pipeline.engine import make_engine, set_engine

    engine = make_engine(settings.model_copy(update={"result_ttl_seconds": RESULT_TTL}))
    set_engine(engine)
    n = scale(3000, 100_000)
    start_worker("--processes", "2", "--threads", "8", queues=[s.policy.queue for s in SOAK_TASKS],
                 extra_env={"CLAW_MAX_TASKS_PER_CHILD": "0", "CLAW_RESULT_TTL_SECONDS": str(RESULT_TTL)})
    pids = [w["pid"] for w in engine.workers.list()]
    warmup = client.submit_many([{"actor": SOAK_TASKS[i % 4].name, "kwargs": {"i": i}} for i in range(400)], engine=engine)
    wait_all_final(engine, warmup, 60)
    rss_start = {pid: rss_kb(pid) for pid in pids}
    started = time.monotonic()
    ids = []
    for offset in range(0, n, 1000):
        ids += client.submit_many([{"actor": SOAK_TASKS[i % 4].name, "kwargs": {"i": i}}
                                   for i in range(offset, min(n, offset + 1000))], engine=engine)
    counts = wait_all_final(engine, ids, timeout=scale(180, 3600))
    elapsed = time.monotonic() - started
    rss_end = {pid: rss_kb(pid) for pid in pids}
    keys_at_end = namespace_keys(redis_client, namespace)
    time.sleep(RESULT_TTL + GRACE + 2)  # every result expires; heartbeats trim the indexes
    wait_until(lambda: engine.store.count_by_state([], [])["states"]["SUCCESS"] == 0, 60, message="indexes trimmed")
    keys_after_ttl = namespace_keys(redis_client, namespace)
    growth = {pid: rss_end[pid] - rss_start[pid] for pid in pids}
    report(fault=f"soak: {n} small tasks across 4 queues, 2 worker processes x 8 threads", accepted=n,
           completed=counts.get("SUCCESS", 0), failed=counts.get("FAILURE", 0),
           lost=n - counts.get("SUCCESS", 0) - counts.get("FAILURE", 0), duplicated=0,
           tasks_per_second=round(n / elapsed), worker_rss_start_kb=rss_start, worker_rss_end_kb=rss_end,
           redis_keys_at_end=keys_at_end, redis_keys_after_ttl=keys_after_ttl)
    assert counts.get("SUCCESS", 0) == n, counts
    assert all(delta < 20_000 for delta in growth.values()), growth  # < 20 MB per process
    assert keys_after_ttl < 50, keys_after_ttl  # records, results and index entries are gone
    engine.close()
    set_engine(None)

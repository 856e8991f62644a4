"""Faults in the workers: SIGKILL mid-task, repeatedly; poison messages."""

import os
import random
import signal
import time

from pipeline import client
from tests.conftest import queue_depth, wait_for_state, wait_until
from tests.reliability.conftest import scale, wait_all_final
from tests import sample_tasks


def test_sigkilled_worker_processes_lose_nothing_and_side_effects_happen_once(engine, start_worker, namespace, redis_client, report):
    n, kills = scale(200, 2000), scale(4, 12)
    runs, effects = f"{namespace}:runs", f"{namespace}:effects"
    start_worker("--processes", "2", "--threads", "4", extra_env={"CLAW_MAX_TASKS_PER_CHILD": "0"})
    task = {"actor": "ledger", "kwargs": {"runs_key": runs, "effects_key": effects, "seconds": 0.05}}
    ids = [task_id for start in range(0, n, client.MAX_BULK)  # the full scale is more than one bulk call takes
           for task_id in client.submit_many([task] * min(client.MAX_BULK, n - start))]
    recoveries, killed = [], set()

    def live_pids():
        return {w["pid"] for w in engine.workers.list()} - killed

    for _ in range(kills):
        time.sleep(1.0)
        victim = random.choice(sorted(wait_until(lambda: len(live_pids()) == 2 and live_pids(), 30, message="2 live workers")))
        os.kill(victim, signal.SIGKILL)
        killed.add(victim)
        killed_at = time.monotonic()
        wait_until(lambda: len(live_pids()) == 2, 30, message="a replacement process")
        recoveries.append(time.monotonic() - killed_at)
    counts = wait_all_final(engine, ids, timeout=scale(120, 600))
    executions = {k: int(v) for k, v in redis_client.hgetall(runs).items()}
    applied = redis_client.hgetall(effects)
    finished = engine.store.throughput()["last_hour"]
    report(
        fault=f"worker process SIGKILLed mid-task, {kills} times", accepted=n, completed=counts.get("SUCCESS", 0),
        failed=counts.get("FAILURE", 0), lost=n - sum(counts.get(s, 0) for s in ("SUCCESS", "FAILURE")),
        duplicated=finished["SUCCESS"] + finished["FAILURE"] - n,
        redelivered=sum(1 for v in executions.values() if v > 1),
        recovery_seconds=round(max(recoveries), 2) if recoveries else None,
    )
    assert counts.get("SUCCESS", 0) + counts.get("FAILURE", 0) == n, counts
    assert finished["SUCCESS"] + finished["FAILURE"] == n  # each task reached its final state exactly once
    succeeded = {r["task_id"] for r in engine.store.get_many(ids) if r["state"] == "SUCCESS"}
    assert succeeded <= set(applied)  # the side effect of every completed task happened (once: HSETNX)
    assert all(r["error"]["type"] == "WorkerLost" for r in engine.store.get_many(ids) if r["state"] == "FAILURE")


def test_poison_messages_are_dead_lettered_after_bounded_deliveries(engine, start_worker, report):
    start_worker("--processes", "1")
    killer = client.submit("kills_its_worker")  # max_retries=1: 2 attempts + 1 tolerated lost delivery
    started = time.monotonic()
    record = wait_for_state(engine, killer, "FAILURE", timeout=90)
    import pika

    from tests.conftest import BROKER_URL, QUEUE_PREFIX

    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    connection.channel().basic_publish("", QUEUE_PREFIX + sample_tasks.QUEUE, b"\xff\xfe garbage")
    connection.close()
    wait_until(lambda: queue_depth(f"{sample_tasks.QUEUE}.XQ") == 2, 30, message="both poison messages dead-lettered")
    report(fault="poison messages (kills its worker every time; undecodable)", accepted=2, completed=0, failed=2, lost=0,
           duplicated=0, deliveries_of_the_killer=record["attempts"], recovery_seconds=round(time.monotonic() - started, 1))
    assert record["error"]["type"] == "WorkerLost" and record["attempts"] == 3
    assert wait_for_state(engine, client.submit("echo", kwargs={"value": 1}), "SUCCESS")

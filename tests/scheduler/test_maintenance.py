"""The maintenance actors: cleanup removes what expired and nothing else; the health check
finds dead workers, lost tasks, backlogs and failing actors, and alerts once per problem."""

import json
import os
import signal
import time

from pipeline import client
from pipeline.actors.maintenance import check_task_health, cleanup_expired_results
from pipeline.engine import make_store
from pipeline.queues import queue_stats
from pipeline.settings import load_settings
from pipeline.state import NewTask, new_task_id
from tests import sample_tasks
from tests.conftest import QUEUE_PREFIX, wait_for_state, wait_until
from tests.scheduler.sched_tasks import alerts_key


QUEUE = QUEUE_PREFIX + sample_tasks.QUEUE  # as named in RabbitMQ and in task records
PRIORITY_QUEUE = QUEUE_PREFIX + sample_tasks.PRIORITY_QUEUE


def new_task(actor="echo", **kwargs) -> NewTask:
    return NewTask(task_id=new_task_id(), actor=actor, queue=QUEUE, priority=0, max_retries=0, args=[], kwargs=kwargs)


def finish(store, task: NewTask) -> None:
    store.record_enqueued([task])
    store.start(task.task_id, "host:1", 5)
    store.finish(task.task_id, "SUCCESS", {"finished_at": f"{time.time():.6f}", "result": "1"})


def members(redis_client, key) -> set[str]:
    return set(redis_client.zrange(key, 0, -1))


def test_cleanup_removes_what_expired_and_nothing_else(engine, settings, redis_client, namespace):
    keys = engine.store.keys
    short_lived = make_store(load_settings(result_ttl_seconds=1))  # same Redis and namespace, tiny result TTL
    expired = [new_task(value=i) for i in range(3)]
    for task in expired:
        finish(short_lived, task)
    time.sleep(1.2)
    fresh = [new_task(value=i) for i in range(2)]
    for task in fresh:
        finish(engine.store, task)
    pending = [new_task(value=i) for i in range(3)]
    engine.store.record_enqueued(pending)
    orphan = pending.pop()
    redis_client.delete(keys.task(orphan.task_id))  # its record is gone, its index entries are not

    current_bucket = int(time.time() // 10)
    redis_client.hset(keys.throughput(current_bucket - 400), "SUCCESS", 5)  # older than the hour anyone reads
    engine.store.record_undecodable(b"recent garbage", "JSONDecodeError")
    redis_client.rpush(keys.undecodable, json.dumps({"at": time.time() - 8 * 86400, "reason": "old", "size": 1, "head": ""}))
    redis_client.zadd(keys.workers, {"gone:1": time.time() - 7200})
    redis_client.hset(keys.worker("gone:1"), "id", "gone:1")
    engine.workers.beat({"id": "live:1", "pid": 1})

    assert cleanup_expired_results() == {
        "expired_index_entries": 3, "orphaned_index_entries": 1, "throughput_buckets": 1,
        "undecodable_records": 1, "stale_workers": 1,
    }

    kept = {t.task_id for t in fresh + pending}
    assert members(redis_client, keys.index()) == kept
    assert members(redis_client, keys.index(actor="echo")) == kept
    assert members(redis_client, keys.index(queue=QUEUE)) == kept
    assert members(redis_client, keys.index(state="SUCCESS")) == {t.task_id for t in fresh}
    assert members(redis_client, keys.index(state="PENDING", actor="echo")) == {t.task_id for t in pending}
    assert members(redis_client, keys.index(state="PENDING", queue=QUEUE)) == {t.task_id for t in pending}
    assert all(engine.store.get(t.task_id) for t in fresh + pending)
    assert redis_client.exists(keys.throughput(current_bucket)) and not redis_client.exists(keys.throughput(current_bucket - 400))
    assert [e["reason"] for e in engine.store.undecodable()] == ["JSONDecodeError"]
    assert [w["id"] for w in engine.workers.list()] == ["live:1"] and not redis_client.exists(keys.worker("gone:1"))
    assert cleanup_expired_results() == dict.fromkeys(
        ("expired_index_entries", "orphaned_index_entries", "throughput_buckets", "undecodable_records", "stale_workers"), 0)


def ghost_started(engine, redis_client, actor: str, started_ago: float) -> str:
    """A task STARTED long ago by a worker that no longer exists (and whose message is gone)."""
    task = new_task(actor=actor, **({"value": "lost"} if actor == "echo" else {}))
    engine.store.record_enqueued([task])
    engine.store.start(task.task_id, "ghost-host:4242", 5)
    redis_client.hset(engine.store.keys.task(task.task_id), "started_at", f"{time.time() - started_ago:.6f}")
    return task.task_id


def test_health_check_finds_problems_repairs_lost_tasks_and_alerts_once(engine, start_worker, redis_client, namespace, health_config):
    start_worker("--processes", "1")
    failing = [client.submit("permanent_failure") for _ in range(3)]
    for task_id in failing:
        wait_for_state(engine, task_id, "FAILURE")
    victim = engine.workers.list()[0]
    os.kill(victim["pid"], signal.SIGKILL)  # the supervisor replaces it; its record stops being refreshed

    client.submit("record_order", kwargs={"list_key": f"{namespace}:later", "tag": "later"}, delay_ms=600_000)
    for n in range(4):  # nothing consumes this queue: a backlog
        client.submit("record_order", kwargs={"list_key": f"{namespace}:order", "tag": str(n)})
    requeued = ghost_started(engine, redis_client, "echo", started_ago=700)  # echo's hard limit is 600 s
    failed = ghost_started(engine, redis_client, "lost_fails", started_ago=5)  # its hard limit is 2 s
    running = ghost_started(engine, redis_client, "echo", started_ago=5)  # within its limit: left alone
    wait_until(lambda: engine.workers.count() == 1 and redis_client.zscore(engine.store.keys.workers, victim["id"]) < time.time() - 3,
               15, message="the killed worker's heartbeat to go stale and its replacement to beat")
    wait_until(lambda: queue_stats(engine.settings, [PRIORITY_QUEUE])[PRIORITY_QUEUE]["ready"] == 4, 15,
               message="RabbitMQ's management statistics (refreshed every 5 s) to show the backlog")

    snapshot = check_health(engine, health_config)
    problems = {p["key"]: p["message"] for p in snapshot["problems"]}
    expected = {f"backlog:{PRIORITY_QUEUE}", "failure_rate:permanent_failure", f"dead_worker:{victim['id']}",
                "lost_tasks:echo", "lost_tasks:lost_fails"}
    assert expected <= set(problems), problems
    assert "no_workers" not in problems and not snapshot["ok"]
    backlog = snapshot["queues"][PRIORITY_QUEUE]
    assert backlog["ready"] == 4 and backlog["pending"] == 5 and 0 < backlog["oldest_pending_seconds"] < 60
    assert "oldest due PENDING task waiting" in problems[f"backlog:{PRIORITY_QUEUE}"]
    assert snapshot["actors"]["permanent_failure"] == {"success": 0, "failure": 3, "failure_rate": 1.0}
    assert {(t["task_id"], t["action"]) for t in snapshot["lost_tasks"]} == {(requeued, "requeued"), (failed, "failed")}

    rerun = wait_for_state(engine, requeued, "SUCCESS")  # re-run by a live worker
    assert rerun["result"]["value"] == "lost" and rerun["error"]["type"] == "WorkerLost" and rerun["attempts"] == 2
    assert engine.store.get(failed)["error"]["type"] == "WorkerLost"
    assert engine.store.get(running)["state"] == "STARTED"

    assert snapshot["alert"]["status"] == "sent" and set(snapshot["alert"]["problems"]) == set(problems)
    alerts = wait_until(lambda: redis_client.lrange(alerts_key(namespace), 0, -1), 15, message="the alert to be delivered")
    again = check_health(engine, health_config)
    assert again["alert"]["status"] == "not sent: every problem was already alerted"
    assert f"dead_worker:{victim['id']}" in {p["key"] for p in again["problems"]}

    time.sleep(1)  # an unwanted second alert would have been delivered by now
    alerts = [json.loads(a) for a in redis_client.lrange(alerts_key(namespace), 0, -1)]
    alerted = [key for alert in alerts for key in alert["data"]["problems"]]
    assert sorted(alerted) == sorted(set(alerted)) and expected <= set(alerted)  # each problem exactly once
    assert alerts[0]["channel"] == "system" and alerts[0]["recipient"] == "ops-team"
    assert "permanent_failure: 3 of 3 tasks" in alerts[0]["body"]


def test_with_rabbitmq_down_the_check_reports_it_and_leaves_lost_tasks_for_the_next_check(engine, redis_client, health_config):
    from pipeline.engine import make_engine

    down = make_engine(load_settings(broker_url="amqp://guest:guest@127.0.0.1:1/%2F", rabbitmq_management_url="http://127.0.0.1:1"))
    lost = ghost_started(engine, redis_client, "echo", started_ago=700)
    before = engine.store.get(lost)
    try:
        snapshot = check_health(down, health_config)
    finally:
        down.close()
    assert {"rabbitmq", "lost_tasks:echo"} <= {p["key"] for p in snapshot["problems"]} and not snapshot["rabbitmq"]["ok"]
    assert snapshot["lost_tasks"][0]["action"].startswith("requeue failed (ConnectionClosed)")
    after = engine.store.get(lost)
    assert (after["state"], after["worker"], after["started_at"], after.get("error")) == ("STARTED", "ghost-host:4242", before["started_at"], None)
    assert snapshot["alert"]["status"].startswith("not sent: BrokerUnavailable")

    retried = check_health(engine, health_config)
    assert retried["lost_tasks"][0]["action"] == "requeued" and engine.store.get(lost)["state"] == "PENDING"
    assert retried["alert"]["status"] == "sent" and "lost_tasks:echo" in retried["alert"]["problems"]


def test_health_check_records_an_alert_it_could_not_send_and_retries_it_later(engine, redis_client, namespace, health_config):
    unavailable = health_config.model_copy(update={"health_alert_actor": "send_notification_missing"})
    snapshot = check_health(engine, unavailable)
    assert "no_workers" in {p["key"] for p in snapshot["problems"]}
    assert snapshot["alert"] == {"status": "not sent: send_notification_missing unavailable", "problems": []}
    assert json.loads(redis_client.get(f"{namespace}:health:snapshot"))["alert"]["status"].startswith("not sent")

    result = check_task_health()  # the actor, with the configured alert actor: the problem was not used up
    assert "no_workers" in result["problems"] and result["alert"]["status"] == "sent"


def check_health(engine, config):
    from pipeline.maintenance.health import check_health as run

    return run(engine, config)

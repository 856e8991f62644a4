"""Real scheduler processes: firing, live changes, leader election, hand-over and catch-up."""

import json
import time

from tests.conftest import wait_for_state, wait_until
from tests.scheduler.conftest import LOCK_TTL_SECONDS, fire_times, wait_for_runs


def task_count(engine) -> int:
    return len(engine.store.list(actor="echo", limit=500)[0])


def test_interval_schedule_fires_and_its_task_runs(engine, schedules, start_worker, start_scheduler):
    start_worker()
    schedules.add({"id": "tick", "actor": "echo", "kwargs": {"value": "tick"}, "interval_seconds": 1})
    start_scheduler()
    view = wait_for_runs(schedules, "tick", 2, timeout=15)
    record = wait_for_state(engine, view["last_task_id"], "SUCCESS")
    assert record["result"] == {"value": "tick", "had_password": False}
    assert record["idempotency_key"] == f"schedule:tick:{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(view['last_run']))}.000+00:00"
    assert view["last_run"] == int(view["last_run"]) and view["next_run"] == view["last_run"] + 1


def test_changes_take_effect_without_restart(engine, schedules, start_scheduler, leader_pid):
    scheduler = start_scheduler()
    wait_until(lambda: leader_pid() == scheduler.pid, 10, message="the scheduler to lead")

    added_at = time.time()
    schedules.add({"id": "live", "actor": "echo", "kwargs": {"value": 1}, "interval_seconds": 1})
    first = wait_for_runs(schedules, "live", 1, timeout=5)
    assert first["last_run"] - added_at < 3

    schedules.pause("live")
    time.sleep(1)  # the poll interval, and a fire already in flight
    paused = schedules.get("live")
    time.sleep(2.5)
    assert schedules.get("live")["run_count"] == paused["run_count"] and paused["next_run"] is None

    resumed_at = time.time()
    schedules.resume("live")
    resumed = wait_for_runs(schedules, "live", paused["run_count"] + 1, timeout=5)
    assert resumed["last_run"] > resumed_at  # nothing missed while paused was caught up

    schedules.update("live", {"kwargs": {"value": 2}})
    changed = wait_until(lambda: (r := engine.store.get(schedules.get("live")["last_task_id"]))["kwargs"] == {"value": 2} and r, 5,
                         message="a task with the new arguments")
    assert changed["actor"] == "echo"

    schedules.delete("live")
    time.sleep(1)
    before = task_count(engine)
    time.sleep(2.5)
    assert task_count(engine) == before


def test_three_schedulers_fire_once_per_second_and_survive_a_killed_leader(engine, schedules, start_scheduler, leader_pid):
    schedules.add({"id": "every-second", "actor": "echo", "interval_seconds": 1})
    replicas = {p.pid: p for p in (start_scheduler() for _ in range(3))}
    wait_until(lambda: leader_pid() in replicas, 10, message="a leader")
    time.sleep(9)

    victim = replicas.pop(leader_pid())
    killed_at = time.time()
    victim.kill_group()
    new_leader = wait_until(lambda: leader_pid() in replicas and leader_pid(), LOCK_TTL_SECONDS + 1.5, interval=0.05,
                            message="a standby to take over")
    takeover = time.time() - killed_at
    time.sleep(10)
    for replica in replicas.values():
        assert replica.stop() == 0, replica.output()

    times = fire_times(engine)
    records, _ = engine.store.list(actor="echo", limit=500)
    assert len(records) == len(times) == len(set(times)) == len({r["task_id"] for r in records})  # once per fire time
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(gap == int(gap) for gap in gaps), gaps  # whole seconds: every replica computes the same fire times
    assert sum(1 for gap in gaps if gap > 1) <= 1 and max(gaps) <= LOCK_TTL_SECONDS + 2, gaps  # only the hand-over
    assert len(times) >= times[-1] - times[0] + 1 - (LOCK_TTL_SECONDS + 1)
    assert times[-1] > killed_at + 8  # kept firing after the kill
    assert takeover <= LOCK_TTL_SECONDS + 1 and new_leader != victim.pid
    assert schedules.get("every-second")["run_count"] == len(times)


def test_leader_that_cannot_renew_stops_firing_and_sigterm_hands_over(engine, schedules, start_scheduler, leader_pid,
                                                                      redis_client, namespace):
    from pipeline.state import Keys

    schedules.add({"id": "steady", "actor": "echo", "interval_seconds": 1})
    first = start_scheduler()
    wait_for_runs(schedules, "steady", 1)
    second = start_scheduler()
    lock = Keys(namespace).scheduler_leader

    redis_client.set(lock, "intruder:1:stolen", px=60_000)  # as if the lock expired and someone else took it
    time.sleep(1.5)
    stalled = schedules.get("steady")["run_count"]
    time.sleep(2.5)
    assert schedules.get("steady")["run_count"] == stalled
    assert "leader lock was lost" in first.output()

    redis_client.delete(lock)
    wait_for_runs(schedules, "steady", stalled + 1, timeout=5)
    leader = first if leader_pid() == first.pid else second
    standby = second if leader is first else first
    stopped_at = time.time()
    assert leader.stop() == 0
    wait_until(lambda: leader_pid() == standby.pid, LOCK_TTL_SECONDS, interval=0.05, message="the standby to lead")
    assert time.time() - stopped_at < LOCK_TTL_SECONDS  # released, not expired
    wait_for_runs(schedules, "steady", schedules.get("steady")["run_count"] + 1, timeout=5)


def test_a_broken_schedule_shows_its_error_and_does_not_stop_the_others(engine, schedules, start_scheduler, redis_client):
    schedules.add({"id": "healthy", "actor": "echo", "interval_seconds": 1})
    schedules.add({"id": "unknown-here", "actor": "lost_fails", "interval_seconds": 1})
    schedules.add({"id": "bad-cron", "actor": "echo", "cron": "0 0 * * *"})
    definition = json.loads(redis_client.hget(schedules.defs_key, "bad-cron"))
    redis_client.hset(schedules.defs_key, "bad-cron", json.dumps({**definition, "cron": "0 0 * * 9"}))  # written around the API

    start_scheduler({"CLAW_TASK_MODULES": "tests.sample_tasks"})  # this replica does not declare lost_fails
    wait_for_runs(schedules, "healthy", 2)
    unknown = wait_until(lambda: schedules.get("unknown-here")["last_error"], 5, message="the submit error")
    assert "UnknownActor" in unknown["message"] and unknown["fire_time"] == int(unknown["fire_time"])
    broken = schedules.get("bad-cron")["last_error"]
    assert broken["message"].startswith("could not be planned: ValueError") and broken["fire_time"] is None
    assert schedules.get("unknown-here")["run_count"] == 0 and schedules.get("bad-cron")["run_count"] == 0


def _schedule_that_missed_fires(schedules, redis_client, schedule_id: str) -> float:
    """A 10 s schedule created 34 s ago whose last fire was 24 s ago: fires 14 s and 4 s ago were missed.

    Returns the latest missed fire time.
    """
    latest_missed = float(int(time.time()) - 4)
    schedules.add({"id": schedule_id, "actor": "echo", "interval_seconds": 10})
    definition = json.loads(redis_client.hget(schedules.defs_key, schedule_id))
    definition.update(created_at=latest_missed - 30, updated_at=latest_missed - 30)
    redis_client.hset(schedules.defs_key, schedule_id, json.dumps(definition))
    schedules.record_fire(schedule_id, latest_missed - 20, "an-earlier-task", None)
    return latest_missed


def test_fires_missed_during_downtime_run_once_within_the_grace_period(engine, schedules, start_scheduler, redis_client):
    latest_missed = _schedule_that_missed_fires(schedules, redis_client, "catch-up")
    start_scheduler()
    view = wait_for_runs(schedules, "catch-up", 2)
    record = engine.store.get(view["last_task_id"])
    assert fire_times(engine) == [latest_missed]  # once, for the latest missed time (coalesced)
    assert record["enqueued_at"] - latest_missed >= 3  # late, as a catch-up
    assert view["next_run"] == latest_missed + 10


def test_fires_missed_beyond_the_grace_period_are_skipped(engine, schedules, start_scheduler, redis_client):
    latest_missed = _schedule_that_missed_fires(schedules, redis_client, "no-catch-up")
    start_scheduler({"CLAW_SCHEDULER_MISFIRE_GRACE_SECONDS": "2"})
    wait_until(lambda: schedules.get("no-catch-up")["next_run"] == latest_missed + 10, 10, message="the job to be planned")
    time.sleep(1.5)
    assert schedules.get("no-catch-up")["run_count"] == 1 and fire_times(engine) == []


def test_a_schedule_fires_a_workflow_once_per_fire(engine, schedules, start_worker, start_scheduler):
    from pipeline import workflow

    start_worker()
    chord = {"kind": "chord", "members": [{"actor": "echo", "kwargs": {"value": i}} for i in range(3)],
             "callback": {"actor": "collect"}}
    schedules.add({"id": "fan-out", "workflow": chord, "interval_seconds": 1})
    start_scheduler()
    view = wait_for_runs(schedules, "fan-out", 2, timeout=15)
    assert view["last_task_id"] is None and view["actor"] is None
    done = wait_until(lambda: (w := workflow.get(view["last_workflow_id"], engine=engine))["state"] == "SUCCESS" and w)
    assert done["kind"] == "chord" and done["name"] == "schedule fan-out"
    assert [r["value"] for r in done["result"]["results"]] == [0, 1, 2]
    schedules.delete("fan-out")

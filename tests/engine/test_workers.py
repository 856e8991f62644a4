"""Worker processes: heartbeats, recycling, crashes, control commands, poison messages."""

import os
import signal
import time

import pika

from pipeline import client
from tests import sample_tasks
from tests.conftest import QUEUE_PREFIX, BROKER_URL, queue_depth, wait_for_state, wait_until


def test_heartbeat_record_describes_each_worker_process(engine, start_worker):
    start_worker("--processes", "2", "--threads", "3")
    workers = wait_until(lambda: len(engine.workers.list()) == 2 and engine.workers.list(), 20, message="2 workers")
    for worker in workers:
        assert worker["host"] and worker["pid"] > 0 and worker["concurrency"] == 3
        assert worker["queues"] == [QUEUE_PREFIX + sample_tasks.QUEUE]
        assert worker["last_seen"] > time.time() - 3
    assert len({w["node"] for w in workers}) == 1


def test_killed_worker_process_disappears_and_is_replaced(engine, start_worker):
    start_worker("--processes", "1")
    victim = engine.workers.list()[0]
    os.kill(victim["pid"], signal.SIGKILL)
    wait_until(lambda: victim["id"] not in {w["id"] for w in engine.workers.list()}, 10, message="the dead record to expire")
    replacement = wait_until(lambda: engine.workers.list(), 15, message="a replacement")
    assert replacement[0]["pid"] != victim["pid"]
    assert wait_for_state(engine, client.submit("echo", kwargs={"value": 1}), "SUCCESS")


def test_worker_processes_stop_when_their_supervisor_is_killed(engine, start_worker):
    supervisor = start_worker("--processes", "2")
    pids = [w["pid"] for w in wait_until(lambda: len(engine.workers.list()) == 2 and engine.workers.list(), 20, message="2 workers")]
    supervisor.proc.kill()

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] == "Z"  # exited, waiting to be reaped by init

    wait_until(lambda: all(gone(pid) for pid in pids), 20, message="the orphaned worker processes to exit")


def test_tasks_of_a_killed_worker_are_redelivered_and_finish_once(engine, start_worker, namespace, redis_client):
    start_worker("--processes", "1", "--threads", "2")
    ids = [client.submit("slow_side_effect", kwargs={"key": f"{namespace}:fx", "seconds": 1}) for _ in range(2)]
    wait_until(lambda: all(engine.store.get(t)["state"] == "STARTED" for t in ids), 10, message="both started")
    os.kill(engine.workers.list()[0]["pid"], signal.SIGKILL)
    for task_id in ids:
        record = wait_for_state(engine, task_id, "SUCCESS", timeout=30)
        assert record["attempts"] == 2
    assert redis_client.hlen(f"{namespace}:fx") == 2  # the side effect happened once per task


def test_worker_process_is_recycled_after_max_tasks_without_losing_messages(engine, start_worker):
    start_worker("--processes", "1", "--threads", "2", extra_env={"CLAW_MAX_TASKS_PER_CHILD": "5"})
    ids = client.submit_many([{"actor": "echo", "kwargs": {"value": i}} for i in range(30)])
    records = [wait_for_state(engine, task_id, "SUCCESS", timeout=60) for task_id in ids]
    assert all(r["attempts"] == 1 for r in records)
    assert len({r["worker"] for r in records}) >= 4  # at least 4 process lifetimes


def test_worker_process_above_the_memory_limit_is_recycled_after_its_task(engine, start_worker):
    start_worker("--processes", "1", "--threads", "1",
                 extra_env={"CLAW_MAX_MEMORY_PER_CHILD_MIB": "1", "CLAW_MAX_TASKS_PER_CHILD": "0"})
    ids = client.submit_many([{"actor": "echo", "kwargs": {"value": i}} for i in range(4)])
    records = [wait_for_state(engine, task_id, "SUCCESS", timeout=60) for task_id in ids]
    assert all(r["attempts"] == 1 for r in records)
    assert len({r["worker"] for r in records}) >= 2  # every process is above 1 MiB: replaced after a task


def test_pool_restart_replaces_processes_and_lets_running_tasks_finish(engine, start_worker, namespace):
    start_worker("--processes", "2")
    before = {w["pid"] for w in engine.workers.list()}
    running = client.submit("slow_side_effect", kwargs={"key": f"{namespace}:fx", "seconds": 2})
    wait_for_state(engine, running, "STARTED")
    assert engine.workers.send_command("pool_restart") == 2
    assert wait_for_state(engine, running, "SUCCESS", timeout=20)["attempts"] == 1
    wait_until(lambda: len(engine.workers.list()) == 2 and not before & {w["pid"] for w in engine.workers.list()}, 20,
               message="two new processes")


def test_shutdown_command_stops_one_worker_or_all(engine, start_worker):
    worker = start_worker("--processes", "2")
    wait_until(lambda: len(engine.workers.list()) == 2, 10, message="2 workers")
    one = engine.workers.list()[0]["id"]
    engine.workers.send_command("shutdown", one)
    wait_until(lambda: [w["id"] for w in engine.workers.list()] and one not in [w["id"] for w in engine.workers.list()], 15,
               message="that worker to leave")
    assert len(engine.workers.list()) == 1 and worker.proc.poll() is None
    engine.workers.send_command("shutdown")
    assert worker.proc.wait(20) == 0
    wait_until(lambda: not engine.workers.list(), 10, message="no worker records")


def test_message_that_kills_its_worker_every_time_is_dead_lettered(engine, start_worker):
    start_worker("--processes", "1")
    task_id = client.submit("kills_its_worker")
    record = wait_for_state(engine, task_id, "FAILURE", timeout=60)
    assert record["error"]["type"] == "WorkerLost"
    wait_until(lambda: queue_depth(f"{sample_tasks.QUEUE}.XQ") == 1, 15, message="the poison message dead-lettered")
    assert wait_for_state(engine, client.submit("echo", kwargs={"value": 1}), "SUCCESS")


def test_undecodable_message_is_dead_lettered_and_recorded(engine, start_worker):
    start_worker()
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    connection.channel().basic_publish("", QUEUE_PREFIX + sample_tasks.QUEUE, b"\x00 not json at all")
    connection.close()
    wait_until(lambda: queue_depth(f"{sample_tasks.QUEUE}.XQ") == 1, 15, message="the message dead-lettered")
    recorded = wait_until(lambda: engine.store.undecodable(), 5, message="the undecodable record")
    assert recorded[0]["size"] == 17 and "DecodeError" in recorded[0]["reason"]

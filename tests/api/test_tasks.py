"""Status, list, cancel, retry, stats, dead letters, workers and the event stream, in process."""

import asyncio
import json
import re
import time
import uuid

import pytest
import redis

from api.app import create_app
from api.caller import OPEN
from api.resources.events import TaskEventsResource
from pipeline import client
from pipeline.engine import make_engine
from pipeline.redis_url import is_cluster_url
from pipeline.state import StateStore, WorkerRegistry
from tests.api.conftest import QUEUE, Api
from tests.app_client import run_async
from tests.conftest import REDIS_URL


def test_status_returns_the_whole_record(api, engine):
    task_id = client.submit("echo", kwargs={"value": 1, "password": "hunter2"}, priority=4)
    record = api.get(f"/api/v1/tasks/status/{task_id}").json
    assert record["task_id"] == task_id and record["state"] == "PENDING" and record["priority"] == 4
    assert record["kwargs"] == {"value": 1, "password": "***"} and "payload" not in record
    assert api.get(f"/api/v1/tasks/status/{task_id.upper()}").json["task_id"] == task_id


def test_list_filters_and_pages_newest_first_without_repeats(api, engine):
    ids = client.submit_many([{"actor": "echo", "kwargs": {"value": i}} for i in range(7)])
    other = client.submit("always_fails")
    client.cancel(ids[0])
    seen, cursor = [], None
    while True:
        page = api.get("/api/v1/tasks/list", params={"actor": "echo", "limit": 3, **({"cursor": cursor} if cursor else {})}).json
        seen += [t["task_id"] for t in page["tasks"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 7
    assert [t["task_id"] for t in api.get("/api/v1/tasks/list", params={"state": "CANCELLED"}).json["tasks"]] == [ids[0]]
    newest = api.get("/api/v1/tasks/list", params={"limit": 1}).json["tasks"][0]
    assert newest["task_id"] == other
    queue = api.get("/api/v1/tasks/list", params={"queue": QUEUE, "state": "PENDING"}).json["tasks"]
    assert len(queue) == 7  # 6 echo + always_fails


def test_list_time_window_accepts_iso_8601_and_epoch_seconds(api, engine):
    task_id = client.submit("echo")
    enqueued = engine.store.get(task_id)["enqueued_at"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(enqueued - 1))
    assert [t["task_id"] for t in api.get("/api/v1/tasks/list", params={"since": iso}).json["tasks"]] == [task_id]
    assert api.get("/api/v1/tasks/list", params={"until": str(enqueued - 1)}).json["tasks"] == []
    assert api.get("/api/v1/tasks/list", params={"since": str(enqueued + 1)}).json["tasks"] == []


def test_cancel_pending_then_retry_it_as_a_new_linked_task(api, engine):
    task_id = client.submit("echo", kwargs={"value": "again"})
    outcome = api.post(f"/api/v1/tasks/cancel/{task_id}").json
    assert outcome == {"task_id": task_id, "state": "CANCELLED", "previous_state": "PENDING"}
    retried = api.post(f"/api/v1/tasks/retry/{task_id}")
    assert retried.status_code == 202
    new_id = retried.json["task_id"]
    assert retried.json == {"task_id": new_id, "state": "PENDING", "retry_of": task_id,
                            "status_url": f"/api/v1/tasks/status/{new_id}"}
    assert engine.store.get(new_id)["kwargs"] == {"value": "again"}
    assert api.post(f"/api/v1/tasks/retry/{task_id}").status_code == 409  # only once


def test_stats_counts_states_actors_queues_and_reads_rabbitmq(api, engine):
    client.submit_many([{"actor": "echo"}, {"actor": "echo"}, {"actor": "always_fails"}])
    stats = api.get("/api/v1/tasks/stats").json
    assert stats["states"]["PENDING"] == 3
    assert stats["actors"]["echo"]["states"]["PENDING"] == 2 and stats["actors"]["echo"]["queue"] == QUEUE
    assert stats["actors"]["echo"]["runtime_ms"] == {"p50": None, "p95": None, "samples": 0}
    queue = stats["queues"][QUEUE]
    assert queue["states"]["PENDING"] == 3
    assert queue["broker"]["source"] == "management" and queue["broker"]["consumers"] == 0
    assert set(queue["broker"]) >= {"ready", "unacked", "delayed", "dead_lettered", "publish_rate", "deliver_rate"}
    assert stats["workers_online"] == 0 and stats["broker_error"] is None
    assert stats["throughput"]["last_minute"] == {"SUCCESS": 0, "FAILURE": 0, "CANCELLED": 0}


class CountingConnection(redis.Connection):
    """Counts requests sent to Redis (a pipeline is one)."""

    sent = 0

    def send_packed_command(self, command, check_health=True):
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


@pytest.mark.skipif(is_cluster_url(REDIS_URL), reason="counts round trips on one server's connection pool; a "
                    "cluster's reads are timed by bench.cluster_scale")
def test_stats_costs_the_same_redis_round_trips_for_10_or_2000_tasks(engine, settings, api_settings, namespace):
    pool = redis.ConnectionPool.from_url(REDIS_URL, connection_class=CountingConnection, decode_responses=True)
    counted = redis.Redis(connection_pool=pool)
    counting = make_engine(settings, store=StateStore(counted, namespace, 3600),
                           workers=WorkerRegistry(counted, namespace, settings.worker_ttl_seconds))
    api = Api(create_app(counting, api_settings))
    try:
        def round_trips() -> int:
            api.get("/api/v1/tasks/stats")  # warm: registers scripts, fills the queue-stats cache
            before = CountingConnection.sent
            assert api.get("/api/v1/tasks/stats").status_code == 200
            return CountingConnection.sent - before

        client.submit_many([{"actor": "echo"}] * 10, engine=counting)
        few = round_trips()
        for _ in range(2):
            client.submit_many([{"actor": "echo"}] * 995, engine=counting)
        assert round_trips() == few
        assert few <= 6
    finally:
        counting.close()


def test_dead_lists_failures_dead_letter_depths_and_undecodable_messages(api, engine):
    engine.store.record_undecodable(b"\x00garbage", "DecodeError: not JSON")
    dead = api.get("/api/v1/tasks/dead", params={"queue": QUEUE}).json
    assert dead["tasks"] == [] and dead["next_cursor"] is None
    assert dead["dead_lettered"] == {QUEUE: 0}
    assert dead["undecodable"][0]["reason"] == "DecodeError: not JSON"


def test_requeue_refuses_an_unknown_queue_and_answers_zero_for_an_empty_one(api, engine):
    bad = api.post("/api/v1/tasks/dead/requeue", json={"queue": "nope"})
    assert bad.status_code == 422 and bad.json["error"]["fields"].keys() == {"queue"}
    bad_ids = api.post("/api/v1/tasks/dead/requeue", json={"queue": QUEUE, "task_ids": ["x"]})
    assert bad_ids.status_code == 422 and "task_ids.0" in bad_ids.json["error"]["fields"]
    done = api.post("/api/v1/tasks/dead/requeue", json={"queue": QUEUE})
    assert done.json == {"queue": QUEUE, "requeued": 0}


def test_workers_list_and_commands_without_workers(api):
    assert api.get("/api/v1/tasks/workers").json == {"workers": [], "count": 0}
    missing = api.post("/api/v1/tasks/workers/shutdown", json={"worker": "host:1"})
    assert missing.status_code == 404 and missing.json["error"]["fields"].keys() == {"worker"}
    sent = api.post("/api/v1/tasks/workers/pool/restart")
    assert sent.status_code == 202
    assert sent.json == {"command": "pool_restart", "worker": None, "processes_notified": 0}


def test_event_stream_of_a_finished_task_is_its_record_only(api, engine):
    task_id = client.submit("echo")
    client.cancel(task_id)
    result = api.get(f"/api/v1/tasks/{task_id}/events")
    assert result.headers["content-type"] == "text/event-stream"
    events = [block for block in result.text.split("\n\n") if block.startswith("event:")]
    assert len(events) == 1 and json.loads(events[0].split("data: ", 1)[1])["state"] == "CANCELLED"


def _stream(engine, **changes):
    settings = engine.settings.model_copy(update={"api_stream_keepalive_seconds": 0.2, **changes})
    return TaskEventsResource(lambda: engine, settings)


def _run(coroutine):
    return run_async(coroutine, 20)


def test_event_stream_sends_keep_alives_relays_events_and_ends_by_itself(engine):
    task_id = client.submit("echo")

    async def scenario():
        stream = _stream(engine, api_stream_max_seconds=1.0).events(task_id, caller=OPEN)
        opening = (await anext(stream)).serialize()
        assert b"\nretry: 3000\n" in opening and b'"state":"PENDING"' in opening
        await asyncio.to_thread(engine.store.report_progress, task_id, {"percent": 50.0, "message": "half"})
        assert (await anext(stream)).serialize().startswith(b"event: progress\ndata: ")
        started = time.monotonic()
        rest = [event.serialize() async for event in stream]
        assert b": keep-alive\n\n" in rest and time.monotonic() - started < 2

    _run(scenario())


def test_event_stream_ends_with_the_final_record_even_if_the_event_was_missed(engine):
    task_id = client.submit("echo")

    async def scenario():
        stream = _stream(engine, api_stream_max_seconds=30).events(task_id, caller=OPEN)
        await anext(stream)
        engine.store.redis.hset(engine.store.keys.task(task_id), "state", "SUCCESS")  # no event published
        return [event.serialize() async for event in stream][-1]

    last = _run(scenario())
    assert last.startswith(b"event: record") and b'"state":"SUCCESS"' in last


def test_a_reconnect_with_last_event_id_replays_every_state_change_it_missed(engine):
    task_id = client.submit("echo")
    engine.store.start(task_id, "host:1", 1, redelivered=False)  # state change 1: STARTED

    async def scenario():
        first = _stream(engine).events(task_id, caller=OPEN)
        opening = (await anext(first)).serialize()
        await first.aclose()
        seen = int(re.search(rb"^id: (\d+)$", opening, re.M).group(1))
        await asyncio.to_thread(engine.store.finish, task_id, "SUCCESS", {"result": "1"})
        resumed = [event.serialize() async for event in _stream(engine).events(task_id, last_seen=seen, caller=OPEN)]
        return seen, resumed

    seen, resumed = _run(scenario())
    states = [json.loads(block.split(b"data: ", 1)[1]) for block in resumed if block.startswith(b"event: state")]
    _, history = engine.store.get_with_history(task_id)
    assert [event["seq"] for event in states] == list(range(seen + 1, len(history) + 1))
    assert states[-1]["state"] == "SUCCESS" and resumed[-1].startswith(b"event: record")


def test_unknown_ids_in_an_events_path_are_404(api):
    assert api.get(f"/api/v1/tasks/{uuid.uuid4()}/events").status_code == 404

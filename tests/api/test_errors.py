"""One JSON error body everywhere, naming the field; engine errors map to the right status."""

import copy
import uuid

import pytest
import redis

from api.auth import Access
from api.resources.submit import BulkSubmitResource, SubmitResource
from api.resources.tasks import TaskStatusResource
from pipeline import client
from pipeline.broker import make_broker
from pipeline.engine import Engine
from pipeline.errors import BrokerUnavailable, InvalidArguments, SubmissionInProgress, UnknownActor


def error(result, status: int) -> dict:
    assert result.status_code == status, result.text
    assert result.headers["content-type"].startswith("application/json")
    body = result.json["error"]
    assert body["status"] == status and body["title"] and body["description"]
    return body


def test_unknown_route_and_wrong_method_answer_json(api):
    assert "/nowhere" in error(api.get("/nowhere"), 404)["description"]
    assert error(api.request("DELETE", "/api/v1/tasks/list"), 405)["title"] == "Method Not Allowed"
    assert error(api.get("/api/v1/tasks/bulk"), 405)


def test_malformed_json_wrong_type_and_missing_body(api):
    bad = error(api.post("/api/v1/tasks/bulk", body="{nope", headers={"Content-Type": "application/json"}), 400)
    assert bad["fields"] == {"body": "not valid JSON"}
    assert error(api.post("/api/v1/tasks/bulk", body="[]", headers={"Content-Type": "application/json"}), 422)["fields"] == {
        "body": "must be a JSON object"}
    assert error(api.post("/api/v1/tasks/bulk"), 400)["fields"] == {"body": "required"}
    error(api.post("/api/v1/tasks/bulk", body="tasks=1", headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    error(api.post("/api/v1/tasks/bulk", body="x", headers={"Content-Type": "text/plain"}), 415)


def test_a_body_over_the_limit_is_refused_before_it_is_parsed(api, api_settings):
    size = api_settings.max_body_bytes + 1
    body = error(api.post("/api/v1/tasks/bulk", body=b"x" * size, headers={"Content-Type": "application/json"}), 413)
    assert "CLAW_MAX_BODY_BYTES" in body["description"]


def test_query_errors_name_the_parameter(api):
    assert error(api.get("/api/v1/tasks/list", params={"limit": "501"}), 400)["fields"].keys() == {"limit"}
    assert error(api.get("/api/v1/tasks/list", params={"limit": "0"}), 400)["fields"].keys() == {"limit"}
    assert error(api.get("/api/v1/tasks/list", params={"state": "DONE"}), 400)["fields"].keys() == {"state"}
    assert error(api.get("/api/v1/tasks/list", params={"since": "yesterday"}), 400)["fields"].keys() == {"since"}
    assert error(api.get("/api/v1/tasks/list", params={"since": "2030-01-01", "until": "2020-01-01"}), 400)["fields"].keys() == {"since"}
    assert error(api.get("/api/v1/tasks/list", params={"cursor": "bm90LWEtY3Vyc29y"}), 400)["fields"].keys() == {"cursor"}
    assert error(api.get("/api/v1/tasks/list", params={"stat": "FAILURE"}), 400)["fields"].keys() == {"stat"}
    assert error(api.get("/api/v1/tasks/list", params={"actor": "a b"}), 400)["fields"].keys() == {"actor"}


def test_task_ids_must_be_plausible_and_known(api):
    assert error(api.get("/api/v1/tasks/status/not-an-id"), 400)["fields"].keys() == {"task_id"}
    assert error(api.post("/api/v1/tasks/cancel/../../etc"), 404)  # not even routed
    unknown = str(uuid.uuid4())
    assert unknown in error(api.get(f"/api/v1/tasks/status/{unknown}"), 404)["description"]
    error(api.post(f"/api/v1/tasks/cancel/{unknown}"), 404)
    error(api.post(f"/api/v1/tasks/retry/{unknown}"), 404)
    error(api.get(f"/api/v1/tasks/{unknown}/events"), 404)


def test_conflicts_carry_the_current_state(api, engine):
    task_id = client.submit("echo", kwargs={"value": 1})
    client.cancel(task_id)
    again = error(api.post(f"/api/v1/tasks/cancel/{task_id}"), 409)
    assert again["state"] == "CANCELLED" and "finished" in again["description"]
    pending = client.submit("echo", kwargs={"value": 2})
    assert error(api.post(f"/api/v1/tasks/retry/{pending}"), 409)["state"] == "PENDING"


def test_engine_errors_raised_anywhere_map_to_their_status(make_api):
    class Raises:
        access = {"GET": Access("tasks:read", users=False)}

        def __init__(self, exc):
            self.exc = exc

        async def on_get(self, req, resp):
            raise self.exc

    cases = {
        "/invalid": (InvalidArguments("bad", {"kwargs.x": "wrong"}), 422),
        "/unknown": (UnknownActor("unknown actor 'zz'"), 400),
        "/in-progress": (SubmissionInProgress("still being processed", "some-id"), 409),
        "/broker": (BrokerUnavailable("RabbitMQ did not confirm"), 503),
        "/redis": (redis.ConnectionError("refused"), 503),
        "/bug": (RuntimeError("secret internals"), 500),
    }
    api = make_api(extra_routes=[(path, Raises(exc)) for path, (exc, _) in cases.items()])
    assert error(api.get("/invalid"), 422)["fields"] == {"kwargs.x": "wrong"}
    assert error(api.get("/unknown"), 400)["fields"].keys() == {"actor"}
    assert error(api.get("/in-progress"), 409)["fields"].keys() == {"idempotency_key"}
    assert api.get("/in-progress").headers["Retry-After"] == "1"
    assert api.get("/broker").headers["Retry-After"] and api.get("/redis").headers["Retry-After"]
    error(api.get("/broker"), 503)
    error(api.get("/redis"), 503)
    bug = api.get("/bug")
    assert "secret" not in bug.text and "Traceback" not in bug.text
    error(bug, 500)


def test_redis_down_gives_503_with_retry_after(make_api, engine):
    dead = "redis://127.0.0.1:1/0"
    store = copy.copy(engine.store)  # (building a StateStore already talks to Redis)
    store.redis = redis.Redis.from_url(dead, decode_responses=True, socket_connect_timeout=0.5)
    broken = Engine(engine.settings.model_copy(update={"redis_url": dead}), store, engine.workers, engine.broker)
    api = make_api(extra_routes=[("/status-on-dead-redis/{task_id}", TaskStatusResource(lambda: broken))])
    result = api.get(f"/status-on-dead-redis/{uuid.uuid4()}")
    assert "Redis" in error(result, 503)["description"] and result.headers["Retry-After"] == "5"


@pytest.fixture
def dead_broker_engine(engine, settings):
    unreachable = settings.model_copy(update={"broker_url": "amqp://guest:guest@127.0.0.1:1/%2F"})
    broken = Engine(unreachable, engine.store, engine.workers, make_broker(unreachable, engine.store))
    yield broken
    broken.close()


def test_broker_down_gives_503_and_leaves_no_record(make_api, engine, dead_broker_engine):
    api = make_api(extra_routes=[("/echo-on-dead-broker", SubmitResource(lambda: dead_broker_engine, "echo"))])
    result = api.post("/echo-on-dead-broker", json={"value": 1})
    assert error(result, 503)["title"] == "Broker unavailable" and result.headers["Retry-After"]
    assert engine.store.count_by_state([], [])["states"]["PENDING"] == 0


def test_bulk_with_the_broker_down_gives_503(make_api, dead_broker_engine):
    api = make_api(extra_routes=[("/bulk-on-dead-broker", BulkSubmitResource(lambda: dead_broker_engine))])
    result = api.post("/bulk-on-dead-broker", json={"tasks": [{"actor": "echo", "kwargs": {"value": 1}}]})
    assert error(result, 503)["title"] == "Broker unavailable" and result.headers["Retry-After"]


def test_bulk_with_the_broker_down_leaves_no_record(make_api, engine, dead_broker_engine):
    api = make_api(extra_routes=[("/bulk-on-dead-broker", BulkSubmitResource(lambda: dead_broker_engine))])
    api.post("/bulk-on-dead-broker", json={"tasks": [{"actor": "echo", "kwargs": {"value": 1}}]})
    assert engine.store.count_by_state([], [])["states"]["PENDING"] == 0

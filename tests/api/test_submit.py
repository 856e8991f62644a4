"""Submit endpoints (generic over any actor) and bulk submission."""

import time
from datetime import datetime, timedelta, timezone

import pytest

from api.resources.submit import SubmitResource
from tests import sample_tasks
from tests.api.conftest import QUEUE
from tests.conftest import queue_depth


@pytest.fixture
def submit_api(make_api, engine):
    """The app with a submit endpoint for the sample ``echo`` actor and one for an undeclared actor."""
    return make_api(extra_routes=[
        ("/test/echo", SubmitResource(lambda: engine, "echo")),
        ("/test/missing", SubmitResource(lambda: engine, "not_declared_here")),
    ])


def test_submit_answers_202_with_id_state_and_status_url(submit_api, engine):
    result = submit_api.post("/test/echo", role="submit", json={"value": [1, 2], "priority": 7})
    assert result.status_code == 202
    task_id = result.json["task_id"]
    assert result.json == {"task_id": task_id, "state": "PENDING", "status_url": f"/api/v1/tasks/status/{task_id}"}
    record = engine.store.get(task_id)
    assert record["actor"] == "echo" and record["priority"] == 7 and record["kwargs"] == {"value": [1, 2]}
    assert record["queue"] == QUEUE
    assert queue_depth(sample_tasks.QUEUE) == 1


def test_arguments_and_options_are_validated_naming_each_field(submit_api, engine):
    result = submit_api.post("/test/echo", role="submit", json={"nope": 1, "priority": 10, "delay_seconds": -1})
    assert result.status_code == 422
    assert result.json["error"]["fields"].keys() == {"nope", "priority", "delay_seconds"}
    both = submit_api.post("/test/echo", role="submit", json={"delay_seconds": 1, "eta": "2030-01-01T00:00:00Z"})
    assert both.status_code == 422
    far = submit_api.post("/test/echo", role="submit", json={"delay_seconds": 86_401})  # past a day
    assert far.json["error"]["fields"].keys() == {"delay_seconds"}
    assert engine.store.count_by_state([], [])["states"]["PENDING"] == 0


def test_delay_seconds_and_eta_set_the_tasks_eta(submit_api, engine):
    delayed = submit_api.post("/test/echo", role="submit", json={"delay_seconds": 30}).json["task_id"]
    record = engine.store.get(delayed)
    assert record["wait_reason"] == "delay" and record["eta"] == pytest.approx(time.time() + 30, abs=3)
    two_hours = submit_api.post("/test/echo", role="submit", json={"delay_seconds": 7200}).json["task_id"]
    assert engine.store.get(two_hours)["eta"] == pytest.approx(time.time() + 7200, abs=3)
    eta = datetime.now(timezone.utc) + timedelta(seconds=60)
    later = submit_api.post("/test/echo", role="submit", json={"eta": eta.isoformat()}).json["task_id"]
    assert engine.store.get(later)["eta"] == pytest.approx(eta.timestamp(), abs=3)


def test_the_same_idempotency_key_returns_the_same_task_in_its_current_state(submit_api, engine):
    first = submit_api.post("/test/echo", role="submit", json={"value": 1, "idempotency_key": "order-42"}).json
    engine.store.finish(first["task_id"], "SUCCESS", {"result": "1"})
    second = submit_api.post("/test/echo", role="submit", json={"value": 1, "idempotency_key": "order-42"}).json
    assert second["task_id"] == first["task_id"] and second["state"] == "SUCCESS"
    assert queue_depth(sample_tasks.QUEUE) == 1


def test_an_actor_not_declared_in_this_process_answers_503(submit_api):
    result = submit_api.post("/test/missing", role="submit", json={})
    assert result.status_code == 503 and "not_declared_here" in result.json["error"]["description"]


def test_the_domain_endpoints_name_their_actors(engine):
    from api.routes import route_table

    routes = route_table(lambda: engine, engine.settings, metrics=None, openapi=None, queue_stats=None)
    assert {route.resource.actor for route in routes if isinstance(route.resource, SubmitResource)} == {
        "generate_ai_response", "vectorize_document", "update_knowledge_base", "delete_knowledge_vectors", "send_notification"}


def test_bulk_returns_ids_in_order_and_records_every_task(api, engine):
    tasks = [{"actor": "echo", "kwargs": {"value": i}, "priority": i % 10} for i in range(50)]
    tasks.append({"actor": "record_order", "kwargs": {"list_key": "k", "tag": "t"}, "delay_seconds": 5})
    result = api.post("/api/v1/tasks/bulk", role="submit", json={"tasks": tasks})
    assert result.status_code == 202 and result.json["count"] == 51
    records = engine.store.get_many(result.json["task_ids"])
    assert [r["kwargs"].get("value") for r in records[:50]] == list(range(50))
    assert records[50]["actor"] == "record_order" and records[50]["wait_reason"] == "delay"


def test_bulk_is_all_or_nothing_and_names_the_bad_entries(api, engine):
    tasks = [{"actor": "echo"}, {"actor": "echo", "kwargs": {"bad": 1}}, {"actor": "no_such_actor"}, {"actor": "echo", "priority": 12}]
    result = api.post("/api/v1/tasks/bulk", role="submit", json={"tasks": tasks})
    assert result.status_code == 422
    assert set(result.json["error"]["fields"]) == {"tasks.3.priority"}  # the shape is checked first
    del tasks[3]
    result = api.post("/api/v1/tasks/bulk", role="submit", json={"tasks": tasks})
    assert set(result.json["error"]["fields"]) == {"tasks.1.bad", "tasks.2.actor"}
    assert engine.store.count_by_state([], [])["states"]["PENDING"] == 0


def test_bulk_takes_at_most_1000_tasks(api):
    result = api.post("/api/v1/tasks/bulk", role="submit", json={"tasks": [{"actor": "echo"}] * 1001})
    assert result.status_code == 422 and result.json["error"]["fields"].keys() == {"tasks"}
    assert api.post("/api/v1/tasks/bulk", role="submit", json={"tasks": []}).status_code == 422

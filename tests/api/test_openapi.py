"""The API description: public (unless hidden), a named operation for every route, a typed answer for every
JSON success, the event stream's events and one pagination convention; and X-Request-ID on every answer."""

from __future__ import annotations

import re
import uuid

from api.auth import responders
from api.routes import route_table

CAMEL = re.compile(r"^[a-z]+(?:[A-Z][a-z0-9]*)+$")


def test_the_api_description_is_served_without_a_token_and_hidden_on_request(api, make_api, api_settings):
    assert api.get("/openapi.json", role=None).status_code == 200
    hidden = make_api(settings=api_settings.model_copy(update={"openapi_public": False}))
    assert hidden.get("/openapi.json", role=None).status_code == 401
    assert hidden.get("/openapi.json", role="read").status_code == 200


def test_every_route_of_the_table_has_a_named_camel_case_operation_id(api, engine):
    spec = api.get("/openapi.json", role=None).json
    names = {}
    for route in route_table(lambda: engine, engine.settings, metrics=None, openapi=_Doc(), queue_stats=None):
        if not route.documented:
            continue
        template = re.sub(r"{(\w+)(?::[^}]*)?}", r"{\1}", route.path)
        for method in responders(route.resource):
            name = spec["paths"][template][method.lower()]["operationId"]
            assert CAMEL.match(name), f"{method} {template}: {name!r} is not a named camelCase operation id"
            names[f"{method} {template}"] = name
    assert names["GET /api/v1/tasks/status/{task_id}"] == "getTaskStatus"
    assert names["POST /api/v1/tasks/ai/generate"] == "submitGenerateAiResponse"
    assert names["GET /api/v1/tasks/{task_id}/events"] == "streamTaskEvents"
    assert names["POST /api/v1/workflows"] == "submitWorkflow" and names["GET /api/v1/workflows/{workflow_id}"] == "getWorkflow"
    assert len(set(names.values())) == len(names)


def test_every_json_success_answer_has_a_named_schema(api):
    spec = api.get("/openapi.json", role=None).json
    untyped = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                content = answer.get("content", {}).get("application/json")
                if status.startswith("2") and content is not None and "$ref" not in content["schema"]:
                    untyped.append(f"{method.upper()} {path} {status}")
    assert untyped == []
    schemas = spec["components"]["schemas"]
    assert {"KnowledgeBaseList", "SearchResults", "MessagePage", "InboxPage", "MarkReadOutcome", "WorkerInfo"} <= set(schemas)
    events = spec["paths"]["/api/v1/tasks/{task_id}/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]
    stream = schemas[events["x-event-data"]["$ref"].rsplit("/", 1)[1]]
    assert set(stream["properties"]) == {"record", "state", "progress", "waiting"}


def test_paged_lists_take_limit_and_cursor_and_answer_next_cursor(api):
    spec = api.get("/openapi.json", role=None).json
    paged = ["/api/v1/tasks/list", "/api/v1/tasks/dead", "/api/v1/conversations/{conversation_id}/messages",
             "/api/v1/notifications/{user_id}", "/api/v1/workflows/{workflow_id}"]
    for path in paged:
        operation = spec["paths"][path]["get"]
        assert {"limit", "cursor"} <= {p["name"] for p in operation["parameters"]}, path
        page = spec["components"]["schemas"][operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
        assert "next_cursor" in page["properties"], path
    assert "**Pagination.**" in spec["info"]["description"]


def test_every_answer_carries_a_request_id_the_clients_when_sane(api):
    given = api.get("/api/v1/tasks/stats", headers={"X-Request-ID": "checkout-42.a:b"})
    assert given.headers["X-Request-ID"] == "checkout-42.a:b"
    made = api.get("/api/v1/tasks/stats", headers={"X-Request-ID": "no spaces allowed\u00e9"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    refused = api.get(f"/api/v1/tasks/status/{uuid.uuid4()}", role=None)
    assert refused.status_code == 401 and refused.headers["X-Request-ID"]
    missing = api.get("/no/such/route")
    assert missing.status_code == 404 and missing.headers["X-Request-ID"]
    assert api.get("/health", role=None).headers["X-Request-ID"] != api.get("/health", role=None).headers["X-Request-ID"]


def test_a_submitted_task_keeps_the_request_id_in_its_record_and_message(api, engine):
    answer = api.post("/api/v1/tasks/bulk", role="submit", headers={"X-Request-ID": "req-bulk-1"},
                      json={"tasks": [{"actor": "echo", "kwargs": {"value": 1}}]})
    task_id = answer.json["task_ids"][0]
    assert engine.store.get(task_id)["request_id"] == "req-bulk-1"
    status = api.get(f"/api/v1/tasks/status/{task_id}")
    assert status.json["request_id"] == "req-bulk-1"


class _Doc:
    roles = {"GET": "public"}

    async def on_get(self, req, resp):  # pragma: no cover - only its responders are listed
        pass

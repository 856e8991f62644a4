"""POST /api/v1/workflows and its status, cancel and retry routes, through a real worker."""

from __future__ import annotations

import uuid

from tests.conftest import wait_until


def chord_body(**extra):
    return {"kind": "chord", "members": [{"actor": "echo", "kwargs": {"value": i}} for i in range(3)],
            "callback": {"actor": "collect"}, **extra}


def wait_done(api, url: str) -> dict:
    return wait_until(lambda: (r := api.get(url).json)["state"] != "RUNNING" and r["counts"]["pending"] == 0 and r,
                      60, 0.1, url)


def test_submit_a_chord_and_follow_it_to_its_result(api, start_worker):
    start_worker()
    created = api.post("/api/v1/workflows", role="submit", json=chord_body(name="three echoes"))
    assert created.status_code == 202, created.json
    body = created.json
    assert (body["kind"], body["total"]) == ("chord", 4) and body["state"] in ("RUNNING", "SUCCESS")
    done = wait_done(api, body["status_url"])
    assert done["state"] == "SUCCESS" and done["percent"] == 100 and done["name"] == "three echoes"
    assert [r["value"] for r in done["result"]["results"]] == [0, 1, 2]
    assert [m["state"] for m in done["members"]] == ["SUCCESS"] * 4
    member = api.get(f"/api/v1/tasks/status/{done['members'][0]['task_id']}").json
    assert member["workflow"] == body["workflow_id"] and member["wf_index"] == 0
    page = api.get(body["status_url"], params={"offset": 3, "limit": 1}).json
    assert [m["index"] for m in page["members"]] == [3]


def test_bad_workflows_are_refused_naming_the_field(api, engine):
    cases = [
        ({"kind": "chain", "steps": [{"actor": "add", "kwargs": {"value": "x"}}]}, "steps.0.kwargs.value"),
        ({"kind": "chain", "steps": [{"actor": "add"}, {"actor": "echo"}]}, "steps.1.kwargs.previous"),
        ({"kind": "group", "members": [{"actor": "nope"}]}, "members.0.actor"),
        ({"kind": "chord", "members": [{"actor": "echo"}], "callback": {"actor": "collect"}, "on_failure": "x"},
         "on_failure"),
        ({"kind": "loop"}, "kind"),
        ({"kind": "group", "members": [{"actor": "echo"}], "name": 7}, "name"),
    ]
    for body, field in cases:
        answer = api.post("/api/v1/workflows", role="submit", json=body)
        assert answer.status_code == 422 and field in answer.json["error"]["fields"], (body, answer.json)
    assert api.post("/api/v1/workflows", role="read", json=chord_body()).status_code == 403
    assert api.get("/api/v1/workflows/not-an-id").status_code == 400
    assert api.get(f"/api/v1/workflows/{uuid.uuid4()}").status_code == 404


def test_an_idempotency_key_answers_the_same_workflow_with_200(api):
    key = uuid.uuid4().hex
    first = api.post("/api/v1/workflows", role="submit", json=chord_body(idempotency_key=key))
    again = api.post("/api/v1/workflows", role="submit", json=chord_body(idempotency_key=key))
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json["workflow_id"] == again.json["workflow_id"]
    assert api.post(f"/api/v1/workflows/{first.json['workflow_id']}/cancel").status_code == 200


def test_cancel_and_retry_over_http(api, start_worker):
    body = {"kind": "group", "members": [{"actor": "echo", "kwargs": {"value": i}} for i in range(4)]}
    workflow_id = api.post("/api/v1/workflows", role="submit", json=body).json["workflow_id"]
    cancelled = api.post(f"/api/v1/workflows/{workflow_id}/cancel")  # no worker yet: all four still PENDING
    assert cancelled.status_code == 200 and cancelled.json["cancelled"] == 4
    assert api.post(f"/api/v1/workflows/{workflow_id}/cancel").status_code == 409
    assert api.post(f"/api/v1/workflows/{workflow_id}/retry", role="submit").status_code == 403
    retried = api.post(f"/api/v1/workflows/{workflow_id}/retry")
    assert retried.status_code == 202 and sorted(retried.json["retried"]) == ["0", "1", "2", "3"]
    start_worker()
    done = wait_done(api, f"/api/v1/workflows/{workflow_id}")
    assert done["state"] == "SUCCESS" and done["counts"]["succeeded"] == 4 and done["retries"] == 1

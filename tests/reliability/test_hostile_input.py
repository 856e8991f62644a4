"""Hostile input: the whole API fuzzed from its own OpenAPI document, with every role, a user token and
none; oversized, deep, huge and strange bodies. Never a 5xx, never something enqueued."""

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.api.conftest import auth
from tests.reliability.conftest import scale

#: Submit endpoints whose actor the test process has (the rest answer 503 by design).
ROLES = (None, "read", "submit", "admin", "user")


def headers_of(api, role):
    """The role's service token, or (``user``) a user token minted for a fuzzing user."""
    if role != "user":
        return auth(role)
    minted = api.post("/api/v1/auth/user-tokens", role="admin", json={"user_id": "fuzz-user", "tenant_id": "fuzz"})
    return {"Authorization": f"Bearer {minted.json['token']}"}


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "no-token")
def test_every_operation_fuzzed_with_each_role_never_answers_5xx_or_off_spec(api, engine, role, report):
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app, headers=auth("read"))
    # Creating knowledge bases would leave fuzzed names in the development database.
    schema = schema.exclude(method="POST", path="/api/v1/knowledge")
    operations = [result.ok() for result in schema.get_all_operations()]
    calls = {"total": 0}
    headers = headers_of(api, role)
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=scale(4, 25), deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            calls["total"] += 1
            # A schema-valid request may still be refused (a cursor this API never made, since > until).
            response = case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
            assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code}"

        check()
    label = "a user token" if role == "user" else f"role={role or 'no token'}"
    report(fault=f"schemathesis fuzz of every operation, {label}", accepted=calls["total"], completed=calls["total"],
           failed=0, lost=0, duplicated=0, operations=len(operations), server_errors=0, recovery_seconds=None)


@pytest.mark.parametrize(
    "body, status",
    [
        ("x" * 2_000_000, 413),  # over CLAW_MAX_BODY_BYTES
        ("[" * 600_000 + "]" * 600_000, 413),
        ("[" * 100_000 + "]" * 100_000, 400),  # deep, under the size limit: the parser cannot take it
        ('{"tasks": [{"actor": "echo", "kwargs": {"value": ' + "[" * 600 + "]" * 600 + "}}]}", 400),  # past MAX_JSON_DEPTH
        ('{"tasks": [{"actor": "echo", "kwargs": {"value": ' + '{"a":' * 60 + "1" + "}" * 60 + "}}]}", 202),  # deep but allowed
        ('{"tasks": [{"actor": "echo", "kwargs": {"value": "' + "字" * 300_000 + '"}}]}', 202),  # large but allowed
        ('{"tasks": [{"actor": "echo", "kwargs": {"value": "\\ud800"}}]}', 400),  # a lone surrogate is not text
        ('{"tasks": [{"actor": "echo", "kwargs": {"value": "\\u0000\\u202e\\ufeff"}}]}', 202),
        ('{"tasks": [{"actor": "echo", "priority": 10}]}', 422),
        ('{"tasks": [{"actor": "echo", "priority": -1}]}', 422),
        ('{"tasks": [{"actor": "echo", "priority": "nine"}]}', 422),
        ('{"tasks": [{"actor": "../../etc/passwd"}]}', 422),
        ('{"tasks": [{"actor": "echo", "delay_seconds": 1e308}]}', 422),
        ('{"tasks": [{"actor": "echo", "kwargs": {"nope": 1}}]}', 422),
        ('{"tasks": "' + "a" * 1000 + '"}', 422),
        ("\xff\xfe not utf-8", 400),
    ],
    ids=["2MB", "deep-1.2MB", "deep-200k", "deep-600", "deep-63", "300k-chars", "surrogate", "controls", "prio-10", "prio-neg", "prio-str",
         "actor-path", "delay-huge", "unknown-kwarg", "tasks-string", "not-utf8"],
)
def test_strange_bodies_get_a_clear_4xx_and_enqueue_nothing_unless_valid(api, engine, body, status):
    before = engine.store.count_by_state([], [])["states"]["PENDING"]
    answer = api.request("POST", "/api/v1/tasks/bulk", role="submit", body=body.encode("utf-8", "surrogatepass"),
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == status, answer.text[:300]
    after = engine.store.count_by_state([], [])["states"]["PENDING"]
    if status >= 400:
        error = answer.json["error"]
        assert error["status"] == status and error["title"] and error["description"]
        assert after == before
    else:
        assert after == before + 1


@pytest.mark.parametrize("path", ["/api/v1/tasks/status/..%2F..", "/api/v1/tasks/status/" + "a" * 5000,
                                  "/api/v1/tasks/status/%00", "/api/v1/tasks/cancel/'%20OR%201=1"])
def test_invalid_ids_are_refused_with_400_or_404(api, path):
    method = "POST" if "/cancel/" in path else "GET"
    answer = api.request(method, path, role="admin")
    assert answer.status_code in (400, 404) and json.loads(answer.text)["error"]["status"] == answer.status_code


@pytest.mark.parametrize("cron, field", [("61 * * * *", "cron"), ("* * * *", "cron"), ("0 0 31 2 *", "cron")])
def test_invalid_cron_expressions_are_refused_naming_the_field(api, cron, field):
    answer = api.request("POST", "/api/v1/schedules", role="admin",
                         json={"id": "bad", "actor": "echo", "cron": cron, "kwargs": {}})
    assert answer.status_code in (400, 422) and field in answer.json["error"]["description"], answer.text

"""Every route is protected, documented and valid OpenAPI; tokens, roles and scopes work as specified."""

import re
import subprocess
import sys
import uuid

import pytest
from falcon.inspect import inspect_app
from openapi_spec_validator import validate

from api.app import create_app
from api.auth import access_of
from api.scopes import ROLES
from pipeline.errors import ConfigError
from tests.api.conftest import TOKENS
from tests.conftest import ROOT
from tests.app_client import AppClient

PUBLIC_ROUTES = {"/health", "/ready", "/openapi.json", "/docs", "/docs/assets/{name}"}
#: The dashboard's HTML pages authenticate with a session cookie instead of a
#: bearer token; only these two are reachable without one.
DASHBOARD = "/dashboard"
DASHBOARD_OPEN = {"/dashboard/login", "/dashboard/static/{name}"}


def routes(app, dashboard: bool = False):
    """(uri template, concrete path, resource, methods with a real responder) for every
    JSON API route, or with *dashboard* for every dashboard page."""
    for route in inspect_app(app).routes:
        if route.path.startswith(DASHBOARD) != dashboard:
            continue
        path = re.sub(r"{(\w+)}", lambda m: str(uuid.uuid4()) if m.group(1) == "task_id" else "x", route.path)
        resource = app._router.find(path)[0]
        methods = [m.method for m in route.methods if not m.internal]
        yield route.path, path, resource, methods


def test_every_non_public_route_refuses_no_token_a_wrong_token_and_a_role_without_its_scope(api):
    checked = 0
    for template, path, resource, methods in routes(api.app):
        for method in methods:
            access = access_of(resource, method)
            if access.public:
                assert template in PUBLIC_ROUTES, f"{method} {template} is public but not on the public list"
                continue
            missing = api.request(method, path, role=None)
            assert missing.status_code == 401, f"{method} {template} without a token: {missing.status_code}"
            assert missing.headers["WWW-Authenticate"] == "Bearer"
            wrong = api.request(method, path, role=None, headers={"Authorization": "Bearer not-a-token-at-all"})
            assert wrong.status_code == 401, f"{method} {template} with a wrong token"
            for role in (r for r in ROLES if access.scope and access.scope not in ROLES[r]
                         and not (access.scope.startswith("tasks:submit:") and "tasks:submit:*" in ROLES[r])):
                low = api.request(method, path, role=role)
                assert low.status_code == 403, f"{method} {template} as {role}: {low.status_code}"
                assert access.scope in low.json["error"]["description"]
            checked += 1
    assert checked >= 25


def test_every_dashboard_page_but_login_and_assets_refuses_a_visitor_without_a_session(api):
    checked = 0
    for template, path, _, methods in routes(api.app, dashboard=True):
        if template in DASHBOARD_OPEN:
            continue
        for method in methods:
            answer = api.request(method, path, role=None, headers={"Authorization": f"Bearer {TOKENS['admin']}"})
            assert answer.status_code in (303, 401, 403), f"{method} {template}: {answer.status_code}"
            if answer.status_code == 303:
                assert answer.headers["Location"].startswith("/dashboard/login")
            checked += 1
    assert checked >= 15


def test_public_routes_are_exactly_health_ready_the_api_description_and_the_docs_page(api):
    public = {t for t, _, resource, methods in routes(api.app) for m in methods if access_of(resource, m).public}
    assert public == PUBLIC_ROUTES


def test_every_route_and_method_is_in_a_valid_openapi_document(api):
    spec = api.get("/openapi.json").json
    validate(spec)
    for template, _, _, methods in routes(api.app):
        for method in methods:
            assert method.lower() in spec["paths"].get(template, {}), f"{method} {template} is not documented"
    listing = spec["paths"]["/api/v1/tasks/list"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"state", "actor", "queue", "since", "until", "limit", "cursor",
                                                         "user_id"}
    assert listing["security"] == [{"bearerAuth": []}] and "Scope: `tasks:read`" in listing["description"]
    assert "their own user's records only" in listing["description"]
    cancel = spec["paths"]["/api/v1/tasks/cancel/{task_id}"]["post"]
    assert {"401", "403", "404", "409"} <= set(cancel["responses"])


def test_a_submit_endpoint_documents_its_actors_arguments_and_the_options(make_api):
    from api.resources import submit

    api = make_api(extra_routes=[("/x/echo", submit.SubmitResource(lambda: None, "echo"))])
    body = api.get("/openapi.json").json["paths"]["/x/echo"]["post"]["requestBody"]["content"]["application/json"]
    name = body["schema"]["$ref"].rsplit("/", 1)[1]
    schema = api.get("/openapi.json").json["components"]["schemas"][name]
    assert {"value", "password", "priority", "delay_seconds", "eta", "idempotency_key", "user_id", "tenant_id"} <= set(schema["properties"])


def test_each_role_reaches_what_it_may(api):
    assert api.get("/api/v1/tasks/stats", role="read").status_code == 200
    assert api.post("/api/v1/tasks/bulk", role="submit", json={"tasks": [{"actor": "echo"}]}).status_code == 202
    assert api.get("/api/v1/tasks/list", role="admin").status_code == 200  # higher roles include lower ones
    assert api.post(f"/api/v1/tasks/cancel/{uuid.uuid4()}", role="admin").status_code == 404
    refused = api.post("/api/v1/tasks/bulk", role="read", json={"tasks": [{"actor": "echo"}]})
    assert refused.status_code == 403 and refused.json["error"]["fields"] == {"tasks.0.actor": "needs tasks:submit:echo (or tasks:submit:*)"}


def test_the_app_refuses_to_start_without_tokens_unless_auth_is_disabled(engine, settings):
    with pytest.raises(ConfigError, match="CLAW_API_TOKENS"):
        create_app(engine, settings.model_copy(update={"api_tokens": []}))
    open_app = create_app(engine, settings.model_copy(update={"api_tokens": [], "auth_disabled": True}))
    assert AppClient(open_app).simulate_get("/api/v1/tasks/stats").status_code == 200


def test_a_resource_with_a_responder_but_no_access_decision_cannot_be_mounted(make_api):
    from api.auth import Access

    class Forgetful:
        access = {"GET": Access("tasks:read", users=False)}

        async def on_get(self, req, resp): ...

        async def on_delete(self, req, resp): ...

    with pytest.raises(ConfigError, match="DELETE /forgetful"):
        make_api(extra_routes=[("/forgetful", Forgetful())])


def test_extra_routes_are_mounted_with_auth_and_documented(make_api):
    from api.auth import Access

    class Reports:
        """The operators' reports."""

        access = {"GET": Access("audit:read", users=False)}

        async def on_get(self, req, resp):
            resp.media = {"ok": True}

    api = make_api(extra_routes=[("/reports", Reports())])
    assert api.get("/reports", role="read").status_code == 403
    assert api.get("/reports", role="admin").json == {"ok": True}
    assert api.get("/openapi.json").json["paths"]["/reports"]["get"]["summary"] == "The operators' reports."


def test_tokens_are_matched_exactly(api):
    token = TOKENS["admin"]
    for header in (f"Bearer {token[:-1]}", f"Bearer {token}x", f"Basic {token}", token, "Bearer "):
        assert api.get("/api/v1/tasks/stats", role=None, headers={"Authorization": header}).status_code == 401
    assert api.get("/api/v1/tasks/stats", role=None, headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_the_api_command_stops_with_one_error_naming_the_variable_when_no_token_is_set(env):
    clean = {k: v for k, v in env.items() if k not in ("CLAW_API_TOKENS", "CLAW_AUTH_DISABLED")}
    done = subprocess.run([sys.executable, "-c", "from api.cli import run_api; run_api('127.0.0.1:1', 1)"],
                          env=clean, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "ConfigError: CLAW_API_TOKENS" in done.stderr

"""Service tokens: each scope opens exactly its routes, roles are bundles of scopes, tokens may be configured as
SHA-256 hashes, weak tokens and unknown scopes stop the API at start with one line, and the token's name is what
task records (submitted_by) and the audit log show."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid

import pytest
from falcon.inspect import inspect_app

from api.app import create_app
from api.auth import access_of
from api.scopes import ROLES, SCOPES
from pipeline.errors import ConfigError
from pipeline.tokens import digest, parse_tokens
from tests.api.conftest import Api
from tests.conftest import ROOT


def token() -> str:
    return f"tok-{uuid.uuid4().hex}{uuid.uuid4().hex}"


@pytest.fixture
def scoped(make_api, api_settings):
    """An Api whose tokens each hold one scope: ``scoped.call(scope, method, path)``."""
    secrets = {scope: token() for scope in [*SCOPES, "tasks:submit:echo"]}
    entries = ",".join(f"s{i}:{secret}:{scope}" for i, (scope, secret) in enumerate(secrets.items()))
    api = make_api(settings=api_settings.model_copy(update={"api_tokens": parse_tokens(entries)}))
    api.secrets = secrets
    api.call = lambda scope, method, path, **kw: api.request(method, path, role=None,  # noqa: E731
                                                              headers={"Authorization": f"Bearer {secrets[scope]}"}, **kw)
    return api


def test_each_scope_opens_the_routes_that_need_it_and_no_other(scoped, engine):
    checked = set()
    for route in inspect_app(scoped.app).routes:
        if route.path.startswith("/dashboard"):
            continue
        path = re.sub(r"{(\w+)}", lambda m: str(uuid.uuid4()) if m.group(1) in ("task_id", "kb_id") else "x", route.path)
        resource = scoped.app._router.find(path)[0]
        for method in (m.method for m in route.methods if not m.internal):
            access = access_of(resource, method)
            if access.public or access.scope is None:
                continue
            body = {"json": {}} if method in ("POST", "PATCH") else {}
            allowed = scoped.call(access.scope if access.scope in scoped.secrets else "tasks:submit:*", method, path, **body)
            assert allowed.status_code not in (401, 403), f"{method} {route.path} with {access.scope}: {allowed.text[:200]}"
            other = next(s for s in SCOPES if s != access.scope and not (access.scope.startswith("tasks:submit:")
                                                                          and s == "tasks:submit:*"))
            refused = scoped.call(other, method, path, **body)
            assert refused.status_code == 403 and access.scope in refused.json["error"]["description"], (method, route.path)
            checked.add(access.scope)
    # Every scope guards a route, except these: tasks:sensitive shows fields (test_ownership), notifications:send
    # lets its actors be submitted (below).
    assert set(SCOPES) - checked == {"tasks:sensitive", "tasks:submit:*", "notifications:send"}
    # An actor's own scope, and tasks:submit:<actor>, open its submissions only.
    assert scoped.call("notifications:send", "POST", "/api/v1/tasks/bulk", json={"tasks": [{"actor": "send_notification", "kwargs": {
        "channel": "system", "recipient": "u1", "body": "hi"}}]}).status_code == 202
    refused = scoped.call("notifications:send", "POST", "/api/v1/tasks/bulk", json={"tasks": [{"actor": "echo"}]})
    assert refused.status_code == 403 and refused.json["error"]["fields"] == {"tasks.0.actor": "needs tasks:submit:echo (or tasks:submit:*)"}
    assert scoped.call("tasks:submit:echo", "POST", "/api/v1/tasks/bulk", json={"tasks": [{"actor": "echo"}]}).status_code == 202
    assert scoped.call("tasks:submit:echo", "POST", "/api/v1/tasks/notifications/send", json={}).status_code == 403


def test_roles_are_bundles_of_scopes_and_none_holds_tasks_sensitive():
    assert ROLES["read"] < ROLES["submit"] < ROLES["admin"]
    assert "tasks:sensitive" not in ROLES["admin"]
    assert {"tasks:control", "workers:control", "schedules:write", "audit:read", "users:mint"} <= ROLES["admin"] - ROLES["submit"]
    assert "tasks:submit:*" in ROLES["submit"] - ROLES["read"]


def test_a_token_may_be_configured_as_its_sha256_and_the_hash_itself_is_no_token(make_api, api_settings):
    secret = token()
    api = make_api(settings=api_settings.model_copy(update={
        "api_tokens": parse_tokens(f"hashed:sha256={digest(secret).hex()}:read")}))
    assert api.get("/api/v1/tasks/stats", role=None, headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    for wrong in (digest(secret).hex(), f"sha256={digest(secret).hex()}"):
        assert api.get("/api/v1/tasks/stats", role=None, headers={"Authorization": f"Bearer {wrong}"}).status_code == 401


@pytest.mark.parametrize("entry, message", [
    ("ops:aaaaaaaaaaaaaaaa:admin", "token 'ops' has about 3 bits of entropy, under 128"),
    ("ops:abcabcabcabcabcabcabcabcabcabcabc:admin", "token 'ops' has about"),
    ("ops:replace-with-a-long-admin-token:admin", "token 'ops' is a placeholder"),
    ("ops:" + "k" * 12 + ":admin", "tokens must be at least 16 characters"),
    (f"ops:{uuid.uuid4().hex}{uuid.uuid4().hex}:tasks:read+tasks:fly", "unknown role or scope 'tasks:fly'"),
    (f"ops:{uuid.uuid4().hex}{uuid.uuid4().hex}:tasks:submit:no_such_actor", "unknown role or scope 'tasks:submit:no_such_actor'"),
    (f"a:{uuid.uuid4().hex}{uuid.uuid4().hex}:read,a:{uuid.uuid4().hex}{uuid.uuid4().hex}:read", "token names must be unique"),
], ids=["aaaa", "pattern", "placeholder", "short", "unknown-scope", "unknown-actor", "duplicate-name"])
def test_weak_tokens_and_bad_entries_are_refused_naming_the_token_never_showing_it(engine, settings, entry, message):
    from pipeline.settings import load_settings

    with pytest.raises(ConfigError) as refused:
        create_app(engine, settings.model_copy(update={"api_tokens": load_settings(api_tokens=entry).api_tokens}))
    assert message in str(refused.value) and str(refused.value).startswith("CLAW_API_TOKENS")
    assert entry.split(":")[1] not in str(refused.value)


def test_the_api_command_stops_at_a_weak_token_with_one_line(env):
    done = subprocess.run([sys.executable, "-c", "from api.cli import run_api; run_api('127.0.0.1:1', 1)"],
                          env={**env, "CLAW_API_TOKENS": "ops:aaaaaaaaaaaaaaaa:admin"}, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].endswith(
        "CLAW_API_TOKENS: token 'ops' has about 3 bits of entropy, under 128; generate one with `claw-pipeline token new`")


def test_the_env_example_placeholders_and_a_weak_user_token_key_are_refused(engine, settings):
    placeholders = [line.partition("=")[2] for line in (ROOT / ".env.example").read_text().splitlines()
                    if line.startswith("CLAW_API_TOKENS=")]
    assert placeholders
    for tokens in parse_tokens(placeholders[0]):
        assert tokens.weak, tokens.name
    with pytest.raises(ConfigError, match="CLAW_API_TOKENS: token"):
        create_app(engine, settings.model_copy(update={"api_tokens": parse_tokens(placeholders[0])}))
    from pipeline.settings import load_settings

    weak_key = load_settings(user_token_keys="k1:" + "a" * 40).user_token_keys
    strong = parse_tokens(f"ops:{token()}:admin")
    with pytest.raises(ConfigError, match="CLAW_USER_TOKEN_KEYS: key 'k1'"):
        create_app(engine, settings.model_copy(update={"api_tokens": strong, "user_token_keys": weak_key}))


def test_submitted_by_is_the_tokens_name_in_the_record_and_refusals_are_in_the_audit_log(api, engine):
    accepted = api.post("/api/v1/tasks/bulk", role="submit", json={"tasks": [{"actor": "echo", "user_id": "kim"}]})
    record = engine.store.get(accepted.json["task_ids"][0])
    assert (record["submitted_by"], record["user_id"]) == ("submit", "kim")
    single = api.post("/api/v1/tasks/notifications/send", role="admin",
                      json={"channel": "system", "recipient": "kim", "body": "hello", "user_id": "kim"})
    assert engine.store.get(single.json["task_id"])["submitted_by"] == "admin"
    assert api.get("/api/v1/tasks/stats", role=None, headers={"Authorization": "Bearer nope-nope-nope-nope"}).status_code == 401
    assert api.post(f"/api/v1/tasks/cancel/{uuid.uuid4()}", role="read").status_code == 403
    entries = api.get("/api/v1/audit", role="admin").json["entries"]
    refused = [(e["who"], e["action"], e["outcome"], e["detail"].get("refused")) for e in entries[:2]]
    assert refused == [("read", "POST /api/v1/tasks/cancel/{task_id}", "403", "missing scope tasks:control"),
                       ("anonymous", "GET /api/v1/tasks/stats", "401", "unknown token")]

"""User tokens: minted by a service token with users:mint (and audited), refused when expired, tampered with, of
another deployment or signed with an unknown key; a key rotation keeps the previous key's tokens valid until they
expire; a user's AI submissions are counted (429 + Retry-After past the quota) and capped in priority; browsers of
the CORS origins may call the API with them (no credentials)."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest

from pipeline.settings import load_settings
from tests.api.conftest import Api


def mint(api: Api, user: str = "ursula", role: str = "admin", **body) -> dict:
    return api.post("/api/v1/auth/user-tokens", role=role, json={"user_id": user, **body})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def keys(text: str):
    return load_settings(user_token_keys=text).user_token_keys


def test_minting_needs_users_mint_gives_a_short_lived_token_and_is_audited(api, api_settings):
    assert mint(api, role="submit").status_code == 403
    minted = mint(api, tenant_id="acme", ttl_seconds=120)
    assert minted.status_code == 201
    body = minted.json
    assert body["user_id"] == "ursula" and body["tenant_id"] == "acme" and 110 < body["expires_at"] - time.time() <= 121
    header, claims = jwt.get_unverified_header(body["token"]), jwt.decode(body["token"], options={"verify_signature": False})
    assert header["alg"] == "HS256" and header["kid"] == "k2"  # the first key signs
    assert {claims["user_id"], claims["tenant_id"], claims["mby"]} == {"ursula", "acme", "admin"}
    assert claims["iss"] == f"claw-pipeline/{api_settings.namespace}"
    longest = mint(api, ttl_seconds=86_400).json
    assert longest["expires_at"] - time.time() <= 3601  # CLAW_USER_TOKEN_MAX_TTL_SECONDS
    assert mint(api, user="not a user id").status_code == 422
    entries = api.get("/api/v1/audit", role="admin", params={"action": "POST /api/v1/auth/user-tokens"}).json["entries"]
    assert [e["outcome"] for e in entries] == ["422", "201", "201", "403"]  # newest first, the refusal too
    assert entries[2]["who"] == "admin" and entries[2]["detail"]["user_id"] == "ursula" and entries[3]["who"] == "submit"
    assert api.get("/api/v1/tasks/list", role=None, headers=bearer(body["token"])).status_code == 200


def test_expired_tampered_foreign_and_unsigned_user_tokens_are_refused_with_401(api, api_settings):
    token = mint(api).json["token"]
    key_id, secret = api_settings.user_token_keys[0]
    now = int(time.time())
    claims = {"user_id": "ursula", "iat": now - 100, "exp": now - 1, "iss": f"claw-pipeline/{api_settings.namespace}"}
    expired = jwt.encode(claims, secret.get_secret_value(), algorithm="HS256", headers={"kid": key_id})
    header, payload, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["user_id"] = "victim"
    changed = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    other_deployment = jwt.encode({**claims, "exp": now + 600, "iss": "claw-pipeline/elsewhere"},
                                  secret.get_secret_value(), algorithm="HS256", headers={"kid": key_id})
    unknown_key = jwt.encode({**claims, "exp": now + 600}, "x" * 40, algorithm="HS256", headers={"kid": "k9"})
    unsigned = jwt.encode({**claims, "exp": now + 600}, None, algorithm="none", headers={"kid": key_id})
    cases = {"expired": (expired, "user token expired"), "payload changed": (f"{header}.{changed}.{signature}", "refused"),
             "signature changed": (f"{header}.{payload}.{signature[::-1]}", "user token"),
             "other deployment": (other_deployment, "refused"), "unknown key": (unknown_key, "unknown key"),
             "unsigned": (unsigned, "refused")}
    for name, (presented, reason) in cases.items():
        answer = api.get("/api/v1/tasks/list", role=None, headers=bearer(presented))
        assert answer.status_code == 401 and reason in answer.json["error"]["description"], name
    refusals = api.get("/api/v1/audit", role="admin", params={"action": "GET /api/v1/tasks/list"}).json["entries"]
    assert {entry["outcome"] for entry in refusals} == {"401"} and len(refusals) == len(cases)


def secret() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def test_a_rotated_key_keeps_the_tokens_it_signed_valid_until_they_expire(make_api, api_settings):
    old_keys = keys("old:" + secret())
    before = make_api(settings=api_settings.model_copy(update={"user_token_keys": old_keys}))
    signed_with_old = mint(before).json["token"]
    new_keys = keys("new:" + secret())
    rotated = make_api(settings=api_settings.model_copy(update={"user_token_keys": new_keys + old_keys}))
    assert rotated.get("/api/v1/tasks/list", role=None, headers=bearer(signed_with_old)).status_code == 200
    fresh = mint(rotated).json["token"]
    assert jwt.get_unverified_header(fresh)["kid"] == "new"
    retired = make_api(settings=api_settings.model_copy(update={"user_token_keys": new_keys}))  # the old key removed
    answer = retired.get("/api/v1/tasks/list", role=None, headers=bearer(signed_with_old))
    assert answer.status_code == 401 and "unknown key" in answer.json["error"]["description"]


def test_a_users_ai_submissions_are_counted_and_the_one_past_the_quota_gets_429_with_retry_after(api_settings, engine):
    from api.app import create_app
    from pipeline.engine import make_engine

    quota_settings = api_settings.model_copy(update={"actor_overrides": {"generate_ai_response": {"user_quota": "2/m"}}})
    quota_engine = make_engine(quota_settings)  # its broker binds the actors with the override
    try:
        api = Api(create_app(quota_engine, quota_settings))
        user = bearer(mint(api, user="quinn").json["token"])
        other = bearer(mint(api, user="rita").json["token"])
        body = {"conversation_id": f"conv-{uuid.uuid4().hex}", "user_message": "hi"}
        assert [api.post("/api/v1/tasks/ai/generate", role=None, headers=user, json=body).status_code for _ in range(2)] == [202, 202]
        refused = api.post("/api/v1/tasks/ai/generate", role=None, headers=user, json=body)
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
        assert api.post("/api/v1/tasks/ai/generate", role=None, headers=other,
                        json={**body, "conversation_id": f"conv-{uuid.uuid4().hex}"}).status_code == 202
        assert api.post("/api/v1/tasks/ai/generate", role="submit", json={**body, "user_id": "quinn"}).status_code == 202
    finally:
        quota_engine.close()


def test_user_tokens_get_a_capped_priority_submit_for_their_own_user_only_and_never_other_actors(api, engine):
    user = bearer(mint(api, user="sam", tenant_id="t1").json["token"])
    body = {"conversation_id": f"conv-{uuid.uuid4().hex}", "user_message": "hi"}
    too_high = api.post("/api/v1/tasks/ai/generate", role=None, headers=user, json={**body, "priority": 9})
    assert too_high.status_code == 422 and too_high.json["error"]["fields"] == {"priority": "at most 8 for a user token"}
    low = api.post("/api/v1/tasks/ai/generate", role=None, headers=user, json={**body, "priority": 3})
    assert engine.store.get(low.json["task_id"])["priority"] == 3
    for someone_else in ({"user_id": "tom"}, {"tenant_id": "t2"}):
        assert api.post("/api/v1/tasks/ai/generate", role=None, headers=user, json={**body, **someone_else}).status_code == 403
    for path, payload in (("/api/v1/tasks/notifications/send", {"channel": "system", "recipient": "sam", "body": "x"}),
                          ("/api/v1/tasks/bulk", {"tasks": [{"actor": "echo"}]}), ("/api/v1/knowledge", {"name": "mine"})):
        assert api.post(path, role=None, headers=user, json=payload).status_code == 403, path


def test_cors_answers_the_configured_origins_only_without_credentials(make_api, api_settings):
    api = make_api(settings=api_settings.model_copy(update={"cors_origins": ["http://app.example:8080"]}))
    token = mint(api).json["token"]
    preflight = api.request("OPTIONS", "/api/v1/tasks/ai/generate", role=None, headers={
        "Origin": "http://app.example:8080", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://app.example:8080"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == "authorization,content-type"
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    answer = api.get("/api/v1/tasks/list", role=None, headers={**bearer(token), "Origin": "http://app.example:8080"})
    assert answer.headers["Access-Control-Allow-Origin"] == "http://app.example:8080"
    refused = api.get("/api/v1/tasks/list", role=None, headers={"Origin": "http://app.example:8080"})
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == "http://app.example:8080"
    for other in ("http://evil.example", "http://app.example:8081", "https://app.example:8080"):
        assert "Access-Control-Allow-Origin" not in api.get("/api/v1/tasks/list", role=None,
                                                          headers={**bearer(token), "Origin": other}).headers


@pytest.mark.parametrize("origins", ["*", "http://a.example/path", "app.example", "http://*.example"])
def test_cors_origins_must_be_exact(origins):
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="CLAW_CORS_ORIGINS"):
        load_settings(cors_origins=origins)

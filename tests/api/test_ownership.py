"""Every user's data is its owner's only.

The route walk: user A's token calls EVERY route of the app (taken from the route table, so a new route is
walked too, and fails here until it has a sample for its parameters) with user B's ids: each answer is a
refusal, or A's own data, and never shows B's content. Then what A may do with its own (tasks, events,
conversations, inbox, its tenant's bases), that a conversation cannot be posted into by another user (the API
answers 404, the task itself refuses if the API was raced), and what service tokens see of a user's data.
"""

from __future__ import annotations

import re
import uuid

import pytest
from falcon.inspect import inspect_app

from api.auth import access_of
from pipeline import client
from pipeline.context import TaskContext, set_current
from pipeline.errors import PermanentError
from pipeline.notifications.channels.system import Inbox
from pipeline.owners import Owner
from tests.api.conftest import Api
from tests.knowledge.conftest import knowledge_db, knowledge_environment  # noqa: F401  (the fixture, used here)

RUN = uuid.uuid4().hex[:8]
ALICE, BOB = f"alice-{RUN}", f"bob-{RUN}"
TENANTS = {ALICE: f"tenant-a-{RUN}", BOB: f"tenant-b-{RUN}"}
#: Text only B's data holds: it must never be in an answer to A.
SECRET = f"bob-secret-{RUN}"


@pytest.fixture
def knowledge(knowledge_db, monkeypatch):  # noqa: F811  (the imported fixture)
    from pipeline.knowledge.config import get_knowledge_settings

    knowledge_environment(monkeypatch, knowledge_db)
    yield knowledge_db
    get_knowledge_settings.cache_clear()


@pytest.fixture
def api(make_api, api_settings) -> Api:
    # A stream that should never have opened ends quickly instead of holding the walk.
    return make_api(settings=api_settings.model_copy(update={"api_stream_max_seconds": 2.0}))


def user_token(api: Api, user: str, tenant: str | None = None) -> dict[str, str]:
    minted = api.post("/api/v1/auth/user-tokens", role="admin", json={"user_id": user, "tenant_id": tenant})
    assert minted.status_code == 201, minted.text
    return {"Authorization": f"Bearer {minted.json['token']}"}


def as_user(api: Api, headers: dict, method: str, path: str, **kwargs):
    return api.request(method, path, role=None, headers=headers, **kwargs)


def new_base(name: str, tenant: str, text: str) -> str:
    from pipeline.actors.knowledge import vectorize_document
    from pipeline.knowledge import store
    from pipeline.knowledge.db import connection, database_url
    from pipeline.knowledge.embedders import get_embedder

    embedder = get_embedder()
    with connection() as conn:
        kb = store.ensure_knowledge_base(conn, f"{name}-{RUN}", embedder.model_name, embedder.dim, tenant)
    store.ensure_index(database_url(), kb)
    vectorize_document(knowledge_base_id=str(kb.id), source=f"{name}.md", text=text)
    return str(kb.id)


@pytest.fixture
def bobs_world(api, engine, knowledge):
    """B's data everywhere: tasks (one with the secret in its arguments), a conversation, an inbox item, a base."""
    bob = user_token(api, BOB, TENANTS[BOB])
    conversation = f"conv-bob-{RUN}"
    kb_id = new_base("bob-handbook", TENANTS[BOB], f"The vault code is {SECRET}. Ask the front desk for the key.")
    submitted = as_user(api, bob, "POST", "/api/v1/tasks/ai/generate",
                        json={"conversation_id": conversation, "user_message": f"remember {SECRET}", "knowledge_base_id": kb_id})
    assert submitted.status_code == 202, submitted.text
    task_id = submitted.json["task_id"]
    other_task = client.submit("echo", kwargs={"value": SECRET}, user_id=BOB, submitted_by="backend")
    from pipeline.actors.ai import generate_ai_response

    set_current(TaskContext(task_id, "generate_ai_response", 1, engine.store, Owner(BOB, TENANTS[BOB], "user:" + BOB)))
    try:  # what the worker does: B's conversation now holds the secret
        generate_ai_response(conversation_id=conversation, user_message=f"remember {SECRET}", knowledge_base_id=kb_id)
    finally:
        set_current(None)
    Inbox(engine.store.redis, engine.store.keys.shared).add(BOB, f"n-{RUN}", title="for bob", body=SECRET)
    from pipeline import workflow

    workflow_id = workflow.group([workflow.signature("echo", password=SECRET)]).submit(user_id=BOB, submitted_by="backend")
    return {"task_id": task_id, "other_task": other_task, "conversation_id": conversation, "kb_id": kb_id, "user_id": BOB,
            "workflow_id": workflow_id}


#: What each path parameter is filled with in the walk: B's ids wherever there are any. A route with a parameter
#: not listed here fails the walk: add its sample, and decide what a user token sees on it.
def samples(world: dict) -> dict[str, str]:
    return {"task_id": world["task_id"], "conversation_id": world["conversation_id"], "user_id": world["user_id"],
            "kb_id": world["kb_id"], "workflow_id": world["workflow_id"], "schedule_id": "bobs-schedule", "name": "swagger-ui.css", "queue": "default",
            "action": "cancel", "worker": "w-1"}


def bodies(world: dict) -> dict[tuple[str, str], dict]:
    """Bodies that would reach B's data if the route let them (others get {})."""
    return {
        ("POST", "/api/v1/tasks/ai/generate"): {"conversation_id": world["conversation_id"], "user_message": "hi"},
        ("POST", "/api/v1/notifications/{user_id}/read"): {"all": True},
        ("POST", "/api/v1/auth/user-tokens"): {"user_id": BOB},
        ("POST", "/api/v1/tasks/dead/requeue"): {"queue": "default"},
    }


#: Query parameters a route needs to get past its validation to B's data.
QUERIES = {("GET", "/api/v1/knowledge/{kb_id}/search"): {"q": "vault code"}, ("GET", "/api/v1/tasks/list"): {"limit": "500"}}


def test_route_walk_user_a_never_sees_or_touches_user_bs_data_on_any_route(api, engine, bobs_world):
    alice = user_token(api, ALICE, TENANTS[ALICE])
    values, payloads = samples(bobs_world), bodies(bobs_world)
    walked = 0
    for route in inspect_app(api.app).routes:
        params = re.findall(r"{(\w+)}", route.path)
        missing = [p for p in params if p not in values]
        assert not missing, f"{route.path}: no sample for {missing}; add one to samples() and decide what users see"
        path = re.sub(r"{(\w+)}", lambda m: values[m.group(1)], route.path)
        resource = api.app._router.find(path)[0]
        for method in (m.method for m in route.methods if not m.internal):
            access = access_of(resource, method)
            kwargs = {"json": payloads.get((method, route.path), {})} if method in ("POST", "PATCH") else {}
            kwargs["params"] = QUERIES.get((method, route.path), {})
            answer = as_user(api, alice, method, path, **kwargs)
            where = f"{method} {route.path}: {answer.status_code} {answer.text[:200]}"
            walked += 1
            assert answer.status_code < 500, where
            assert SECRET not in answer.text and bobs_world["other_task"] not in answer.text, where
            if route.path.startswith("/dashboard"):
                assert answer.status_code in (200, 303, 401, 403, 404), where  # the login page and assets only
                assert answer.status_code != 200 or route.path in ("/dashboard/login", "/dashboard/static/{name}"), where
            elif access.public:
                continue
            elif not access.users:
                assert answer.status_code == 403, where
            elif method == "GET" and route.path.endswith(("/list", "/stats", "/knowledge")):
                assert answer.status_code == 200 and BOB not in answer.text, where  # its own (empty) view
            else:
                assert answer.status_code in (404, 403) or (route.path == "/openapi.json"), where
    assert walked >= 45
    # B's data is untouched by all that.
    assert engine.store.get(bobs_world["task_id"])["state"] == "PENDING"
    bob_inbox = Inbox(engine.store.redis, engine.store.keys.shared).list(BOB)
    assert bob_inbox["unread"] == 1


def test_a_user_token_reads_its_own_tasks_events_conversation_inbox_and_its_tenants_bases(api, engine, bobs_world):
    alice = user_token(api, ALICE, TENANTS[ALICE])
    kb_id = new_base("alice-handbook", TENANTS[ALICE], "Lunch is served from noon to two in the canteen.")
    conversation = f"conv-alice-{RUN}"
    submitted = as_user(api, alice, "POST", "/api/v1/tasks/ai/generate",
                        json={"conversation_id": conversation, "user_message": "when is lunch?", "knowledge_base_id": kb_id})
    assert submitted.status_code == 202, submitted.text
    task_id = submitted.json["task_id"]
    record = engine.store.get(task_id)
    assert (record["user_id"], record["tenant_id"], record["submitted_by"]) == (ALICE, TENANTS[ALICE], "user:" + ALICE)
    assert record["priority"] == 8  # CLAW_USER_MAX_PRIORITY, below the actor's 9

    status = as_user(api, alice, "GET", f"/api/v1/tasks/status/{task_id}")
    assert status.status_code == 200 and status.json["kwargs"]["user_message"] == "when is lunch?"  # its own: unmasked
    listed = as_user(api, alice, "GET", "/api/v1/tasks/list").json["tasks"]
    assert [t["task_id"] for t in listed] == [task_id]
    assert as_user(api, alice, "GET", "/api/v1/tasks/list", params={"user_id": BOB}).status_code == 403
    assert as_user(api, alice, "GET", "/api/v1/tasks/stats").json == {"user_id": ALICE, "states": {
        "PENDING": 1, "STARTED": 0, "RETRY": 0, "SUCCESS": 0, "FAILURE": 0, "CANCELLED": 0}}
    bases = as_user(api, alice, "GET", "/api/v1/knowledge").json["knowledge_bases"]
    assert [b["id"] for b in bases] == [kb_id]
    hits = as_user(api, alice, "GET", f"/api/v1/knowledge/{kb_id}/search", params={"q": "lunch"})
    assert hits.status_code == 200 and "canteen" in hits.text
    with_b_base = as_user(api, alice, "POST", "/api/v1/tasks/ai/generate",
                          json={"conversation_id": conversation, "user_message": "x", "knowledge_base_id": bobs_world["kb_id"]})
    assert with_b_base.status_code == 404 and with_b_base.json["error"]["fields"] == {"kb_id": "no such knowledge base"}

    client.cancel(task_id)  # finished: its stream is one final record
    events = as_user(api, alice, "GET", f"/api/v1/tasks/{task_id}/events")
    assert events.status_code == 200 and '"state":"CANCELLED"' in events.text
    Inbox(engine.store.redis, engine.store.keys.shared).add(ALICE, f"a-{RUN}", title="hi", body="for alice")
    inbox = as_user(api, alice, "GET", f"/api/v1/notifications/{ALICE}")
    assert inbox.status_code == 200 and inbox.json["items"][0]["user_id"] == ALICE
    assert as_user(api, alice, "POST", f"/api/v1/notifications/{ALICE}/read", json={"all": True}).json["marked"] == 1


def test_a_conversation_belongs_to_the_user_who_started_it(api, engine, bobs_world):
    alice = user_token(api, ALICE, TENANTS[ALICE])
    refused = as_user(api, alice, "POST", "/api/v1/tasks/ai/generate",
                      json={"conversation_id": bobs_world["conversation_id"], "user_message": "what did bob say?"})
    assert refused.status_code == 404 and "not a conversation of this user" in refused.json["error"]["description"]
    # A service token naming A is refused alike; naming B it may post (a backend acting for B).
    for_alice = api.post("/api/v1/tasks/ai/generate", role="submit",
                         json={"conversation_id": bobs_world["conversation_id"], "user_message": "x", "user_id": ALICE})
    assert for_alice.status_code == 404
    assert api.post("/api/v1/tasks/ai/generate", role="submit", json={
        "conversation_id": bobs_world["conversation_id"], "user_message": "x", "user_id": BOB}).status_code == 202
    # Had A's request raced B's first one past the API, the task itself refuses, reading nothing.
    from pipeline.actors.ai import generate_ai_response

    set_current(TaskContext(str(uuid.uuid4()), "generate_ai_response", 1, engine.store, Owner(ALICE, TENANTS[ALICE])))
    try:
        with pytest.raises(PermanentError, match="belongs to another user"):
            generate_ai_response(conversation_id=bobs_world["conversation_id"], user_message="what did bob say?")
        with pytest.raises(PermanentError, match="not one this user's tenant may read"):
            generate_ai_response(conversation_id=f"conv-alice2-{RUN}", user_message="x", knowledge_base_id=bobs_world["kb_id"])
    finally:
        set_current(None)
    messages = api.get(f"/api/v1/conversations/{bobs_world['conversation_id']}/messages", role="submit").json["messages"]
    assert all(m["content"] != "what did bob say?" for m in messages)  # B's history was neither read nor written


def test_service_tokens_see_a_users_data_masked_unless_they_submitted_it_or_hold_tasks_sensitive(
        api, make_api, api_settings, engine, bobs_world):
    from pipeline.tokens import parse_tokens

    record = api.get(f"/api/v1/tasks/status/{bobs_world['task_id']}", role="read").json
    assert record["kwargs"]["user_message"] == "***" and record["kwargs"]["conversation_id"] == bobs_world["conversation_id"]
    listed = api.get("/api/v1/tasks/list", role="admin", params={"user_id": BOB}).json["tasks"]
    assert {bobs_world["task_id"], bobs_world["other_task"]} <= {t["task_id"] for t in listed}
    assert {t["user_id"] for t in listed} == {BOB}
    by_id = {t["task_id"]: t for t in listed}
    assert by_id[bobs_world["task_id"]]["kwargs"]["user_message"] == "***"  # admin has no tasks:sensitive
    assert by_id[bobs_world["other_task"]]["kwargs"]["value"] == SECRET  # declared fields only: echo's value is not one
    mine = api.post("/api/v1/tasks/bulk", role="submit", json={"tasks": [{"actor": "echo", "kwargs": {"password": SECRET}}]})
    shown = api.get(f"/api/v1/tasks/status/{mine.json['task_ids'][0]}", role="submit").json
    assert shown["kwargs"]["password"] == SECRET and shown["submitted_by"] == "submit"  # the token that submitted it
    assert api.get(f"/api/v1/tasks/status/{mine.json['task_ids'][0]}", role="admin").json["kwargs"]["password"] == "***"
    token = f"auditor-{uuid.uuid4().hex}"
    auditor = make_api(settings=api_settings.model_copy(update={"api_tokens": parse_tokens(f"auditor:{token}:tasks:read+tasks:sensitive")}))
    seen = auditor.get(f"/api/v1/tasks/status/{bobs_world['task_id']}", role=None, headers={"Authorization": f"Bearer {token}"})
    assert seen.json["kwargs"]["user_message"] == f"remember {SECRET}"


def test_a_workflow_and_every_task_of_it_belong_to_the_user_it_was_submitted_for(api, engine, bobs_world):
    from pipeline import workflow

    record = workflow.get(bobs_world["workflow_id"], engine=engine)
    assert (record["user_id"], record["submitted_by"]) == (BOB, "backend")
    member = engine.store.get(record["members"][0]["task_id"])
    assert (member["user_id"], member["submitted_by"]) == (BOB, "backend")
    assert engine.store.count_for_owner(BOB)["PENDING"] >= 3  # the AI task, the echo task, the workflow's member
    refused = api.post("/api/v1/workflows", role="read", json={"kind": "group", "members": [{"actor": "echo"}]})
    assert refused.status_code == 403 and refused.json["error"]["fields"] == {"actor.echo": "needs tasks:submit:echo (or tasks:submit:*)"}
    accepted = api.post("/api/v1/workflows", role="submit",
                        json={"kind": "chain", "steps": [{"actor": "echo"}], "user_id": "vic"})
    assert accepted.status_code == 202
    assert engine.store.get_workflow(accepted.json["workflow_id"])["user_id"] == "vic"


def test_tracebacks_are_shown_to_tokens_with_tasks_control_only(api, engine, start_worker):
    from tests.conftest import wait_for_state

    start_worker()
    failed = client.submit("always_fails", kwargs={"message": "kaboom"})
    wait_for_state(engine, failed, "FAILURE")
    admin = api.get(f"/api/v1/tasks/status/{failed}", role="admin").json["error"]
    reader = api.get(f"/api/v1/tasks/status/{failed}", role="read").json["error"]
    assert "Traceback" in admin["traceback"] and "traceback" not in reader
    assert reader == {"type": "ValueError", "message": "kaboom"}

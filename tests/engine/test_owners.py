"""Owners in the state store and the client: each user's index follows its records through every transition,
a user's page and counts come from it alone, idempotency keys bind per caller and actor, a task's children and
its rate-limit key belong to its user, and user tokens' submission quota is a sliding window."""

from __future__ import annotations

import time

import pytest
from dramatiq import Message

from pipeline import client
from pipeline.context import TaskContext, set_current
from pipeline.middleware.rate_limits import rate_key
from pipeline.owners import Owner
from pipeline.registry import REGISTRY, OwnerOr, TaskPolicy
from pipeline.state import NewTask, StateStore, STATES
from tests.conftest import store_shards, wait_for_state


@pytest.fixture
def store(redis_client, namespace):
    return StateStore(redis_client, namespace, result_ttl=60, shards=store_shards())


def _task(i: int, user: str | None = None, tenant: str | None = None) -> NewTask:
    return NewTask(task_id=f"t{i:04d}", actor="a", queue="q", priority=0, max_retries=1, args=[], kwargs={"i": i},
                   owner=Owner(user, tenant, "backend"))


def owner_keys(redis_client, store, user: str) -> dict[str, list[str]]:
    """Every index of *user*, by name ('all' or a state), with its members (empty ones left out)."""
    def members(name) -> list[str]:
        return sorted(member for keys in store.keys.all_shards() for member in redis_client.zrange(name(keys), 0, -1))

    found = {"all": members(lambda keys: keys.index_owner(user)),
             **{state: members(lambda keys, state=state: keys.index_owner_state(user, state)) for state in STATES}}
    return {name: members for name, members in found.items() if members}


def test_a_users_index_follows_its_records_through_every_transition_and_expiry(store, redis_client):
    store.record_enqueued([_task(1, "alice"), _task(2, "alice"), _task(3, "bob"), _task(4)])
    assert owner_keys(redis_client, store, "alice") == {"all": ["t0001", "t0002"], "PENDING": ["t0001", "t0002"]}
    record = store.get("t0001")
    assert (record["user_id"], record.get("tenant_id"), record["submitted_by"]) == ("alice", None, "backend")
    store.start("t0001", "w", 5)
    store.finish("t0001", "SUCCESS", {"result": "1"})
    store.start("t0002", "w", 5)
    store.fail("t0002", {"type": "E", "message": "m"})
    assert owner_keys(redis_client, store, "alice") == {"all": ["t0001", "t0002"], "SUCCESS": ["t0001"], "FAILURE": ["t0002"]}
    assert store.count_for_owner("alice") == {**dict.fromkeys(STATES, 0), "SUCCESS": 1, "FAILURE": 1}
    assert store.count_for_owner("bob")["PENDING"] == 1

    assert store.requeue_failed("t0002", "")[0] == "RESET"  # a dead letter put back: PENDING again, in the indexes
    assert owner_keys(redis_client, store, "alice") == {"all": ["t0001", "t0002"], "SUCCESS": ["t0001"], "PENDING": ["t0002"]}
    store.start("t0002", "w", 5)
    store.fail("t0002", {"type": "E", "message": "m"})
    assert store.delete_failed("t0002", "")
    assert store.trim_expired(now=time.time() + 3600) >= 1  # t0001's result TTL has passed
    assert owner_keys(redis_client, store, "alice") == {}
    assert owner_keys(redis_client, store, "bob") == {"all": ["t0003"], "PENDING": ["t0003"]}


def test_a_cancelled_lost_or_forgotten_task_leaves_its_users_indexes_consistent(store, redis_client):
    tasks = [_task(i, "carol") for i in range(3)]
    store.record_enqueued(tasks)
    store.cancel("t0000", "", "")
    store.start("t0001", "dead-worker", 5)
    assert store.requeue_lost("t0001", "dead-worker", {"type": "WorkerLost", "message": "gone"})
    store.forget([tasks[2]])
    assert owner_keys(redis_client, store, "carol") == {"all": ["t0000", "t0001"], "CANCELLED": ["t0000"],
                                                         "PENDING": ["t0001"]}


def test_a_users_page_comes_from_its_own_index_however_many_tasks_others_have(store):
    now = time.time()
    store.record_enqueued([_task(i, "others") for i in range(300)], now=now)
    store.record_enqueued([_task(1000 + i, "dave") for i in range(7)], now=now + 1)
    store.start("t1003", "w", 5)
    seen, cursor = [], None
    while True:
        page, cursor = store.list(user_id="dave", limit=3, cursor=cursor)
        assert len(page) <= 3
        seen += [r["task_id"] for r in page]
        if cursor is None:
            break
    assert sorted(seen) == [f"t{1000 + i:04d}" for i in range(7)]
    assert [r["task_id"] for r in store.list(user_id="dave", state="STARTED")[0]] == ["t1003"]
    assert store.list(user_id="dave", actor="other-actor")[0] == []
    assert store.list(user_id="nobody")[0] == []


def test_the_cleanup_removes_users_index_entries_whose_record_is_gone(store, redis_client):
    store.record_enqueued([_task(1, "erin"), _task(2, "erin")])
    redis_client.delete(store.keys.task("t0001"))  # e.g. evicted
    assert store.remove_orphaned_entries(["a"], ["q"]) >= 2  # the global indexes and erin's
    assert owner_keys(redis_client, store, "erin") == {"all": ["t0002"], "PENDING": ["t0002"]}


def test_idempotency_keys_bind_per_caller_and_actor(engine):
    first = client.submit("echo", kwargs={"value": 1}, idempotency_key="k-1", submitted_by="backend")
    assert client.submit("echo", kwargs={"value": 1}, idempotency_key="k-1", submitted_by="backend") == first
    other_caller = client.submit("echo", kwargs={"value": 1}, idempotency_key="k-1", submitted_by="user:mallory")
    other_actor = client.submit("record_order", kwargs={"list_key": "x", "tag": "y"}, idempotency_key="k-1",
                                submitted_by="backend")
    assert len({first, other_caller, other_actor}) == 3
    assert engine.store.get(other_caller)["idempotency_key"] == "k-1"


def test_a_task_started_by_another_belongs_to_the_same_user(engine, start_worker):
    set_current(TaskContext("parent-task", "echo", 1, engine.store, Owner("frank", "acme", "backend")))
    try:
        child = client.submit("echo", kwargs={"value": "child"})
        other = client.submit("echo", kwargs={"value": "for someone"}, user_id="grace")
    finally:
        set_current(None)
    record = engine.store.get(child)
    assert (record["user_id"], record["tenant_id"], record["submitted_by"]) == ("frank", "acme", "task:parent-task")
    assert (engine.store.get(other)["user_id"], engine.store.get(other).get("tenant_id")) == ("grace", None)
    start_worker()
    assert wait_for_state(engine, child, "SUCCESS")["user_id"] == "frank"  # the worker keeps the owner too


def test_an_owner_id_that_could_not_be_a_key_name_is_refused_naming_the_field(engine):
    from pipeline.errors import InvalidArguments

    for kwargs, field in (({"user_id": "a b"}, "user_id"), ({"user_id": "x" * 200}, "user_id"),
                          ({"user_id": "ok", "tenant_id": "a/b"}, "tenant_id"), ({"tenant_id": "t"}, "tenant_id")):
        with pytest.raises(InvalidArguments) as refused:
            client.submit("echo", **kwargs)
        assert field in refused.value.fields


def test_the_ai_rate_key_is_the_owner_and_the_conversation_only_for_nobodys_tasks():
    policy = REGISTRY["generate_ai_response"].policy
    assert policy.rate_limit_key == OwnerOr("conversation_id")
    owned = Message("q", "generate_ai_response", (), {"conversation_id": "c1"}, Owner("hana").options())
    nobodys = Message("q", "generate_ai_response", (), {"conversation_id": "c1"}, {})
    assert rate_key(policy, owned) == "user:hana" and rate_key(policy, nobodys) == "c1"
    assert rate_key(TaskPolicy(rate_limit_per_key="1/s", rate_limit_key="conversation_id"), owned) == "c1"


def test_the_submission_quota_is_a_sliding_window_per_user_and_actor(store):
    assert [store.take_submit_quota("a", "ivan", 3, 1000) for _ in range(3)] == [0, 0, 0]
    wait = store.take_submit_quota("a", "ivan", 3, 1000)
    assert 0 < wait <= 1000
    assert store.take_submit_quota("a", "judy", 3, 1000) == 0 and store.take_submit_quota("b", "ivan", 3, 1000) == 0
    time.sleep(wait / 1000 + 0.05)
    assert store.take_submit_quota("a", "ivan", 3, 1000) == 0


def test_cli_admin_commands_are_in_the_audit_log_and_token_new_prints_a_strong_token(engine, capsys):
    import getpass

    from pipeline import cli
    from pipeline.tokens import digest, parse_tokens

    task_id = client.submit("echo", kwargs={"value": 1})
    assert cli.main(["cancel", task_id]) == 0
    entries, _ = engine.store.audit_page(5)
    assert (entries[0]["who"], entries[0]["action"], entries[0]["target"], entries[0]["outcome"]) == (
        f"cli:{getpass.getuser()}", "cancel", task_id, "CANCELLED")
    capsys.readouterr()
    assert cli.main(["token", "new", "--name", "billing", "--grant", "tasks:read+users:mint"]) == 0
    token, entry, hashed = (line.split(None, 1)[1] for line in capsys.readouterr().out.strip().splitlines())
    (parsed,) = parse_tokens(entry)
    assert parsed.name == "billing" and parsed.grant == ("tasks:read", "users:mint") and parsed.weak is None
    assert parse_tokens(hashed)[0].digest == digest(token) == parsed.digest

"""The engine on a Sentinel-managed Redis: one URL for every client, WAIT for a replica, reconnection after failover.

The Redis servers and Sentinels are the test's own (tests/ha/servers.py);
the heavy version (API + 2 workers under load, master SIGKILLed) is in
tests/reliability/test_redis_failover.py.
"""

from __future__ import annotations

import re
import time

import pytest
import redis

from api.app import create_app
from pipeline import client
from pipeline.errors import ConfigError
from pipeline.redis_client import make_async_redis, make_redis, redis_for
from pipeline.redis_url import parse_sentinel_url
from pipeline.settings import load_settings
from tests.api.conftest import SERVICE_TOKENS, Api
from tests.app_client import run_async
from tests.conftest import ROOT, wait_until
from tests.ha.fixtures import start_workers_on
from tests.ha.servers import SERVICE


def wait_count(server) -> int:
    """How many WAIT commands the server has run."""
    return int(server.client().info("commandstats").get("cmdstat_wait", {}).get("calls", 0))


def test_settings_accept_the_sentinel_form_and_name_what_is_wrong():
    settings = load_settings(redis_url="redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2/mymaster/2?sentinel_password=s")
    target = parse_sentinel_url(settings.redis_url)
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379))
    assert (target.service, target.db, target.password, target.sentinel_password) == ("mymaster", 2, "pw", "s")
    assert settings.wait_replicas == 1  # a Sentinel master has replicas: acceptance waits for one
    assert load_settings().wait_replicas == 0  # one server: no WAIT at all
    assert load_settings(redis_url="redis+sentinel://h/m", redis_wait_replicas=0).wait_replicas == 0
    for url, says in [("redis+sentinel://h:26379/", "/<master name>"), ("redis+sentinel://h:x/m", "bad Sentinel address"),
                      ("redis+sentinel://h/m?socket_timeout=1", "unknown parameter"), ("http://h/0", "must start with")]:
        with pytest.raises(ConfigError, match=f"^CLAW_REDIS_URL: .*{re.escape(says)}"):
            load_settings(redis_url=url)


def test_every_redis_client_of_the_project_comes_from_the_one_factory():
    builders = re.compile(r"Redis\.from_url\(|redis\.Redis\(|Sentinel\(|RedisCluster\(|StrictRedis\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in ("pipeline", "api", "scheduler")
        for path in (ROOT / package).rglob("*.py")
        if path.name != "redis_client.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if builders.search(line)
    ]
    assert offenders == []


def test_sync_and_async_clients_reach_the_master_through_the_sentinels(sentinels):
    sync = make_redis(sentinels.url)
    sync.set("claw-ha:probe", "sync")
    assert sentinels.master().client().get("claw-ha:probe") == "sync"

    async def use_async() -> str:
        client_ = make_async_redis(sentinels.url)
        try:
            await client_.set("claw-ha:probe", "async")
            return await client_.get("claw-ha:probe")
        finally:
            await client_.aclose()

    assert run_async(use_async()) == "async"  # a fresh loop: the session's Chromium keeps one running here
    assert redis_for(sentinels.url) is redis_for(sentinels.url)  # one pool per process and URL
    sync.delete("claw-ha:probe")


def test_a_submission_is_accepted_once_a_replica_has_its_records_in_the_same_round_trip(sentinels, engine_on, start_worker):
    engine = engine_on(sentinels.url, redis_wait_timeout_ms=10_000)  # a loaded machine may be slow to replicate
    master, replica = sentinels.master(), sentinels.replicas()[0]
    before = wait_count(master)
    ids = client.submit_many([{"actor": "echo", "kwargs": {"value": i}} for i in range(50)], engine=engine)
    ids.append(client.submit("echo", kwargs={"value": "one"}, engine=engine))
    assert wait_count(master) - before == 2  # one WAIT per submission, however many tasks it carries
    on_replica = replica.client()
    assert all(on_replica.exists(engine.store.keys.task(task_id)) for task_id in ids)  # there as soon as accepted
    assert engine.store.replica_wait.shortfalls == 0

    start_workers_on(start_worker, engine)
    wait_until(lambda: all(r and r["state"] == "SUCCESS" for r in engine.store.get_many(ids)), 60, message="all SUCCESS")
    assert wait_count(master) - before > 2  # the workers waited for the replica before acking
    assert all(on_replica.hget(engine.store.keys.task(task_id), "state") == "SUCCESS" for task_id in ids)


def test_a_missing_replica_costs_one_timeout_then_submissions_go_on_unconfirmed(sentinels, engine_on):
    engine = engine_on(sentinels.url, redis_wait_timeout_ms=300)
    replica = sentinels.replicas()[0]
    replica.stop()
    try:
        started = time.monotonic()
        first = client.submit("echo", engine=engine)
        first_took = time.monotonic() - started
        started = time.monotonic()
        second = client.submit("echo", engine=engine)
        second_took = time.monotonic() - started
    finally:
        replica.start("--save", "", "--appendonly", "no", "--replicaof", "127.0.0.1", str(sentinels.master().port))
        wait_until(lambda: sentinels.in_sync(replica), 30, message="the replica back in sync")
    assert engine.store.get(first) and engine.store.get(second)  # both accepted
    assert engine.store.replica_wait.shortfalls == 1
    assert first_took >= 0.3 and second_took < 0.2


def test_after_the_master_is_killed_every_client_reconnects_to_the_new_master_and_the_api_says_503_meanwhile(
    own_sentinels, engine_on, settings
):
    engine = engine_on(own_sentinels.url, redis_wait_timeout_ms=10_000)  # a loaded machine may be slow to replicate
    api = Api(create_app(engine, engine.settings.model_copy(update={"api_tokens": SERVICE_TOKENS})))
    task_id = client.submit("echo", engine=engine)
    assert engine.store.replica_wait.shortfalls == 0  # accepted once the replica had it: it must survive the kill
    old = own_sentinels.master()
    old.kill()
    killed = time.monotonic()
    answers = []
    while (port := own_sentinels.master_port()) in (None, old.port) and time.monotonic() - killed < 30:
        answer = api.get(f"/api/v1/tasks/status/{task_id}")
        answers.append((answer.status_code, answer.headers.get("Retry-After"), answer.text[:300]))
    assert port not in (None, old.port), "no failover within 30 s"
    wrong = [a for a in answers if a[0] not in (200, 503) or (a[0] == 503 and not a[1])]
    assert not wrong, wrong[:3]
    # The same engine, without a restart: store, results backend, worker registry, API.
    wait_until(lambda: api.get(f"/api/v1/tasks/status/{task_id}").status_code == 200, 30, message="the API back")
    assert api.get(f"/api/v1/tasks/status/{task_id}").json["state"] == "PENDING"  # the record survived on the replica
    new_id = client.submit("echo", engine=engine)
    assert own_sentinels.master().client().exists(engine.store.keys.task(new_id))
    assert engine.workers.count() == 0 and engine.store.throughput()["last_minute"]["SUCCESS"] == 0
    with pytest.raises(redis.ConnectionError):
        old.client().ping()  # it really is gone
    assert own_sentinels.master().port != old.port and SERVICE in own_sentinels.url


def test_a_master_refusing_writes_for_want_of_replicas_gets_a_503_not_a_500(sentinels, engine_on):
    engine = engine_on(sentinels.url)
    api = Api(create_app(engine, engine.settings.model_copy(update={"api_tokens": SERVICE_TOKENS})))
    task_id = client.submit("echo", engine=engine)
    master = sentinels.master().client()
    master.config_set("min-replicas-to-write", 2)  # it has one: every write is refused with NOREPLICAS
    try:
        refused = api.post(f"/api/v1/tasks/cancel/{task_id}")
        # Published before Redis refused its records: accepted, and recorded by the worker that takes it.
        published = api.post("/api/v1/tasks/bulk", json={"tasks": [{"actor": "echo"}]})
    finally:
        master.config_set("min-replicas-to-write", 0)
    assert refused.status_code == 503 and refused.headers["Retry-After"], refused.text
    assert "ResponseError" in refused.json["error"]["description"]
    assert published.status_code == 202, published.text
    assert api.post(f"/api/v1/tasks/cancel/{task_id}").json["state"] == "CANCELLED"

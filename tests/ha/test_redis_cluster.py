"""The engine on a Redis Cluster: the state store's shards, each script on one slot, slots moved under load.

The cluster is the test's own (3 masters on free ports, tests/ha/servers.py).
``make test-redis-cluster`` runs the whole engine and API suites against one
(tests/redis_cluster.py); this module keeps a small end-to-end proof in
``make test``; slots moved under load are tests/reliability/test_redis_cluster_reshard.py.
"""

from __future__ import annotations

import uuid

import pytest

from pipeline import client, workflow
from pipeline.errors import ConfigError
from pipeline.redis_client import make_redis
from pipeline.redis_url import parse_cluster_url
from pipeline.settings import load_settings
from pipeline.state import FINAL_STATES
from pipeline.workflow import signature as sig
from tests import sample_tasks
from tests.conftest import wait_until
from tests.ha.fixtures import start_workers_on


def test_settings_accept_the_cluster_form_and_name_what_is_wrong():
    settings = load_settings(redis_url="redis+cluster://:pw@10.0.0.1:7000,10.0.0.2")
    target = parse_cluster_url(settings.redis_url)
    assert target.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 6379)) and target.password == "pw"
    assert (settings.shards, settings.wait_replicas) == (16, 0)  # 16 shards; no WAIT on a cluster
    assert load_settings().shards == 1  # one server: the plain key names
    assert load_settings(redis_url="redis+cluster://h:7000", redis_shards=4).shards == 4
    for updates, says in [({"redis_url": "redis+cluster://h:7000/1"}, "database 0 only"),
                          ({"redis_url": "redis+cluster://h:x"}, "bad cluster node address"),
                          ({"redis_url": "redis+cluster://h:7000", "redis_shards": 1}, "at least 2 shards"),
                          ({"redis_url": "redis+cluster://h:7000", "redis_wait_replicas": 1}, "WAIT is not used"),
                          ({"redis_shards": 3}, "must be one of 1, 2, 4, 8, 16")]:
        with pytest.raises(ConfigError, match=says):
            load_settings(**updates)


def _final(engine, ids: list[str], timeout: float = 60) -> list[dict]:
    def done():
        records = engine.store.get_many(ids)
        return all(r and r["state"] in FINAL_STATES for r in records) and records
    return wait_until(done, timeout, 0.1, f"{len(ids)} tasks to finish")


def test_the_engine_runs_on_a_redis_cluster_with_every_task_in_the_shard_its_id_names(redis_cluster, engine_on,
                                                                                       start_worker):
    engine = engine_on(redis_cluster.url)
    store = engine.store
    assert store.clustered and store.keys.shards == 16
    start_workers_on(start_worker, engine, "--threads", "4")
    ids = [client.submit("echo", kwargs={"value": i}, engine=engine) for i in range(40)]
    ids += client.submit_many([{"actor": "echo", "kwargs": {"value": i}} for i in range(40, 60)], engine=engine)
    key = f"k-{uuid.uuid4().hex[:6]}"
    again = client.submit("echo", kwargs={"value": "once"}, idempotency_key=key, engine=engine)
    assert client.submit("echo", kwargs={"value": "once"}, idempotency_key=key, engine=engine) == again
    flow = workflow.chord([sig("add", value=i) for i in range(6)], sig("collect")).submit(engine=engine)
    records = _final(engine, ids + [again])
    assert {r["state"] for r in records} == {"SUCCESS"}
    done = wait_until(lambda: (w := workflow.get(flow, engine=engine))["state"] != "RUNNING" and w, 60, 0.1)
    assert done["state"] == "SUCCESS" and done["result"]["results"] == list(range(6))

    # Every script ran on one slot (a shebang makes Redis refuse anything else), and the shards are spread out.
    cluster = make_redis(redis_cluster.url)
    nodes = {redis_cluster.owner_of(cluster.keyslot(store.keys.task(task_id))) for task_id in ids}
    assert len(nodes) >= 2
    counts = store.count_by_state(["echo"], [sample_tasks.QUEUE])
    assert counts["actors"]["echo"]["SUCCESS"] == 61 and counts["states"]["SUCCESS"] == 61 + 7

    pages, cursor = [], None
    while True:  # pages merged across the shards: each task once, newest first
        page, cursor = store.list(actor="echo", limit=7, cursor=cursor)
        pages += page
        if cursor is None:
            break
    assert sorted(r["task_id"] for r in pages) == sorted(ids + [again])
    scores = [r["enqueued_at"] for r in pages]
    assert scores == sorted(scores, reverse=True)
    assert sum(store.throughput()["last_minute"].values()) == 61 + 7

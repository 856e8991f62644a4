"""RabbitMQ as a cluster: a list of nodes in CLAW_BROKER_URL, mirrored queues with their priorities.

The cheap tests use the shared RabbitMQ (never stopped) with a dead node in
front of it; the ``ha`` ones start a 3-node cluster of their own (about 35 s;
``make test-ha``). A node lost under load is in
tests/reliability/test_rabbitmq_node_loss.py.
"""

from __future__ import annotations

import json
import re

import pytest

from api.app import create_app
from pipeline import client
from pipeline.errors import ConfigError
from pipeline.services import check_rabbitmq
from pipeline.task import MAX_PRIORITY, queue_names
from tests.api.conftest import SERVICE_TOKENS, Api
from tests.conftest import BROKER_URL, QUEUE_PREFIX, ROOT, free_port, wait_until
from tests.ha.fixtures import start_workers_on

DEFINITIONS = ROOT / "infra" / "rabbitmq" / "definitions.json"
HA_DEFINITIONS = ROOT / "infra" / "rabbitmq" / "definitions.ha.json"


def dead_node_url() -> str:
    return f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"  # nothing listens there


def every_queue(prefix: str = QUEUE_PREFIX) -> list[str]:
    return [name + suffix for name in queue_names(prefix) for suffix in ("", ".DQ", ".XQ")]


def applied_policy(definitions: dict, queue: str) -> dict:
    """The policy RabbitMQ applies to *queue*: the highest-priority one whose pattern matches."""
    matching = [p for p in definitions["policies"] if re.search(p["pattern"], queue) and p["apply-to"] in ("queues", "all")]
    return max(matching, key=lambda p: p["priority"])["definition"] if matching else {}


def test_a_node_that_does_not_answer_is_skipped_by_publishers_consumers_and_checks(settings, engine_on, start_worker):
    nodes = f"{dead_node_url()};{BROKER_URL}"
    engine = engine_on(broker_url=nodes)
    check_rabbitmq(engine.settings)  # one node answering is enough
    api = Api(create_app(engine, engine.settings.model_copy(update={"api_tokens": SERVICE_TOKENS})))
    assert api.get("/ready", role=None).status_code == 200
    ids = client.submit_many([{"actor": "echo", "kwargs": {"value": i}} for i in range(20)], engine=engine)
    ids.append(client.submit("echo", engine=engine))
    start_workers_on(start_worker, engine, processes=2)  # each process starts at a random node of the list
    wait_until(lambda: all(r["state"] == "SUCCESS" for r in engine.store.get_many(ids)), 60, message="all SUCCESS")
    with pytest.raises(ConfigError, match=r"^CLAW_BROKER_URL: RabbitMQ at amqp://guest:\*\*\*@127\.0\.0\.1:\d+/%2F; amqp"):
        check_rabbitmq(engine.settings.model_copy(update={"broker_url": f"{dead_node_url()};{dead_node_url()}"}))


def test_the_ha_policies_mirror_every_queue_and_keep_the_single_node_dead_letter_bounds():
    single, ha = json.loads(DEFINITIONS.read_text()), json.loads(HA_DEFINITIONS.read_text())
    assert [v["name"] for v in ha["vhosts"]] == [v["name"] for v in single["vhosts"]]
    for queue in every_queue(prefix=""):
        policy = applied_policy(ha, queue)
        assert policy["ha-mode"] == "exactly" and policy["ha-params"] == 2 and policy["ha-sync-mode"] == "automatic", queue
        bounds = applied_policy(single, queue)  # one policy per queue: the HA one must carry these too
        assert {k: policy.get(k) for k in bounds} == bounds, queue
    assert applied_policy(single, "default.XQ")  # the dead-letter bound exists, so the check above meant something


@pytest.mark.ha
def test_queues_declared_through_any_node_are_mirrored_with_their_priorities(rabbit_cluster, engine_on):
    first = engine_on(broker_url=rabbit_cluster.urls)
    for queue in queue_names(QUEUE_PREFIX):
        first.broker.declare_queue(queue, ensure=True)
    # Another process (its nodes in another order) declares the same queues: same arguments, no error.
    others = ";".join(reversed(rabbit_cluster.urls.split(";")))
    second = engine_on(broker_url=others)
    for queue in queue_names(QUEUE_PREFIX):
        second.broker.declare_queue(queue, ensure=True)
    wait_until(lambda: all(rabbit_cluster.queues()[q]["synchronised_slave_pids"] for q in every_queue()), 30,
               message="every queue with a synchronised mirror")
    queues = rabbit_cluster.queues()
    for name in every_queue():
        queue = queues[name]
        assert queue["policy"] == ("ha-dead-letters" if name.endswith(".XQ") else "ha-queues"), name
        assert len(queue["slave_pids"]) == 1, name  # ha-params 2: the master and one mirror
        arguments = {argument[0]: argument[2] for argument in queue["arguments"]}
        assert arguments.get("x-max-priority") == (None if name.endswith(".XQ") else MAX_PRIORITY), name

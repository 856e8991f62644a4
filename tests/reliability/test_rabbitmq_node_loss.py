"""One RabbitMQ node of three stopped mid-load: mirrored queues fail over, publishers and consumers move.

A 3-node cluster of the test's own (tests/ha/servers.py) with the HA
policies of infra/rabbitmq/definitions.ha.json; the API and two worker
processes get every node in CLAW_BROKER_URL. The node stopped is the one
holding the masters of the queues, so the mirrors must take over.
"""

import time

import pytest

from pipeline import client
from pipeline.task import queue_names
from tests import sample_tasks
from tests.api.conftest import TOKENS_ENV, Server
from tests.conftest import QUEUE_PREFIX, wait_until
from tests.ha.fixtures import start_workers_on
from tests.reliability.conftest import scale, wait_all_final
from tests.reliability.load import SubmitLoad

QUEUE = QUEUE_PREFIX + sample_tasks.QUEUE
PRIORITY_QUEUE = QUEUE_PREFIX + sample_tasks.PRIORITY_QUEUE


@pytest.mark.ha
def test_a_rabbitmq_node_stopped_mid_load_loses_no_accepted_task_and_priorities_still_hold(
    env, namespace, redis_client, own_rabbit_cluster, engine_on, start_worker, report
):
    cluster = own_rabbit_cluster
    victim = cluster.nodes[0]
    # Declared through the first node alone, every queue has its master there: the node this test stops.
    seeding = engine_on(broker_url=victim.url_for(cluster.vhost))
    for queue in queue_names(QUEUE_PREFIX):
        seeding.broker.declare_queue(queue, ensure=True)
    seeding.close()
    engine = engine_on(broker_url=cluster.urls)
    # Priority-0 and priority-9 messages wait in the priority queue (no consumer yet) through the failover.
    order_key = f"{namespace}:order"
    client.submit_many([{"actor": "record_order", "kwargs": {"list_key": order_key, "tag": f"low-{i}"}, "priority": 0}
                        for i in range(200)], engine=engine)
    highs = [client.submit("record_order", kwargs={"list_key": order_key, "tag": f"high-{i}"}, priority=9, engine=engine)
             for i in range(5)]
    wait_until(lambda: all(cluster.queues()[q]["synchronised_slave_pids"] for q in (QUEUE, PRIORITY_QUEUE)), 30,
               message="the queues' mirrors in sync")
    server = Server({**env, "CLAW_API_TOKENS": TOKENS_ENV, "CLAW_BROKER_URL": cluster.urls})
    try:
        start_workers_on(start_worker, engine, "--threads", "4", processes=2)
        runs, effects = f"{namespace}:runs", f"{namespace}:effects"
        task = {"actor": "ledger", "kwargs": {"runs_key": runs, "effects_key": effects, "seconds": 0.02}}
        with SubmitLoad(server, task) as load:
            time.sleep(scale(3, 10))
            assert cluster.master_of(QUEUE) is victim and cluster.master_of(PRIORITY_QUEUE) is victim
            in_flight = len(load.accepted) - redis_client.hlen(effects)
            stopped = time.monotonic()
            victim.stop()
            stop_seconds = time.monotonic() - stopped
            promoted = cluster.master_of(QUEUE)  # the mirror, now the master
            api_back = wait_until(lambda: load.accepted_after(stopped + stop_seconds), 60,
                                  message="a request sent after the stop accepted") - stopped
            # Consumers moved: both worker processes consume the queue again, through the nodes left.
            wait_until(lambda: cluster.queues()[QUEUE]["consumers"] == 2, 60, interval=0.2, message="2 consumers back")
            consumers_back = time.monotonic() - stopped
            done_before = redis_client.hlen(effects)
            wait_until(lambda: redis_client.hlen(effects) > done_before, 60, message="tasks running again")
            time.sleep(scale(3, 20))
        ids = load.ids
        counts = wait_all_final(engine, ids, timeout=scale(120, 600))
        executions = {task_id: int(n) for task_id, n in redis_client.hgetall(runs).items()}
        final_states = engine.store.throughput()["last_hour"]
        # Priorities after the failover: one consumer on the promoted priority queue takes the 9s first.
        start_workers_on(start_worker, engine, "--threads", "2", processes=1, queues=(sample_tasks.PRIORITY_QUEUE,))
        wait_until(lambda: redis_client.llen(order_key) == 205, 120, message="all 205 priority tasks")
        order = redis_client.lrange(order_key, 0, -1)
        lows_before_last_high = sum(1 for tag in order[:max(order.index(f"high-{i}") for i in range(5))] if tag.startswith("low"))
        extra = set(executions) - set(ids)
        report(
            fault="RabbitMQ node (masters of the queues) stopped mid-load, 3-node cluster with mirrored queues "
                  "(API + 2 workers running)",
            accepted=len(ids), completed=counts.get("SUCCESS", 0), failed=counts.get("FAILURE", 0),
            lost=len(ids) - counts.get("SUCCESS", 0) - counts.get("FAILURE", 0),
            duplicated=final_states["SUCCESS"] + final_states["FAILURE"] - len(ids) - len(extra),
            recovery_seconds=round(max(api_back, consumers_back), 1), node_stop_seconds=round(stop_seconds, 1),
            api_accepting_after_seconds=round(api_back, 1), consumers_back_after_seconds=round(consumers_back, 1),
            in_flight_at_stop=in_flight, answered_503_with_retry_after=len(load.unavailable), other_answers=len(load.wrong),
            executed_twice=sum(1 for task_id in ids if executions.get(task_id, 0) > 1),
            ran_although_answered_503=len(extra), low_priority_before_last_high=lows_before_last_high,
        )
        assert not load.wrong, load.wrong[:5]
        assert promoted is not victim and in_flight > 0
        assert counts.get("SUCCESS", 0) == len(ids), counts  # no accepted message lost
        assert final_states["SUCCESS"] == len(ids) + len(extra)  # each task reached its final state once
        assert all(executions.get(task_id, 0) >= 1 for task_id in ids)
        assert lows_before_last_high <= 10, order[:40]  # priorities survive the failover (see docs)
        assert all(engine.store.get(task_id)["state"] == "SUCCESS" for task_id in highs)
    finally:
        server.close()

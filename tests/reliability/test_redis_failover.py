"""The Redis master SIGKILLed mid-load, under Sentinel: the API and two workers carry on with the new master.

The engine's Redis is a master + replica + 3 Sentinels of the test's own
(tests/ha/servers.py). The tasks keep their ledger (executions, side effects)
in the shared Redis, which is not failed over, so what ran can be counted
independently of what the failed-over Redis says.
"""

import time

from tests.api.conftest import TOKENS_ENV, Server
from tests.conftest import REDIS_URL, wait_until
from tests.ha.fixtures import start_workers_on
from tests.reliability.conftest import scale, wait_all_final
from tests.reliability.load import SubmitLoad


def finished(engine) -> int:
    """Final states recorded in the last hour (on the master of the moment)."""
    return sum(engine.store.throughput()["last_hour"].values())


def test_redis_master_killed_mid_load_fails_over_with_503s_and_every_accepted_task_ends_once(
    env, namespace, redis_client, own_sentinels, engine_on, start_worker, report
):
    engine = engine_on(own_sentinels.url)
    server = Server({**env, "CLAW_API_TOKENS": TOKENS_ENV, "CLAW_REDIS_URL": own_sentinels.url})
    try:
        start_workers_on(start_worker, engine, "--threads", "4", processes=2)
        runs, effects = f"{namespace}:runs", f"{namespace}:effects"
        task = {"actor": "ledger", "kwargs": {"runs_key": runs, "effects_key": effects, "seconds": 0.02, "ledger_url": REDIS_URL}}
        with SubmitLoad(server, task) as load:
            time.sleep(scale(3, 10))
            old = own_sentinels.master()
            in_flight = len(load.accepted) - redis_client.hlen(effects)
            old.kill()
            killed = time.monotonic()
            wait_until(lambda: own_sentinels.master_port() not in (None, old.port), 60, interval=0.05,
                       message="the Sentinels to promote the replica")
            failover_seconds = time.monotonic() - killed
            # Work resumed: the API accepts a request sent after the kill, and workers record final states on the new master.
            api_back = wait_until(lambda: load.accepted_after(killed), 60, message="a request sent after the kill accepted") - killed
            finished_at_failover = finished(engine)
            wait_until(lambda: finished(engine) > finished_at_failover, 60, interval=0.05, message="a task finished on the new master")
            workers_back = time.monotonic() - killed
            # The supervisor brings the dead server back; the Sentinels make it a replica of the new master.
            old.start("--save", "", "--appendonly", "no")
            time.sleep(scale(3, 20))
        ids = load.ids
        counts = wait_all_final(engine, ids, timeout=scale(120, 600))
        executions = {task_id: int(n) for task_id, n in redis_client.hgetall(runs).items()}
        final_states = engine.store.throughput()["last_hour"]
        extra = set(executions) - set(ids)  # ran although its request was answered 503 (unconfirmed)
        report(
            fault="Redis master SIGKILLed mid-load under Sentinel (API + 2 workers running)", accepted=len(ids),
            completed=counts.get("SUCCESS", 0), failed=counts.get("FAILURE", 0),
            lost=len(ids) - counts.get("SUCCESS", 0) - counts.get("FAILURE", 0),
            duplicated=sum(1 for task_id in ids if executions.get(task_id, 0) > 1),
            recovery_seconds=round(max(api_back, workers_back), 1), failover_seconds=round(failover_seconds, 1),
            api_accepting_after_seconds=round(api_back, 1), workers_finishing_after_seconds=round(workers_back, 1),
            in_flight_at_kill=in_flight, answered_503_with_retry_after=len(load.unavailable), other_answers=len(load.wrong),
            slowest_answer_seconds=round(load.slowest, 1), ran_although_answered_503=len(extra),
        )
        assert not load.wrong, load.wrong[:5]
        assert in_flight > 0
        assert counts.get("SUCCESS", 0) == len(ids), counts  # every accepted task ran and finished
        assert all(executions.get(task_id) == 1 for task_id in ids)  # ... exactly once
        assert final_states["SUCCESS"] == len(ids) + len(extra)  # and reached its final state once
        assert len(extra) <= load.batch * 2  # at most the batches in flight when Redis went away
    finally:
        server.close()

"""Slots of a Redis Cluster moved while the API and two workers run on it: every accepted task ends once.

The cluster is the test's own (3 masters, tests/ha/servers.py). Mid-load,
the slots of half the state store's shards and the slot of the shared
names (rate-limit windows, worker registry, ...) move to another master the
way ``redis-cli --cluster reshard`` moves a slot (IMPORTING/MIGRATING,
MIGRATE of its keys a few at a time, SETSLOT NODE): meanwhile clients are
redirected (ASK for a key already moved, MOVED once the slot has).
"""

from __future__ import annotations

import time

from tests.api.conftest import TOKENS_ENV, Server
from tests.ha.fixtures import start_workers_on
from tests.reliability.conftest import scale, wait_all_final
from tests.reliability.load import SubmitLoad


def test_slots_moved_mid_load_leave_every_accepted_task_finished_exactly_once(env, namespace, own_redis_cluster,
                                                                             engine_on, start_worker, report):
    cluster = own_redis_cluster
    engine = engine_on(cluster.url)
    store = engine.store
    server = Server({**env, "CLAW_API_TOKENS": TOKENS_ENV, "CLAW_REDIS_URL": cluster.url})
    probe = store.redis
    try:
        start_workers_on(start_worker, engine, "--threads", "4", processes=2)
        runs, effects = f"{namespace}:runs", f"{namespace}:effects"
        task = {"actor": "ledger", "kwargs": {"runs_key": runs, "effects_key": effects, "seconds": 0.02}}
        slots = sorted({probe.keyslot(keys.expiry) for keys in store.keys.all_shards()[::2]}
                       | {probe.keyslot(store.keys.workers)})
        with SubmitLoad(server, task) as load:
            time.sleep(scale(3, 10))
            in_flight = len(load.accepted) - probe.hlen(effects)
            started = time.monotonic()
            moved = sum(cluster.move_slot(slot, (cluster.owner_of(slot) + 1) % len(cluster.servers)) for slot in slots)
            reshard_seconds = time.monotonic() - started
            accepted_during = len(load.accepted)
            time.sleep(scale(3, 10))
        ids = load.ids
        counts = wait_all_final(engine, ids, timeout=scale(120, 600))
        executions = {task_id: int(n) for task_id, n in probe.hgetall(runs).items()}
        finals = [sum(1 for entry in store.get_with_history(task_id)[1] if entry["state"] in ("SUCCESS", "FAILURE"))
                  for task_id in ids]
        report(
            fault=f"Redis Cluster: {len(slots)} slots (half the state store's shards, the shared names) moved to "
                  "other masters mid-load (API + 2 workers running)",
            accepted=len(ids), completed=counts.get("SUCCESS", 0), failed=counts.get("FAILURE", 0),
            lost=len(ids) - counts.get("SUCCESS", 0) - counts.get("FAILURE", 0),
            duplicated=sum(1 for n in finals if n > 1), recovery_seconds=None,
            keys_moved=moved, reshard_seconds=round(reshard_seconds, 1), in_flight_at_start=in_flight,
            accepted_before_reshard_ended=accepted_during, answered_503_with_retry_after=len(load.unavailable),
            other_answers=len(load.wrong), executed_twice=sum(1 for n in executions.values() if n > 1),
        )
        assert not load.wrong, load.wrong[:5]
        assert moved > 0 and in_flight > 0
        assert counts.get("SUCCESS", 0) == len(ids), counts  # every accepted task ran and finished ...
        assert finals == [1] * len(ids)  # ... and reached its final state once
        assert set(probe.hgetall(effects)) >= set(ids)  # its side effect applied
    finally:
        server.close()

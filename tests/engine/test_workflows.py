"""Chains, groups and chords end to end: real worker processes, RabbitMQ and Redis."""

from __future__ import annotations

import uuid

import pytest

from pipeline import workflow
from pipeline.errors import InvalidArguments, InvalidTransition
from pipeline.workflow import signature as sig
from tests.conftest import due_follow_ups, namespace_keys, wait_until


def wait_final(engine, workflow_id: str, timeout: float = 60.0) -> dict:
    return wait_until(
        lambda: (w := workflow.get(workflow_id, engine=engine))["state"] != "RUNNING"
        and w["counts"]["pending"] == 0 and w,
        timeout, 0.1, f"workflow {workflow_id} to finish",
    )


def test_chain_passes_each_result_to_the_next_step_as_previous(engine, start_worker):
    start_worker()
    workflow_id = workflow.chain(sig("add", value=1), sig("add", value=2), sig("add", value=3)).submit(engine=engine)
    done = wait_final(engine, workflow_id)
    assert done["state"] == "SUCCESS" and done["result"] == 6
    assert done["counts"] == {"pending": 0, "succeeded": 3, "failed": 0, "cancelled": 0} and done["percent"] == 100
    steps = [engine.store.get(m["task_id"]) for m in done["members"]]
    assert [s["result"] for s in steps] == [1, 3, 6]
    assert [(s["workflow"], s["wf_index"]) for s in steps] == [(workflow_id, 0), (workflow_id, 1), (workflow_id, 2)]
    assert engine.store.payload(steps[2]["task_id"])["kwargs"] == {"value": 3, "previous": 3}


def test_chain_stops_at_a_failed_step_and_skips_the_rest(engine, start_worker):
    start_worker()
    workflow_id = workflow.chain(sig("add", value=1), sig("permanent_failure"), sig("add", value=3)).submit(engine=engine)
    done = wait_final(engine, workflow_id)
    assert done["state"] == "FAILURE" and done["result"] is None
    assert [m["state"] for m in done["members"]] == ["SUCCESS", "FAILURE", "CANCELLED"]
    assert done["members"][2]["skipped"] and done["members"][2]["error"]["type"] == "WorkflowSkipped"
    assert done["counts"] == {"pending": 0, "succeeded": 1, "failed": 1, "cancelled": 1}


def test_group_counts_members_and_collects_results_in_order(engine, start_worker):
    start_worker("--threads", "4")
    workflow_id = workflow.group([sig("echo", value=i) for i in range(20)]).submit(engine=engine)
    done = wait_final(engine, workflow_id)
    assert done["state"] == "SUCCESS" and done["counts"]["succeeded"] == 20
    assert [r["value"] for r in done["result"]] == list(range(20))


def test_chord_skips_its_callback_when_a_member_fails_under_the_skip_policy(engine, start_worker, redis_client):
    start_worker()
    runs = f"{engine.settings.namespace}:runs"
    members = [sig("echo", value=1), sig("permanent_failure")]
    workflow_id = workflow.chord(members, sig("collect", runs_key=runs)).submit(engine=engine)
    done = wait_final(engine, workflow_id)
    assert done["state"] == "FAILURE"
    assert done["members"][2]["state"] == "CANCELLED" and done["members"][2]["skipped"]
    assert redis_client.get(runs) is None


def test_chord_runs_its_callback_with_a_summary_of_failures_under_run_with_summary(engine, start_worker):
    start_worker()
    members = [sig("echo", value=1), sig("permanent_failure"), sig("echo", value=3)]
    workflow_id = workflow.chord(members, sig("collect"), on_failure="run_with_summary").submit(engine=engine)
    done = wait_final(engine, workflow_id)
    assert done["state"] == "SUCCESS"
    results, failures = done["result"]["results"], done["result"]["failures"]
    assert [r and r["value"] for r in results] == [1, None, 3]
    assert [(f["index"], f["actor"], f["state"], f["error"]["type"]) for f in failures] == [
        (1, "permanent_failure", "FAILURE", "PermanentError")]


def test_a_member_retried_until_it_succeeds_fires_the_callback_once(engine, start_worker, redis_client):
    start_worker("--threads", "4")
    ns = engine.settings.namespace
    members = [sig("fails_then_succeeds", counter_key=f"{ns}:c{i}", failures=2) for i in range(4)]
    workflow_id = workflow.chord(members, sig("collect", runs_key=f"{ns}:runs")).submit(engine=engine)
    done = wait_final(engine, workflow_id)
    assert done["state"] == "SUCCESS" and done["result"]["results"] == ["ok"] * 4
    assert redis_client.get(f"{ns}:runs") == "1"
    assert all(engine.store.get(m["task_id"])["attempts"] == 3 for m in done["members"][:4])


def test_cancel_stops_running_members_and_skips_the_callback(engine, start_worker, redis_client):
    start_worker("--processes", "1", "--threads", "2")
    runs = f"{engine.settings.namespace}:runs"
    members = [sig("cooperative", seconds=20) for _ in range(6)]
    workflow_id = workflow.chord(members, sig("collect", runs_key=runs)).submit(engine=engine)
    wait_until(lambda: sum(m["state"] == "STARTED" for m in workflow.get(workflow_id, engine=engine)["members"]) == 2)
    outcome = workflow.cancel(workflow_id, engine=engine)
    assert outcome["cancelled"] == 4 and outcome["interrupting"] == 2
    done = wait_final(engine, workflow_id)
    assert done["state"] == "CANCELLED"
    assert done["counts"] == {"pending": 0, "succeeded": 0, "failed": 0, "cancelled": 7}
    assert redis_client.get(runs) is None
    with pytest.raises(InvalidTransition):
        workflow.cancel(workflow_id, engine=engine)


def test_retry_reruns_failed_members_only_and_rearms_the_callback(engine, start_worker, redis_client):
    start_worker("--threads", "2")
    ns = engine.settings.namespace
    # fails 5 times: its 4 attempts fail, the retry's first attempt succeeds
    members = [sig("echo", value=0), sig("fails_then_succeeds", counter_key=f"{ns}:c", failures=4)]
    workflow_id = workflow.chord(members, sig("collect", runs_key=f"{ns}:runs")).submit(engine=engine)
    failed = wait_final(engine, workflow_id)
    assert failed["state"] == "FAILURE" and failed["members"][2]["skipped"]
    first_echo = failed["members"][0]["task_id"]
    retried = workflow.retry(workflow_id, engine=engine)
    assert list(retried["retried"]) == ["1"]
    done = wait_final(engine, workflow_id)
    assert done["state"] == "SUCCESS" and done["retries"] == 1
    assert done["members"][0]["task_id"] == first_echo  # the member that succeeded did not run again
    assert done["members"][1]["task_id"] == retried["retried"]["1"]
    assert done["result"]["results"][1] == "ok" and redis_client.get(f"{ns}:runs") == "1"
    assert done["counts"] == {"pending": 0, "succeeded": 3, "failed": 0, "cancelled": 0}
    with pytest.raises(InvalidTransition):
        workflow.retry(workflow_id, engine=engine)


def test_a_chain_retried_after_a_failed_step_runs_that_step_and_the_rest(engine, start_worker):
    start_worker()
    ns = engine.settings.namespace
    shape = workflow.chain(sig("add", value=1), sig("fails_then_succeeds", counter_key=f"{ns}:c", failures=4),
                           sig("passthrough"))
    workflow_id = shape.submit(engine=engine)
    assert wait_final(engine, workflow_id)["state"] == "FAILURE"
    workflow.retry(workflow_id, engine=engine)
    done = wait_final(engine, workflow_id)
    assert done["state"] == "SUCCESS" and done["result"] == {"got": "ok"}


def test_a_member_cannot_be_retried_or_its_waiting_follow_up_cancelled_outside_its_workflow(engine, start_worker):
    from pipeline import client

    start_worker()
    workflow_id = workflow.chain(sig("permanent_failure"), sig("add", value=1)).submit(engine=engine)
    done = wait_final(engine, workflow_id)
    with pytest.raises(InvalidTransition, match="retry the workflow"):
        client.retry(done["members"][0]["task_id"], engine=engine)
    waiting_id = workflow.chain(sig("cooperative", seconds=5), sig("add", value=1)).submit(engine=engine)
    follow_up = workflow.get(waiting_id, engine=engine)["members"][1]
    assert follow_up["state"] == "WAITING"
    with pytest.raises(InvalidTransition, match="cancel the workflow"):
        client.cancel(follow_up["task_id"], engine=engine)
    workflow.cancel(waiting_id, engine=engine)


def test_invalid_workflows_are_refused_before_anything_is_enqueued(engine, redis_client):
    cases = [
        (workflow.chain(sig("add", value="x")), "steps.0.kwargs.value"),
        (workflow.group([sig("echo"), sig("no_such_actor")]), "members.1.actor"),
        (workflow.chain(sig("add"), sig("echo", value=1)), "steps.1.kwargs.previous"),  # echo cannot receive it
        (workflow.chain(sig("add"), sig("add", previous=1)), "steps.1.kwargs.previous"),  # filled in later
        (workflow.chord([sig("echo")], sig("echo")), "callback.kwargs.results"),
        (workflow.chord([sig("echo")], sig("collect"), on_failure="sometimes"), "on_failure"),
        (workflow.group([sig("echo", priority=12)]), "members.0.priority"),
    ]
    for shape, field in cases:
        with pytest.raises(InvalidArguments) as caught:
            shape.submit(engine=engine)
        assert field in caught.value.fields, (field, caught.value.fields)
    assert not namespace_keys(redis_client, engine.settings.namespace)


def test_description_round_trips_and_reports_bad_fields():
    shape = workflow.chord([sig("echo", value=1)], sig("collect"), on_failure="run_with_summary")
    assert workflow.from_description(shape.describe()) == shape
    for body, field in [({"kind": "loop"}, "kind"), ({"kind": "group", "members": []}, "members"),
                        ({"kind": "chain", "steps": [{"actor": "echo", "args": [1]}]}, "steps.0.args"),
                        ({"kind": "group", "members": [{"actor": "echo"}], "callback": {}}, "callback")]:
        with pytest.raises(InvalidArguments) as caught:
            workflow.from_description(body)
        assert field in caught.value.fields


def test_an_idempotency_key_submits_a_workflow_once(engine):
    key = uuid.uuid4().hex
    first = workflow.group([sig("echo", value=1)]).submit(engine=engine, idempotency_key=key)
    again = workflow.group([sig("echo", value=1)]).submit(engine=engine, idempotency_key=key)
    assert first == again


@pytest.mark.parametrize("members", [pytest.param(2000, id="2000"), pytest.param(10_000, id="10000", marks=pytest.mark.slow)])
def test_a_large_group_is_submitted_in_bulk_and_counted_exactly(engine, start_worker, members):
    start_worker("--threads", "8")
    workflow_id = workflow.group([sig("noop") for _ in range(members)]).submit(engine=engine)
    done = wait_until(lambda: (w := engine.store.get_workflow(workflow_id))["state"] != "RUNNING" and w, 300, 0.2)
    assert done["state"] == "SUCCESS"
    assert (done["succeeded"], done["failed"], done["cancelled"], done["members_done"]) == (members, 0, 0, members)
    assert due_follow_ups(engine.store) == 0
    assert engine.store.count_by_state(["noop"], [])["actors"]["noop"]["SUCCESS"] == members

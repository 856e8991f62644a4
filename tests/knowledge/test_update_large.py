"""A ``full`` update of a large base under the original design's limit shape.

``vectorize_document`` is rate limited (600/m here, as the test engine sets;
5/m in production) and ``update_knowledge_base`` has a 3/5 min soft/hard
limit: the update must not wait for its documents, its chord's progress must
be visible the whole time, and the base must be ``ready`` at the end.
The 1,000-document run takes about 100 s at 600/m, so it is ``slow``;
``make test`` runs the same test on 60 documents.
"""

from __future__ import annotations

import time

import pytest

from .conftest import wait_for_task

pytestmark = pytest.mark.timeout(600)


def _base_with(new_base, count: int):
    from pipeline.knowledge import store
    from pipeline.knowledge.db import connection

    kb = new_base("large")
    with connection() as conn:
        for i in range(count):
            store.upsert_document(conn, kb.id, f"doc-{i:04d}.md", f"Document {i}",
                                  f"# Document {i}\n\nTicket {i} was about invoice number {i * 7919 % 100003}.")
    return kb


def _full_update_with_progress(kb_engine, kb, count: int) -> tuple[dict, list[float], float]:
    from pipeline import client, workflow
    from pipeline.task import REGISTRY

    policy = REGISTRY["update_knowledge_base"].policy
    assert (policy.soft_time_limit, policy.time_limit) == (180, 300)
    started = time.monotonic()
    task_id = client.submit("update_knowledge_base", kwargs={"knowledge_base_id": str(kb.id), "mode": "full"})
    update = wait_for_task(kb_engine, task_id, timeout=60)
    assert update["state"] == "SUCCESS", update.get("error")
    assert update["finished_at"] - update["started_at"] < policy.soft_time_limit  # it does not wait for the documents
    workflow_id = update["result"]["workflow_id"]
    percents: list[float] = []
    while (state := workflow.get(workflow_id, limit=0))["state"] == "RUNNING":
        percents.append(state["percent"])
        time.sleep(0.5)
    return workflow.get(workflow_id, limit=0), percents, time.monotonic() - started


@pytest.mark.parametrize("count", [pytest.param(60, id="60-documents"),
                                   pytest.param(1000, id="1000-documents", marks=pytest.mark.slow)])
def test_full_update_of_a_large_base_finishes_as_a_chord_with_progress_and_leaves_it_ready(
        count, new_base, kb_engine, start_kb_worker):
    from pipeline.knowledge import store
    from pipeline.knowledge.db import connection

    kb = _base_with(new_base, count)
    start_kb_worker()
    done, percents, seconds = _full_update_with_progress(kb_engine, kb, count)
    print(f"\nfull update of {count} documents: {seconds:.1f} s")
    assert done["state"] == "SUCCESS"
    assert done["counts"] == {"pending": 0, "succeeded": count + 1, "failed": 0, "cancelled": 0}
    assert (done["result"]["documents"], done["result"]["done"], done["result"]["failed"]) == (count, count, 0)
    # progress moved while the documents were embedded, never backwards
    assert len({p for p in percents if 0 < p < 100}) >= 3 and percents == sorted(percents)
    with connection() as conn:
        base = store.get_knowledge_base(conn, kb.id)
        statuses = {d.status for d in store.list_documents(conn, kb.id)}
    assert base.status == "ready" and statuses == {"ready"}

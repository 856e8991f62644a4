"""vectorize_document: idempotent, resumable, atomic; delete_knowledge_vectors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pipeline.errors import PermanentError, SoftTimeLimitExceeded
from tests.threads import at_once

from .conftest import corpus_text, wait_until

LONG_DOC = "\n\n".join(
    corpus_text(name)
    for name in ("en-password-reset.md", "en-rate-limits.md", "en-webhooks.md", "en-account-deletion.md")
)


def _rows(doc_id: str) -> dict:
    from pipeline.knowledge.db import connection

    with connection() as conn:
        chunks, positions = conn.execute(
            "SELECT count(*), count(DISTINCT position) FROM chunks WHERE document_id = %s", (doc_id,)
        ).fetchone()
        staged = conn.execute("SELECT count(*) FROM embedding_staging WHERE document_id = %s", (doc_id,)).fetchone()[0]
        row = conn.execute("SELECT status, indexed_at FROM documents WHERE id = %s", (doc_id,)).fetchone()
    status, indexed_at = row or (None, None)
    return {"chunks": chunks, "positions": positions, "staged": staged, "status": status, "indexed_at": indexed_at}


def _centroid_counts_match(kb_id) -> bool:
    from pipeline.knowledge.db import connection

    with connection() as conn:
        stored = dict(conn.execute(
            "SELECT script, chunk_count FROM script_centroids WHERE knowledge_base_id = %s AND chunk_count > 0", (kb_id,)
        ).fetchall())
        actual = dict(conn.execute(
            "SELECT script, count(*) FROM chunks WHERE knowledge_base_id = %s GROUP BY script", (kb_id,)
        ).fetchall())
        sums_ok = conn.execute(
            "SELECT bool_and(l2_distance(s.embedding_sum, c.total) < 1e-3) FROM script_centroids s"
            " JOIN (SELECT script, sum(embedding) AS total FROM chunks WHERE knowledge_base_id = %(kb)s GROUP BY script) c"
            " USING (script) WHERE s.knowledge_base_id = %(kb)s",
            {"kb": kb_id},
        ).fetchone()[0]
    return stored == actual and sums_ok is not False


def test_vectorizing_twice_keeps_one_set_of_chunks_and_skips_unchanged_content(new_base):
    from pipeline.actors.knowledge import vectorize_document

    kb = new_base()
    first = vectorize_document(knowledge_base_id=str(kb.id), source="guide.md", text=LONG_DOC)
    assert first["status"] == "vectorized" and first["embedded"] == first["chunks"] >= 6
    before = _rows(first["document_id"])

    again = vectorize_document(knowledge_base_id=str(kb.id), source="guide.md", text=LONG_DOC)
    assert again["status"] == "skipped" and again["embedded"] == 0
    assert _rows(first["document_id"]) == before  # not even touched

    forced = vectorize_document(document_id=first["document_id"], force=True)
    assert forced["status"] == "vectorized"
    assert forced["embedded"] == 0  # every chunk text was known: vectors reused
    after = _rows(first["document_id"])
    assert after["chunks"] == after["positions"] == first["chunks"]
    assert after["staged"] == 0 and after["status"] == "ready"
    assert _centroid_counts_match(kb.id)


def test_changed_content_replaces_the_chunks_and_embeds_only_new_text(new_base):
    from pipeline.actors.knowledge import vectorize_document
    from pipeline.knowledge import retrieval

    kb = new_base()
    first = vectorize_document(knowledge_base_id=str(kb.id), source="guide.md", text=LONG_DOC)
    edited = LONG_DOC + "\n\nOn-call engineers can be paged through the Status page in an emergency."
    second = vectorize_document(knowledge_base_id=str(kb.id), source="guide.md", text=edited)
    assert second["status"] == "vectorized" and second["document_id"] == first["document_id"]
    assert 1 <= second["embedded"] < second["chunks"]
    rows = _rows(first["document_id"])
    assert rows["chunks"] == rows["positions"] == second["chunks"]
    hit = retrieval.search(kb.id, "How do I page the on-call engineer?", 1, distinct=False)[0]
    assert "paged through the Status page" in hit.text
    assert _centroid_counts_match(kb.id)


def test_every_chunk_gets_the_second_vector_and_unchanged_text_is_not_embedded_again(new_base, monkeypatch):
    from pipeline.actors.knowledge import vectorize_document
    from pipeline.knowledge.db import connection
    from pipeline.knowledge.embedders import UseEmbedder

    embedded: list[str] = []
    original = UseEmbedder._embed
    monkeypatch.setattr(UseEmbedder, "_embed", lambda self, texts, is_query: embedded.extend(texts) or original(
        self, texts, is_query))
    kb = new_base()
    first = vectorize_document(knowledge_base_id=str(kb.id), source="guide.md", text=LONG_DOC)
    assert len(embedded) == first["chunks"]
    embedded.clear()
    edited = LONG_DOC + "\n\nOn-call engineers can be paged through the Status page in an emergency."
    second = vectorize_document(knowledge_base_id=str(kb.id), source="guide.md", text=edited)
    assert len(embedded) == second["embedded"] < second["chunks"]  # the same new text as the main embedder
    with connection() as conn:
        missing = conn.execute("SELECT count(*) FROM chunks WHERE document_id = %s AND use_embedding IS NULL",
                               (first["document_id"],)).fetchone()[0]
    assert missing == 0


def test_a_base_without_second_vectors_is_ranked_by_the_language_neutral_score(new_base):
    """Chunks stored before migration 0003 have no USE vector: search keeps working, ranked as before."""
    from pipeline.actors.knowledge import vectorize_document
    from pipeline.knowledge import retrieval
    from pipeline.knowledge.db import connection

    from .conftest import CORPUS, corpus_text

    kb = new_base()
    for path in sorted(CORPUS.glob("*.md"))[:8]:
        vectorize_document(knowledge_base_id=str(kb.id), source=path.name, text=corpus_text(path.name))
    question = "How do I verify a webhook signature?"
    fused = retrieval.search(kb.id, question, 5)
    with connection() as conn:
        conn.execute("UPDATE chunks SET use_embedding = NULL WHERE knowledge_base_id = %s", (kb.id,))
    class Unused:
        def query(self, text):
            raise AssertionError("the second embedder was run for a base that cannot use its vector")

    before = retrieval.search(kb.id, question, 5, use_embedder=Unused())
    neutral = retrieval.search(kb.id, question, 5, ranking="neutral")
    assert [(h.chunk_id, h.score) for h in before] == [(h.chunk_id, h.score) for h in neutral]
    assert [h.score for h in fused] != [h.score for h in neutral]  # the fused score was in use before


def test_soft_time_limit_saves_batches_and_the_next_attempt_resumes_without_duplicates(new_base, task_context):
    """The soft limit is raised into the running thread exactly as the engine's TimeLimits does."""
    from dramatiq.middleware.threading import raise_thread_exception

    from pipeline.actors.knowledge import vectorize_document
    from pipeline.knowledge import store
    from pipeline.knowledge.db import connection

    kb = new_base()
    with connection() as conn:
        doc = store.upsert_document(conn, kb.id, "guide.md", "Guide", LONG_DOC)
    doc_id = str(doc.id)
    worker_thread = threading.get_ident()

    def interrupt_after_first_batch():
        wait_until(lambda: _rows(doc_id)["staged"] >= 4, 60, 0.02, "the first staged batch")
        raise_thread_exception(worker_thread, SoftTimeLimitExceeded)

    killer = threading.Thread(target=interrupt_after_first_batch)
    with task_context("vectorize_document", attempt=1) as first:
        killer.start()
        with pytest.raises(SoftTimeLimitExceeded):
            vectorize_document(document_id=doc_id)
            time.sleep(5)  # only reached if the limit missed the embedding loop
    killer.join()
    interrupted = _rows(doc_id)
    assert interrupted["chunks"] == 0 and interrupted["status"] == "indexing"
    assert interrupted["staged"] >= 4
    assert "soft time limit" in first.progress()["message"]

    with task_context("vectorize_document", attempt=2) as second:
        result = vectorize_document(document_id=doc_id)
    assert result["status"] == "vectorized"
    assert result["embedded"] == result["chunks"] - interrupted["staged"]  # only the rest was embedded
    done = _rows(doc_id)
    assert done["chunks"] == done["positions"] == result["chunks"]
    assert done["staged"] == 0 and done["status"] == "ready"
    assert second.progress()["percent"] == pytest.approx(95)
    assert _centroid_counts_match(kb.id)


def test_progress_is_reported_per_batch(new_base, task_context):
    from pipeline.actors.knowledge import vectorize_document

    kb = new_base()
    with task_context("vectorize_document") as running:
        result = vectorize_document(knowledge_base_id=str(kb.id), source="guide.md", text=LONG_DOC)
        events = wait_until(lambda: running.events()[-1:] and running.events()[-1]["percent"] == 95 and running.events(), 5)
    messages = [e["message"] for e in events]
    chunks = result["chunks"]
    assert messages[0] == f"0 of {chunks} chunks already embedded"
    assert messages[1] == f"embedded 4 of {chunks} chunks"
    # Then the second embedder's vectors (the fused ranking's), in its own batches.
    assert f"embedded {chunks} of {chunks} chunks" in messages
    assert f"USE: 0 of {chunks} chunks already embedded" in messages
    assert messages[-1] == f"USE: embedded {chunks} of {chunks} chunks"
    percents = [e["percent"] for e in events]
    assert percents == sorted(percents) and percents[-1] == 95


def test_two_attempts_racing_on_one_document_leave_one_set_of_chunks(new_base):
    """A redelivered message can run while the first copy is still working: the row lock serialises the swap."""
    from pipeline.actors.knowledge import vectorize_document
    from pipeline.knowledge import store
    from pipeline.knowledge.db import connection

    kb = new_base()
    text = corpus_text("zh-kb-troubleshooting.md") + "\n\n" + corpus_text("zh-sso.md")
    with connection() as conn:
        doc_id = str(store.upsert_document(conn, kb.id, "zh.md", "zh", text).id)
    results, errors = at_once(lambda: vectorize_document(document_id=doc_id, force=True), 2)
    assert not errors
    rows = _rows(doc_id)
    assert rows["chunks"] == rows["positions"] == results[0]["chunks"] == results[1]["chunks"]
    assert _centroid_counts_match(kb.id)


def test_vectorize_refuses_a_missing_document_and_bad_arguments(new_base):
    import uuid

    from pipeline.actors.knowledge import VectorizeArgs, vectorize_document
    from pipeline.errors import InvalidArguments

    with pytest.raises(PermanentError, match="does not exist"):
        vectorize_document(document_id=str(uuid.uuid4()))
    with pytest.raises(InvalidArguments) as err:
        vectorize_document.validate_kwargs({"knowledge_base_id": str(new_base().id), "text": "hello"})
    assert "give document_id, or knowledge_base_id + source + text" in str(err.value.fields)
    with pytest.raises(InvalidArguments):
        vectorize_document.validate_kwargs({"document_id": "not-a-uuid"})
    assert VectorizeArgs(document_id=uuid.uuid4()).force is False


def test_delete_one_several_or_all_documents(new_base):
    from pipeline.actors.knowledge import delete_knowledge_vectors, vectorize_document
    from pipeline.errors import InvalidArguments
    from pipeline.knowledge import retrieval

    kb = new_base()
    names = ["en-webhooks.md", "zh-sso.md", "en-rate-limits.md", "zh-notifications.md"]
    ids = {n: vectorize_document(knowledge_base_id=str(kb.id), source=n, text=corpus_text(n))["document_id"]
           for n in names}

    one = delete_knowledge_vectors(knowledge_base_id=str(kb.id), document_ids=[ids["en-webhooks.md"]])
    assert one["deleted_documents"] == 1 and one["deleted_chunks"] >= 1
    assert _rows(ids["en-webhooks.md"]) == {"chunks": 0, "positions": 0, "staged": 0, "status": None, "indexed_at": None}
    assert "en-webhooks.md" not in {h.source for h in retrieval.search(kb.id, "webhook signature HMAC", 4)}
    assert _centroid_counts_match(kb.id)

    several = delete_knowledge_vectors(knowledge_base_id=str(kb.id),
                                       document_ids=[ids["zh-sso.md"], ids["en-rate-limits.md"]])
    assert several["deleted_documents"] == 2
    assert {h.source for h in retrieval.search(kb.id, "anything", 5)} == {"zh-notifications.md"}
    assert _centroid_counts_match(kb.id)

    with pytest.raises(InvalidArguments):
        delete_knowledge_vectors.validate_kwargs({"knowledge_base_id": str(kb.id)})  # neither ids nor all
    everything = delete_knowledge_vectors(knowledge_base_id=str(kb.id), all_documents=True)
    assert everything["deleted_documents"] == 1
    assert retrieval.search(kb.id, "anything", 5) == []


def test_stored_vectors_are_the_embedders_passage_vectors(new_base):
    from pipeline.actors.knowledge import vectorize_document
    from pipeline.knowledge import store
    from pipeline.knowledge.db import connection
    from pipeline.knowledge.embedders import get_embedder

    kb = new_base()
    doc_id = vectorize_document(knowledge_base_id=str(kb.id), source="a.md", text=corpus_text("zh-bot-persona.md"))[
        "document_id"]
    with connection() as conn:
        text, vector, script = conn.execute(
            "SELECT content, embedding::text, script FROM chunks WHERE document_id = %s AND position = 0", (doc_id,)
        ).fetchone()
    assert script == "cjk"
    np.testing.assert_allclose(store.parse_vector(vector), get_embedder().passages([text])[0], atol=1e-5)

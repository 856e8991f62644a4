"""Retrieval quality on the bilingual corpus, measured through the real store and index.

The corpus has 8 English and 8 Chinese help articles on distinct topics. ``questions.json`` has
one paraphrased question per topic in each language (half of them cross-lingual);
``questions_short.json`` has 32 short, keyword-like questions, 29 of them cross-lingual, written
afterwards to check that the ranking was not fitted to the first set. The figures are written to
test-artifacts/knowledge-retrieval.json.
"""

from __future__ import annotations

import json
import time

import pytest

from .conftest import HERE, QUESTIONS, ROOT

SHORT_QUESTIONS = json.loads((HERE / "questions_short.json").read_text(encoding="utf-8"))

pytestmark = pytest.mark.timeout(300)


def _measure(corpus_base, ranking: str, questions=QUESTIONS) -> dict:
    from pipeline.knowledge import retrieval

    counts = {"same": [0, 0, 0], "cross": [0, 0, 0]}  # top-1, top-5, questions
    misses = []
    for item in questions:
        kind = "cross" if (item["lang"] == "zh") != item["doc"].startswith("zh-") else "same"
        hits = retrieval.search(corpus_base.kb.id, item["q"], 5, ranking=ranking)
        ranked = [hit.source for hit in hits]
        counts[kind][0] += ranked[:1] == [item["doc"]]
        counts[kind][1] += item["doc"] in ranked
        counts[kind][2] += 1
        if ranked[:1] != [item["doc"]]:
            misses.append({"question": item["q"], "expected": item["doc"], "got": ranked})
    return {**{f"{kind}_top{n}": counts[kind][i] for kind in counts for i, n in ((0, 1), (1, 5))},
            "same_questions": counts["same"][2], "cross_questions": counts["cross"][2], "misses": misses}


def test_right_document_first_for_paraphrases_in_both_languages_and_across_them(corpus_base):
    started = time.perf_counter()
    ranked = _measure(corpus_base, ranking="fused")
    per_query_ms = (time.perf_counter() - started) * 1000 / len(QUESTIONS)
    plain = _measure(corpus_base, ranking="cosine")
    short_ranked = _measure(corpus_base, ranking="fused", questions=SHORT_QUESTIONS)
    short_plain = _measure(corpus_base, ranking="cosine", questions=SHORT_QUESTIONS)
    report = {
        "corpus_documents": len(corpus_base.doc_ids),
        "corpus_chunks": corpus_base.chunks,
        "vectorize_seconds": round(corpus_base.seconds, 2),
        "chunks_per_second_end_to_end": round(corpus_base.chunks / corpus_base.seconds, 2),
        "search_ms_per_query": round(per_query_ms, 1),
        "plain_cosine": plain,
        "fused": ranked,
        "short_questions": {"plain_cosine": short_plain, "fused": short_ranked},
    }
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "knowledge-retrieval.json").write_text(json.dumps(report, ensure_ascii=False, indent=2))

    # The larger evaluation set (test_retrieval_eval.py) is the real measure; here the
    # language-neutral ranking measured 15/16 same-language and 16/16 cross-language top-1.
    assert ranked["same_top1"] >= 15, ranked["misses"]
    assert ranked["same_top5"] == 16, ranked["misses"]
    assert ranked["cross_top1"] >= 15, ranked["misses"]
    assert ranked["cross_top5"] == 16, ranked["misses"]
    # The problem the normalisation fixes is real on this corpus: plain cosine loses most
    # cross-lingual questions to unrelated same-language documents.
    assert plain["cross_top1"] <= 8
    assert ranked["cross_top1"] - plain["cross_top1"] >= 6
    # Short questions are harder (a few still lose to a near neighbour) but the same holds.
    assert short_ranked["cross_top1"] + short_ranked["same_top1"] >= 26, short_ranked["misses"]
    assert short_ranked["cross_top5"] + short_ranked["same_top5"] == 32, short_ranked["misses"]
    assert short_plain["cross_top1"] + short_plain["same_top1"] <= 12


def test_search_returns_distinct_documents_unless_asked_for_chunks(corpus_base):
    from pipeline.knowledge import retrieval

    distinct = retrieval.search(corpus_base.kb.id, "How do I reset my password?", 8)
    assert len(distinct) == 8
    assert len({hit.document_id for hit in distinct}) == 8
    assert distinct[0].source == "en-password-reset.md"

    chunks = retrieval.search(corpus_base.kb.id, "How do I reset my password?", corpus_base.chunks, distinct=False)
    assert len(chunks) == corpus_base.chunks
    assert len({hit.document_id for hit in chunks}) == len(corpus_base.doc_ids) < len(chunks)
    assert [h.score for h in chunks] == sorted((h.score for h in chunks), reverse=True)


def test_search_uses_the_bases_own_hnsw_index(corpus_base, knowledge_db):
    """The partial per-base index matches the query's expression even with bound parameters."""
    import psycopg

    from pipeline.knowledge import store
    from pipeline.knowledge.embedders import get_embedder

    vector = store.vector_literal(get_embedder().query("password"))
    with psycopg.connect(knowledge_db, prepare_threshold=None) as conn:
        conn.execute("SET enable_sort = off")  # the tiny table would otherwise be sorted in memory
        plan = "\n".join(row[0] for row in conn.execute(
            "EXPLAIN SELECT id FROM chunks c WHERE c.knowledge_base_id = %s AND c.script = %s"
            " ORDER BY c.embedding::vector(384) <=> %s::vector(384) LIMIT 5",
            (corpus_base.kb.id, "cjk", vector),
        ).fetchall())
    assert f"Index Scan using {store.index_name(corpus_base.kb.id, 'cjk')}" in plan


def test_unknown_base_and_empty_base(new_base):
    import uuid

    from pipeline.knowledge import retrieval, store

    with pytest.raises(store.UnknownKnowledgeBase):
        retrieval.search(uuid.uuid4(), "anything")
    assert retrieval.search(new_base("empty").id, "anything") == []


def test_ensure_index_gives_a_base_one_index_per_script_and_drops_the_earlier_single_index(new_base, knowledge_db):
    import psycopg
    from psycopg import sql

    from pipeline.knowledge import store

    kb = new_base("legacy")
    legacy = store.index_names(kb.id)[-1]
    with psycopg.connect(knowledge_db, autocommit=True) as conn:
        for name in store.index_names(kb.id)[:-1]:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE INDEX {} ON chunks USING hnsw ((embedding::vector(384)) vector_cosine_ops)"
                             " WHERE knowledge_base_id = {}").format(sql.Identifier(legacy), sql.Literal(str(kb.id))))
    assert store.ensure_index(knowledge_db, kb) is True
    assert store.ensure_index(knowledge_db, kb) is False  # nothing left to build
    with psycopg.connect(knowledge_db) as conn:
        present = {name for (name,) in conn.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = ANY(%s) AND i.indisvalid", (store.index_names(kb.id),))}
    assert present == {store.index_name(kb.id, script) for script in store.SCRIPTS}

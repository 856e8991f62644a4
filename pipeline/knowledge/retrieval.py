"""Finding the passages that answer a question, in a base mixing Chinese and English.

Plain e5 cosine similarity has a language bias: a question is closer to every
text in its own language than to any text in another, so in a mixed base an
English question about a Chinese document sees the unrelated English
documents first. Measured on the bilingual test corpus (16 documents, 32
paraphrased questions): plain cosine put the right document first for 16/16
same-language questions but only 2/16 cross-language ones (9/16 in the top 5).

The fix is per-language score normalisation. Every chunk is tagged with its
script (cjk / latin / other); its score is its cosine similarity minus the
question's similarity to the centroid of all chunks of that script in the base,
i.e. how much better it matches than an average text of its own language. The
offset is constant within a script, so each script's nearest neighbours still
come straight from the HNSW index and are merged afterwards. On the same
corpus this ranks the right document first for 16/16 same-language and 16/16
cross-language questions; on 32 shorter, keyword-like questions written
afterwards (29 cross-language) top-1 goes from 8/32 to 28/32 and top-5 from
16/32 to 32/32. Per-script z-scores and centring the question too were no better.

A lexical signal fused by rank (RRF) was measured too, with a BM25 scorer over
words and CJK bigrams: it only ever matches text in the question's own
language, so it pulled cross-language top-1 from 16/16 down to 0/16 (even at
a 0.05 score weight, 1/16), and it is not used.

Scripts with fewer than ``MIN_SCRIPT_CHUNKS`` chunks get the base-wide
centroid instead of their own, which would be too noisy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Optional

import numpy as np
import psycopg
from psycopg import sql

from pipeline.knowledge import store
from pipeline.knowledge.db import connection
from pipeline.knowledge.embedders import Embedder, get_embedder

MIN_SCRIPT_CHUNKS = 5
MAX_CANDIDATES = 1000


@dataclass
class Hit:
    chunk_id: int
    document_id: str
    title: str
    source: str
    position: int
    text: str
    similarity: float  # cosine similarity of chunk and question
    score: float  # the ranking score (similarity minus the script's baseline)

    def as_source(self) -> dict:
        """The citation form stored with an answer."""
        return {"document_id": self.document_id, "title": self.title, "chunk_id": self.chunk_id,
                "score": round(self.score, 4)}

    def as_json(self) -> dict:
        return {**self.__dict__, "similarity": round(self.similarity, 4), "score": round(self.score, 4)}


def search(
    kb_id: str | uuid.UUID,
    question: str,
    k: int = 5,
    *,
    distinct: bool = True,
    centered: bool = True,
    embedder: Optional[Embedder] = None,
) -> list[Hit]:
    """The ``k`` best passages for ``question``: one per document unless ``distinct`` is False.

    ``centered=False`` ranks by plain cosine similarity (kept to measure the
    normalisation against). Raises PermanentError for an unknown base or one
    filled by another embedding model.
    """
    embedder = embedder or get_embedder()
    query_vector = embedder.query(question)
    with connection() as conn:
        kb = store.get_knowledge_base(conn, kb_id)
        kb.check_embedder(embedder.model_name, embedder.dim)
        return rank(conn, kb, query_vector, k, distinct=distinct, centered=centered)


def rank(
    conn: psycopg.Connection,
    kb: store.KnowledgeBase,
    query_vector: np.ndarray,
    k: int,
    *,
    distinct: bool = True,
    centered: bool = True,
) -> list[Hit]:
    offsets = script_offsets(conn, kb.id, query_vector) if centered else {}
    if centered and not offsets:
        return []  # an empty base
    scripts = list(offsets) or [None]
    per_script = max(4 * k, 20)
    while True:
        rows = _nearest(conn, kb, query_vector, scripts, per_script)
        hits = sorted(
            (Hit(*row[:7], score=row[6] - offsets.get(row[7], 0.0)) for row in rows),
            key=lambda hit: hit.score,
            reverse=True,
        )
        if distinct:
            hits = _best_per_document(hits)
        # Too few distinct documents while some script may hold more: widen the search.
        exhausted = len(rows) < per_script * len(scripts)
        if len(hits) >= k or exhausted or per_script >= MAX_CANDIDATES:
            return hits[:k]
        per_script *= 4


def script_offsets(conn: psycopg.Connection, kb_id: uuid.UUID, query_vector: np.ndarray) -> dict[str, float]:
    """For each script in the base, the question's mean cosine similarity to its chunks."""
    rows = conn.execute(
        "SELECT script, chunk_count, embedding_sum::text FROM script_centroids"
        " WHERE knowledge_base_id = %s AND chunk_count > 0",
        (kb_id,),
    ).fetchall()
    if not rows:
        return {}
    sums = {script: store.parse_vector(total).astype(np.float64) for script, _, total in rows}
    counts = {script: count for script, count, _ in rows}
    overall = sum(sums.values()) / sum(counts.values())
    return {
        script: float(query_vector @ (sums[script] / counts[script] if counts[script] >= MIN_SCRIPT_CHUNKS else overall))
        for script in sums
    }


def _nearest(conn, kb: store.KnowledgeBase, query_vector: np.ndarray, scripts: list, limit: int) -> list[tuple]:
    """Up to ``limit`` nearest chunks per script (None: any script), via the base's HNSW index."""
    distance = sql.SQL("c.embedding::vector({dim}) <=> %(q)s::vector({dim})").format(dim=sql.Literal(kb.embedding_dim))
    parts = []
    for i, script in enumerate(scripts):
        where = sql.SQL("c.knowledge_base_id = %(kb)s") + (
            sql.SQL(" AND c.script = {}").format(sql.Placeholder(f"s{i}")) if script else sql.SQL("")
        )
        parts.append(
            sql.SQL(
                "(SELECT c.id, c.document_id, c.position, c.content, c.script, 1 - ({distance}) AS similarity"
                " FROM chunks c WHERE {where} ORDER BY {distance} LIMIT %(limit)s)"
            ).format(distance=distance, where=where)
        )
    query = sql.SQL(
        "SELECT n.id, n.document_id::text, d.title, d.source, n.position, n.content, n.similarity, n.script"
        " FROM ({union}) n JOIN documents d ON d.id = n.document_id"
    ).format(union=sql.SQL(" UNION ALL ").join(parts))
    params = {"kb": kb.id, "q": store.vector_literal(query_vector), "limit": limit}
    params.update({f"s{i}": script for i, script in enumerate(scripts) if script})
    with conn.transaction():
        # Filtering by script inside an index scan needs iterative scans (pgvector >= 0.8).
        conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(min(max(40, limit), 1000))))
        conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        return conn.execute(query, params).fetchall()


def _best_per_document(hits: list[Hit]) -> list[Hit]:
    seen: set[str] = set()
    best = []
    for hit in hits:
        if hit.document_id not in seen:
            seen.add(hit.document_id)
            best.append(hit)
    return best

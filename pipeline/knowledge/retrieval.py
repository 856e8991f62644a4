"""Finding the passages that answer a question, in a base mixing Chinese and English.

Plain e5 cosine similarity has a language bias: a question is closer to every
text in its own language than to any text in another, so in a mixed base an
English question about a Chinese document sees unrelated English documents
first. On the evaluation set in ``tests/knowledge/eval`` (84 help-centre and
handbook documents, 423 paraphrased questions; ``python -m bench.retrieval``)
plain cosine finds the right document in the top 5 for 96-98 % of
same-language questions but only 13-22 % of cross-language ones.

The ranking removes the language from both sides before comparing them
("language-neutral" similarity). Every chunk is tagged with its script
(cjk / latin / other) and the base keeps a running sum of its chunks' vectors
per script. A question is tagged the same way; then

    score = cos(q - w·c[script(q)], d - w·c[script(d)])

where ``c[s]`` is the mean vector of the base's chunks of script ``s``: what
every text of that language has in common, whatever it is about. With the
language mean gone, what is left is mostly topic, so an English question and
a Chinese answer meet on equal terms. Renormalising the chunk matters: the
older per-script offset (cosine minus the question's similarity to the
chunk's centroid) is the same numerator without it and lost same-language
top-1 badly (zh→zh 0.81 -> 0.24 on the eval set). ``w`` was tuned on one half
of the eval questions and is reported on the other half; see
``bench/retrieval.py`` for every variant that was tried and its table.

The score cannot be searched with the HNSW index directly (the centroids move
as the base changes), so it is a second stage: the index gives each script's
``RERANK_DEPTH`` nearest chunks by plain cosine (the language bias shifts a
script's scores almost uniformly, so the right chunk is still near the top of
its own script), and those are re-scored with their stored vectors.

A mean of a few chunks says more about their topics than about their
language, so scripts with fewer than ``MIN_SCRIPT_CHUNKS`` chunks use the
base-wide mean instead of their own, and a base with fewer chunks than that
in all is ranked by plain cosine (nothing is removed, nothing fused).

The language-neutral score still loses to plain cosine within one language and
misses a fifth of the cross-language answers; the shipped ranking ("fused")
therefore combines it with a second embedder's cosine and the words question
and passage share, by weights learned on half of the eval set (see
:mod:`pipeline.knowledge.fusion`). Bases without the second vectors (filled
before it existed, or by another main embedder) keep the language-neutral
ranking.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
import psycopg
from psycopg import sql

from pipeline.knowledge import fusion, store
from pipeline.knowledge.chunking import detect_script
from pipeline.knowledge.config import get_knowledge_settings
from pipeline.knowledge.db import connection
from pipeline.knowledge.embedders import Embedder, get_embedder, get_use_embedder

MIN_SCRIPT_CHUNKS = 8
#: Nearest chunks per script that the second stage re-scores.
RERANK_DEPTH = 50
MAX_CANDIDATES = 1000
#: How much of the language mean is removed (tuned on half of the eval set, see the module docstring).
NEUTRAL_WEIGHT = 0.9

Ranking = Literal["fused", "neutral", "cosine"]


@dataclass
class FoundChunk:
    """A stored chunk found for a question."""

    chunk_id: int
    document_id: str
    title: str
    source: str
    position: int
    text: str
    similarity: float  # cosine similarity of chunk and question


@dataclass
class Hit(FoundChunk):
    score: float  # the ranking score: fused (unbounded, higher is better), language-neutral similarity or cosine

    def as_source(self) -> dict:
        """The citation form stored with an answer."""
        return {"document_id": self.document_id, "source": self.source, "title": self.title,
                "chunk_id": self.chunk_id, "score": round(self.score, 4)}

    def as_json(self) -> dict:
        return {**self.__dict__, "similarity": round(self.similarity, 4), "score": round(self.score, 4)}


@dataclass
class Candidate(FoundChunk):
    """A chunk found by the first stage, with what the second stage needs."""

    script: str
    vector: np.ndarray
    use_vector: Optional[np.ndarray]  # the second embedder's, where stored


@dataclass
class Query:
    """A question as the ranking sees it."""

    text: str
    vector: np.ndarray  # the main embedder's
    script: str
    use_vector: Optional[np.ndarray] = None  # the second embedder's, given or computed by ``use_embedder``
    use_embedder: Optional[Embedder] = None  # set where the fused ranking applies to the base

    def second_vector(self) -> Optional[np.ndarray]:
        """The question's USE vector, embedded on first use: a base that cannot use it never loads the model."""
        if self.use_vector is None and self.use_embedder is not None:
            self.use_vector = self.use_embedder.query(self.text)
        return self.use_vector


class Centroids:
    """Mean chunk vector per script of one base (from the running sums in ``script_centroids``)."""

    def __init__(self, sums: dict[str, np.ndarray], counts: dict[str, int]):
        self.counts = counts
        total = sum(counts.values())
        self.empty = total == 0
        self.tiny = total < MIN_SCRIPT_CHUNKS  # ranked by plain cosine
        dim = len(next(iter(sums.values()))) if sums else 0
        self.overall = sum(sums.values()) / total if total >= MIN_SCRIPT_CHUNKS else np.zeros(dim)
        self.means = {s: sums[s] / counts[s] for s in sums if counts[s] >= MIN_SCRIPT_CHUNKS}

    def __bool__(self) -> bool:
        return not self.empty

    def of(self, script: str) -> np.ndarray:
        """The script's mean vector; the base-wide one for a thin script; zeros for a tiny base."""
        return self.means.get(script, self.overall)


def neutral_scores(
    query_vector: np.ndarray, query_script: str, vectors: np.ndarray, scripts: list[str], centroids: Centroids,
    weight: float = NEUTRAL_WEIGHT,
) -> np.ndarray:
    """cos(q - w·c[script(q)], d - w·c[script(d)]) for each row of ``vectors``."""
    query = query_vector.astype(np.float64) - weight * centroids.of(query_script)
    query /= np.linalg.norm(query) or 1.0
    chunks = vectors.astype(np.float64) - weight * np.stack([centroids.of(s) for s in scripts])
    chunks /= np.maximum(np.linalg.norm(chunks, axis=1, keepdims=True), 1e-12)
    return chunks @ query


def search(
    kb_id: str | uuid.UUID,
    question: str,
    k: int = 5,
    *,
    distinct: bool = True,
    ranking: Ranking = "fused",
    embedder: Optional[Embedder] = None,
    use_embedder: Optional[Embedder] = None,
) -> list[Hit]:
    """The ``k`` best passages for ``question``: one per document unless ``distinct`` is False.

    ``ranking="neutral"`` and ``"cosine"`` rank by the language-neutral score
    or plain cosine similarity alone (kept to measure the fused ranking
    against). Raises PermanentError for an unknown base or one filled by
    another embedding model.
    """
    embedder = embedder or get_embedder()
    query = Query(question, embedder.query(question), detect_script(question))
    with connection() as conn:
        kb = store.get_knowledge_base(conn, kb_id)
        kb.check_embedder(embedder.model_name, embedder.dim)
        if ranking == "fused" and fusion.applies(kb.embedder_model):
            query.use_embedder = use_embedder or get_use_embedder()
        return rank(conn, kb, query, k, distinct=distinct, ranking=ranking)


def rank(
    conn: psycopg.Connection,
    kb: store.KnowledgeBase,
    query: Query,
    k: int,
    *,
    distinct: bool = True,
    ranking: Ranking = "fused",
    ef_search: Optional[int] = None,
) -> list[Hit]:
    centroids = load_centroids(conn, kb.id)
    if not centroids:
        return []  # an empty base
    scripts = sorted(centroids.counts)
    per_script = max(RERANK_DEPTH, 4 * k)
    while True:
        found = candidates(conn, kb, query.vector, scripts, per_script, ef_search)
        scores = score(query, found, centroids, ranking) if found else []
        hits = sorted(
            (Hit(c.chunk_id, c.document_id, c.title, c.source, c.position, c.text, c.similarity, float(s))
             for c, s in zip(found, scores)),
            key=lambda hit: hit.score,
            reverse=True,
        )
        if distinct:
            hits = best_per_document(hits)
        # Too few distinct documents while some script may hold more: widen the search.
        exhausted = len(found) < per_script * len(scripts)
        if len(hits) >= k or exhausted or per_script >= MAX_CANDIDATES:
            return hits[:k]
        per_script *= 4


def score(query: Query, found: list[Candidate], centroids: Centroids, ranking: Ranking = "fused") -> np.ndarray:
    """Each candidate's ranking score.

    "fused" falls back to "neutral" where a second vector is missing, and a tiny base is ranked by
    plain cosine (what "neutral" gives there): the fused weights were learned on ~100 candidates.
    """
    similarity = np.array([c.similarity for c in found])
    if ranking == "cosine":
        return similarity
    neutral = neutral_scores(query.vector, query.script, np.stack([c.vector for c in found]),
                             [c.script for c in found], centroids)
    if ranking == "neutral" or centroids.tiny or any(c.use_vector is None for c in found):
        return neutral
    use_vector = query.second_vector()
    if use_vector is None:
        return neutral
    signals = fusion.Signals(
        e5_cosine=similarity,
        e5_neutral=neutral,
        use_cosine=np.stack([c.use_vector for c in found]).astype(np.float64) @ use_vector,
        shared_words=fusion.shared_words(query.text, [c.text for c in found]),
        same_script=np.array([c.script == query.script for c in found], dtype=np.float64),
    )
    return fusion.scores(signals)


def load_centroids(conn: psycopg.Connection, kb_id: uuid.UUID) -> Centroids:
    rows = conn.execute(
        "SELECT script, chunk_count, embedding_sum::text FROM script_centroids"
        " WHERE knowledge_base_id = %s AND chunk_count > 0",
        (kb_id,),
    ).fetchall()
    sums = {script: store.parse_vector(total).astype(np.float64) for script, _, total in rows}
    return Centroids(sums, {script: count for script, count, _ in rows})


def candidates(
    conn, kb: store.KnowledgeBase, query_vector: np.ndarray, scripts: list, limit: int, ef_search: Optional[int] = None
) -> list[Candidate]:
    """Up to ``limit`` nearest chunks per script by cosine, each from the base's HNSW index of that script.

    ``ef_search`` (default: CLAW_SEARCH_EF) is the index's candidate list; never less than ``limit``.
    """
    ef_search = ef_search or get_knowledge_settings().search_ef
    distance = sql.SQL("c.embedding::vector({dim}) <=> %(q)s::vector({dim})").format(dim=sql.Literal(kb.embedding_dim))
    parts = []
    for i, script in enumerate(scripts):
        parts.append(
            sql.SQL(
                "(SELECT c.id, c.document_id, c.position, c.content, c.script, c.embedding, c.use_embedding,"
                " 1 - ({distance}) AS similarity FROM chunks c"
                " WHERE c.knowledge_base_id = %(kb)s AND c.script = {script} ORDER BY {distance} LIMIT %(limit)s)"
            ).format(distance=distance, script=sql.Placeholder(f"s{i}"))
        )
    query = sql.SQL(
        "SELECT n.id, n.document_id::text, d.title, d.source, n.position, n.content, n.similarity, n.script,"
        " n.embedding::text, n.use_embedding::text FROM ({union}) n JOIN documents d ON d.id = n.document_id"
    ).format(union=sql.SQL(" UNION ALL ").join(parts))
    params = {"kb": kb.id, "q": store.vector_literal(query_vector), "limit": limit}
    params.update({f"s{i}": script for i, script in enumerate(scripts)})
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(min(max(ef_search, limit), 1000))))
        # A base still on the single index of earlier versions (until ensure_index runs for it) filters by
        # script inside the scan, which needs iterative scans (pgvector >= 0.8) to return enough rows.
        conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        rows = conn.execute(query, params).fetchall()
    return [
        Candidate(*row[:8], vector=store.parse_vector(row[8]), use_vector=row[9] and store.parse_vector(row[9]))
        for row in rows
    ]


def best_per_document(hits: list) -> list:
    """The first (best) hit of each document, in order."""
    seen: set[str] = set()
    best = []
    for hit in hits:
        if hit.document_id not in seen:
            seen.add(hit.document_id)
            best.append(hit)
    return best

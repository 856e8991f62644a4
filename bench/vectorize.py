"""Part 5: chunks/s through ``vectorize_document`` against the embedder's raw encode rate.

Same text, same chunks, alternated (raw, pipeline, raw, pipeline, ...). The
pipeline figure is the task's own runtime (chunk + embed + store in one
transaction) as recorded by a real worker; the raw one is ``passages()`` on
the same chunks in this process. Each rep uses a fresh knowledge base (so no
vector is reused); the bases are deleted at the end.

    python -m bench.vectorize [--reps 3] [--copies 2]    (prints JSON; ``make bench`` runs it too)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid

from bench.common import BROKER_URL, QUEUE_PREFIX, REDIS_URL, ROOT, clean_run, namespace, stop

CORPUS = ROOT / "tests" / "knowledge" / "corpus"


def document(copies: int) -> str:
    """The bilingual test corpus, repeated: a realistic mixed Chinese/English document."""
    parts = [path.read_text() for path in sorted(CORPUS.glob("*.md"))]
    return "\n\n".join(parts * copies)


def measure(reps: int, copies: int) -> dict:
    """``{"chunks": n, "raw": [chunks/s per rep], "vectorize": [chunks/s per rep]}``."""
    from pipeline.engine import make_engine
    from pipeline.knowledge import chunking
    from pipeline.knowledge.config import get_knowledge_settings
    from pipeline.knowledge.db import connection
    from pipeline.knowledge.embedders import get_embedder
    from pipeline.settings import load_settings

    ns = namespace("vec")
    engine = make_engine(load_settings(namespace=ns, queue_prefix=QUEUE_PREFIX, broker_url=BROKER_URL, redis_url=REDIS_URL))
    worker = subprocess.Popen(  # started first: it loads its model while this process loads its own
        [sys.executable, "-m", "pipeline.cli", "worker", "-p", "1", "-t", "1", "-Q", "knowledge_default"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "CLAW_NAMESPACE": ns, "CLAW_QUEUE_PREFIX": QUEUE_PREFIX, "CLAW_BROKER_URL": BROKER_URL,
             "CLAW_REDIS_URL": REDIS_URL, "PYTHONPATH": str(ROOT)},
    )
    raw, piped, bases = [], [], []
    try:
        knowledge = get_knowledge_settings()
        embedder = get_embedder()
        text = document(copies)
        chunks = chunking.split(text, embedder.token_count, knowledge.chunk_tokens, knowledge.chunk_overlap, markdown=True)
        _vectorize(engine, embedder, bases, "warm-up", "热身 warm-up text.")  # the worker loads its model
        for rep in range(reps):
            started = time.perf_counter()
            embedder.passages([c.text for c in chunks])
            raw.append(len(chunks) / (time.perf_counter() - started))
            record = _vectorize(engine, embedder, bases, f"rep-{rep}", text)
            piped.append(record["result"]["chunks"] / (record["runtime_ms"] / 1000))
    finally:
        stop(worker)
        engine.close()
        if bases:
            with connection() as conn:
                conn.execute("DELETE FROM knowledge_bases WHERE id = ANY(%s)", (bases,))
    return {"chunks": len(chunks), "raw": raw, "vectorize": piped}


def _vectorize(engine, embedder, bases: list, name: str, text: str) -> dict:
    """One fresh knowledge base (its id appended to *bases*) and document, vectorized by the worker."""
    from pipeline import client
    from pipeline.knowledge import store
    from pipeline.knowledge.db import connection

    with connection() as conn:
        kb = store.ensure_knowledge_base(conn, f"{namespace(name)}-{uuid.uuid4().hex[:6]}", embedder.model_name, embedder.dim)
    bases.append(kb.id)
    task_id = client.submit("vectorize_document", engine=engine, kwargs={
        "knowledge_base_id": str(kb.id), "source": f"{name}.md", "title": name, "text": text})
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        record = engine.store.get(task_id)
        if record["state"] in ("SUCCESS", "FAILURE"):
            if record["state"] == "FAILURE":
                raise RuntimeError(f"vectorize failed: {record['error']}")
            return record
        time.sleep(0.2)
    raise RuntimeError("vectorize did not finish")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--copies", type=int, default=2, help="how many times the corpus is repeated")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(measure(args.reps, args.copies), indent=2))
    finally:
        clean_run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

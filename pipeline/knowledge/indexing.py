"""What the knowledge actors do: vectorize one document, update a whole base.

Vectorizing is built to survive being interrupted at any point:

* every embedded batch is committed to a staging table at once, so a later
  attempt (after a soft time limit, a crash or a redelivery) embeds only the
  chunks still missing;
* the document's chunks are then swapped in one transaction, so readers and
  retries never see duplicates or half a document;
* a document whose content hash and embedding model match what is indexed is
  skipped, which makes re-sending unchanged documents cheap.

Updating a base fans out one ``vectorize_document`` task per document that
needs work and follows them by polling their records. Each document remembers
the task working on it, so a re-run update (retry after its own time limit)
follows the tasks already running instead of submitting them twice.
"""

from __future__ import annotations

import logging
import time
from pathlib import PurePosixPath
from typing import Callable, Optional, Sequence

import numpy as np

from pipeline.context import running_task
from pipeline.errors import SoftTimeLimitExceeded
from pipeline.knowledge import chunking, db, store
from pipeline.knowledge.config import get_knowledge_settings
from pipeline.knowledge.db import connection
from pipeline.knowledge.embedders import get_embedder
from pipeline.knowledge.text import MAX_TEXT_CHARS  # noqa: F401  (part of this module's interface)
from pipeline.state.keys import FINAL_STATES, UNFINISHED_STATES

log = logging.getLogger("pipeline.knowledge")

VECTORIZE_ACTOR = "vectorize_document"
SUBMIT_CHUNK = 500


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
        vectors, embedded = _embed_missing(doc, chunks, embedder, task)
        with connection() as conn:
            replaced = store.replace_chunks(conn, doc.id, doc.content_hash, embedder.model_name, chunks, vectors)
    except Exception as exc:  # time limits and cancellation are BaseExceptions and keep the 'indexing' status
        _mark_failed(doc.id, exc)
        raise
    if not replaced:
        return {**summary, "status": "superseded", "chunks": 0, "embedded": 0}
    return {**summary, "status": "vectorized", "chunks": len(chunks), "embedded": embedded}


def _embed_missing(doc: store.Document, chunks: Sequence[chunking.Chunk], embedder, task) -> tuple[np.ndarray, int]:
    """Vectors for every chunk and how many had to be embedded: known ones are reused,
    the rest embedded and staged batch by batch."""
    with connection() as conn:
        known = store.known_vectors(conn, doc.id, embedder.model_name)
    vectors: list[Optional[np.ndarray]] = [known.get(store.content_hash(c.text)) for c in chunks]
    missing = [i for i, vector in enumerate(vectors) if vector is None]
    total = len(chunks)
    task.report_progress(5, f"{total - len(missing)} of {total} chunks already embedded", chunks=total)
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
            task.report_progress(5 + 90 * done / total, f"embedded {done} of {total} chunks", chunks=total)
    except SoftTimeLimitExceeded:
        if pending is not None:  # embedded just before the limit: keep it too
            _stage(doc, chunks, embedder.model_name, *pending)
            for i, vector in zip(*pending):
                vectors[i] = vector
        saved = sum(vector is not None for vector in vectors)
        task.report_progress(
            5 + 90 * saved / total, f"soft time limit: {saved} of {total} chunks saved, the next attempt resumes"
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

SubmitMany = Callable[[list[dict]], list[str]]
GetRecords = Callable[[list[str]], list[Optional[dict]]]


def update_base(
    knowledge_base_id: str,
    mode: str,
    *,
    submit_many: SubmitMany,
    get_records: GetRecords,
    poll_interval: float = 1.0,
) -> dict:
    """Bring a base up to date and wait for it.

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
    task.report_progress(2, f"{len(todo)} of {len(documents)} documents need work", documents=len(documents))

    task_ids = _follow_or_submit(todo, force, submit_many, get_records)
    counts = _wait(task_ids, get_records, poll_interval, len(documents) - len(todo), task)

    # A rebuild dropped the index; building it once over all vectors beats live inserts.
    index_built = store.ensure_index(db.database_url(), kb)
    if counts["failed"] == 0 and kb.status == "rebuilding":
        with connection() as conn:
            store.set_base_status(conn, kb.id, "ready")
    return {"knowledge_base_id": str(kb.id), "mode": mode, "documents": len(documents),
            "submitted": len(task_ids), "index_built": index_built, **counts}


def _follow_or_submit(todo: list[store.Document], force: bool, submit_many: SubmitMany,
                      get_records: GetRecords) -> dict[str, str]:
    """Task id per document: a vectorize task still running for it, or a newly submitted one."""
    task_ids: dict[str, str] = {}
    earlier = [d for d in todo if d.index_task_id]
    if earlier:
        for doc, record in zip(earlier, get_records([d.index_task_id for d in earlier])):
            if record is not None and record["state"] in UNFINISHED_STATES:
                task_ids[str(doc.id)] = doc.index_task_id
    to_submit = [d for d in todo if str(d.id) not in task_ids]
    for start in range(0, len(to_submit), SUBMIT_CHUNK):
        part = to_submit[start : start + SUBMIT_CHUNK]
        kwargs = [{"document_id": str(d.id), **({"force": True} if force else {})} for d in part]
        ids = submit_many([{"actor": VECTORIZE_ACTOR, "kwargs": k} for k in kwargs])
        new = {str(d.id): task_id for d, task_id in zip(part, ids)}
        with connection() as conn:
            store.record_index_tasks(conn, new)
        task_ids.update(new)
    return task_ids


def _wait(task_ids: dict[str, str], get_records: GetRecords, poll_interval: float, unchanged: int, task) -> dict:
    """Poll the children until all finished; count outcomes and report progress as they change."""
    docs, ids = list(task_ids), list(task_ids.values())
    counts = {"done": 0, "skipped": unchanged, "failed": 0}
    failures: list[dict] = []
    last_report, percent = None, 5.0
    try:
        while True:
            records = get_records(ids) if ids else []
            finished, partial = 0, 0.0
            for record in records:
                if record is None or record["state"] in FINAL_STATES:
                    finished += 1
                else:  # a running child's own progress counts for its share
                    partial += (record.get("progress") or {}).get("percent", 0) / 100
            percent = 5 + 90 * (finished + partial) / len(ids) if ids else 95
            report = (finished, round(percent))
            if report != last_report:
                task.report_progress(percent, f"{finished} of {len(ids)} documents processed")
                last_report = report
            if finished == len(ids):
                break
            task.check_cancelled()
            time.sleep(poll_interval)
    except SoftTimeLimitExceeded:
        task.report_progress(percent, "soft time limit: the vectorize tasks keep running; a retry follows them")
        raise
    for doc_id, record in zip(docs, records):
        if record is None:
            counts["failed"] += 1
            failures.append({"document_id": doc_id, "error": "task record missing (expired?)"})
        elif record["state"] != "SUCCESS":
            counts["failed"] += 1
            failures.append({"document_id": doc_id, "error": error_text(record)})
        elif (record.get("result") or {}).get("status") == "vectorized":
            counts["done"] += 1
        else:
            counts["skipped"] += 1
    return {**counts, "failures": failures}


def error_text(record: dict) -> str:
    error = record.get("error")
    if isinstance(error, dict):
        return f"{error.get('type', 'Error')}: {error.get('message', '')}"
    return str(error or record["state"])

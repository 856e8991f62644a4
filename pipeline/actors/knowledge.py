"""Knowledge-base actors: vectorize a document, update a base, delete vectors.

The work itself is in :mod:`pipeline.knowledge.indexing` and
:mod:`pipeline.knowledge.store`; these declarations hold the policy and the
argument models the API validates submissions with. They import nothing of
the knowledge stack (the ``[knowledge]`` extra), so any process can declare
and submit them; running one without the extra fails at once with one line
naming what to install (:mod:`pipeline.knowledge.extra`).

``update_knowledge_base`` submits a chord of ``vectorize_document`` tasks
with ``finish_knowledge_update`` as its callback and returns its workflow id:
nothing waits for the documents inside a task's time limit.
"""

from __future__ import annotations

import uuid
from typing import Literal, Optional

import pydantic
from pydantic import Field

from pipeline import workflow
from pipeline.context import running_task
from pipeline.knowledge import extra
from pipeline.knowledge.text import MAX_TEXT_CHARS, StoredJson, StoredText
from pipeline.sensitive import Sensitive
from pipeline.task import task

#: Any token with this scope may submit the knowledge tasks (see api.scopes).
SCOPE = "knowledge:write"


class VectorizeArgs(pydantic.BaseModel):
    """A stored document by id, or a document's text to create/update by (base, source) first."""

    model_config = pydantic.ConfigDict(extra="forbid")

    document_id: Optional[uuid.UUID] = None
    knowledge_base_id: Optional[uuid.UUID] = None
    source: Optional[StoredText] = Field(None, min_length=1, max_length=500, description="Unique within the base, e.g. a path.")
    title: Optional[StoredText] = Field(None, min_length=1, max_length=200)
    text: Optional[StoredText] = Sensitive(None, max_length=MAX_TEXT_CHARS)
    metadata: Optional[StoredJson] = None
    force: bool = Field(False, description="Chunk again even when content and model are unchanged.")

    @pydantic.model_validator(mode="after")
    def _one_way(self) -> "VectorizeArgs":
        if self.document_id is not None:
            if any(v is not None for v in (self.knowledge_base_id, self.source, self.text)):
                raise ValueError("give document_id alone, or knowledge_base_id + source + text")
        elif self.knowledge_base_id is None or self.source is None or self.text is None:
            raise ValueError("give document_id, or knowledge_base_id + source + text")
        return self


class UpdateArgs(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    knowledge_base_id: uuid.UUID
    mode: Literal["incremental", "full", "rebuild"] = "incremental"


class DeleteArgs(pydantic.BaseModel):
    """Some documents by id, or every document of the base with ``all_documents=True``."""

    model_config = pydantic.ConfigDict(extra="forbid")

    knowledge_base_id: uuid.UUID
    document_ids: Optional[list[uuid.UUID]] = Field(None, min_length=1, max_length=1000)
    all_documents: bool = False

    @pydantic.model_validator(mode="after")
    def _explicit(self) -> "DeleteArgs":
        if (self.document_ids is None) == (not self.all_documents):
            raise ValueError("give document_ids, or all_documents=true to empty the whole base")
        return self


class DeleteBaseArgs(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    knowledge_base_id: uuid.UUID


@task(
    queue="knowledge_default",
    priority=5,
    max_retries=3,
    soft_time_limit=300,
    time_limit=600,
    rate_limit="5/m",
    args_model=VectorizeArgs, submit_scope=SCOPE,
)
def vectorize_document(
    *,
    document_id: Optional[str] = None,
    knowledge_base_id: Optional[str] = None,
    source: Optional[str] = None,
    title: Optional[str] = None,
    text: Optional[str] = None,
    metadata: Optional[dict] = None,
    force: bool = False,
) -> dict:
    """Chunk, embed and store one document, replacing its previous chunks in one transaction."""
    (indexing,) = extra.modules("indexing")
    return indexing.vectorize(
        document_id=document_id, knowledge_base_id=knowledge_base_id, source=source, title=title, text=text,
        metadata=metadata, force=force,
    )


class FinishUpdateArgs(pydantic.BaseModel):
    """Given by update_knowledge_base; ``results`` and ``failures`` are filled in by its chord."""

    model_config = pydantic.ConfigDict(extra="forbid")

    knowledge_base_id: uuid.UUID
    mode: Literal["incremental", "full", "rebuild"]
    documents: int = Field(ge=0)
    unchanged: int = Field(ge=0)
    results: list[Optional[dict]]
    failures: list[dict] = Field(default_factory=list)


@task(queue="knowledge_default", priority=5, max_retries=2, soft_time_limit=180, time_limit=300, args_model=UpdateArgs, submit_scope=SCOPE)
def update_knowledge_base(*, knowledge_base_id: str, mode: str = "incremental") -> dict:
    """Re-vectorize the documents of a base that need it (incremental | full | rebuild), as a chord."""
    (indexing,) = extra.modules("indexing")
    return indexing.update_base(knowledge_base_id, mode, submit=workflow.submit, update_id=running_task().task_id)


@task(queue="knowledge_default", priority=5, max_retries=3, soft_time_limit=900, time_limit=1200,
      args_model=FinishUpdateArgs)
def finish_knowledge_update(*, knowledge_base_id: str, mode: str, documents: int, unchanged: int,
                            results: list, failures: Optional[list] = None) -> dict:
    """Callback of an update's chord: build the index if missing, mark a rebuilt base ready, report counts."""
    (indexing,) = extra.modules("indexing")
    return indexing.finish_update(knowledge_base_id, mode, documents, unchanged, results=results,
                                  failures=failures or [])


@task(queue="knowledge_default", priority=5, max_retries=2, args_model=DeleteArgs, submit_scope=SCOPE)
def delete_knowledge_vectors(
    *, knowledge_base_id: str, document_ids: Optional[list[str]] = None, all_documents: bool = False
) -> dict:
    """Delete documents and their vectors: some by id, or all of a base."""
    db, store = extra.modules("db", "store")
    with db.connection() as conn:
        counts = store.delete_documents(conn, knowledge_base_id, None if all_documents else document_ids)
    return {"knowledge_base_id": knowledge_base_id, "deleted_documents": counts["documents"],
            "deleted_chunks": counts["chunks"]}


@task(queue="knowledge_default", priority=5, max_retries=2, soft_time_limit=1500, time_limit=1800,
      args_model=DeleteBaseArgs, submit_scope=SCOPE)
def delete_knowledge_base(*, knowledge_base_id: str) -> dict:
    """Delete a knowledge base as a whole: its index, documents, chunks and vectors.

    Deleting a base that is already gone succeeds with ``deleted: false``, so a
    redelivered task (the base was deleted, the acknowledgement was lost) does not fail.
    """
    db, store = extra.modules("db", "store")
    counts = store.delete_knowledge_base(db.database_url(), knowledge_base_id)
    return {"knowledge_base_id": knowledge_base_id, "deleted": counts is not None,
            "deleted_documents": (counts or {}).get("documents", 0), "deleted_chunks": (counts or {}).get("chunks", 0)}

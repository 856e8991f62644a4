"""Knowledge bases, documents, chunks and conversations in PostgreSQL.

The rules that keep the index trustworthy live here:

* a document's chunks are replaced in ONE transaction (old rows deleted, new
  rows inserted, document marked indexed), so a retry or a redelivered task can
  never leave duplicates or half a document, and readers see old or new;
* each base records the embedder model and dimension that filled it, and
  anything done with another embedder is refused until the base is rebuilt;
* per-script centroid sums are updated in the same transaction as the chunks
  they summarise (see :mod:`pipeline.knowledge.retrieval` for why).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Optional, Sequence

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from pipeline.errors import PermanentError
from pipeline.knowledge.chunking import Chunk
from pipeline.knowledge.embedders import UseEmbedder
from pipeline.knowledge.postgres import connect


# --------------------------------------------------------------------------- vectors


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form, ``[0.1,0.2,…]`` (cast with ``::vector`` in SQL)."""
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(vector, dtype=np.float32)) + "]"


def parse_vector(text: str) -> np.ndarray:
    return np.array(text.strip("[]").split(","), dtype=np.float32)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- knowledge bases


class UnknownKnowledgeBase(PermanentError):
    """No knowledge base has this id."""


class EmbedderMismatch(PermanentError):
    """The base was filled by another embedding model; it must be rebuilt first."""


@dataclass
class KnowledgeBase:
    id: uuid.UUID
    name: str
    embedder_model: str
    embedding_dim: int
    status: str
    created_at: datetime
    updated_at: datetime
    #: Whose users may search it (None: users without a tenant).
    tenant_id: Optional[str] = None

    def readable_by(self, tenant_id: Optional[str]) -> bool:
        """Whether a user of *tenant_id* may search this base."""
        return self.tenant_id == tenant_id

    def check_embedder(self, model_name: str, dim: int) -> None:
        """Refuse an embedder whose vectors cannot be compared with this base's."""
        if (model_name, dim) != (self.embedder_model, self.embedding_dim):
            raise EmbedderMismatch(
                f"knowledge base {self.name!r} was indexed with embedding model {self.embedder_model!r} "
                f"({self.embedding_dim} dimensions) but the configured embedder is {model_name!r} ({dim} dimensions); "
                f"run update_knowledge_base with mode='rebuild' to re-embed it with the new model"
            )


_KB_COLUMNS = "id, name, embedder_model, embedding_dim, status, created_at, updated_at, tenant_id"


def get_knowledge_base(conn: psycopg.Connection, kb_id: str | uuid.UUID, *, for_update: bool = False) -> KnowledgeBase:
    """The base with this id; PermanentError when there is none."""
    lock = " FOR UPDATE" if for_update else ""
    with conn.cursor(row_factory=class_row(KnowledgeBase)) as cur:
        row = cur.execute(f"SELECT {_KB_COLUMNS} FROM knowledge_bases WHERE id = %s{lock}", (_uuid(kb_id),)).fetchone()
    if row is None:
        raise UnknownKnowledgeBase(f"knowledge base {kb_id} does not exist")
    return row


def find_knowledge_base(conn: psycopg.Connection, name: str) -> Optional[KnowledgeBase]:
    with conn.cursor(row_factory=class_row(KnowledgeBase)) as cur:
        return cur.execute(f"SELECT {_KB_COLUMNS} FROM knowledge_bases WHERE name = %s", (name,)).fetchone()


#: ``list_knowledge_bases(conn, tenant=ANY_TENANT)``: every base (a service's view).
ANY_TENANT = object()


def list_knowledge_bases(conn: psycopg.Connection, tenant: Any = ANY_TENANT) -> list[dict]:
    """Every base (or those of one tenant; None: those without) with its document and chunk counts, by name."""
    where, params = ("", ()) if tenant is ANY_TENANT else (" WHERE kb.tenant_id IS NOT DISTINCT FROM %s", (tenant,))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT kb.id::text AS id, kb.name, kb.embedder_model, kb.embedding_dim, kb.status, kb.tenant_id,"
            " (SELECT count(*) FROM documents d WHERE d.knowledge_base_id = kb.id) AS documents,"
            " (SELECT count(*) FROM chunks c WHERE c.knowledge_base_id = kb.id) AS chunks"
            f" FROM knowledge_bases kb{where} ORDER BY kb.name", params
        ).fetchall()


def ensure_knowledge_base(conn: psycopg.Connection, name: str, model_name: str, dim: int,
                          tenant_id: Optional[str] = None) -> KnowledgeBase:
    """The base called ``name``, created for this embedder (and tenant) if it does not exist yet.

    Call :func:`ensure_index` after committing, to give a new base its index.
    """
    with conn.cursor(row_factory=class_row(KnowledgeBase)) as cur:
        cur.execute(
            f"INSERT INTO knowledge_bases (name, embedder_model, embedding_dim, tenant_id) VALUES (%s, %s, %s, %s) "
            f"ON CONFLICT (name) DO NOTHING RETURNING {_KB_COLUMNS}",
            (name, model_name, dim, tenant_id),
        )
        created = cur.fetchone()
    return created or find_knowledge_base(conn, name)


#: What ``chunking.detect_script`` tags a chunk with (the chunks table checks the same list).
SCRIPTS = ("cjk", "latin", "other")
#: HNSW graph degree and build-time candidate list. pgvector's default ef_construction (64) gave
#: recall@10 0.71 at ef_search 100 on the 100,000-chunk bench; a better-built graph costs only at
#: insert time, where embedding (about 10 chunks/s here) dwarfs it.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200


def index_name(kb_id: str | uuid.UUID, script: str) -> str:
    """The base's HNSW index over its chunks of one script."""
    return f"chunks_hnsw_{_uuid(kb_id).hex}_{script}"


def index_names(kb_id: str | uuid.UUID) -> list[str]:
    """Every index name the base may have, including the one-per-base index of earlier versions."""
    return [index_name(kb_id, script) for script in SCRIPTS] + [f"chunks_hnsw_{_uuid(kb_id).hex}"]


def ensure_index(url: str, kb: KnowledgeBase) -> bool:
    """Give the base its HNSW (cosine) indexes where it lacks a valid one; True when one was built.

    One partial index per base and script, on the embedding cast to the base's
    dimension (bases may hold vectors of different sizes). Per script, because
    search asks each script for its nearest chunks: with one index per base, the
    graph walk starts among the question's own language and a filter on the
    other script found 1 of its true 10 nearest chunks at 100,000 chunks
    (``bench/retrieval_scale.py``); each script's own graph has no filter to
    fight. Built CONCURRENTLY, so writers to other bases are not blocked; that
    needs a connection of its own in autocommit mode, hence the URL. The single
    index of earlier versions is dropped once the new ones exist.
    """
    lock = f"chunks_hnsw_{kb.id.hex}"
    built = False
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (lock,))
        try:
            for script in SCRIPTS:
                name = index_name(kb.id, script)
                valid = conn.execute(
                    "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
                    (name,),
                ).fetchone()
                if valid is not None and valid[0]:
                    continue
                if valid is not None:  # left INVALID by an interrupted concurrent build
                    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
                conn.execute(
                    sql.SQL(
                        "CREATE INDEX CONCURRENTLY {name} ON chunks USING hnsw ((embedding::vector({dim})) vector_cosine_ops)"
                        " WITH (m = {m}, ef_construction = {ef}) WHERE knowledge_base_id = {kb} AND script = {script}"
                    ).format(name=sql.Identifier(name), dim=sql.Literal(kb.embedding_dim), m=sql.Literal(HNSW_M),
                             ef=sql.Literal(HNSW_EF_CONSTRUCTION), kb=sql.Literal(str(kb.id)), script=sql.Literal(script))
                )
                built = True
            conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(lock)))
            return built
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (lock,))


def start_rebuild(conn: psycopg.Connection, kb_id: str, model_name: str, dim: int) -> KnowledgeBase:
    """Drop the base's index and every vector, and switch it to the given embedder.

    Documents stay; they are marked pending so that vectorizing them again
    fills the base with vectors of the new model. One transaction.
    """
    kb = get_knowledge_base(conn, kb_id, for_update=True)
    for name in index_names(kb.id):
        conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(name)))
    conn.execute("DELETE FROM chunks WHERE knowledge_base_id = %s", (kb.id,))
    conn.execute("DELETE FROM script_centroids WHERE knowledge_base_id = %s", (kb.id,))
    conn.execute(
        "DELETE FROM embedding_staging s USING documents d WHERE s.document_id = d.id AND d.knowledge_base_id = %s",
        (kb.id,),
    )
    conn.execute(
        "UPDATE documents SET status = 'pending', indexed_hash = NULL, indexed_model = NULL, chunk_count = 0,"
        " error = NULL, updated_at = now() WHERE knowledge_base_id = %s",
        (kb.id,),
    )
    conn.execute(
        "UPDATE knowledge_bases SET embedder_model = %s, embedding_dim = %s, status = 'rebuilding', updated_at = now()"
        " WHERE id = %s",
        (model_name, dim, kb.id),
    )
    return get_knowledge_base(conn, kb.id)


def set_base_status(conn: psycopg.Connection, kb_id: str | uuid.UUID, status: str) -> None:
    conn.execute("UPDATE knowledge_bases SET status = %s, updated_at = now() WHERE id = %s", (status, _uuid(kb_id)))


# --------------------------------------------------------------------------- documents


@dataclass
class Document:
    id: uuid.UUID
    knowledge_base_id: uuid.UUID
    source: str
    title: str
    content: str
    metadata: dict
    content_hash: str
    status: str
    error: Optional[str]
    indexed_hash: Optional[str]
    indexed_model: Optional[str]
    chunk_count: int
    index_task_id: Optional[str]
    updated_at: datetime

    def is_current(self, model_name: str) -> bool:
        """True when the stored chunks were made from this content with this model."""
        return self.status == "ready" and self.indexed_hash == self.content_hash and self.indexed_model == model_name


_DOC_COLUMNS = (
    "id, knowledge_base_id, source, title, content, metadata, content_hash, status, error, indexed_hash,"
    " indexed_model, chunk_count, index_task_id, updated_at"
)


def upsert_document(
    conn: psycopg.Connection,
    kb_id: str | uuid.UUID,
    source: str,
    title: str,
    content: str,
    metadata: Optional[dict] = None,
) -> Document:
    """Create or update the document identified by (base, source).

    Its status turns 'pending' only when the content changed, so re-sending
    identical text leaves an indexed document alone.
    """
    digest = content_hash(content)
    with conn.cursor(row_factory=class_row(Document)) as cur:
        return cur.execute(
            f"""
            INSERT INTO documents (knowledge_base_id, source, title, content, metadata, content_hash)
            VALUES (%(kb)s, %(source)s, %(title)s, %(content)s, %(metadata)s, %(hash)s)
            ON CONFLICT (knowledge_base_id, source) DO UPDATE SET
                title = EXCLUDED.title,
                metadata = EXCLUDED.metadata,
                content = EXCLUDED.content,
                content_hash = EXCLUDED.content_hash,
                status = CASE WHEN documents.content_hash = EXCLUDED.content_hash THEN documents.status
                              ELSE 'pending' END,
                updated_at = now()
            RETURNING {_DOC_COLUMNS}
            """,
            {"kb": _uuid(kb_id), "source": source, "title": title, "content": content,
             "metadata": Jsonb(metadata or {}), "hash": digest},
        ).fetchone()


def get_document(conn: psycopg.Connection, doc_id: str | uuid.UUID) -> Document:
    """The document with this id; PermanentError when there is none (e.g. deleted meanwhile)."""
    with conn.cursor(row_factory=class_row(Document)) as cur:
        row = cur.execute(f"SELECT {_DOC_COLUMNS} FROM documents WHERE id = %s", (_uuid(doc_id),)).fetchone()
    if row is None:
        raise PermanentError(f"document {doc_id} does not exist")
    return row


def list_documents(conn: psycopg.Connection, kb_id: str | uuid.UUID) -> list[Document]:
    with conn.cursor(row_factory=class_row(Document)) as cur:
        return cur.execute(
            f"SELECT {_DOC_COLUMNS} FROM documents WHERE knowledge_base_id = %s ORDER BY source", (_uuid(kb_id),)
        ).fetchall()


def set_document_status(
    conn: psycopg.Connection,
    doc_id: str | uuid.UUID,
    status: str,
    error: Optional[str] = None,
    task_id: Optional[str] = None,
) -> None:
    conn.execute(
        "UPDATE documents SET status = %s, error = %s, index_task_id = COALESCE(%s, index_task_id),"
        " updated_at = now() WHERE id = %s",
        (status, error, task_id, _uuid(doc_id)),
    )


# --------------------------------------------------------------------------- chunks


def known_vectors(conn: psycopg.Connection, doc_id: str | uuid.UUID, model_name: str) -> dict[str, np.ndarray]:
    """Vectors already computed for this document's chunk texts with this model.

    Comes from the staging table (an interrupted attempt) and from the current
    chunks when they were made with this model (the main embedder's column, or
    ``use_embedding`` for the second embedder's), keyed by the chunk text's hash.
    Re-vectorizing therefore embeds only text that is new.
    """
    if model_name == UseEmbedder.model_name:
        current = "SELECT encode(sha256(convert_to(c.content, 'UTF8')), 'hex'), c.use_embedding::text FROM chunks c" \
                  " WHERE c.document_id = %(doc)s AND c.use_embedding IS NOT NULL"
    else:
        current = "SELECT encode(sha256(convert_to(c.content, 'UTF8')), 'hex'), c.embedding::text" \
                  " FROM chunks c JOIN documents d ON d.id = c.document_id" \
                  " WHERE c.document_id = %(doc)s AND d.indexed_model = %(model)s"
    rows = conn.execute(
        "SELECT text_hash, embedding::text FROM embedding_staging WHERE document_id = %(doc)s AND model = %(model)s"
        " UNION ALL " + current,
        {"doc": _uuid(doc_id), "model": model_name},
    ).fetchall()
    return {text_hash: parse_vector(vector) for text_hash, vector in rows}


def stage_vectors(
    conn: psycopg.Connection, doc_id: str | uuid.UUID, model_name: str, texts: Sequence[str], vectors: np.ndarray
) -> None:
    """Keep vectors of a finished batch so a later attempt need not embed them again."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO embedding_staging (document_id, model, text_hash, embedding) VALUES (%s, %s, %s, %s::vector)"
            " ON CONFLICT DO NOTHING",
            [(_uuid(doc_id), model_name, content_hash(t), vector_literal(v)) for t, v in zip(texts, vectors)],
        )


def replace_chunks(
    conn: psycopg.Connection,
    doc_id: str | uuid.UUID,
    expected_hash: str,
    model_name: str,
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    use_vectors: Optional[np.ndarray] = None,
) -> bool:
    """Swap the document's chunks for these, atomically. False when the content changed meanwhile.

    ``use_vectors`` are the second embedder's (None: the base is not ranked
    with them). The document row is locked first, so two attempts for the
    same document (a retry racing a redelivery) run one after the other; the
    second simply replaces the first's rows with identical ones.
    """
    if len(chunks) != len(vectors) or (use_vectors is not None and len(use_vectors) != len(chunks)):
        raise ValueError("one vector per chunk is needed")
    with conn.transaction():
        row = conn.execute(
            "SELECT knowledge_base_id, content_hash FROM documents WHERE id = %s FOR UPDATE", (_uuid(doc_id),)
        ).fetchone()
        if row is None:
            raise PermanentError(f"document {doc_id} was deleted while it was being vectorized")
        kb_id, current_hash = row
        if current_hash != expected_hash:
            return False
        removed = conn.execute(
            "SELECT script, count(*), sum(embedding)::text FROM chunks WHERE document_id = %s GROUP BY script",
            (_uuid(doc_id),),
        ).fetchall()
        conn.execute("DELETE FROM chunks WHERE document_id = %s", (_uuid(doc_id),))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO chunks (knowledge_base_id, document_id, position, content, token_count, script, embedding,"
                " use_embedding) VALUES (%s, %s, %s, %s, %s, %s, %s::vector, %s::vector)",
                [
                    (kb_id, _uuid(doc_id), c.position, c.text, c.token_count, c.script, vector_literal(v),
                     None if use_vectors is None else vector_literal(use_vectors[i]))
                    for i, (c, v) in enumerate(zip(chunks, vectors))
                ],
            )
        _adjust_centroids(conn, kb_id, removed, chunks, vectors)
        conn.execute(
            "UPDATE documents SET status = 'ready', error = NULL, indexed_hash = %s, indexed_model = %s,"
            " chunk_count = %s, indexed_at = now(), updated_at = now() WHERE id = %s",
            (expected_hash, model_name, len(chunks), _uuid(doc_id)),
        )
        conn.execute("DELETE FROM embedding_staging WHERE document_id = %s", (_uuid(doc_id),))
    return True


def _adjust_centroids(
    conn: psycopg.Connection,
    kb_id: uuid.UUID,
    removed: Iterable[tuple[str, int, str]],
    chunks: Sequence[Chunk] = (),
    vectors: Sequence[np.ndarray] = (),
) -> None:
    """Apply (added - removed) per script to the running centroid sums, in the caller's transaction."""
    counts: dict[str, int] = {}
    sums: dict[str, np.ndarray] = {}

    def add(script: str, count: int, vector: np.ndarray) -> None:
        counts[script] = counts.get(script, 0) + count
        sums[script] = sums[script] + vector if script in sums else vector.astype(np.float64)

    for script, count, vector_sum in removed:
        add(script, -count, -parse_vector(vector_sum))
    for chunk, vector in zip(chunks, vectors):
        add(chunk.script, 1, vector)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO script_centroids AS s (knowledge_base_id, script, chunk_count, embedding_sum)"
            " VALUES (%s, %s, %s, %s::vector) ON CONFLICT (knowledge_base_id, script) DO UPDATE SET"
            " chunk_count = s.chunk_count + EXCLUDED.chunk_count, embedding_sum = s.embedding_sum + EXCLUDED.embedding_sum",
            [(kb_id, script, counts[script], vector_literal(sums[script])) for script in counts],
        )


def delete_documents(
    conn: psycopg.Connection, kb_id: str | uuid.UUID, doc_ids: Optional[Sequence[str]] = None
) -> dict[str, int]:
    """Remove documents with their chunks; all of the base's when ``doc_ids`` is None. One transaction."""
    kb_uuid = _uuid(kb_id)
    with conn.transaction():
        get_knowledge_base(conn, kb_uuid, for_update=True)
        if doc_ids is None:
            chunks = conn.execute("DELETE FROM chunks WHERE knowledge_base_id = %s", (kb_uuid,)).rowcount
            conn.execute("DELETE FROM script_centroids WHERE knowledge_base_id = %s", (kb_uuid,))
            documents = conn.execute("DELETE FROM documents WHERE knowledge_base_id = %s", (kb_uuid,)).rowcount
            return {"documents": documents, "chunks": chunks}
        ids = [_uuid(d) for d in doc_ids]
        removed = conn.execute(
            "SELECT script, count(*), sum(embedding)::text FROM chunks"
            " WHERE knowledge_base_id = %s AND document_id = ANY(%s) GROUP BY script",
            (kb_uuid, ids),
        ).fetchall()
        chunks = conn.execute(
            "DELETE FROM chunks WHERE knowledge_base_id = %s AND document_id = ANY(%s)", (kb_uuid, ids)
        ).rowcount
        _adjust_centroids(conn, kb_uuid, removed)
        documents = conn.execute(
            "DELETE FROM documents WHERE knowledge_base_id = %s AND id = ANY(%s)", (kb_uuid, ids)
        ).rowcount
        return {"documents": documents, "chunks": chunks}


def delete_knowledge_base(url: str, kb_id: str | uuid.UUID) -> Optional[dict[str, int]]:
    """Delete a base with everything in it; None when there is no such base (already deleted).

    Its HNSW indexes go first, CONCURRENTLY, so other bases' readers and writers
    are never blocked and the rows are not removed from an index one by one.
    Then one transaction deletes the base row; documents, chunks, centroid sums
    and staged vectors follow by ON DELETE CASCADE. A vectorize task still
    running for one of its documents then fails with "document was deleted".
    """
    kb_uuid = _uuid(kb_id)
    with connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM knowledge_bases WHERE id = %s", (kb_uuid,)).fetchone() is None:
            return None
        for name in index_names(kb_uuid):
            conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
        with conn.transaction():
            if conn.execute("SELECT 1 FROM knowledge_bases WHERE id = %s FOR UPDATE", (kb_uuid,)).fetchone() is None:
                return None
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM documents WHERE knowledge_base_id = %(kb)s),"
                " (SELECT count(*) FROM chunks WHERE knowledge_base_id = %(kb)s)",
                {"kb": kb_uuid},
            ).fetchone()
            conn.execute("DELETE FROM knowledge_bases WHERE id = %s", (kb_uuid,))
    return {"documents": counts[0], "chunks": counts[1]}


# --------------------------------------------------------------------------- conversations


@dataclass
class Message:
    id: int
    conversation_id: str
    role: str
    content: str
    created_at: datetime
    task_id: Optional[str]
    sources: Optional[list]
    usage: Optional[dict]
    provider: Optional[str]
    model: Optional[str]

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "created_at": self.created_at.isoformat()}


_MSG_COLUMNS = "id, conversation_id, role, content, created_at, task_id, sources, usage, provider, model"


def recent_messages(conn: psycopg.Connection, conversation_id: str, limit: int) -> list[Message]:
    """The last ``limit`` messages of a conversation, oldest first."""
    if limit <= 0:
        return []
    with conn.cursor(row_factory=class_row(Message)) as cur:
        rows = cur.execute(
            f"SELECT {_MSG_COLUMNS} FROM messages WHERE conversation_id = %s ORDER BY id DESC LIMIT %s",
            (conversation_id, limit),
        ).fetchall()
    return rows[::-1]


#: ``list_messages(..., user_id=ANY_USER)``: whoever's conversation it is (a service's view).
ANY_USER = object()


def list_messages(
    conn: psycopg.Connection, conversation_id: str, limit: int, before: Optional[int] = None, user_id: Any = ANY_USER,
) -> Optional[list[Message]]:
    """A page of messages (oldest first) ending before message id ``before``; None for an unknown
    conversation, or one that is not *user_id*'s."""
    owner = conversation_owner(conn, conversation_id)
    if owner is None or (user_id is not ANY_USER and owner[0] != user_id):
        return None
    with conn.cursor(row_factory=class_row(Message)) as cur:
        rows = cur.execute(
            f"SELECT {_MSG_COLUMNS} FROM messages WHERE conversation_id = %s AND (%s::bigint IS NULL OR id < %s)"
            " ORDER BY id DESC LIMIT %s",
            (conversation_id, before, before, limit),
        ).fetchall()
    return rows[::-1]


def conversation_owner(conn: psycopg.Connection, conversation_id: str) -> Optional[tuple[Optional[str], Optional[str]]]:
    """(user_id, tenant_id) of the conversation's owner (each None when started for nobody); None when there is none."""
    return conn.execute("SELECT user_id, tenant_id FROM conversations WHERE id = %s", (conversation_id,)).fetchone()


def claim_conversation(conn: psycopg.Connection, conversation_id: str, user_id: Optional[str],
                       tenant_id: Optional[str]) -> bool:
    """Start the conversation for *user_id* if it is new; whether it is *user_id*'s (the first to start it owns it)."""
    with conn.transaction():
        conn.execute("INSERT INTO conversations (id, user_id, tenant_id) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING",
                     (conversation_id, user_id, tenant_id))
        owner = conversation_owner(conn, conversation_id)
    return owner is not None and owner[0] == user_id


def exchange_for_task(conn: psycopg.Connection, task_id: str) -> Optional[Message]:
    """The assistant message a task already stored, if any."""
    with conn.cursor(row_factory=class_row(Message)) as cur:
        return cur.execute(
            f"SELECT {_MSG_COLUMNS} FROM messages WHERE task_id = %s AND role = 'assistant'", (task_id,)
        ).fetchone()


@dataclass
class Exchange:
    conversation_id: str
    task_id: Optional[str]  # None only outside a worker
    question: str
    reply: str
    sources: list = field(default_factory=list)
    usage: dict = field(default_factory=dict)
    provider: str = ""
    model: Optional[str] = None


def save_exchange(conn: psycopg.Connection, exchange: Exchange) -> Message:
    """Store the user's question and the reply together (one transaction); return the reply's row.

    Keyed by task id, so a redelivered task that already answered stores nothing twice.
    """
    with conn.transaction():
        conn.execute(
            "INSERT INTO conversations (id) VALUES (%s) ON CONFLICT (id) DO UPDATE SET updated_at = now()",
            (exchange.conversation_id,),
        )
        conn.execute(
            "INSERT INTO messages (conversation_id, role, content, task_id) VALUES (%s, 'user', %s, %s)"
            " ON CONFLICT (task_id, role) DO NOTHING",
            (exchange.conversation_id, exchange.question, exchange.task_id),
        )
        with conn.cursor(row_factory=class_row(Message)) as cur:
            stored = cur.execute(
                "INSERT INTO messages (conversation_id, role, content, task_id, sources, usage, provider, model)"
                " VALUES (%s, 'assistant', %s, %s, %s, %s, %s, %s) ON CONFLICT (task_id, role) DO NOTHING"
                f" RETURNING {_MSG_COLUMNS}",
                (exchange.conversation_id, exchange.reply, exchange.task_id, Jsonb(exchange.sources),
                 Jsonb(exchange.usage), exchange.provider, exchange.model),
            ).fetchone()
        return stored or exchange_for_task(conn, exchange.task_id)


# --------------------------------------------------------------------------- helpers


def _uuid(value: str | uuid.UUID) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise PermanentError(f"{value!r} is not a valid id (expected a UUID)") from None


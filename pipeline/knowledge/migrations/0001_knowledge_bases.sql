-- Knowledge bases, their documents and the embedded chunks.
-- Each knowledge base gets its own partial HNSW index (created by the
-- application, see store.ensure_index), because bases may use embedders of
-- different dimensions and a rebuild drops and recreates one base's index.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE knowledge_bases (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name           text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    embedder_model text NOT NULL,
    embedding_dim  integer NOT NULL CHECK (embedding_dim > 0),
    status         text NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'rebuilding')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE documents (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    knowledge_base_id uuid NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
    source            text NOT NULL,
    title             text NOT NULL,
    content           text NOT NULL,
    metadata          jsonb NOT NULL DEFAULT '{}',
    content_hash      text NOT NULL,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'indexing', 'ready', 'failed')),
    error             text,
    -- What the stored chunks were made from: a document is up to date when
    -- indexed_hash = content_hash and indexed_model is its base's model.
    indexed_hash      text,
    indexed_model     text,
    chunk_count       integer NOT NULL DEFAULT 0,
    index_task_id     text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    indexed_at        timestamptz,
    UNIQUE (knowledge_base_id, source)
);

CREATE TABLE chunks (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    knowledge_base_id uuid NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
    document_id       uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    position          integer NOT NULL,
    content           text NOT NULL,
    token_count       integer NOT NULL,
    script            text NOT NULL CHECK (script IN ('cjk', 'latin', 'other')),
    embedding         vector NOT NULL,
    UNIQUE (document_id, position)
);
CREATE INDEX chunks_base_script ON chunks (knowledge_base_id, script);

-- Vectors of chunks embedded by an attempt that did not finish, so the next
-- attempt embeds only the rest. Keyed by the chunk's text, not its position,
-- so a change of chunk settings or content never reuses a wrong vector.
CREATE TABLE embedding_staging (
    document_id uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    model       text NOT NULL,
    text_hash   text NOT NULL,
    embedding   vector NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, model, text_hash)
);

-- Running sum of chunk vectors per base and script (cjk / latin / other):
-- retrieval subtracts the query's similarity to each script's centroid so
-- that same-language chunks do not crowd out the other language's answers.
CREATE TABLE script_centroids (
    knowledge_base_id uuid NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
    script            text NOT NULL,
    chunk_count       bigint NOT NULL,
    embedding_sum     vector NOT NULL,
    PRIMARY KEY (knowledge_base_id, script)
);

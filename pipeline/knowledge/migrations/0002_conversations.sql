-- Conversations with an assistant. Ids come from the product (any string);
-- a conversation row is created with its first message.

CREATE TABLE conversations (
    id         text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('user', 'assistant')),
    content         text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The generate_ai_response task that stored the message: a redelivered
    -- task finds its exchange already saved instead of answering twice.
    task_id         text,
    sources         jsonb,
    usage           jsonb,
    provider        text,
    model           text,
    UNIQUE (task_id, role)
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);

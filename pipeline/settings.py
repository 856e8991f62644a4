"""The one settings object, read from ``CLAW_*`` environment variables.

Every process (API, worker, scheduler, CLI) calls :func:`get_settings`; nothing
else reads the environment. A bad value raises :class:`ConfigError` naming the
variable, which the CLI turns into one line and exit code 2.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated, Any, Optional
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipeline.amqp import node_urls
from pipeline.errors import ConfigError
from pipeline.observability.logs import FORMATS, LEVELS
from pipeline.redis_url import SHARD_COUNTS, check_url, is_cluster_url, is_sentinel_url
from pipeline.registry import parse_rate_limit
from pipeline.tokens import NAME as KEY_ID, ServiceToken, describe, parse_tokens

ENV_PREFIX = "CLAW_"
#: Settings holding URLs that may carry a password (shown redacted).
URL_FIELDS = ("broker_url", "redis_url", "rabbitmq_management_url")


class Settings(BaseSettings):
    """Everything an operator can set. Field names map to ``CLAW_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    broker_url: str = Field(
        "amqp://guest:guest@127.0.0.1:5672/%2F",
        description="RabbitMQ URL (amqp:// or amqps://); several nodes separated by ';'.",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis for task state, results, heartbeats: one server (redis://, rediss://, unix://) or a "
                    "Sentinel-managed master (redis+sentinel://[:password@]host1:26379,host2:26379/mymaster/0) "
                    "or a Redis Cluster (redis+cluster://[:password@]host1:7000,host2:7001).",
    )
    redis_shards: Optional[int] = Field(
        None, description="Shards of the task-state store (1, 2, 4, 8 or 16; every process of a deployment must "
                          "agree, and changing it strands the stored tasks); unset: 16 with a Cluster URL (each "
                          "shard one hash slot), 1 (the plain key names) otherwise.",
    )
    redis_wait_replicas: Optional[int] = Field(
        None, ge=0, le=16,
        description="Replicas that must acknowledge a submission's records (and a task's final state) before it is "
                    "accepted (Redis WAIT); unset: 1 with a Sentinel URL, 0 (no wait) otherwise.",
    )
    redis_wait_timeout_ms: int = Field(
        500, ge=1, le=60_000, description="Longest wait for those replicas; a shortfall is logged, not refused.",
    )
    rabbitmq_management_url: str = Field(
        "http://guest:guest@127.0.0.1:15672",
        description="RabbitMQ management HTTP API, for queue depths; passive declares are used when it is off.",
    )
    namespace: str = Field(
        "claw", pattern=r"^[A-Za-z0-9_.-]{1,40}$", description="Prefix of every Redis key this deployment writes."
    )
    queue_prefix: str = Field(
        "", pattern=r"^[A-Za-z0-9_.-]{0,40}$",
        description="Prefix of every RabbitMQ queue name (lets several deployments or test runs share a vhost).",
    )
    result_ttl_seconds: int = Field(3600, ge=1, description="How long finished task records and results are kept.")
    idempotency_ttl_seconds: int = Field(3600, ge=1, description="How long an idempotency key maps to its task.")
    compression_threshold_bytes: int = Field(
        1024, ge=64, description="Messages larger than this are gzip-compressed on the wire."
    )
    max_message_bytes: int = Field(
        64 * 1024 * 1024, ge=1024,
        description="Largest message body a worker (or the dead-letter requeue) decompresses; a larger one "
                    "(e.g. a gzip bomb) is undecodable: recorded and dead-lettered.",
    )

    worker_processes: int = Field(2, ge=1, le=64, description="Worker processes per `claw-pipeline worker`.")
    worker_threads: int = Field(2, ge=1, le=256, description="Threads per worker process (concurrency = processes x threads).")
    worker_queues: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Queues to consume, comma-separated; empty means all declared queues."
    )
    max_tasks_per_child: int = Field(
        10_000, ge=0, description="A worker process is replaced after this many tasks (0 = never)."
    )
    max_memory_per_child_mib: int = Field(
        512, ge=0, description="A worker process is replaced after a task that leaves it above this resident memory, in MiB (0 = never)."
    )
    queue_prefetch: int = Field(
        0, ge=0, description="Messages prefetched per worker process; 0 = 2 x threads (Dramatiq's default)."
    )
    max_hold_seconds: float = Field(
        300.0, ge=1, le=1500,
        description="Longest a worker holds a waiting message (a delay, a retry's backoff, a rate-limit wait) unacknowledged; "
                    "longer waits go back to RabbitMQ in hops of at most this. Keep it well under RabbitMQ's consumer_timeout.",
    )
    heartbeat_interval_seconds: float = Field(2.0, gt=0, description="How often a worker process refreshes its record.")
    worker_ttl_seconds: float = Field(10.0, gt=0, description="A worker record disappears this long after its last heartbeat.")
    worker_metrics_port: int = Field(
        0, ge=0, le=65535, description="Port for the workers' Prometheus exporter (0 = off)."
    )
    shutdown_timeout_seconds: float = Field(
        600.0, gt=0, description="How long a stopping worker waits for running tasks to finish."
    )
    workflow_overdue_seconds: float = Field(
        15.0, gt=0, le=3600,
        description="A workflow task due this long without being published (its publisher died) is published by "
                    "the workers' sweep, which runs every third of this.",
    )

    task_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Extra modules declaring tasks, comma-separated (imported by every process)."
    )
    actor_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description='Per-actor policy overrides as JSON, e.g. {"generate_ai_response": {"rate_limit": "20/m"}}.',
    )

    user_ai_quota: str = Field(
        "20/m",
        description="generate_ai_response submissions each user may make with a user token per window (the one "
                    "beyond is answered 429 with Retry-After). Like '20/m', '100/h'.",
    )
    user_max_priority: int = Field(
        8, ge=0, le=9,
        description="Highest priority a user token's submission gets (asked for more: 422; an actor's default "
                    "above it is lowered to it), so browsers never overtake the backends' urgent work.",
    )
    ai_global_rate_limit: str = Field(
        "300/m",
        description="Most generate_ai_response tasks started per window across all users (each user also has "
                    "10/m of their own): protects the model provider's quota. Like '300/m', '20/s', '5000/h'.",
    )

    api_tokens: Annotated[list[ServiceToken], NoDecode] = Field(
        default_factory=list,
        description="Service tokens, comma-separated `name:token:grant` entries; grant: a role (read, submit, admin) or "
                    "scopes joined by + (e.g. tasks:read+users:mint); token: the secret or sha256=<hex of its SHA-256>. "
                    "Weak tokens (placeholders, under 128 bits) stop the API. See docs/usage.md, Security.",
    )
    user_token_keys: Annotated[list[tuple[str, SecretStr]], NoDecode] = Field(
        default_factory=list,
        description="Keys signing user tokens (HS256), comma-separated `key_id:secret` (secret: at least 32 characters); "
                    "the first signs, every one verifies: put a new key first and keep the old one until the tokens "
                    "it signed expired. Unset: no user tokens.",
    )
    user_token_max_ttl_seconds: int = Field(
        3600, ge=60, le=86_400, description="Longest lifetime a minted user token may be given (the default is 15 minutes)."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port], exact, comma-separated) whose pages may call the API with user "
                    "tokens; no cookies or credentials are allowed. Unset: no CORS headers.",
    )
    audit_max_entries: int = Field(
        100_000, ge=100, description="Entries the audit log keeps (the oldest go first)."
    )
    dashboard_login_limit: str = Field(
        "10/5m", description="Failed dashboard logins allowed per client address per window; more are answered 429."
    )
    api_workers: int = Field(2, ge=1, le=64, description="API worker processes of `claw-pipeline api` (gunicorn restarts any that dies).")
    api_threads: int = Field(
        4, ge=1, le=256,
        description="Threads per API worker process for blocking engine calls (Redis, RabbitMQ, PostgreSQL); "
                    "open event streams and idle connections hold none.",
    )
    api_max_streams: int = Field(
        5000, ge=1, le=100_000,
        description="Open event streams per API worker process; one more is answered 503 with Retry-After.",
    )
    api_stream_keepalive_seconds: float = Field(
        15.0, gt=0, le=300, description="A comment line on a quiet event stream this often (and a check of the task's record)."
    )
    api_stream_max_seconds: float = Field(
        600.0, gt=0, description="An event stream ends after this long; the client reconnects with Last-Event-ID."
    )
    api_header_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="A request's line and headers must arrive within this long (else 408 and close)."
    )
    api_body_timeout_seconds: float = Field(
        30.0, gt=0, le=3600, description="A request's body must arrive within this long after its headers (else 408 and close)."
    )
    api_keepalive_seconds: float = Field(5.0, gt=0, le=300, description="An idle kept-alive connection is closed after this long.")
    api_keepalive_max_requests: int = Field(
        1000, ge=1, description="Requests served on one connection before it is closed (the client reconnects)."
    )
    auth_disabled: bool = Field(False, description="Serve the API without authentication (development only).")
    openapi_public: bool = Field(
        True, description="Serve /openapi.json without a token (it describes the API, it holds no data); false: read role.",
    )
    log_level: str = Field(
        "INFO", description="Lowest level logged by every process: DEBUG, INFO, WARNING, ERROR (`--log-level` sets it too)."
    )
    log_format: str = Field(
        "text", description="`text`, or `json`: one JSON object per line with time, level, logger, message, task_id, "
                            "actor, request_id and worker.",
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body the API accepts.")
    timezone: str = Field("Asia/Shanghai", description="Timezone of the built-in schedules.")
    data_dir: Path = Field(
        Path("var"),
        validate_default=True,
        description="Runtime data (the embedded PostgreSQL's files, the development admin token, the API's "
                    "metrics files); a relative path is under the working directory. Never inside the installed package.",
    )

    def __repr_args__(self):
        """What repr() and str() show: credentials never (settings end up in logs and tracebacks)."""
        for name, value in super().__repr_args__():
            if name in URL_FIELDS:
                value = ";".join(redact_url(url) for url in value.split(";"))
            elif name == "api_tokens":
                value = describe(value)
            elif name == "user_token_keys":
                value = [key_id for key_id, _ in value]
            yield name, value

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, value: str) -> str:
        urls = node_urls(value)
        if not urls or any(urlsplit(url).scheme not in ("amqp", "amqps") for url in urls):
            raise ValueError("must start with amqp:// or amqps:// (several nodes separated by ';')")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        check_url(value)
        return value

    @field_validator("redis_shards")
    @classmethod
    def _check_redis_shards(cls, value: Optional[int]) -> Optional[int]:
        if value is not None and value not in SHARD_COUNTS:
            raise ValueError(f"must be one of {', '.join(map(str, SHARD_COUNTS))}")
        return value

    @model_validator(mode="after")
    def _check_cluster(self) -> "Settings":
        if is_cluster_url(self.redis_url):
            if self.redis_shards == 1:
                raise ValueError("redis_shards: a Redis Cluster needs at least 2 shards (unset: 16)")
            if self.redis_wait_replicas:
                raise ValueError("redis_wait_replicas: WAIT is not used on a Redis Cluster (a replica per shard "
                                 "master is not waited for; see docs/reliability.md)")
        return self

    @property
    def shards(self) -> int:
        """Shards of the state store (``redis_shards`` resolved)."""
        if self.redis_shards is not None:
            return self.redis_shards
        return 16 if is_cluster_url(self.redis_url) else 1

    @property
    def wait_replicas(self) -> int:
        """How many replicas a durable write waits for (``redis_wait_replicas`` resolved)."""
        if self.redis_wait_replicas is not None:
            return self.redis_wait_replicas
        return 1 if is_sentinel_url(self.redis_url) else 0

    @field_validator("ai_global_rate_limit", "user_ai_quota", "dashboard_login_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        parse_rate_limit(value)
        return value

    @field_validator("worker_queues", "task_modules", mode="before")
    @classmethod
    def _split_queues(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [q.strip() for q in value.split(",") if q.strip()]
        return value

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: Any) -> Any:
        return parse_tokens(value) if isinstance(value, str) else value

    @field_validator("user_token_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        keys = []
        for number, entry in enumerate(filter(None, (e.strip() for e in value.split(","))), start=1):
            key_id, sep, secret = entry.partition(":")
            if not sep or not KEY_ID.match(key_id):
                raise ValueError(f"entry {number}: use key_id:secret (key_id: letters, digits, _ . -)")
            if len(secret) < 32:
                raise ValueError(f"entry {number} ({key_id}): the secret must be at least 32 characters")
            keys.append((key_id, SecretStr(secret)))
        if len({key_id for key_id, _ in keys}) != len(keys):
            raise ValueError("key ids must be unique")
        return keys

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [origin.strip() for origin in value.split(",") if origin.strip()]
        for origin in value:
            if not re.match(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$", origin):
                raise ValueError(f"{origin!r} is not an exact origin like https://app.example.com (no path, no *)")
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        """Resolved once, against the working directory of the process that reads the settings."""
        return value.expanduser().absolute()

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        if value.upper() not in LEVELS:
            raise ValueError(f"must be one of {', '.join(LEVELS)}")
        return value.upper()

    @field_validator("log_format")
    @classmethod
    def _check_log_format(cls, value: str) -> str:
        if value.lower() not in FORMATS:
            raise ValueError(f"must be one of {', '.join(FORMATS)}")
        return value.lower()

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception:
            raise ValueError(f"unknown timezone {value!r}") from None
        return value


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def redact_url(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is not None:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    if "password=" in parts.query:  # a Sentinel URL's sentinel_password
        parts = parts._replace(query=re.sub(r"(password=)[^&]*", r"\1***", parts.query))
    return urlunsplit(parts)


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings; raise ConfigError naming the variable on failure."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        raise ConfigError(f"{env_name(field)}: {error['msg']}") from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()

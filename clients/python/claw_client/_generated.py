"""Generated from the OpenAPI document of claw-pipeline API 1.0.0 by clients/python/generate.py: do not edit."""

# ruff: noqa
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from claw_client._transport import _quote

API_VERSION = '1.0.0'
#: operationId -> path of every per-actor submit endpoint.
SUBMIT_PATHS = {
    "submitDeleteKnowledgeVectors": "/api/v1/tasks/knowledge/delete",
    "submitGenerateAiResponse": "/api/v1/tasks/ai/generate",
    "submitSendNotification": "/api/v1/tasks/notifications/send",
    "submitUpdateKnowledgeBase": "/api/v1/tasks/knowledge/update",
    "submitVectorizeDocument": "/api/v1/tasks/knowledge/vectorize",
    "submitWorkflow": "/api/v1/workflows"
}


class _Model(BaseModel):
    """Fields the server adds later are kept (extra="allow"), so an older client reads a newer API."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Accepted(_Model):
    task_id: str
    state: Literal['PENDING', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'CANCELLED']
    status_url: str


class ActorStats(_Model):
    queue: str
    states: dict[str, int]
    runtime_ms: dict[str, Optional[float]] = Field(description='p50/p95 over the last 500 finished tasks.')


class AuditEntry(_Model):
    id: str
    at: float
    who: str = Field(description="A token's name, user:<id>, dashboard:<token name>, cli:<os user>, or anonymous.")
    action: str
    target: str
    outcome: str = Field(description='The HTTP status (or what happened).')
    address: str
    detail: dict[str, Any]


class AuditPage(_Model):
    entries: list[AuditEntry]
    next_cursor: Optional[str] = Field(default=None, description='Pass as `cursor` for older entries; null on the last page.')


class AuditQuery(_Model):
    limit: int = Field(default=100)
    cursor: Optional[str] = Field(default=None, description='`next_cursor` of the previous page.')
    action: Optional[str] = Field(default=None, description='Only entries whose action starts with this, e.g. `POST /api/v1/tasks/cancel`.')


class BulkAccepted(_Model):
    task_ids: list[str] = Field(description='In the order of the submitted tasks.')
    count: int


class BulkBody(_Model):
    tasks: list[BulkItem]


class BulkItem(_Model):
    actor: str
    kwargs: Optional[dict[str, Any]] = Field(default=None, description="The actor's keyword arguments.")
    priority: Optional[int] = Field(default=None)
    delay_seconds: Optional[float] = Field(default=None)
    eta: Optional[datetime] = Field(default=None)
    queue: Optional[str] = Field(default=None, description="Another declared queue for this task (default: the actor's).")
    user_id: Optional[str] = Field(default=None, description='The end user the task is for (its owner).')
    tenant_id: Optional[str] = Field(default=None, description="The owner's tenant (needs user_id).")


class CancelOutcome(_Model):
    task_id: str
    state: Literal['CANCELLED', 'STARTED'] = Field(description='CANCELLED: it will never run; STARTED: it is being interrupted.')
    previous_state: Optional[str] = Field(default=None)
    cancel_requested: Optional[bool] = Field(default=None)


class ConversationMessage(_Model):
    id: int
    conversation_id: str
    role: str = Field(description='`user` or `assistant`.')
    content: str
    created_at: str = Field(description='ISO 8601.')
    task_id: Optional[str] = Field(default=None, description='The generate_ai_response task that wrote it.')
    sources: Optional[list[dict[str, Any]]] = Field(default=None, description='Citations of an answer: document_id, source, title, chunk_id, score.')
    usage: Optional[dict[str, Any]] = Field(default=None, description='Token usage the model reported.')
    provider: Optional[str] = Field(default=None)
    model: Optional[str] = Field(default=None)


class DeadLetters(_Model):
    tasks: list[TaskRecord]
    next_cursor: Optional[str] = Field(default=None, description='Pass as `cursor` for the next page; null on the last page.')
    dead_lettered: dict[str, Optional[int]] = Field(description="Messages in each queue's dead-letter queue.")
    undecodable: list[dict[str, Any]] = Field(description='Messages no worker could decode (newest first).')


class DeadQuery(_Model):
    actor: Optional[str] = Field(default=None, description='Only failed tasks of this actor.')
    queue: Optional[str] = Field(default=None, description='Only failed tasks of this queue.')
    limit: int = Field(default=50, description='Page size, at most 500.')
    cursor: Optional[str] = Field(default=None, description='`next_cursor` of the previous page.')


class DeleteKnowledgeVectorsSubmission(_Model):
    """Delete documents and their vectors: some by id, or all of a base."""

    priority: Optional[int] = Field(default=None, description="0 (lowest) to 9; default: the actor's.")
    delay_seconds: Optional[float] = Field(default=None, description='Start no earlier than this many seconds from now.')
    eta: Optional[datetime] = Field(default=None, description='Start no earlier than this ISO 8601 time (naive = UTC); not with delay_seconds.')
    idempotency_key: Optional[str] = Field(default=None, description='Submitting the same key again (within the idempotency TTL) returns the first task; keys are per token and actor.')
    queue: Optional[str] = Field(default=None, description="Another declared queue for this task (default: the actor's); a worker must consume it.")
    user_id: Optional[str] = Field(default=None, description="The end user the task is for (its owner); a user token's own user when left out, and only that one.")
    tenant_id: Optional[str] = Field(default=None, description="The owner's tenant (needs user_id).")
    knowledge_base_id: str
    document_ids: Optional[list[str]] = Field(default=None)
    all_documents: bool = Field(default=False)


class ErrorBody(_Model):
    error: ErrorDetail


class ErrorDetail(_Model):
    status: int
    title: str
    description: str
    fields_: Optional[dict[str, str]] = Field(default=None, alias='fields', description='Which input was wrong (or which check failed), and why.')
    state: Optional[str] = Field(default=None, description="The task's current state, on a 409.")


class GenerateAiResponseSubmission(_Model):
    """Answer the user's message (with knowledge-base passages when a base is given) and store both."""

    priority: Optional[int] = Field(default=None, description="0 (lowest) to 9; default: the actor's.")
    delay_seconds: Optional[float] = Field(default=None, description='Start no earlier than this many seconds from now.')
    eta: Optional[datetime] = Field(default=None, description='Start no earlier than this ISO 8601 time (naive = UTC); not with delay_seconds.')
    idempotency_key: Optional[str] = Field(default=None, description='Submitting the same key again (within the idempotency TTL) returns the first task; keys are per token and actor.')
    queue: Optional[str] = Field(default=None, description="Another declared queue for this task (default: the actor's); a worker must consume it.")
    user_id: Optional[str] = Field(default=None, description="The end user the task is for (its owner); a user token's own user when left out, and only that one.")
    tenant_id: Optional[str] = Field(default=None, description="The owner's tenant (needs user_id).")
    conversation_id: str
    user_message: str
    knowledge_base_id: Optional[str] = Field(default=None)


class Health(_Model):
    status: str
    checks: dict[str, str] = Field(default={})


class HealthSnapshot(_Model):
    """What the last health check found. Times are epoch seconds."""

    ok: bool = Field(description='True when no problem was found.')
    checked_at: float
    age_seconds: float
    problems: list[dict[str, str]] = Field(description='Each with a stable `key` (e.g. backlog:default) and a `message`.')
    queues: dict[str, dict[str, Any]] = Field(description='Per queue: ready, consumers, pending, oldest_pending_seconds.')
    workers: dict[str, Any]
    actors: dict[str, dict[str, Any]] = Field(description='Per actor with finished tasks in the window: success, failure, failure_rate.')
    lost_tasks: list[dict[str, Any]] = Field(description='Tasks found STARTED past their limit on a dead worker, and what was done.')
    alert: dict[str, Any] = Field(description='Whether an alert was sent for the new problems, and why not otherwise.')
    redis: dict[str, Any]
    rabbitmq: dict[str, Any]


class InboxItem(_Model):
    id: str
    title: Optional[str] = Field(default=None)
    body: Optional[str] = Field(default=None)
    data: dict[str, Any] = Field(default={})
    created_at: str = Field(description='ISO 8601.')
    read: bool
    read_at: Optional[str] = Field(default=None, description='When it was marked read (ISO 8601).')


class InboxPage(_Model):
    user_id: str
    items: list[InboxItem] = Field(description='Unread first (newest first), then read.')
    unread: int
    total: int = Field(description='Items matching the query.')
    offset: int
    limit: int
    next_cursor: Optional[str] = Field(default=None, description='Pass as `cursor` for the next page; null on the last page.')
    next_offset: Optional[int] = Field(default=None, description='Deprecated: the same as `next_cursor`, as `offset` takes it.')


class InboxQuery(_Model):
    limit: int = Field(default=20, description='Page size.')
    cursor: Optional[str] = Field(default=None, description='`next_cursor` of the previous page.')
    offset: int = Field(default=0, description='Deprecated: `cursor` under its earlier name.')
    unread_only: bool = Field(default=False, description='Only unread items.')


class KnowledgeBase(_Model):
    id: str
    name: str
    embedder_model: str
    embedding_dim: int
    status: str = Field(description='`ready`, or `rebuilding` while an update re-embeds it.')
    documents: Optional[int] = Field(default=None, description='Documents in it (in the list only).')
    chunks: Optional[int] = Field(default=None, description='Chunks in it (in the list only).')


class KnowledgeBaseList(_Model):
    knowledge_bases: list[KnowledgeBase]


class ListQuery(_Model):
    state: Optional[Literal['PENDING', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'CANCELLED']] = Field(default=None, description='Only tasks in this state.')
    actor: Optional[str] = Field(default=None, description='Only tasks of this actor.')
    queue: Optional[str] = Field(default=None, description='Only tasks on this queue.')
    since: Optional[Union[datetime, float]] = Field(default=None, description='Enqueued at or after (ISO 8601 or epoch seconds).')
    until: Optional[Union[datetime, float]] = Field(default=None, description='Enqueued at or before (ISO 8601 or epoch seconds).')
    limit: int = Field(default=50, description='Page size, at most 500.')
    cursor: Optional[str] = Field(default=None, description='`next_cursor` of the previous page.')
    user_id: Optional[str] = Field(default=None, description="Only this user's tasks (from the user's own index). A user token always lists its own.")


class MarkReadBody(_Model):
    ids: Optional[list[str]] = Field(default=None)
    all: Optional[bool] = Field(default=None)


class MarkReadOutcome(_Model):
    user_id: str
    marked: int = Field(description='Items that were unread and are read now.')
    unread: int = Field(description='Items still unread.')


class MessagePage(_Model):
    conversation_id: str
    messages: list[ConversationMessage] = Field(description='Oldest first.')
    next_cursor: Optional[str] = Field(default=None, description='Pass as `cursor` for the page before this one; null when there is nothing older.')
    next_before: Optional[int] = Field(default=None, description='Deprecated: the same as `next_cursor`, as the `before` parameter takes it.')


class MessagesQuery(_Model):
    limit: int = Field(default=50, description='Page size.')
    cursor: Optional[str] = Field(default=None, description='`next_cursor` of the previous page.')
    before: Optional[int] = Field(default=None, description='Deprecated: `cursor` under its earlier name.')


class MintBody(_Model):
    user_id: str = Field(description='The user the browser acts for.')
    tenant_id: Optional[str] = Field(default=None, description="The user's tenant: which knowledge bases it may search.")
    ttl_seconds: Optional[int] = Field(default=None, description='Lifetime (default 900; at most CLAW_USER_TOKEN_MAX_TTL_SECONDS).')


class MintedToken(_Model):
    token: str = Field(description='Send it as `Authorization: Bearer <token>`.')
    expires_at: float = Field(description='Epoch seconds.')
    user_id: str
    tenant_id: Optional[str] = Field(default=None)


class NewBase(_Model):
    name: str
    tenant_id: Optional[str] = Field(default=None, description='The tenant whose user tokens may search it (and ask AI questions over it); without one, user tokens without a tenant may.')


class OpenApiDocument(_Model):
    """This API's OpenAPI 3.1 document."""

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


class ProgressEvent(_Model):
    """`event: progress`: what the running task reported (no id: progress is cumulative)."""

    type: Literal['progress']
    progress: TaskProgress


class QueueBrokerStats(_Model):
    ready: Optional[int]
    unacked: Optional[int]
    delayed: Optional[int] = Field(description='Waiting for their eta (held unacked by workers).')
    dead_lettered: Optional[int]
    consumers: Optional[int]
    publish_rate: Optional[float]
    deliver_rate: Optional[float]
    source: Literal['management', 'amqp']


class QueueStats(_Model):
    states: dict[str, int]
    broker: Optional[QueueBrokerStats] = Field(description='Null when RabbitMQ does not answer.')


class RequeueBody(_Model):
    queue: str = Field(description='The queue whose dead letters to requeue.')
    task_ids: Optional[list[str]] = Field(default=None, description="Only these tasks; all of the queue's dead letters when absent.")


class Requeued(_Model):
    queue: str
    requeued: int


class RetryAccepted(_Model):
    task_id: str
    state: Literal['PENDING', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'CANCELLED']
    status_url: str
    retry_of: str


class ScheduleChangeBody(_Model):
    """Only the fields given change. A new cron replaces an interval and vice versa."""

    actor: Optional[str] = Field(default=None, description='Replaces a workflow.')
    kwargs: Optional[dict[str, Any]] = Field(default=None)
    priority: Optional[int] = Field(default=None, description="null: the actor's default.")
    workflow: Optional[dict[str, Any]] = Field(default=None, description='Replaces an actor.')
    cron: Optional[str] = Field(default=None, description='5-field crontab expression, e.g. "0 2 * * *" (day of week: 0 and 7 = Sunday). Give cron or interval_seconds.')
    timezone: Optional[str] = Field(default=None)
    interval_seconds: Optional[int] = Field(default=None)
    enabled: Optional[bool] = Field(default=None, description='false pauses, true resumes (missed fires are not caught up).')


class ScheduleCreateBody(_Model):
    id: Optional[str] = Field(default=None, description='Letters, digits, _ . - (default: a random id).')
    actor: Optional[str] = Field(default=None, description='The task to submit at each fire.')
    kwargs: Optional[dict[str, Any]] = Field(default=None, description="The task's keyword arguments.")
    priority: Optional[int] = Field(default=None, description="0-9; default: the actor's.")
    workflow: Optional[dict[str, Any]] = Field(default=None, description='Instead of an actor: a workflow to submit at each fire, described as for POST /api/v1/workflows.')
    cron: Optional[str] = Field(default=None, description='5-field crontab expression, e.g. "0 2 * * *" (day of week: 0 and 7 = Sunday). Give cron or interval_seconds.')
    timezone: Optional[str] = Field(default=None, description='Timezone of the cron expression (default CLAW_TIMEZONE).')
    interval_seconds: Optional[int] = Field(default=None, description='Fire every this many seconds.')
    enabled: bool = Field(default=True, description='False adds it paused.')


class ScheduleList(_Model):
    schedules: list[ScheduleView]
    count: int


class ScheduleView(_Model):
    """A schedule and its run state. Times are epoch seconds."""

    id: str
    actor: Optional[str]
    kwargs: dict[str, Any]
    priority: Optional[int]
    workflow: Optional[dict[str, Any]]
    cron: Optional[str]
    timezone: Optional[str]
    interval_seconds: Optional[int]
    enabled: bool
    created_at: float
    updated_at: float
    next_run: Optional[float] = Field(description='Null when paused.')
    last_run: Optional[float] = Field(description='Scheduled time of the last fire.')
    last_task_id: Optional[str]
    last_workflow_id: Optional[str]
    run_count: int
    last_error: Optional[dict[str, Any]] = Field(description='Why the last fire could not be submitted, if it could not.')


class SearchHit(_Model):
    chunk_id: int
    document_id: str
    title: str
    source: str = Field(description='Where the document came from (a path or URL given at vectorization).')
    position: int = Field(description="The chunk's place in its document.")
    text: str
    similarity: float = Field(description='Cosine similarity of question and chunk.')
    score: float = Field(description='The ranking score (language-neutral similarity).')


class SearchQuery(_Model):
    q: str = Field(description='The question or search text.')
    k: int = Field(default=5, description='How many hits.')
    distinct: bool = Field(default=True, description='One hit per document (best chunk) instead of raw chunks.')


class SearchResults(_Model):
    knowledge_base_id: str
    query: str
    results: list[SearchHit]


class SendNotificationSubmission(_Model):
    """Send one email, push, sms or in-app notification (once per de-duplication key)."""

    priority: Optional[int] = Field(default=None, description="0 (lowest) to 9; default: the actor's.")
    delay_seconds: Optional[float] = Field(default=None, description='Start no earlier than this many seconds from now.')
    eta: Optional[datetime] = Field(default=None, description='Start no earlier than this ISO 8601 time (naive = UTC); not with delay_seconds.')
    idempotency_key: Optional[str] = Field(default=None, description='Submitting the same key again (within the idempotency TTL) returns the first task; keys are per token and actor.')
    queue: Optional[str] = Field(default=None, description="Another declared queue for this task (default: the actor's); a worker must consume it.")
    user_id: Optional[str] = Field(default=None, description="The end user the task is for (its owner); a user token's own user when left out, and only that one.")
    tenant_id: Optional[str] = Field(default=None, description="The owner's tenant (needs user_id).")
    channel: Literal['email', 'push', 'sms', 'system'] = Field(description='email, push, sms or system (in-app inbox).')
    subject: str = Field(default='', description='Email subject / push and inbox title; none for sms.')
    body: str = Field(description='Plain-text content.')
    html_body: Optional[str] = Field(default=None, description='HTML alternative (email only).')
    data: Optional[dict[str, Any]] = Field(default=None, description='Extra JSON data (push payload, sms template params, inbox).')
    app: Optional[str] = Field(default=None, description='Push app (CLAW_PUSH_APPS key); default CLAW_PUSH_DEFAULT_APP.')
    dedup_key: Optional[str] = Field(default=None, description='De-duplication key; a second send with the same key (per channel and recipient) is skipped.')
    recipient: str = Field(description='Email address, E.164 phone number or user id, per channel.')


class StateEvent(_Model):
    """`event: state` (`id`: seq): a state change, numbered 1, 2, 3 ... per task."""

    type: Literal['state']
    state: Literal['PENDING', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'CANCELLED']
    at: float = Field(description='When (epoch seconds).')
    seq: int = Field(description="The change's number; send the last one seen as Last-Event-ID to resume.")


class Stats(_Model):
    states: dict[str, int]
    actors: dict[str, ActorStats]
    queues: dict[str, QueueStats]
    workers_online: int
    throughput: dict[str, dict[str, int]] = Field(description='Finished tasks per final state: last_minute, last_hour.')
    broker_error: Optional[str] = Field(default=None)


class StatsAnswer(_Model):
    """`Stats` for a service token, `UserStats` for a user token."""

    pass


class TaskError(_Model):
    """Why a task failed (or was cancelled)."""

    type: str = Field(description="The exception's class name, e.g. TimeoutError, TaskCancelled.")
    message: str
    traceback: Optional[str] = Field(default=None, description="The worker's traceback (the last 8,000 characters).")


class TaskEvents(_Model):
    """The `data` of each event of a task's stream (`GET /api/v1/tasks/{task_id}/events`), by event name. `record`: the whole record (null for an unknown task), first and last; `state`, `progress`, `waiting`: as below. Comment lines are keep-alives."""

    record: Optional[TaskRecord]
    state: StateEvent
    progress: ProgressEvent
    waiting: WaitingEvent


class TaskPage(_Model):
    tasks: list[TaskRecord]
    next_cursor: Optional[str] = Field(default=None, description='Pass as `cursor` for the next page; null on the last page.')


class TaskProgress(_Model):
    """What a running task last reported (``current_task().report_progress``); tasks may add fields."""

    percent: float
    message: str = Field(default='')


class TaskRecord(_Model):
    """A task's record. Times are epoch seconds. The fields its task declares sensitive are `***` unless the caller is its owner, the token that submitted it, or holds `tasks:sensitive`; the error's traceback needs `tasks:control`."""

    task_id: str
    actor: str
    queue: str
    state: Literal['PENDING', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'CANCELLED']
    priority: int
    attempts: int
    max_retries: int
    args: list[Any] = Field(default=[])
    kwargs: dict[str, Any] = Field(default={})
    enqueued_at: float
    started_at: Optional[float] = Field(default=None)
    finished_at: Optional[float] = Field(default=None)
    eta: Optional[float] = Field(default=None)
    runtime_ms: Optional[int] = Field(default=None)
    worker: Optional[str] = Field(default=None)
    progress: Optional[TaskProgress] = Field(default=None)
    error: Optional[TaskError] = Field(default=None)
    result: Any = Field(default=None, description="The task's return value (JSON) once SUCCESS.")
    retry_of: Optional[str] = Field(default=None)
    retried_by: Optional[str] = Field(default=None)
    wait_reason: Optional[Literal['delay', 'rate_limit']] = Field(default=None)
    idempotency_key: Optional[str] = Field(default=None)
    cancel_requested: Optional[float] = Field(default=None)
    request_id: Optional[str] = Field(default=None, description='X-Request-ID of the API request that submitted it.')
    user_id: Optional[str] = Field(default=None, description='The end user the task is for.')
    tenant_id: Optional[str] = Field(default=None)
    submitted_by: Optional[str] = Field(default=None, description="Who submitted it: a token's name, user:<id>, scheduler, cli, python, task:<id>.")


class UpdateKnowledgeBaseSubmission(_Model):
    """Re-vectorize the documents of a base that need it (incremental | full | rebuild), as a chord."""

    priority: Optional[int] = Field(default=None, description="0 (lowest) to 9; default: the actor's.")
    delay_seconds: Optional[float] = Field(default=None, description='Start no earlier than this many seconds from now.')
    eta: Optional[datetime] = Field(default=None, description='Start no earlier than this ISO 8601 time (naive = UTC); not with delay_seconds.')
    idempotency_key: Optional[str] = Field(default=None, description='Submitting the same key again (within the idempotency TTL) returns the first task; keys are per token and actor.')
    queue: Optional[str] = Field(default=None, description="Another declared queue for this task (default: the actor's); a worker must consume it.")
    user_id: Optional[str] = Field(default=None, description="The end user the task is for (its owner); a user token's own user when left out, and only that one.")
    tenant_id: Optional[str] = Field(default=None, description="The owner's tenant (needs user_id).")
    knowledge_base_id: str
    mode: Literal['incremental', 'full', 'rebuild'] = Field(default='incremental')


class UserStats(_Model):
    """What a user token sees of the stats: its own user's tasks per state."""

    user_id: str
    states: dict[str, int]


class VectorizeDocumentSubmission(_Model):
    """Chunk, embed and store one document, replacing its previous chunks in one transaction."""

    priority: Optional[int] = Field(default=None, description="0 (lowest) to 9; default: the actor's.")
    delay_seconds: Optional[float] = Field(default=None, description='Start no earlier than this many seconds from now.')
    eta: Optional[datetime] = Field(default=None, description='Start no earlier than this ISO 8601 time (naive = UTC); not with delay_seconds.')
    idempotency_key: Optional[str] = Field(default=None, description='Submitting the same key again (within the idempotency TTL) returns the first task; keys are per token and actor.')
    queue: Optional[str] = Field(default=None, description="Another declared queue for this task (default: the actor's); a worker must consume it.")
    user_id: Optional[str] = Field(default=None, description="The end user the task is for (its owner); a user token's own user when left out, and only that one.")
    tenant_id: Optional[str] = Field(default=None, description="The owner's tenant (needs user_id).")
    document_id: Optional[str] = Field(default=None)
    knowledge_base_id: Optional[str] = Field(default=None)
    source: Optional[str] = Field(default=None, description='Unique within the base, e.g. a path.')
    title: Optional[str] = Field(default=None)
    text: Optional[str] = Field(default=None)
    metadata: Optional[dict[str, Any]] = Field(default=None)
    force: bool = Field(default=False, description='Chunk again even when content and model are unchanged.')


class WaitingEvent(_Model):
    """`event: waiting`: over its actor's rate limit; it starts at `eta`, it is not lost."""

    type: Literal['waiting']
    reason: str
    eta: Optional[float] = Field(default=None)


class WorkerCommandBody(_Model):
    worker: Optional[str] = Field(default=None, description='One worker id; all workers when absent.')


class WorkerCommandSent(_Model):
    command: Literal['pool_restart', 'shutdown']
    worker: Optional[str]
    processes_notified: int = Field(description='How many worker processes received the command.')


class WorkerInfo(_Model):
    """One live worker process, as its last heartbeat (every CLAW_HEARTBEAT_INTERVAL_SECONDS) described it."""

    id: str = Field(description='host:pid, as task records name it (`worker`).')
    node: Optional[str] = Field(default=None, description='The supervisor (host:pid) this process belongs to.')
    host: Optional[str] = Field(default=None)
    pid: Optional[int] = Field(default=None)
    queues: list[str] = Field(default=[])
    threads: Optional[int] = Field(default=None)
    concurrency: Optional[int] = Field(default=None)
    started_at: Optional[float] = Field(default=None)
    last_seen: Optional[float] = Field(default=None)
    processed: Optional[int] = Field(default=None)
    failed: Optional[int] = Field(default=None)
    current_tasks: list[str] = Field(default=[])
    held: Optional[int] = Field(default=None, description='Delayed messages it holds unacknowledged until their hop ends.')


class WorkerList(_Model):
    workers: list[WorkerInfo]
    count: int


class WorkflowAccepted(_Model):
    workflow_id: str
    kind: Literal['chain', 'group', 'chord']
    state: Literal['RUNNING', 'SUCCESS', 'FAILURE', 'CANCELLED']
    total: int = Field(description="Tasks in the workflow (a chord's callback included).")
    status_url: str


class WorkflowBody(_Model):
    """A chain (`steps`), a group (`members`) or a chord (`members` + `callback`)."""

    kind: Literal['chain', 'group', 'chord']
    steps: Optional[list[WorkflowStep]] = Field(default=None, description='chain: each step after the first gets `previous`.')
    members: Optional[list[WorkflowStep]] = Field(default=None, description='group or chord: run at once.')
    callback: Optional[WorkflowStep] = Field(default=None, description='chord: gets `results` (and `failures`).')
    on_failure: Optional[Literal['skip', 'run_with_summary']] = Field(default=None, description='chord: `skip` (default) the callback when a member failed, or `run_with_summary`.')
    name: Optional[str] = Field(default=None, description='A label shown with the workflow.')
    idempotency_key: Optional[str] = Field(default=None, description='The same key within an hour (from the same token) returns the same workflow.')
    user_id: Optional[str] = Field(default=None, description='The end user the workflow (and every task of it) is for.')
    tenant_id: Optional[str] = Field(default=None, description="The owner's tenant (needs user_id).")


class WorkflowCancelled(_Model):
    workflow_id: str
    state: Literal['CANCELLED']
    cancelled: int = Field(description='Tasks that will never run.')
    interrupting: int = Field(description='Running tasks being interrupted.')


class WorkflowMember(_Model):
    index: int
    task_id: Optional[str]
    state: Literal['PENDING', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'CANCELLED', 'WAITING', 'EXPIRED']
    actor: Optional[str] = Field(default=None)


class WorkflowMembersQuery(_Model):
    offset: int = Field(default=0, description='First task position of the page (or `cursor`).')
    limit: int = Field(default=100, description='Tasks per page, at most 1000.')
    cursor: Optional[str] = Field(default=None, description='`next_cursor` of the previous page.')


class WorkflowRecord(_Model):
    """State, counts and percent of all its tasks, its result once SUCCESS, and one page of its tasks."""

    workflow_id: str
    kind: Literal['chain', 'group', 'chord']
    state: Literal['RUNNING', 'SUCCESS', 'FAILURE', 'CANCELLED']
    total: int
    counts: dict[str, int]
    percent: float
    result: Any = Field(default=None)
    members: list[WorkflowMember]
    next_cursor: Optional[str] = Field(default=None, description='Pass as `cursor` for the next page of tasks; null on the last page.')


class WorkflowRetried(_Model):
    workflow_id: str
    state: Literal['RUNNING']
    retried: dict[str, str] = Field(description='Position -> the new task re-running the one that failed there.')


class WorkflowStep(_Model):
    actor: str = Field(description='A declared task.')
    kwargs: Optional[dict[str, Any]] = Field(default=None, description='Its keyword arguments (its argument model).')
    priority: Optional[int] = Field(default=None)


class _Operations:
    """Every JSON operation of the API (sync)."""

    _call: Any

    def cancel_task(self, task_id: str) -> CancelOutcome:
        """Cancel a task: PENDING/RETRY never run, STARTED is interrupted"""
        return self._call('POST', f'/api/v1/tasks/cancel/{_quote(task_id)}', 'cancelTask', query={}, body=None, model=CancelOutcome)

    def cancel_workflow(self, workflow_id: str) -> WorkflowCancelled:
        """Cancel every task of a workflow that has not finished"""
        return self._call('POST', f'/api/v1/workflows/{_quote(workflow_id)}/cancel', 'cancelWorkflow', query={}, body=None, model=WorkflowCancelled)

    def create_knowledge_base(self, *, name: str, tenant_id: Optional[str] = None) -> KnowledgeBase:
        """Create a knowledge base for the configured embedder (200 with the existing one)"""
        return self._call('POST', f'/api/v1/knowledge', 'createKnowledgeBase', query={}, body={'name': name, 'tenant_id': tenant_id}, model=KnowledgeBase)

    def create_schedule(self, *, id: Optional[str] = None, actor: Optional[str] = None, kwargs: Optional[dict[str, Any]] = None, priority: Optional[int] = None, workflow: Optional[dict[str, Any]] = None, cron: Optional[str] = None, timezone: Optional[str] = None, interval_seconds: Optional[int] = None, enabled: Optional[bool] = None) -> ScheduleView:
        """Add a schedule"""
        return self._call('POST', f'/api/v1/schedules', 'createSchedule', query={}, body={'id': id, 'actor': actor, 'kwargs': kwargs, 'priority': priority, 'workflow': workflow, 'cron': cron, 'timezone': timezone, 'interval_seconds': interval_seconds, 'enabled': enabled}, model=ScheduleView)

    def delete_knowledge_base(self, kb_id: str) -> Accepted:
        """Delete a knowledge base as a whole (a delete_knowledge_base task)"""
        return self._call('DELETE', f'/api/v1/knowledge/{_quote(kb_id)}', 'deleteKnowledgeBase', query={}, body=None, model=Accepted)

    def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule"""
        return self._call('DELETE', f'/api/v1/schedules/{_quote(schedule_id)}', 'deleteSchedule', query={}, body=None, model=None)

    def get_health(self) -> Health:
        """Liveness: the process answers"""
        return self._call('GET', f'/health', 'getHealth', query={}, body=None, model=Health)

    def get_health_snapshot(self) -> HealthSnapshot:
        """The latest health check: backlogs, workers, failure rates, lost tasks"""
        return self._call('GET', f'/api/v1/tasks/health', 'getHealthSnapshot', query={}, body=None, model=HealthSnapshot)

    def get_open_api(self) -> OpenApiDocument:
        """This OpenAPI document"""
        return self._call('GET', f'/openapi.json', 'getOpenApi', query={}, body=None, model=OpenApiDocument)

    def get_readiness(self) -> Health:
        """Readiness: Redis and RabbitMQ answer (cached 1.5 s)"""
        return self._call('GET', f'/ready', 'getReadiness', query={}, body=None, model=Health)

    def get_schedule(self, schedule_id: str) -> ScheduleView:
        """One schedule"""
        return self._call('GET', f'/api/v1/schedules/{_quote(schedule_id)}', 'getSchedule', query={}, body=None, model=ScheduleView)

    def get_task_stats(self) -> StatsAnswer:
        """Counts per state, actor and queue; runtimes; throughput; queue depths"""
        return self._call('GET', f'/api/v1/tasks/stats', 'getTaskStats', query={}, body=None, model=StatsAnswer)

    def get_task_status(self, task_id: str) -> TaskRecord:
        """A task's record (with its result once finished)"""
        return self._call('GET', f'/api/v1/tasks/status/{_quote(task_id)}', 'getTaskStatus', query={}, body=None, model=TaskRecord)

    def get_workflow(self, workflow_id: str, *, offset: Optional[int] = None, limit: Optional[int] = None, cursor: Optional[str] = None) -> WorkflowRecord:
        """A workflow: state, counts, progress, result and a page of its tasks"""
        return self._call('GET', f'/api/v1/workflows/{_quote(workflow_id)}', 'getWorkflow', query={'offset': offset, 'limit': limit, 'cursor': cursor}, body=None, model=WorkflowRecord)

    def list_audit_entries(self, *, limit: Optional[int] = None, cursor: Optional[str] = None, action: Optional[str] = None) -> AuditPage:
        """The audit log, newest first: admin actions and refused authentications"""
        return self._call('GET', f'/api/v1/audit', 'listAuditEntries', query={'limit': limit, 'cursor': cursor, 'action': action}, body=None, model=AuditPage)

    def list_conversation_messages(self, conversation_id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None, before: Optional[int] = None) -> MessagePage:
        """A page of a conversation's messages, oldest first"""
        return self._call('GET', f'/api/v1/conversations/{_quote(conversation_id)}/messages', 'listConversationMessages', query={'limit': limit, 'cursor': cursor, 'before': before}, body=None, model=MessagePage)

    def list_dead_letters(self, *, actor: Optional[str] = None, queue: Optional[str] = None, limit: Optional[int] = None, cursor: Optional[str] = None) -> DeadLetters:
        """Failed tasks (newest first), dead-letter queue depths and undecodable messages"""
        return self._call('GET', f'/api/v1/tasks/dead', 'listDeadLetters', query={'actor': actor, 'queue': queue, 'limit': limit, 'cursor': cursor}, body=None, model=DeadLetters)

    def list_knowledge_bases(self) -> KnowledgeBaseList:
        """Every knowledge base with its embedding model and counts"""
        return self._call('GET', f'/api/v1/knowledge', 'listKnowledgeBases', query={}, body=None, model=KnowledgeBaseList)

    def list_notifications(self, user_id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None, offset: Optional[int] = None, unread_only: Optional[bool] = None) -> InboxPage:
        """One page of a user's in-app inbox, unread first"""
        return self._call('GET', f'/api/v1/notifications/{_quote(user_id)}', 'listNotifications', query={'limit': limit, 'cursor': cursor, 'offset': offset, 'unread_only': unread_only}, body=None, model=InboxPage)

    def list_schedules(self) -> ScheduleList:
        """Every schedule with its next and last run"""
        return self._call('GET', f'/api/v1/schedules', 'listSchedules', query={}, body=None, model=ScheduleList)

    def list_tasks(self, *, state: Optional[Literal['PENDING', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'CANCELLED']] = None, actor: Optional[str] = None, queue: Optional[str] = None, since: Optional[Union[datetime, float]] = None, until: Optional[Union[datetime, float]] = None, limit: Optional[int] = None, cursor: Optional[str] = None, user_id: Optional[str] = None) -> TaskPage:
        """Tasks, newest first, filtered and paged"""
        return self._call('GET', f'/api/v1/tasks/list', 'listTasks', query={'state': state, 'actor': actor, 'queue': queue, 'since': since, 'until': until, 'limit': limit, 'cursor': cursor, 'user_id': user_id}, body=None, model=TaskPage)

    def list_workers(self) -> WorkerList:
        """Live worker processes (oldest first)"""
        return self._call('GET', f'/api/v1/tasks/workers', 'listWorkers', query={}, body=None, model=WorkerList)

    def mark_notifications_read(self, user_id: str, *, ids: Optional[list[str]] = None, all: Optional[bool] = None) -> MarkReadOutcome:
        """Mark some (ids) or all of a user's notifications read"""
        return self._call('POST', f'/api/v1/notifications/{_quote(user_id)}/read', 'markNotificationsRead', query={}, body={'ids': ids, 'all': all}, model=MarkReadOutcome)

    def mint_user_token(self, *, user_id: str, tenant_id: Optional[str] = None, ttl_seconds: Optional[int] = None) -> MintedToken:
        """Mint a short-lived token for one user's browser"""
        return self._call('POST', f'/api/v1/auth/user-tokens', 'mintUserToken', query={}, body={'user_id': user_id, 'tenant_id': tenant_id, 'ttl_seconds': ttl_seconds}, model=MintedToken)

    def requeue_dead_letters(self, *, queue: str, task_ids: Optional[list[str]] = None) -> Requeued:
        """Move dead-lettered messages back to their queue and their tasks back to PENDING"""
        return self._call('POST', f'/api/v1/tasks/dead/requeue', 'requeueDeadLetters', query={}, body={'queue': queue, 'task_ids': task_ids}, model=Requeued)

    def restart_worker_pool(self, *, worker: Optional[str] = None) -> WorkerCommandSent:
        """Replace worker processes (running tasks finish first)"""
        return self._call('POST', f'/api/v1/tasks/workers/pool/restart', 'restartWorkerPool', query={}, body={'worker': worker}, model=WorkerCommandSent)

    def retry_task(self, task_id: str) -> RetryAccepted:
        """Re-run a FAILURE or CANCELLED task as a new task"""
        return self._call('POST', f'/api/v1/tasks/retry/{_quote(task_id)}', 'retryTask', query={}, body=None, model=RetryAccepted)

    def retry_workflow(self, workflow_id: str) -> WorkflowRetried:
        """Re-run the failed tasks of a workflow and what follows them"""
        return self._call('POST', f'/api/v1/workflows/{_quote(workflow_id)}/retry', 'retryWorkflow', query={}, body=None, model=WorkflowRetried)

    def search_knowledge_base(self, kb_id: str, *, q: str, k: Optional[int] = None, distinct: Optional[bool] = None) -> SearchResults:
        """Search a knowledge base (hybrid of languages, distinct documents)"""
        return self._call('GET', f'/api/v1/knowledge/{_quote(kb_id)}/search', 'searchKnowledgeBase', query={'q': q, 'k': k, 'distinct': distinct}, body=None, model=SearchResults)

    def shutdown_workers(self, *, worker: Optional[str] = None) -> WorkerCommandSent:
        """Stop workers gracefully (running tasks finish first)"""
        return self._call('POST', f'/api/v1/tasks/workers/shutdown', 'shutdownWorkers', query={}, body={'worker': worker}, model=WorkerCommandSent)

    def submit_bulk(self, *, tasks: list[BulkItem]) -> BulkAccepted:
        """Submit up to 1,000 tasks of any actors at once"""
        return self._call('POST', f'/api/v1/tasks/bulk', 'submitBulk', query={}, body={'tasks': tasks}, model=BulkAccepted)

    def submit_delete_knowledge_vectors(self, *, knowledge_base_id: str, priority: Optional[int] = None, delay_seconds: Optional[float] = None, eta: Optional[datetime] = None, idempotency_key: Optional[str] = None, queue: Optional[str] = None, user_id: Optional[str] = None, tenant_id: Optional[str] = None, document_ids: Optional[list[str]] = None, all_documents: Optional[bool] = None) -> Accepted:
        """Submit delete_knowledge_vectors"""
        return self._call('POST', f'/api/v1/tasks/knowledge/delete', 'submitDeleteKnowledgeVectors', query={}, body={'priority': priority, 'delay_seconds': delay_seconds, 'eta': eta, 'idempotency_key': idempotency_key, 'queue': queue, 'user_id': user_id, 'tenant_id': tenant_id, 'knowledge_base_id': knowledge_base_id, 'document_ids': document_ids, 'all_documents': all_documents}, model=Accepted)

    def submit_generate_ai_response(self, *, conversation_id: str, user_message: str, priority: Optional[int] = None, delay_seconds: Optional[float] = None, eta: Optional[datetime] = None, idempotency_key: Optional[str] = None, queue: Optional[str] = None, user_id: Optional[str] = None, tenant_id: Optional[str] = None, knowledge_base_id: Optional[str] = None) -> Accepted:
        """Submit generate_ai_response"""
        return self._call('POST', f'/api/v1/tasks/ai/generate', 'submitGenerateAiResponse', query={}, body={'priority': priority, 'delay_seconds': delay_seconds, 'eta': eta, 'idempotency_key': idempotency_key, 'queue': queue, 'user_id': user_id, 'tenant_id': tenant_id, 'conversation_id': conversation_id, 'user_message': user_message, 'knowledge_base_id': knowledge_base_id}, model=Accepted)

    def submit_send_notification(self, *, channel: Literal['email', 'push', 'sms', 'system'], body: str, recipient: str, priority: Optional[int] = None, delay_seconds: Optional[float] = None, eta: Optional[datetime] = None, idempotency_key: Optional[str] = None, queue: Optional[str] = None, user_id: Optional[str] = None, tenant_id: Optional[str] = None, subject: Optional[str] = None, html_body: Optional[str] = None, data: Optional[dict[str, Any]] = None, app: Optional[str] = None, dedup_key: Optional[str] = None) -> Accepted:
        """Submit send_notification"""
        return self._call('POST', f'/api/v1/tasks/notifications/send', 'submitSendNotification', query={}, body={'priority': priority, 'delay_seconds': delay_seconds, 'eta': eta, 'idempotency_key': idempotency_key, 'queue': queue, 'user_id': user_id, 'tenant_id': tenant_id, 'channel': channel, 'subject': subject, 'body': body, 'html_body': html_body, 'data': data, 'app': app, 'dedup_key': dedup_key, 'recipient': recipient}, model=Accepted)

    def submit_update_knowledge_base(self, *, knowledge_base_id: str, priority: Optional[int] = None, delay_seconds: Optional[float] = None, eta: Optional[datetime] = None, idempotency_key: Optional[str] = None, queue: Optional[str] = None, user_id: Optional[str] = None, tenant_id: Optional[str] = None, mode: Optional[Literal['incremental', 'full', 'rebuild']] = None) -> Accepted:
        """Submit update_knowledge_base"""
        return self._call('POST', f'/api/v1/tasks/knowledge/update', 'submitUpdateKnowledgeBase', query={}, body={'priority': priority, 'delay_seconds': delay_seconds, 'eta': eta, 'idempotency_key': idempotency_key, 'queue': queue, 'user_id': user_id, 'tenant_id': tenant_id, 'knowledge_base_id': knowledge_base_id, 'mode': mode}, model=Accepted)

    def submit_vectorize_document(self, *, priority: Optional[int] = None, delay_seconds: Optional[float] = None, eta: Optional[datetime] = None, idempotency_key: Optional[str] = None, queue: Optional[str] = None, user_id: Optional[str] = None, tenant_id: Optional[str] = None, document_id: Optional[str] = None, knowledge_base_id: Optional[str] = None, source: Optional[str] = None, title: Optional[str] = None, text: Optional[str] = None, metadata: Optional[dict[str, Any]] = None, force: Optional[bool] = None) -> Accepted:
        """Submit vectorize_document"""
        return self._call('POST', f'/api/v1/tasks/knowledge/vectorize', 'submitVectorizeDocument', query={}, body={'priority': priority, 'delay_seconds': delay_seconds, 'eta': eta, 'idempotency_key': idempotency_key, 'queue': queue, 'user_id': user_id, 'tenant_id': tenant_id, 'document_id': document_id, 'knowledge_base_id': knowledge_base_id, 'source': source, 'title': title, 'text': text, 'metadata': metadata, 'force': force}, model=Accepted)

    def submit_workflow(self, *, kind: Literal['chain', 'group', 'chord'], steps: Optional[list[WorkflowStep]] = None, members: Optional[list[WorkflowStep]] = None, callback: Optional[WorkflowStep] = None, on_failure: Optional[Literal['skip', 'run_with_summary']] = None, name: Optional[str] = None, idempotency_key: Optional[str] = None, user_id: Optional[str] = None, tenant_id: Optional[str] = None) -> WorkflowAccepted:
        """Submit a chain, group or chord"""
        return self._call('POST', f'/api/v1/workflows', 'submitWorkflow', query={}, body={'kind': kind, 'steps': steps, 'members': members, 'callback': callback, 'on_failure': on_failure, 'name': name, 'idempotency_key': idempotency_key, 'user_id': user_id, 'tenant_id': tenant_id}, model=WorkflowAccepted)

    def update_schedule(self, schedule_id: str, *, actor: Optional[str] = None, kwargs: Optional[dict[str, Any]] = None, priority: Optional[int] = None, workflow: Optional[dict[str, Any]] = None, cron: Optional[str] = None, timezone: Optional[str] = None, interval_seconds: Optional[int] = None, enabled: Optional[bool] = None) -> ScheduleView:
        """Change a schedule; {"enabled": false} pauses it"""
        return self._call('PATCH', f'/api/v1/schedules/{_quote(schedule_id)}', 'updateSchedule', query={}, body={'actor': actor, 'kwargs': kwargs, 'priority': priority, 'workflow': workflow, 'cron': cron, 'timezone': timezone, 'interval_seconds': interval_seconds, 'enabled': enabled}, model=ScheduleView)


class _AsyncOperations:
    """Every JSON operation of the API (async)."""

    _call: Any

    async def cancel_task(self, task_id: str) -> CancelOutcome:
        """Cancel a task: PENDING/RETRY never run, STARTED is interrupted"""
        return await self._call('POST', f'/api/v1/tasks/cancel/{_quote(task_id)}', 'cancelTask', query={}, body=None, model=CancelOutcome)

    async def cancel_workflow(self, workflow_id: str) -> WorkflowCancelled:
        """Cancel every task of a workflow that has not finished"""
        return await self._call('POST', f'/api/v1/workflows/{_quote(workflow_id)}/cancel', 'cancelWorkflow', query={}, body=None, model=WorkflowCancelled)

    async def create_knowledge_base(self, *, name: str, tenant_id: Optional[str] = None) -> KnowledgeBase:
        """Create a knowledge base for the configured embedder (200 with the existing one)"""
        return await self._call('POST', f'/api/v1/knowledge', 'createKnowledgeBase', query={}, body={'name': name, 'tenant_id': tenant_id}, model=KnowledgeBase)

    async def create_schedule(self, *, id: Optional[str] = None, actor: Optional[str] = None, kwargs: Optional[dict[str, Any]] = None, priority: Optional[int] = None, workflow: Optional[dict[str, Any]] = None, cron: Optional[str] = None, timezone: Optional[str] = None, interval_seconds: Optional[int] = None, enabled: Optional[bool] = None) -> ScheduleView:
        """Add a schedule"""
        return await self._call('POST', f'/api/v1/schedules', 'createSchedule', query={}, body={'id': id, 'actor': actor, 'kwargs': kwargs, 'priority': priority, 'workflow': workflow, 'cron': cron, 'timezone': timezone, 'interval_seconds': interval_seconds, 'enabled': enabled}, model=ScheduleView)

    async def delete_knowledge_base(self, kb_id: str) -> Accepted:
        """Delete a knowledge base as a whole (a delete_knowledge_base task)"""
        return await self._call('DELETE', f'/api/v1/knowledge/{_quote(kb_id)}', 'deleteKnowledgeBase', query={}, body=None, model=Accepted)

    async def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule"""
        return await self._call('DELETE', f'/api/v1/schedules/{_quote(schedule_id)}', 'deleteSchedule', query={}, body=None, model=None)

    async def get_health(self) -> Health:
        """Liveness: the process answers"""
        return await self._call('GET', f'/health', 'getHealth', query={}, body=None, model=Health)

    async def get_health_snapshot(self) -> HealthSnapshot:
        """The latest health check: backlogs, workers, failure rates, lost tasks"""
        return await self._call('GET', f'/api/v1/tasks/health', 'getHealthSnapshot', query={}, body=None, model=HealthSnapshot)

    async def get_open_api(self) -> OpenApiDocument:
        """This OpenAPI document"""
        return await self._call('GET', f'/openapi.json', 'getOpenApi', query={}, body=None, model=OpenApiDocument)

    async def get_readiness(self) -> Health:
        """Readiness: Redis and RabbitMQ answer (cached 1.5 s)"""
        return await self._call('GET', f'/ready', 'getReadiness', query={}, body=None, model=Health)

    async def get_schedule(self, schedule_id: str) -> ScheduleView:
        """One schedule"""
        return await self._call('GET', f'/api/v1/schedules/{_quote(schedule_id)}', 'getSchedule', query={}, body=None, model=ScheduleView)

    async def get_task_stats(self) -> StatsAnswer:
        """Counts per state, actor and queue; runtimes; throughput; queue depths"""
        return await self._call('GET', f'/api/v1/tasks/stats', 'getTaskStats', query={}, body=None, model=StatsAnswer)

    async def get_task_status(self, task_id: str) -> TaskRecord:
        """A task's record (with its result once finished)"""
        return await self._call('GET', f'/api/v1/tasks/status/{_quote(task_id)}', 'getTaskStatus', query={}, body=None, model=TaskRecord)

    async def get_workflow(self, workflow_id: str, *, offset: Optional[int] = None, limit: Optional[int] = None, cursor: Optional[str] = None) -> WorkflowRecord:
        """A workflow: state, counts, progress, result and a page of its tasks"""
        return await self._call('GET', f'/api/v1/workflows/{_quote(workflow_id)}', 'getWorkflow', query={'offset': offset, 'limit': limit, 'cursor': cursor}, body=None, model=WorkflowRecord)

    async def list_audit_entries(self, *, limit: Optional[int] = None, cursor: Optional[str] = None, action: Optional[str] = None) -> AuditPage:
        """The audit log, newest first: admin actions and refused authentications"""
        return await self._call('GET', f'/api/v1/audit', 'listAuditEntries', query={'limit': limit, 'cursor': cursor, 'action': action}, body=None, model=AuditPage)

    async def list_conversation_messages(self, conversation_id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None, before: Optional[int] = None) -> MessagePage:
        """A page of a conversation's messages, oldest first"""
        return await self._call('GET', f'/api/v1/conversations/{_quote(conversation_id)}/messages', 'listConversationMessages', query={'limit': limit, 'cursor': cursor, 'before': before}, body=None, model=MessagePage)

    async def list_dead_letters(self, *, actor: Optional[str] = None, queue: Optional[str] = None, limit: Optional[int] = None, cursor: Optional[str] = None) -> DeadLetters:
        """Failed tasks (newest first), dead-letter queue depths and undecodable messages"""
        return await self._call('GET', f'/api/v1/tasks/dead', 'listDeadLetters', query={'actor': actor, 'queue': queue, 'limit': limit, 'cursor': cursor}, body=None, model=DeadLetters)

    async def list_knowledge_bases(self) -> KnowledgeBaseList:
        """Every knowledge base with its embedding model and counts"""
        return await self._call('GET', f'/api/v1/knowledge', 'listKnowledgeBases', query={}, body=None, model=KnowledgeBaseList)

    async def list_notifications(self, user_id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None, offset: Optional[int] = None, unread_only: Optional[bool] = None) -> InboxPage:
        """One page of a user's in-app inbox, unread first"""
        return await self._call('GET', f'/api/v1/notifications/{_quote(user_id)}', 'listNotifications', query={'limit': limit, 'cursor': cursor, 'offset': offset, 'unread_only': unread_only}, body=None, model=InboxPage)

    async def list_schedules(self) -> ScheduleList:
        """Every schedule with its next and last run"""
        return await self._call('GET', f'/api/v1/schedules', 'listSchedules', query={}, body=None, model=ScheduleList)

    async def list_tasks(self, *, state: Optional[Literal['PENDING', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'CANCELLED']] = None, actor: Optional[str] = None, queue: Optional[str] = None, since: Optional[Union[datetime, float]] = None, until: Optional[Union[datetime, float]] = None, limit: Optional[int] = None, cursor: Optional[str] = None, user_id: Optional[str] = None) -> TaskPage:
        """Tasks, newest first, filtered and paged"""
        return await self._call('GET', f'/api/v1/tasks/list', 'listTasks', query={'state': state, 'actor': actor, 'queue': queue, 'since': since, 'until': until, 'limit': limit, 'cursor': cursor, 'user_id': user_id}, body=None, model=TaskPage)

    async def list_workers(self) -> WorkerList:
        """Live worker processes (oldest first)"""
        return await self._call('GET', f'/api/v1/tasks/workers', 'listWorkers', query={}, body=None, model=WorkerList)

    async def mark_notifications_read(self, user_id: str, *, ids: Optional[list[str]] = None, all: Optional[bool] = None) -> MarkReadOutcome:
        """Mark some (ids) or all of a user's notifications read"""
        return await self._call('POST', f'/api/v1/notifications/{_quote(user_id)}/read', 'markNotificationsRead', query={}, body={'ids': ids, 'all': all}, model=MarkReadOutcome)

    async def mint_user_token(self, *, user_id: str, tenant_id: Optional[str] = None, ttl_seconds: Optional[int] = None) -> MintedToken:
        """Mint a short-lived token for one user's browser"""
        return await self._call('POST', f'/api/v1/auth/user-tokens', 'mintUserToken', query={}, body={'user_id': user_id, 'tenant_id': tenant_id, 'ttl_seconds': ttl_seconds}, model=MintedToken)

    async def requeue_dead_letters(self, *, queue: str, task_ids: Optional[list[str]] = None) -> Requeued:
        """Move dead-lettered messages back to their queue and their tasks back to PENDING"""
        return await self._call('POST', f'/api/v1/tasks/dead/requeue', 'requeueDeadLetters', query={}, body={'queue': queue, 'task_ids': task_ids}, model=Requeued)

    async def restart_worker_pool(self, *, worker: Optional[str] = None) -> WorkerCommandSent:
        """Replace worker processes (running tasks finish first)"""
        return await self._call('POST', f'/api/v1/tasks/workers/pool/restart', 'restartWorkerPool', query={}, body={'worker': worker}, model=WorkerCommandSent)

    async def retry_task(self, task_id: str) -> RetryAccepted:
        """Re-run a FAILURE or CANCELLED task as a new task"""
        return await self._call('POST', f'/api/v1/tasks/retry/{_quote(task_id)}', 'retryTask', query={}, body=None, model=RetryAccepted)

    async def retry_workflow(self, workflow_id: str) -> WorkflowRetried:
        """Re-run the failed tasks of a workflow and what follows them"""
        return await self._call('POST', f'/api/v1/workflows/{_quote(workflow_id)}/retry', 'retryWorkflow', query={}, body=None, model=WorkflowRetried)

    async def search_knowledge_base(self, kb_id: str, *, q: str, k: Optional[int] = None, distinct: Optional[bool] = None) -> SearchResults:
        """Search a knowledge base (hybrid of languages, distinct documents)"""
        return await self._call('GET', f'/api/v1/knowledge/{_quote(kb_id)}/search', 'searchKnowledgeBase', query={'q': q, 'k': k, 'distinct': distinct}, body=None, model=SearchResults)

    async def shutdown_workers(self, *, worker: Optional[str] = None) -> WorkerCommandSent:
        """Stop workers gracefully (running tasks finish first)"""
        return await self._call('POST', f'/api/v1/tasks/workers/shutdown', 'shutdownWorkers', query={}, body={'worker': worker}, model=WorkerCommandSent)

    async def submit_bulk(self, *, tasks: list[BulkItem]) -> BulkAccepted:
        """Submit up to 1,000 tasks of any actors at once"""
        return await self._call('POST', f'/api/v1/tasks/bulk', 'submitBulk', query={}, body={'tasks': tasks}, model=BulkAccepted)

    async def submit_delete_knowledge_vectors(self, *, knowledge_base_id: str, priority: Optional[int] = None, delay_seconds: Optional[float] = None, eta: Optional[datetime] = None, idempotency_key: Optional[str] = None, queue: Optional[str] = None, user_id: Optional[str] = None, tenant_id: Optional[str] = None, document_ids: Optional[list[str]] = None, all_documents: Optional[bool] = None) -> Accepted:
        """Submit delete_knowledge_vectors"""
        return await self._call('POST', f'/api/v1/tasks/knowledge/delete', 'submitDeleteKnowledgeVectors', query={}, body={'priority': priority, 'delay_seconds': delay_seconds, 'eta': eta, 'idempotency_key': idempotency_key, 'queue': queue, 'user_id': user_id, 'tenant_id': tenant_id, 'knowledge_base_id': knowledge_base_id, 'document_ids': document_ids, 'all_documents': all_documents}, model=Accepted)

    async def submit_generate_ai_response(self, *, conversation_id: str, user_message: str, priority: Optional[int] = None, delay_seconds: Optional[float] = None, eta: Optional[datetime] = None, idempotency_key: Optional[str] = None, queue: Optional[str] = None, user_id: Optional[str] = None, tenant_id: Optional[str] = None, knowledge_base_id: Optional[str] = None) -> Accepted:
        """Submit generate_ai_response"""
        return await self._call('POST', f'/api/v1/tasks/ai/generate', 'submitGenerateAiResponse', query={}, body={'priority': priority, 'delay_seconds': delay_seconds, 'eta': eta, 'idempotency_key': idempotency_key, 'queue': queue, 'user_id': user_id, 'tenant_id': tenant_id, 'conversation_id': conversation_id, 'user_message': user_message, 'knowledge_base_id': knowledge_base_id}, model=Accepted)

    async def submit_send_notification(self, *, channel: Literal['email', 'push', 'sms', 'system'], body: str, recipient: str, priority: Optional[int] = None, delay_seconds: Optional[float] = None, eta: Optional[datetime] = None, idempotency_key: Optional[str] = None, queue: Optional[str] = None, user_id: Optional[str] = None, tenant_id: Optional[str] = None, subject: Optional[str] = None, html_body: Optional[str] = None, data: Optional[dict[str, Any]] = None, app: Optional[str] = None, dedup_key: Optional[str] = None) -> Accepted:
        """Submit send_notification"""
        return await self._call('POST', f'/api/v1/tasks/notifications/send', 'submitSendNotification', query={}, body={'priority': priority, 'delay_seconds': delay_seconds, 'eta': eta, 'idempotency_key': idempotency_key, 'queue': queue, 'user_id': user_id, 'tenant_id': tenant_id, 'channel': channel, 'subject': subject, 'body': body, 'html_body': html_body, 'data': data, 'app': app, 'dedup_key': dedup_key, 'recipient': recipient}, model=Accepted)

    async def submit_update_knowledge_base(self, *, knowledge_base_id: str, priority: Optional[int] = None, delay_seconds: Optional[float] = None, eta: Optional[datetime] = None, idempotency_key: Optional[str] = None, queue: Optional[str] = None, user_id: Optional[str] = None, tenant_id: Optional[str] = None, mode: Optional[Literal['incremental', 'full', 'rebuild']] = None) -> Accepted:
        """Submit update_knowledge_base"""
        return await self._call('POST', f'/api/v1/tasks/knowledge/update', 'submitUpdateKnowledgeBase', query={}, body={'priority': priority, 'delay_seconds': delay_seconds, 'eta': eta, 'idempotency_key': idempotency_key, 'queue': queue, 'user_id': user_id, 'tenant_id': tenant_id, 'knowledge_base_id': knowledge_base_id, 'mode': mode}, model=Accepted)

    async def submit_vectorize_document(self, *, priority: Optional[int] = None, delay_seconds: Optional[float] = None, eta: Optional[datetime] = None, idempotency_key: Optional[str] = None, queue: Optional[str] = None, user_id: Optional[str] = None, tenant_id: Optional[str] = None, document_id: Optional[str] = None, knowledge_base_id: Optional[str] = None, source: Optional[str] = None, title: Optional[str] = None, text: Optional[str] = None, metadata: Optional[dict[str, Any]] = None, force: Optional[bool] = None) -> Accepted:
        """Submit vectorize_document"""
        return await self._call('POST', f'/api/v1/tasks/knowledge/vectorize', 'submitVectorizeDocument', query={}, body={'priority': priority, 'delay_seconds': delay_seconds, 'eta': eta, 'idempotency_key': idempotency_key, 'queue': queue, 'user_id': user_id, 'tenant_id': tenant_id, 'document_id': document_id, 'knowledge_base_id': knowledge_base_id, 'source': source, 'title': title, 'text': text, 'metadata': metadata, 'force': force}, model=Accepted)

    async def submit_workflow(self, *, kind: Literal['chain', 'group', 'chord'], steps: Optional[list[WorkflowStep]] = None, members: Optional[list[WorkflowStep]] = None, callback: Optional[WorkflowStep] = None, on_failure: Optional[Literal['skip', 'run_with_summary']] = None, name: Optional[str] = None, idempotency_key: Optional[str] = None, user_id: Optional[str] = None, tenant_id: Optional[str] = None) -> WorkflowAccepted:
        """Submit a chain, group or chord"""
        return await self._call('POST', f'/api/v1/workflows', 'submitWorkflow', query={}, body={'kind': kind, 'steps': steps, 'members': members, 'callback': callback, 'on_failure': on_failure, 'name': name, 'idempotency_key': idempotency_key, 'user_id': user_id, 'tenant_id': tenant_id}, model=WorkflowAccepted)

    async def update_schedule(self, schedule_id: str, *, actor: Optional[str] = None, kwargs: Optional[dict[str, Any]] = None, priority: Optional[int] = None, workflow: Optional[dict[str, Any]] = None, cron: Optional[str] = None, timezone: Optional[str] = None, interval_seconds: Optional[int] = None, enabled: Optional[bool] = None) -> ScheduleView:
        """Change a schedule; {"enabled": false} pauses it"""
        return await self._call('PATCH', f'/api/v1/schedules/{_quote(schedule_id)}', 'updateSchedule', query={}, body={'actor': actor, 'kwargs': kwargs, 'priority': priority, 'workflow': workflow, 'cron': cron, 'timezone': timezone, 'interval_seconds': interval_seconds, 'enabled': enabled}, model=ScheduleView)


Accepted.model_rebuild()
ActorStats.model_rebuild()
AuditEntry.model_rebuild()
AuditPage.model_rebuild()
AuditQuery.model_rebuild()
BulkAccepted.model_rebuild()
BulkBody.model_rebuild()
BulkItem.model_rebuild()
CancelOutcome.model_rebuild()
ConversationMessage.model_rebuild()
DeadLetters.model_rebuild()
DeadQuery.model_rebuild()
DeleteKnowledgeVectorsSubmission.model_rebuild()
ErrorBody.model_rebuild()
ErrorDetail.model_rebuild()
GenerateAiResponseSubmission.model_rebuild()
Health.model_rebuild()
HealthSnapshot.model_rebuild()
InboxItem.model_rebuild()
InboxPage.model_rebuild()
InboxQuery.model_rebuild()
KnowledgeBase.model_rebuild()
KnowledgeBaseList.model_rebuild()
ListQuery.model_rebuild()
MarkReadBody.model_rebuild()
MarkReadOutcome.model_rebuild()
MessagePage.model_rebuild()
MessagesQuery.model_rebuild()
MintBody.model_rebuild()
MintedToken.model_rebuild()
NewBase.model_rebuild()
OpenApiDocument.model_rebuild()
ProgressEvent.model_rebuild()
QueueBrokerStats.model_rebuild()
QueueStats.model_rebuild()
RequeueBody.model_rebuild()
Requeued.model_rebuild()
RetryAccepted.model_rebuild()
ScheduleChangeBody.model_rebuild()
ScheduleCreateBody.model_rebuild()
ScheduleList.model_rebuild()
ScheduleView.model_rebuild()
SearchHit.model_rebuild()
SearchQuery.model_rebuild()
SearchResults.model_rebuild()
SendNotificationSubmission.model_rebuild()
StateEvent.model_rebuild()
Stats.model_rebuild()
StatsAnswer.model_rebuild()
TaskError.model_rebuild()
TaskEvents.model_rebuild()
TaskPage.model_rebuild()
TaskProgress.model_rebuild()
TaskRecord.model_rebuild()
UpdateKnowledgeBaseSubmission.model_rebuild()
UserStats.model_rebuild()
VectorizeDocumentSubmission.model_rebuild()
WaitingEvent.model_rebuild()
WorkerCommandBody.model_rebuild()
WorkerCommandSent.model_rebuild()
WorkerInfo.model_rebuild()
WorkerList.model_rebuild()
WorkflowAccepted.model_rebuild()
WorkflowBody.model_rebuild()
WorkflowCancelled.model_rebuild()
WorkflowMember.model_rebuild()
WorkflowMembersQuery.model_rebuild()
WorkflowRecord.model_rebuild()
WorkflowRetried.model_rebuild()
WorkflowStep.model_rebuild()

"""Every request and response model of the API, in one place.

Query and body models validate input (their errors name the field);
response models document the answers in the OpenAPI document (responses are
not re-validated). Each responder names its models in an
:class:`api.validation.Endpoint`, so the docs cannot drift from what the API
accepts. Task records, schedules, knowledge bases and the inbox are here
alike; a new endpoint adds its models here and its resource beside the others.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Optional, Union

import pydantic
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from pipeline.errors import ConfigError
from pipeline.knowledge.text import StoredText
from pipeline.owners import OWNER_ID
from pipeline.state.audit import is_stream_id
from pipeline.notifications.channels.system import MAX_PAGE as INBOX_MAX_PAGE
from pipeline.state.keys import STATES, WAITING, WORKFLOW_KINDS, WORKFLOW_STATES
from pipeline.task import MAX_DELAY_MS, MAX_PRIORITY, TaskSpec
from pipeline.workflow import POLICIES
from scheduler.store import ID_PATTERN, MAX_INTERVAL_SECONDS


#: Delays are held by a worker as unacked messages, and RabbitMQ closes a
#: consumer's channel when a message stays unacked past consumer_timeout
#: (30 min by default). Longer waits belong to the scheduler.
MAX_DELAY_SECONDS = MAX_DELAY_MS // 1000
MAX_PAGE = 500
TASK_ID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,200}$")]
OwnerId = Annotated[str, StringConstraints(pattern=OWNER_ID.pattern)]


#: Timestamps (epoch seconds) are finite and within ISO 8601's years 1-9999.
MAX_TIMESTAMP = 3e11


def _timestamp(value: Any) -> Any:
    """Epoch seconds (number or numeric string) or ISO 8601 (naive = UTC) -> epoch seconds."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError("must be ISO 8601 (2024-05-01T12:00:00Z) or epoch seconds") from None
            value = (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, (int, float)) and not -MAX_TIMESTAMP <= value <= MAX_TIMESTAMP:  # also refuses nan
        raise ValueError(f"must be within +/-{MAX_TIMESTAMP:.0f} epoch seconds")
    return value


Timestamp = Annotated[
    float,
    BeforeValidator(_timestamp),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"},
                              {"type": "number", "minimum": -MAX_TIMESTAMP, "maximum": MAX_TIMESTAMP}],
                    "description": "ISO 8601 date-time or epoch seconds"}),
]


# -- tasks: query models ----------------------------------------------------------------------

class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListQuery(_Query):
    state: Optional[Literal[STATES]] = Field(None, description="Only tasks in this state.")
    actor: Optional[Name] = Field(None, description="Only tasks of this actor.")
    queue: Optional[Name] = Field(None, description="Only tasks on this queue.")
    since: Optional[Timestamp] = Field(None, description="Enqueued at or after (ISO 8601 or epoch seconds).")
    until: Optional[Timestamp] = Field(None, description="Enqueued at or before (ISO 8601 or epoch seconds).")
    limit: int = Field(50, ge=1, le=MAX_PAGE, description=f"Page size, at most {MAX_PAGE}.")
    cursor: Optional[str] = Field(None, max_length=200, description="`next_cursor` of the previous page.")
    user_id: Optional[OwnerId] = Field(
        None, description="Only this user's tasks (from the user's own index). A user token always lists its own.")


class DeadQuery(_Query):
    actor: Optional[Name] = Field(None, description="Only failed tasks of this actor.")
    queue: Optional[Name] = Field(None, description="Only failed tasks of this queue.")
    limit: int = Field(50, ge=1, le=MAX_PAGE, description=f"Page size, at most {MAX_PAGE}.")
    cursor: Optional[str] = Field(None, max_length=200, description="`next_cursor` of the previous page.")


# -- tasks: body models -----------------------------------------------------------------------

class SubmitOptions(BaseModel):
    """How to run a task, next to its arguments in a submission body."""

    model_config = ConfigDict(extra="forbid")

    priority: Optional[int] = Field(None, ge=0, le=MAX_PRIORITY, description="0 (lowest) to 9; default: the actor's.")
    delay_seconds: Optional[float] = Field(
        None, ge=0, le=MAX_DELAY_SECONDS, description="Start no earlier than this many seconds from now."
    )
    eta: Optional[datetime] = Field(
        None, description="Start no earlier than this ISO 8601 time (naive = UTC); not with delay_seconds."
    )
    idempotency_key: Optional[str] = Field(
        None, min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$",
        description="Submitting the same key again (within the idempotency TTL) returns the first task; keys are "
                    "per token and actor.",
    )
    queue: Optional[Name] = Field(
        None, description="Another declared queue for this task (default: the actor's); a worker must consume it.",
    )
    user_id: Optional[OwnerId] = Field(
        None, description="The end user the task is for (its owner); a user token's own user when left out, "
                          "and only that one.")
    tenant_id: Optional[OwnerId] = Field(None, description="The owner's tenant (needs user_id).")

    @pydantic.field_validator("eta")
    @classmethod
    def _near(cls, value: Optional[datetime]) -> Optional[datetime]:
        if value is not None:
            aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
            if aware.timestamp() - datetime.now(timezone.utc).timestamp() > MAX_DELAY_SECONDS:
                raise ValueError(f"must be at most {MAX_DELAY_SECONDS} s ahead (use the scheduler for later runs)")
        return value

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`pipeline.client.submit`."""
        return {
            "priority": self.priority,
            "delay_ms": None if self.delay_seconds is None else int(self.delay_seconds * 1000),
            "eta": self.eta,
            "idempotency_key": self.idempotency_key,
            "queue": self.queue,
            "user_id": self.user_id,
            "tenant_id": self.tenant_id,
        }


OPTION_FIELDS = frozenset(SubmitOptions.model_fields)


class _AnyArguments(SubmitOptions):
    """Options plus any keyword arguments, for an actor without an argument model."""

    model_config = ConfigDict(extra="allow")


def submission_model(spec: TaskSpec) -> type[BaseModel]:
    """The body of a submit endpoint: the actor's arguments and the options, flat.

    An actor without an argument model takes any keyword arguments.
    """
    clash = OPTION_FIELDS & set(spec.args_model.model_fields if spec.args_model else ())
    if clash:
        raise ConfigError(f"actor {spec.name}: argument(s) {sorted(clash)} clash with submission options")
    title = "".join(part.title() for part in spec.name.split("_")) + "Submission"
    bases = (spec.args_model, SubmitOptions) if spec.args_model else (_AnyArguments,)
    return pydantic.create_model(title, __base__=bases, __doc__=spec.description or None)


class BulkItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: Name
    kwargs: dict[str, Any] = Field(default_factory=dict, description="The actor's keyword arguments.")
    priority: Optional[int] = Field(None, ge=0, le=MAX_PRIORITY)
    delay_seconds: Optional[float] = Field(None, ge=0, le=MAX_DELAY_SECONDS)
    eta: Optional[datetime] = None
    queue: Optional[Name] = Field(None, description="Another declared queue for this task (default: the actor's).")
    user_id: Optional[OwnerId] = Field(None, description="The end user the task is for (its owner).")
    tenant_id: Optional[OwnerId] = Field(None, description="The owner's tenant (needs user_id).")


class BulkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: list[BulkItem] = Field(..., min_length=1, max_length=1000)


class WorkerCommandBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker: Optional[str] = Field(None, min_length=1, max_length=300, description="One worker id; all workers when absent.")


class RequeueBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: Name = Field(..., description="The queue whose dead letters to requeue.")
    task_ids: Optional[list[Annotated[str, StringConstraints(pattern=TASK_ID.pattern)]]] = Field(
        None, min_length=1, max_length=1000, description="Only these tasks; all of the queue's dead letters when absent.",
    )


# -- tasks: response models -------------------------------------------------------------------

class ErrorDetail(BaseModel):
    status: int
    title: str
    description: str
    fields: Optional[dict[str, str]] = Field(None, description="Which input was wrong (or which check failed), and why.")
    state: Optional[str] = Field(None, description="The task's current state, on a 409.")


class ErrorBody(BaseModel):
    error: ErrorDetail


class TaskError(BaseModel):
    """Why a task failed (or was cancelled)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(..., description="The exception's class name, e.g. TimeoutError, TaskCancelled.")
    message: str
    traceback: Optional[str] = Field(None, description="The worker's traceback (the last 8,000 characters).")


class TaskProgress(BaseModel):
    """What a running task last reported (``current_task().report_progress``); tasks may add fields."""

    model_config = ConfigDict(extra="allow")

    percent: float = Field(..., ge=0, le=100)
    message: str = ""


class TaskRecord(BaseModel):
    """A task's record. Times are epoch seconds. The fields its task declares sensitive are `***` unless the
    caller is its owner, the token that submitted it, or holds `tasks:sensitive`; the error's traceback
    needs `tasks:control`."""

    model_config = ConfigDict(extra="allow")

    task_id: str
    actor: str
    queue: str
    state: Literal[STATES]
    priority: int
    attempts: int
    max_retries: int
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    enqueued_at: float
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    eta: Optional[float] = None
    runtime_ms: Optional[int] = None
    worker: Optional[str] = None
    progress: Optional[TaskProgress] = None
    error: Optional[TaskError] = None
    result: Any = Field(None, description="The task's return value (JSON) once SUCCESS.")
    retry_of: Optional[str] = None
    retried_by: Optional[str] = None
    wait_reason: Optional[Literal["delay", "rate_limit"]] = None
    idempotency_key: Optional[str] = None
    cancel_requested: Optional[float] = None
    request_id: Optional[str] = Field(None, description="X-Request-ID of the API request that submitted it.")
    user_id: Optional[str] = Field(None, description="The end user the task is for.")
    tenant_id: Optional[str] = None
    submitted_by: Optional[str] = Field(None, description="Who submitted it: a token's name, user:<id>, scheduler, cli, "
                                                          "python, task:<id>.")


class TaskPage(BaseModel):
    tasks: list[TaskRecord]
    next_cursor: Optional[str] = Field(None, description="Pass as `cursor` for the next page; null on the last page.")


class Accepted(BaseModel):
    task_id: str
    state: Literal[STATES]
    status_url: str


class BulkAccepted(BaseModel):
    task_ids: list[str] = Field(..., description="In the order of the submitted tasks.")
    count: int


class CancelOutcome(BaseModel):
    task_id: str
    state: Literal["CANCELLED", "STARTED"] = Field(
        ..., description="CANCELLED: it will never run; STARTED: it is being interrupted."
    )
    previous_state: Optional[str] = None
    cancel_requested: Optional[bool] = None


class RetryAccepted(Accepted):
    retry_of: str


class QueueBrokerStats(BaseModel):
    ready: Optional[int]
    unacked: Optional[int]
    delayed: Optional[int] = Field(..., description="Waiting for their eta (held unacked by workers).")
    dead_lettered: Optional[int]
    consumers: Optional[int]
    publish_rate: Optional[float]
    deliver_rate: Optional[float]
    source: Literal["management", "amqp"]


class ActorStats(BaseModel):
    queue: str
    states: dict[str, int]
    runtime_ms: dict[str, Optional[float]] = Field(..., description="p50/p95 over the last 500 finished tasks.")


class QueueStats(BaseModel):
    states: dict[str, int]
    broker: Optional[QueueBrokerStats] = Field(..., description="Null when RabbitMQ does not answer.")


class Stats(BaseModel):
    states: dict[str, int]
    actors: dict[str, ActorStats]
    queues: dict[str, QueueStats]
    workers_online: int
    throughput: dict[str, dict[str, int]] = Field(..., description="Finished tasks per final state: last_minute, last_hour.")
    broker_error: Optional[str] = None


class UserStats(BaseModel):
    """What a user token sees of the stats: its own user's tasks per state."""

    user_id: str
    states: dict[str, int]


class StatsAnswer(RootModel[Union[Stats, UserStats]]):
    """`Stats` for a service token, `UserStats` for a user token."""


class DeadLetters(TaskPage):
    dead_lettered: dict[str, Optional[int]] = Field(..., description="Messages in each queue's dead-letter queue.")
    undecodable: list[dict[str, Any]] = Field(..., description="Messages no worker could decode (newest first).")


class Requeued(BaseModel):
    queue: str
    requeued: int


class WorkerInfo(BaseModel):
    """One live worker process, as its last heartbeat (every CLAW_HEARTBEAT_INTERVAL_SECONDS) described it."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(..., description="host:pid, as task records name it (`worker`).")
    node: Optional[str] = Field(None, description="The supervisor (host:pid) this process belongs to.")
    host: Optional[str] = None
    pid: Optional[int] = None
    queues: list[str] = []
    threads: Optional[int] = None
    concurrency: Optional[int] = None
    started_at: Optional[float] = None
    last_seen: Optional[float] = None
    processed: Optional[int] = None
    failed: Optional[int] = None
    current_tasks: list[str] = []
    held: Optional[int] = Field(None, description="Delayed messages it holds unacknowledged until their hop ends.")


class WorkerList(BaseModel):
    workers: list[WorkerInfo]
    count: int


class WorkerCommandSent(BaseModel):
    command: Literal["pool_restart", "shutdown"]
    worker: Optional[str]
    processes_notified: int = Field(..., description="How many worker processes received the command.")


class OpenApiDocument(BaseModel):
    """This API's OpenAPI 3.1 document."""

    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


# -- the event stream -------------------------------------------------------------------------

class StateEvent(BaseModel):
    """`event: state` (`id`: seq): a state change, numbered 1, 2, 3 ... per task."""

    type: Literal["state"]
    state: Literal[STATES]
    at: float = Field(..., description="When (epoch seconds).")
    seq: int = Field(..., description="The change's number; send the last one seen as Last-Event-ID to resume.")


class ProgressEvent(BaseModel):
    """`event: progress`: what the running task reported (no id: progress is cumulative)."""

    type: Literal["progress"]
    progress: TaskProgress


class WaitingEvent(BaseModel):
    """`event: waiting`: over its actor's rate limit; it starts at `eta`, it is not lost."""

    model_config = ConfigDict(extra="allow")

    type: Literal["waiting"]
    reason: str
    eta: Optional[float] = None


class TaskEvents(BaseModel):
    """The `data` of each event of a task's stream (`GET /api/v1/tasks/{task_id}/events`), by event name.

    `record`: the whole record (null for an unknown task), first and last;
    `state`, `progress`, `waiting`: as below. Comment lines are keep-alives.
    """

    record: Optional[TaskRecord]
    state: StateEvent
    progress: ProgressEvent
    waiting: WaitingEvent


# -- the health check's snapshot --------------------------------------------------------------

class HealthSnapshot(BaseModel):
    """What the last health check found. Times are epoch seconds."""

    model_config = ConfigDict(extra="allow")

    ok: bool = Field(..., description="True when no problem was found.")
    checked_at: float
    age_seconds: float
    problems: list[dict[str, str]] = Field(..., description="Each with a stable `key` (e.g. backlog:default) and a `message`.")
    queues: dict[str, dict[str, Any]] = Field(..., description="Per queue: ready, consumers, pending, oldest_pending_seconds.")
    workers: dict[str, Any]
    actors: dict[str, dict[str, Any]] = Field(..., description="Per actor with finished tasks in the window: success, failure, failure_rate.")
    lost_tasks: list[dict[str, Any]] = Field(..., description="Tasks found STARTED past their limit on a dead worker, and what was done.")
    alert: dict[str, Any] = Field(..., description="Whether an alert was sent for the new problems, and why not otherwise.")
    redis: dict[str, Any]
    rabbitmq: dict[str, Any]


# -- schedules --------------------------------------------------------------------------------

SCHEDULE_CRON_HELP = '5-field crontab expression, e.g. "0 2 * * *" (day of week: 0 and 7 = Sunday). Give cron or interval_seconds.'


class ScheduleCreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Optional[str] = Field(None, pattern=ID_PATTERN, description="Letters, digits, _ . - (default: a random id).")
    actor: Optional[str] = Field(None, min_length=1, max_length=200, description="The task to submit at each fire.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="The task's keyword arguments.")
    priority: Optional[int] = Field(None, ge=0, le=MAX_PRIORITY, description="0-9; default: the actor's.")
    workflow: Optional[dict[str, Any]] = Field(
        None, description="Instead of an actor: a workflow to submit at each fire, described as for POST /api/v1/workflows.")
    cron: Optional[str] = Field(None, min_length=1, max_length=200, description=SCHEDULE_CRON_HELP)
    timezone: Optional[str] = Field(None, description="Timezone of the cron expression (default CLAW_TIMEZONE).")
    interval_seconds: Optional[int] = Field(None, ge=1, le=MAX_INTERVAL_SECONDS, description="Fire every this many seconds.")
    enabled: bool = Field(True, description="False adds it paused.")


class ScheduleChangeBody(BaseModel):
    """Only the fields given change. A new cron replaces an interval and vice versa."""

    model_config = ConfigDict(extra="forbid")

    actor: Optional[str] = Field(None, min_length=1, max_length=200, description="Replaces a workflow.")
    kwargs: Optional[dict[str, Any]] = None
    priority: Optional[int] = Field(None, ge=0, le=MAX_PRIORITY, description="null: the actor's default.")
    workflow: Optional[dict[str, Any]] = Field(None, description="Replaces an actor.")
    cron: Optional[str] = Field(None, min_length=1, max_length=200, description=SCHEDULE_CRON_HELP)
    timezone: Optional[str] = None
    interval_seconds: Optional[int] = Field(None, ge=1, le=MAX_INTERVAL_SECONDS)
    enabled: Optional[bool] = Field(None, description="false pauses, true resumes (missed fires are not caught up).")


class ScheduleView(BaseModel):
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
    next_run: Optional[float] = Field(..., description="Null when paused.")
    last_run: Optional[float] = Field(..., description="Scheduled time of the last fire.")
    last_task_id: Optional[str]
    last_workflow_id: Optional[str]
    run_count: int
    last_error: Optional[dict[str, Any]] = Field(..., description="Why the last fire could not be submitted, if it could not.")


class ScheduleList(BaseModel):
    schedules: list[ScheduleView]
    count: int


# -- knowledge bases and conversations --------------------------------------------------------

KNOWLEDGE_MAX_K = 50
MESSAGES_MAX_PAGE = 200


class NewBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: StoredText = Field(..., min_length=1, max_length=200)
    tenant_id: Optional[OwnerId] = Field(
        None, description="The tenant whose user tokens may search it (and ask AI questions over it); "
                          "without one, user tokens without a tenant may.")


class SearchQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: StoredText = Field(..., min_length=1, max_length=2000, description="The question or search text.")
    k: int = Field(5, ge=1, le=KNOWLEDGE_MAX_K, description="How many hits.")
    distinct: bool = Field(True, description="One hit per document (best chunk) instead of raw chunks.")


class MessagesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=MESSAGES_MAX_PAGE, description="Page size.")
    cursor: Optional[str] = Field(None, pattern=r"^[1-9][0-9]{0,17}$", description="`next_cursor` of the previous page.")
    before: Optional[int] = Field(None, ge=1, le=10**18, description="Deprecated: `cursor` under its earlier name.")

    @property
    def before_id(self) -> Optional[int]:
        return int(self.cursor) if self.cursor is not None else self.before


class KnowledgeBase(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    embedder_model: str
    embedding_dim: int
    status: str = Field(..., description="`ready`, or `rebuilding` while an update re-embeds it.")
    documents: Optional[int] = Field(None, description="Documents in it (in the list only).")
    chunks: Optional[int] = Field(None, description="Chunks in it (in the list only).")


class KnowledgeBaseList(BaseModel):
    knowledge_bases: list[KnowledgeBase]


class SearchHit(BaseModel):
    model_config = ConfigDict(extra="allow")

    chunk_id: int
    document_id: str
    title: str
    source: str = Field(..., description="Where the document came from (a path or URL given at vectorization).")
    position: int = Field(..., description="The chunk's place in its document.")
    text: str
    similarity: float = Field(..., description="Cosine similarity of question and chunk.")
    score: float = Field(..., description="The ranking score (language-neutral similarity).")


class SearchResults(BaseModel):
    knowledge_base_id: str
    query: str
    results: list[SearchHit]


class ConversationMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    conversation_id: str
    role: str = Field(..., description="`user` or `assistant`.")
    content: str
    created_at: str = Field(..., description="ISO 8601.")
    task_id: Optional[str] = Field(None, description="The generate_ai_response task that wrote it.")
    sources: Optional[list[dict[str, Any]]] = Field(None, description="Citations of an answer: document_id, source, title, chunk_id, score.")
    usage: Optional[dict[str, Any]] = Field(None, description="Token usage the model reported.")
    provider: Optional[str] = None
    model: Optional[str] = None


class MessagePage(BaseModel):
    conversation_id: str
    messages: list[ConversationMessage] = Field(..., description="Oldest first.")
    next_cursor: Optional[str] = Field(None, description="Pass as `cursor` for the page before this one; null when there is nothing older.")
    next_before: Optional[int] = Field(None, description="Deprecated: the same as `next_cursor`, as the `before` parameter takes it.")


class KbPath(BaseModel):
    kb_id: uuid.UUID


class ConversationPath(BaseModel):
    conversation_id: StoredText = Field(..., min_length=1, max_length=200)


# -- the in-app inbox -------------------------------------------------------------------------

INBOX_ITEM_ID_MAX = 128
INBOX_MAX_IDS = 1000


class InboxQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=INBOX_MAX_PAGE, description="Page size.")
    cursor: Optional[str] = Field(None, pattern=r"^[0-9]{1,7}$", description="`next_cursor` of the previous page.")
    offset: int = Field(0, ge=0, le=1_000_000, description="Deprecated: `cursor` under its earlier name.")
    unread_only: bool = Field(False, description="Only unread items.")

    @property
    def start(self) -> int:
        return int(self.cursor) if self.cursor is not None else self.offset


class InboxItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    title: Optional[str] = None
    body: Optional[str] = None
    data: dict[str, Any] = {}
    created_at: str = Field(..., description="ISO 8601.")
    read: bool
    read_at: Optional[str] = Field(None, description="When it was marked read (ISO 8601).")


class InboxPage(BaseModel):
    user_id: str
    items: list[InboxItem] = Field(..., description="Unread first (newest first), then read.")
    unread: int
    total: int = Field(..., description="Items matching the query.")
    offset: int
    limit: int
    next_cursor: Optional[str] = Field(None, description="Pass as `cursor` for the next page; null on the last page.")
    next_offset: Optional[int] = Field(None, description="Deprecated: the same as `next_cursor`, as `offset` takes it.")


class MarkReadOutcome(BaseModel):
    user_id: str
    marked: int = Field(..., description="Items that were unread and are read now.")
    unread: int = Field(..., description="Items still unread.")


class MarkReadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: Optional[list[str]] = Field(None, min_length=1, max_length=INBOX_MAX_IDS)
    all: Optional[bool] = None

    @field_validator("ids")
    @classmethod
    def _ids(cls, value: Optional[list[str]]) -> Optional[list[str]]:
        for item in value or []:
            if not item or len(item) > INBOX_ITEM_ID_MAX:
                raise ValueError(f"each id must be 1-{INBOX_ITEM_ID_MAX} characters")
        return value

    @model_validator(mode="after")
    def _one(self) -> "MarkReadBody":
        if self.all is not None and not self.all:
            raise ValueError("all: must be true (or leave it out and give ids)")
        if (self.ids is None) == (self.all is None):
            raise ValueError("ids: give either ids (a non-empty list) or all: true")
        return self


# -- workflows ----------------------------------------------------------------------------------
# (the description itself is validated by pipeline.workflow; these models document it)

MAX_MEMBER_PAGE = 1000


class WorkflowStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: str = Field(..., description="A declared task.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Its keyword arguments (its argument model).")
    priority: Optional[int] = Field(None, ge=0, le=MAX_PRIORITY)


class WorkflowBody(BaseModel):
    """A chain (`steps`), a group (`members`) or a chord (`members` + `callback`)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal[WORKFLOW_KINDS]
    steps: Optional[list[WorkflowStep]] = Field(None, description="chain: each step after the first gets `previous`.")
    members: Optional[list[WorkflowStep]] = Field(None, description="group or chord: run at once.")
    callback: Optional[WorkflowStep] = Field(None, description="chord: gets `results` (and `failures`).")
    on_failure: Optional[Literal[POLICIES]] = Field(
        None, description="chord: `skip` (default) the callback when a member failed, or `run_with_summary`.")
    name: Optional[str] = Field(None, min_length=1, max_length=200, description="A label shown with the workflow.")
    idempotency_key: Optional[str] = Field(None, min_length=1, max_length=200,
                                           description="The same key within an hour (from the same token) returns "
                                                       "the same workflow.")
    user_id: Optional[OwnerId] = Field(None, description="The end user the workflow (and every task of it) is for.")
    tenant_id: Optional[OwnerId] = Field(None, description="The owner's tenant (needs user_id).")


class WorkflowAccepted(BaseModel):
    workflow_id: str
    kind: Literal[WORKFLOW_KINDS]
    state: Literal[WORKFLOW_STATES]
    total: int = Field(..., description="Tasks in the workflow (a chord's callback included).")
    status_url: str


class WorkflowMember(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int
    task_id: Optional[str]
    state: Literal[(*STATES, WAITING, "EXPIRED")]
    actor: Optional[str] = None


class WorkflowRecord(BaseModel):
    """State, counts and percent of all its tasks, its result once SUCCESS, and one page of its tasks."""

    model_config = ConfigDict(extra="allow")

    workflow_id: str
    kind: Literal[WORKFLOW_KINDS]
    state: Literal[WORKFLOW_STATES]
    total: int
    counts: dict[str, int]
    percent: float
    result: Any = None
    members: list[WorkflowMember]
    next_cursor: Optional[str] = Field(None, description="Pass as `cursor` for the next page of tasks; null on the last page.")


class WorkflowMembersQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offset: int = Field(0, ge=0, description="First task position of the page (or `cursor`).")
    limit: int = Field(100, ge=0, le=MAX_MEMBER_PAGE, description=f"Tasks per page, at most {MAX_MEMBER_PAGE}.")
    cursor: Optional[str] = Field(None, pattern=r"^[0-9]{1,9}$", description="`next_cursor` of the previous page.")

    @property
    def start(self) -> int:
        return int(self.cursor) if self.cursor is not None else self.offset


class WorkflowCancelled(BaseModel):
    workflow_id: str
    state: Literal["CANCELLED"]
    cancelled: int = Field(..., description="Tasks that will never run.")
    interrupting: int = Field(..., description="Running tasks being interrupted.")


class WorkflowRetried(BaseModel):
    workflow_id: str
    state: Literal["RUNNING"]
    retried: dict[str, str] = Field(..., description="Position -> the new task re-running the one that failed there.")


# -- users and the audit log ------------------------------------------------------------------

class MintBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: OwnerId = Field(..., description="The user the browser acts for.")
    tenant_id: Optional[OwnerId] = Field(None, description="The user's tenant: which knowledge bases it may search.")
    ttl_seconds: Optional[int] = Field(None, ge=10, le=86_400,
                                       description="Lifetime (default 900; at most CLAW_USER_TOKEN_MAX_TTL_SECONDS).")


class MintedToken(BaseModel):
    token: str = Field(..., description="Send it as `Authorization: Bearer <token>`.")
    expires_at: float = Field(..., description="Epoch seconds.")
    user_id: str
    tenant_id: Optional[str] = None


class AuditQuery(_Query):
    limit: int = Field(100, ge=1, le=1000)
    cursor: Optional[str] = Field(None, pattern=r"^[0-9]{1,20}-[0-9]{1,20}$", description="`next_cursor` of the previous page.")
    action: Optional[str] = Field(None, min_length=1, max_length=200,
                                  description="Only entries whose action starts with this, e.g. `POST /api/v1/tasks/cancel`.")

    @field_validator("cursor")
    @classmethod
    def _stream_id(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not is_stream_id(value):
            raise ValueError("is not an entry id of the audit log (next_cursor of a page)")
        return value


class AuditEntry(BaseModel):
    id: str
    at: float
    who: str = Field(..., description="A token's name, user:<id>, dashboard:<token name>, cli:<os user>, or anonymous.")
    action: str
    target: str
    outcome: str = Field(..., description="The HTTP status (or what happened).")
    address: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_cursor: Optional[str] = Field(None, description="Pass as `cursor` for older entries; null on the last page.")

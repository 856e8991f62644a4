"""Request models and the helpers that apply them.

Each responder is described by an :class:`Endpoint` (its query, body and
response models); the responder parses its input through that same Endpoint
and the OpenAPI document is generated from it, so the docs cannot drift from
what the API accepts. Validation failures name the offending field:
query and path parameters give 400, bodies that are JSON but wrong give 422.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Optional

import falcon
import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema

from api.errors import ApiError
from pipeline.errors import ConfigError
from pipeline.state.keys import STATES
from pipeline.task import MAX_DELAY_MS, MAX_PRIORITY, TaskSpec

#: Delays are held by a worker as unacked messages, and RabbitMQ closes a
#: consumer's channel when a message stays unacked past consumer_timeout
#: (30 min by default). Longer waits belong to the scheduler.
MAX_DELAY_SECONDS = MAX_DELAY_MS // 1000
MAX_PAGE = 500
TASK_ID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,200}$")]


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


# -- applying models --------------------------------------------------------------------------

def field_errors(exc: pydantic.ValidationError) -> dict[str, str]:
    """{"dotted.field": "what is wrong"} from a pydantic error (a whole-body error is "body")."""
    fields: dict[str, str] = {}
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "body"
        fields.setdefault(name, str(error["msg"]).removeprefix("Value error, "))
    return fields


def validate(model: type[BaseModel], data: Any, *, status: int, title: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        fields = field_errors(exc)
        description = "; ".join(f"{name}: {text}" for name, text in fields.items())
        raise ApiError(status, title, description, fields=fields) from None


def read_json_object(req: falcon.Request, *, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object ({} when optional and absent).

    A body in another media type is refused by Falcon with 415 before this.
    """
    try:
        media = req.get_media() if required else req.get_media(default_when_empty={})
    except falcon.MediaNotFoundError:
        raise ApiError(400, "Missing body", "this endpoint needs a JSON object body", fields={"body": "required"}) from None
    except falcon.MediaMalformedError as exc:
        detail = str(exc.__cause__ or exc.description or "not valid JSON")
        raise ApiError(400, "Malformed JSON", f"the body is not valid JSON ({detail})",
                       fields={"body": "not valid JSON"}) from None
    if not isinstance(media, dict):
        raise ApiError(422, "Invalid request body", "the body must be a JSON object",
                       fields={"body": "must be a JSON object"})
    return media


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def strict_json_loads(text: str) -> Any:
    """json.loads for request bodies: what it cannot take becomes a ValueError (Falcon: 400).

    - nesting deep enough to exhaust the parser's recursion (a RecursionError otherwise);
    - a lone UTF-16 surrogate escape (``"\\ud800"``): valid JSON, but not text, so it
      could be neither stored nor sent on.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string holds a lone UTF-16 surrogate, which is not text") from None
    return value


def check_task_id(task_id: str) -> str:
    if not TASK_ID.match(task_id):
        raise ApiError(400, "Invalid task id", f"{task_id[:80]!r} is not a task id",
                       fields={"task_id": "must be a UUID like 1b4e28ba-2fa1-11d2-883f-0016d3cca427"})
    return task_id.lower()


class BodyLimitMiddleware:
    """413 for a body over *limit* bytes, before any responder reads it.

    A declared Content-Length is checked at once. A chunked body (no length)
    is read up to limit + 1 bytes and handed on as a sized body; Falcon would
    otherwise see it as empty.
    """

    def __init__(self, limit: int):
        self.limit = limit

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        length = req.content_length
        if length is None and "chunked" in (req.get_header("Transfer-Encoding") or "").lower():
            body = req.stream.read(self.limit + 1)
            length = len(body)
            req.stream = req.env["wsgi.input"] = io.BytesIO(body)  # Falcon reads bodies from wsgi.input
            req.env["CONTENT_LENGTH"] = str(length)
        if length is not None and length > self.limit:
            raise ApiError(413, "Payload Too Large", f"the body is larger than {self.limit} bytes (CLAW_MAX_BODY_BYTES)")


@dataclass(frozen=True)
class Endpoint:
    """What one responder takes and answers: the source of validation and of the docs."""

    summary: str
    tag: str
    query: Optional[type[BaseModel]] = None
    body: Optional[type[BaseModel]] = None
    response: Optional[type[BaseModel]] = None
    status: int = 200
    #: Other success codes it may answer (e.g. 200 when a create finds the thing already there).
    also: tuple[int, ...] = ()
    errors: tuple[int, ...] = ()
    media_type: str = falcon.MEDIA_JSON
    description: str = ""
    body_required: bool = True

    def parse_query(self, req: falcon.Request) -> Any:
        return validate(self.query, dict(req.params), status=400, title="Invalid query parameter")

    def parse_body(self, req: falcon.Request) -> Any:
        data = read_json_object(req, required=self.body_required)
        return validate(self.body, data, status=422, title="Invalid request body")


# -- query models ------------------------------------------------------------------------------

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


class DeadQuery(_Query):
    actor: Optional[Name] = Field(None, description="Only failed tasks of this actor.")
    queue: Optional[Name] = Field(None, description="Only failed tasks of this queue.")
    limit: int = Field(50, ge=1, le=MAX_PAGE, description=f"Page size, at most {MAX_PAGE}.")
    cursor: Optional[str] = Field(None, max_length=200, description="`next_cursor` of the previous page.")


# -- body models -------------------------------------------------------------------------------

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
        description="Submitting the same key again (within the idempotency TTL) returns the first task.",
    )

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


# -- response models (they document the answers; responses are not re-validated) -------------

class ErrorDetail(BaseModel):
    status: int
    title: str
    description: str
    fields: Optional[dict[str, str]] = Field(None, description="Which input was wrong (or which check failed), and why.")
    state: Optional[str] = Field(None, description="The task's current state, on a 409.")


class ErrorBody(BaseModel):
    error: ErrorDetail


class TaskRecord(BaseModel):
    """A task's record. Times are epoch seconds; kwargs are redacted."""

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
    progress: Optional[dict[str, Any]] = None
    error: Optional[dict[str, Any]] = None
    result: Any = None
    retry_of: Optional[str] = None
    retried_by: Optional[str] = None
    wait_reason: Optional[Literal["delay", "rate_limit"]] = None
    idempotency_key: Optional[str] = None
    cancel_requested: Optional[float] = None


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


class DeadLetters(TaskPage):
    dead_lettered: dict[str, Optional[int]] = Field(..., description="Messages in each queue's dead-letter queue.")
    undecodable: list[dict[str, Any]] = Field(..., description="Messages no worker could decode (newest first).")


class Requeued(BaseModel):
    queue: str
    requeued: int


class WorkerList(BaseModel):
    workers: list[dict[str, Any]]
    count: int


class WorkerCommandSent(BaseModel):
    command: Literal["pool_restart", "shutdown"]
    worker: Optional[str]
    processes_notified: int = Field(..., description="How many worker processes received the command.")


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}

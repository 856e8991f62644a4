"""Exceptions that carry meaning across the engine.

Actors raise these to tell the retry policy what kind of failure happened;
processes raise :class:`ConfigError` to stop with one clear line.
"""

from dramatiq.middleware import Interrupt


class ConfigError(Exception):
    """A setting is invalid or a service it names does not answer.

    The CLI prints the message on one line and exits with code 2.
    """


class PermanentError(Exception):
    """A failure that no retry can fix (bad arguments, a 4xx from a provider).

    The task fails at once, without using its remaining retries.
    """


class TransientError(Exception):
    """A failure worth retrying (timeouts, 429/5xx, connection refused)."""


class SoftTimeLimitExceeded(Interrupt):
    """Raised inside a task when it passes its soft time limit.

    It is catchable so the task can save progress; left uncaught it counts as
    a failed attempt and is retried like any other error.
    """


class HardTimeLimitExceeded(Interrupt):
    """Raised inside a task when it passes its hard time limit; never retried."""


class TaskCancelled(Interrupt):
    """Raised inside a running task whose cancellation was requested."""


class UnknownActor(LookupError):
    """A submission named an actor that no module declares."""


class InvalidArguments(ValueError):
    """Submitted arguments do not match the actor's argument model.

    ``fields`` maps each offending field (dotted path) to what is wrong with it.
    """

    def __init__(self, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.fields = fields or {}


class BrokerUnavailable(RuntimeError):
    """RabbitMQ did not confirm a message; it was not accepted."""


class SubmissionInProgress(RuntimeError):
    """Another request with the same idempotency key is still being processed."""

    def __init__(self, message: str, task_id: str):
        super().__init__(message)
        self.task_id = task_id


class TaskNotFound(LookupError):
    """No record exists for the task id (never submitted, or expired)."""


class WorkflowNotFound(TaskNotFound):
    """No record exists for the workflow id (never submitted, or expired)."""


class InvalidTransition(RuntimeError):
    """The task's state does not allow the requested operation (e.g. cancel a finished task)."""

    def __init__(self, message: str, state: str | None = None):
        super().__init__(message)
        self.state = state


class TaskFailed(RuntimeError):
    """``AsyncResult.get()`` of a task that ended in FAILURE: its error's type and message.

    The original exception cannot be rebuilt in the caller's process (Celery
    re-raises its type when it can unpickle it); ``error`` is the record's
    ``{"type", "message", "traceback"}``.
    """

    def __init__(self, task_id: str, state: str, error: dict | None):
        error = error or {}
        super().__init__(f"task {task_id} ended {state}: {error.get('type', '?')}: {error.get('message', '')}")
        self.task_id = task_id
        self.state = state
        self.error = error


class TaskRevoked(TaskFailed):
    """``AsyncResult.get()`` of a task that was cancelled (Celery's TaskRevokedError)."""


class ResultTimeout(TimeoutError):
    """``AsyncResult.get(timeout=...)`` gave up before the task finished (Celery's TimeoutError)."""

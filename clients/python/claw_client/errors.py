"""What the client raises: one class per kind of answer, each with the API's error fields."""

from __future__ import annotations

from typing import Any, Optional


class ClawError(Exception):
    """Base of everything this client raises."""


class ApiError(ClawError):
    """The API answered with an error: ``status``, ``title``, ``description``, ``fields`` (which input was
    wrong), ``state`` (on a 409), ``request_id`` (quote it when asking for help) and ``retry_after``."""

    def __init__(self, status: int, title: str, description: str, *, fields: Optional[dict[str, str]] = None,
                 state: Optional[str] = None, request_id: Optional[str] = None, retry_after: Optional[float] = None):
        super().__init__(f"HTTP {status} {title}: {description}" + (f" [request {request_id}]" if request_id else ""))
        self.status = status
        self.title = title
        self.description = description
        self.fields = fields or {}
        self.state = state
        self.request_id = request_id
        self.retry_after = retry_after


class InvalidRequest(ApiError):
    """400 or 422: the input was refused; ``fields`` says which and why."""


class Unauthorized(ApiError):
    """401: no token, or a token the API does not know."""


class Forbidden(ApiError):
    """403: the token's role (or user) may not do this."""


class NotFound(ApiError):
    """404: no such task (never submitted, or its record expired), schedule, base..."""


class Conflict(ApiError):
    """409: the task's state does not allow it (``state`` says which), or an idempotent submission is in progress."""


class RateLimited(ApiError):
    """429: over a limit; retried by the client (``retry_after``) until its retries run out."""


class Unavailable(ApiError):
    """503: not accepted now (RabbitMQ or Redis away, too many streams); retried by the client until its
    retries run out. Nothing was accepted: sending again is safe."""


class ServerError(ApiError):
    """500 and other 5xx: the server failed; the request id finds the traceback in its log."""


class WaitTimeout(ClawError, TimeoutError):
    """``wait()`` gave up before the task finished (the task goes on)."""

    def __init__(self, task_id: str, timeout: float, state: Optional[str]):
        super().__init__(f"task {task_id} did not finish within {timeout} s (last seen {state or 'unknown'})")
        self.task_id = task_id
        self.state = state


class TaskFailed(ClawError):
    """``result()`` of a task that ended FAILURE or CANCELLED; ``record`` is its final record."""

    def __init__(self, record: Any):
        error = record.error
        detail = f"{error.type}: {error.message}" if error is not None else record.state
        super().__init__(f"task {record.task_id} ended {record.state}: {detail}")
        self.record = record
        self.state = record.state


BY_STATUS = {400: InvalidRequest, 422: InvalidRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound,
             409: Conflict, 429: RateLimited, 503: Unavailable}

"""One error body for every failure, and the mapping of engine errors to HTTP.

Every error the API returns, whether raised by a resource, by Falcon itself
(unknown route, wrong method, bad JSON, wrong content type) or by an
unexpected exception, has the shape::

    {"error": {"status": 409, "title": "...", "description": "...",
               "fields": {"name": "what is wrong"}, "state": "SUCCESS"}}

``fields`` (which input was wrong, or which check failed) and ``state`` (the
task's current state on a conflict) appear only when they apply. Clients can
therefore handle errors with one parser, and nothing ever answers with HTML
or a traceback.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import dramatiq.errors
import falcon
import pika.exceptions
import redis

from pipeline.errors import (
    BrokerUnavailable,
    InvalidArguments,
    InvalidTransition,
    SubmissionInProgress,
    TaskNotFound,
    UnknownActor,
)
from pipeline.redis_client import unavailable

logger = logging.getLogger("api.errors")

#: Seconds a client should wait before retrying when a backing service is down.
RETRY_AFTER_SECONDS = 5


class ApiError(falcon.HTTPError):
    """An HTTP error carrying the optional ``fields`` and ``state`` members of the error body."""

    def __init__(
        self,
        status: int,
        title: str,
        description: str,
        *,
        fields: Optional[dict[str, str]] = None,
        state: Optional[str] = None,
        headers: Optional[dict[str, str]] = None,
    ):
        super().__init__(status, title=title, description=description, headers=headers)
        self.fields = fields
        self.state = state


def error_body(error: falcon.HTTPError, req: falcon.Request) -> dict[str, Any]:
    title = error.title.removeprefix(f"{error.status_code} ")  # Falcon's own titles read "404 Not Found"
    body: dict[str, Any] = {
        "status": error.status_code,
        "title": title,
        "description": error.description or f"{title}: {req.method} {req.path}",
    }
    for name in ("fields", "state"):
        value = getattr(error, name, None)
        if value is not None:
            body[name] = value
    return {"error": body}


def serialize_error(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    """Falcon's error serializer: always JSON, whatever the client accepts."""
    resp.content_type = falcon.MEDIA_JSON
    resp.media = error_body(error, req)


async def _invalid_arguments(req, resp, exc: InvalidArguments, params) -> None:
    raise ApiError(422, "Invalid arguments", str(exc), fields=exc.fields or None)


async def _unknown_actor(req, resp, exc: UnknownActor, params) -> None:
    raise ApiError(400, "Unknown actor", str(exc).strip("'\""), fields={"actor": "no task of this name is declared"})


async def _task_not_found(req, resp, exc: TaskNotFound, params) -> None:
    raise ApiError(404, "Task not found", str(exc).strip("'\""))


async def _invalid_transition(req, resp, exc: InvalidTransition, params) -> None:
    raise ApiError(409, "Conflict", str(exc), state=exc.state)


async def _submission_in_progress(req, resp, exc: SubmissionInProgress, params) -> None:
    """The first request with this idempotency key has not finished publishing: try again shortly."""
    raise ApiError(409, "Submission in progress", str(exc),
                   fields={"idempotency_key": "a request with this key is in progress"}, headers={"Retry-After": "1"})


async def _broker_unavailable(req, resp, exc: Exception, params) -> None:
    """BrokerUnavailable, or a connection error from Dramatiq or pika that got past the client."""
    description = str(exc) if isinstance(exc, BrokerUnavailable) else f"RabbitMQ does not answer ({type(exc).__name__})"
    raise ApiError(503, "Broker unavailable", f"{description}; retry later",
                   headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def _redis_unavailable(req, resp, exc: redis.RedisError, params) -> None:
    raise ApiError(503, "Service Unavailable", f"Redis does not answer ({type(exc).__name__}); retry later",
                   headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def _redis_error_reply(req, resp, exc: redis.ResponseError, params) -> None:
    """An error reply: 503 when it says Redis cannot serve now (see redis_client.unavailable), else our bug."""
    if unavailable(exc):
        await _redis_unavailable(req, resp, exc, params)
    await _unexpected(req, resp, exc, params)


async def _unexpected(req, resp, exc: Exception, params) -> None:
    """Log the traceback here; the client only learns that it was our fault."""
    logger.exception("Unhandled error in %s %s", req.method, req.path)
    raise ApiError(500, "Internal Server Error", "the server failed to answer this request; the error was logged")


def install(app: falcon.App) -> None:
    app.set_error_serializer(serialize_error)
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(InvalidArguments, _invalid_arguments)
    app.add_error_handler(UnknownActor, _unknown_actor)
    app.add_error_handler(TaskNotFound, _task_not_found)
    app.add_error_handler(InvalidTransition, _invalid_transition)
    app.add_error_handler(SubmissionInProgress, _submission_in_progress)
    app.add_error_handler(
        (BrokerUnavailable, dramatiq.errors.BrokerConnectionError, pika.exceptions.AMQPConnectionError), _broker_unavailable
    )
    app.add_error_handler((redis.ConnectionError, redis.TimeoutError), _redis_unavailable)
    app.add_error_handler(redis.ResponseError, _redis_error_reply)

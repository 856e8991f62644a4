"""Typed client for the claw-pipeline API (sync and async): ``pip install claw-client``.

::

    from claw_client import Client

    with Client("https://tasks.example.com", token="...") as claw:
        accepted = claw.submit_generate_ai_response(conversation_id="c-1", user_message="Hello")
        for event in claw.stream(accepted.task_id):      # progress as it comes, resumed on reconnect
            ...
        record = claw.wait(accepted.task_id, timeout=60)  # the final record, from the event stream

It needs only httpx, httpx-sse and pydantic: not the engine.
"""

from claw_client._generated import *  # noqa: F401,F403  (every model of the API)
from claw_client._generated import API_VERSION, SUBMIT_PATHS
from claw_client._transport import Retries
from claw_client.client import AsyncClient, Client, TaskEvent, __version__
from claw_client.errors import (
    ApiError,
    ClawError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServerError,
    TaskFailed,
    Unauthorized,
    Unavailable,
    WaitTimeout,
)

__all__ = [
    "API_VERSION", "SUBMIT_PATHS", "ApiError", "AsyncClient", "ClawError", "Client", "Conflict", "Forbidden",
    "InvalidRequest", "NotFound", "RateLimited", "Retries", "ServerError", "TaskEvent", "TaskFailed",
    "Unauthorized", "Unavailable", "WaitTimeout", "__version__",
]

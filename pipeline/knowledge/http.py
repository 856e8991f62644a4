"""How answers from HTTP providers (embeddings, chat) map onto the retry policy.

Rate limiting, server errors, timeouts and refused connections are worth
retrying (TransientError); any other 4xx means the request itself is wrong and
fails at once (PermanentError) with the provider's own explanation.
"""

from __future__ import annotations

from typing import Any, Callable

import requests

from pipeline.errors import PermanentError, TransientError


def provider_message(response: requests.Response) -> str:
    """The provider's error text: OpenAI-style ``{"error": {"message": ...}}`` or the raw body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(error, str):
        return error
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return response.text.strip()[:500]


def check_response(response: requests.Response, what: str) -> None:
    """Raise the error class matching a non-2xx status."""
    if response.ok:
        return
    status = response.status_code
    message = f"{what} answered HTTP {status}: {provider_message(response)}"
    if status == 429 or status >= 500:
        retry_after = response.headers.get("Retry-After")
        raise TransientError(message + (f" (Retry-After: {retry_after}s)" if retry_after else ""))
    raise PermanentError(message)


def send(call: Callable[[], requests.Response], what: str) -> requests.Response:
    """Run a request, turning connection problems and timeouts into TransientError."""
    try:
        response = call()
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientError(f"{what} unreachable: {exc.__class__.__name__}: {exc}") from None
    check_response(response, what)
    return response


def auth_headers(key: Any) -> dict[str, str]:
    """Bearer header for an optional ``SecretStr`` key."""
    return {"Authorization": f"Bearer {key.get_secret_value()}"} if key is not None else {}

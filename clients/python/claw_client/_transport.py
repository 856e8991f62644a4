"""What the sync and async clients share: encoding, decoding, errors and when to send a request again."""

from __future__ import annotations

import email.utils
import random
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Optional
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from claw_client.errors import BY_STATUS, ApiError, ServerError

#: Answers that mean "not accepted, try again later" (429, 503) or "the proxy could not reach it" (502, 504).
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Of those, the ones after which the API has certainly not acted (safe to repeat any request).
NOT_ACCEPTED = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})


def _quote(value: Any) -> str:
    return quote(str(value), safe="")


@dataclass(frozen=True)
class Retries:
    """How often and how long to wait before sending a refused request again.

    A 503 or 429 is sent again after its ``Retry-After`` (capped at
    ``max_delay``), else after an exponential backoff with jitter; so are 502,
    504 and connection failures when repeating cannot do a thing twice: reads,
    and submissions, which carry an idempotency key. ``attempts`` counts the
    first one.
    """

    attempts: int = 4
    backoff: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, response: Optional[httpx.Response] = None) -> float:
        after = retry_after(response) if response is not None else None
        if after is not None:
            return min(after, self.max_delay)
        return min(self.backoff * (2 ** attempt) * random.uniform(0.5, 1.0), self.max_delay)


def retry_after(response: httpx.Response) -> Optional[float]:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def may_repeat(method: str, body: Optional[dict], status: Optional[int]) -> bool:
    """Whether sending this request again cannot do a thing twice, after *status* (None: no answer)."""
    if status in NOT_ACCEPTED:
        return True
    return method in IDEMPOTENT_METHODS or bool(body and body.get("idempotency_key"))


def encode(value: Any) -> Any:
    """A body or query value as JSON: models by alias without unset fields, datetimes in ISO 8601."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def query_params(query: dict[str, Any]) -> dict[str, Any]:
    params = {}
    for name, value in query.items():
        if value is None:
            continue
        value = encode(value)
        params[name] = ("true" if value else "false") if isinstance(value, bool) else value
    return params


def error_from(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
        title, description = error.get("title", ""), error.get("description", "")
        fields, state = error.get("fields"), error.get("state")
    except (ValueError, KeyError, TypeError):
        title, description, fields, state = response.reason_phrase, response.text[:300], None, None
    kind = BY_STATUS.get(response.status_code, ServerError if response.status_code >= 500 else ApiError)
    return kind(response.status_code, title, description, fields=fields, state=state,
                request_id=response.headers.get("X-Request-ID"), retry_after=retry_after(response))


def parse(response: httpx.Response, model: Optional[type[BaseModel]]) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    data = response.json()
    return model.model_validate(data) if model is not None else data


def new_request_id() -> str:
    return uuid.uuid4().hex


def new_idempotency_key() -> str:
    return f"claw-client-{uuid.uuid4().hex}"

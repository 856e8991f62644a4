"""Applying the request models of :mod:`api.models`: parsing, validating, naming the field.

Each responder is described by an :class:`Endpoint` (its query, body and
response models); the responder parses its input through that same Endpoint
and the OpenAPI document is generated from it, so the docs cannot drift from
what the API accepts. Validation failures name the offending field:
query and path parameters give 400, bodies that are JSON but wrong give 422.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Optional

import falcon
import falcon.asgi
import orjson
import pydantic
from pydantic import BaseModel

from api.errors import ApiError
from api.models import TASK_ID

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


async def read_json_object(req: falcon.asgi.Request, *, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object ({} when optional and absent).

    A body in another media type is refused by Falcon with 415 before this.
    """
    try:
        media = await (req.get_media() if required else req.get_media(default_when_empty={}))
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
#: Deepest nesting of arrays and objects a request body may have. Every layer
#: behind the parser (validation, storage, the worker's decoder, response
#: encoders) walks values recursively; none needs more than a few levels.
MAX_JSON_DEPTH = 64


def strict_json_loads(text: str) -> Any:
    """json.loads for request bodies: what it cannot take becomes a ValueError (Falcon: 400).

    - nesting deeper than MAX_JSON_DEPTH (deep enough nesting exhausts the
      recursion of whatever walks the value next);
    - a lone UTF-16 surrogate escape (``"\\ud800"``): valid JSON, but not text, so it
      could be neither stored nor sent on.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
    # Cheap first: a body with fewer brackets than the limit cannot be that deep.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep")
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string holds a lone UTF-16 surrogate, which is not text") from None
    return value


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in *value* (without recursion, whatever the depth)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in item if isinstance(child, (dict, list)))
    return deepest


def json_dumps(value: Any) -> bytes | str:
    """Response bodies: orjson (several times faster on a page of task records), else the standard library.

    orjson refuses what JSON allows but it cannot encode (integers beyond 64
    bits, lone surrogates, non-string keys); those take the slow path, with
    the same result the standard library gives.
    """
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False)


def check_task_id(task_id: str) -> str:
    if not TASK_ID.match(task_id):
        raise ApiError(400, "Invalid task id", f"{task_id[:80]!r} is not a task id",
                       fields={"task_id": "must be a UUID like 1b4e28ba-2fa1-11d2-883f-0016d3cca427"})
    return task_id.lower()


def operation_id(verb: str, name: str) -> str:
    """``operation_id("submit", "generate_ai_response")`` -> ``submitGenerateAiResponse``."""
    return verb + "".join(part.title() for part in name.split("_"))


class BodyLimitMiddleware:
    """413 for a body over *limit* bytes, before any responder reads it.

    A declared Content-Length is checked at once. A chunked body (no length)
    is read up to limit + 1 bytes, so a client cannot make the process buffer
    more, and handed on as a sized body.
    """

    def __init__(self, limit: int):
        self.limit = limit

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        length = req.content_length
        if length is None and "chunked" in (req.get_header("Transfer-Encoding") or "").lower():
            body = await req.stream.read(self.limit + 1)
            length = len(body)
            # Falcon has no public way to put a read body back; this stream serves it from memory.
            req._stream = falcon.asgi.BoundedStream(
                _nothing_more, first_event={"type": "http.request", "body": body, "more_body": False},
                content_length=length,
            )
        if length is not None and length > self.limit:
            raise ApiError(413, "Payload Too Large", f"the body is larger than {self.limit} bytes (CLAW_MAX_BODY_BYTES)")


async def _nothing_more() -> dict[str, Any]:
    """The receive() of a body already read whole."""
    return {"type": "http.disconnect"}


@dataclass(frozen=True)
class Endpoint:
    """What one responder takes and answers: the source of validation and of the docs."""

    summary: str
    tag: str
    #: The OpenAPI operationId: a verb and a noun in camelCase (getTaskStatus), the name SDK methods take.
    operation_id: str = ""
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
    #: For an event stream: the model of each event's data, by event name (a field per event).
    events: Optional[type[BaseModel]] = None

    def parse_query(self, req: falcon.Request) -> Any:
        return validate(self.query, dict(req.params), status=400, title="Invalid query parameter")

    async def parse_body(self, req: falcon.asgi.Request) -> Any:
        data = await read_json_object(req, required=self.body_required)
        return validate(self.body, data, status=422, title="Invalid request body")



"""``/openapi.json`` (generated from the route table) and ``/docs`` (Swagger UI, served locally).

The document is built from the same :class:`~api.validation.Endpoint`
declarations the responders validate with, and from each resource's
``access``; a mounted resource without declarations (another team's) still
appears, with its path parameters, scope and error answers, so every route is
documented.

``/openapi.json`` is public unless ``CLAW_OPENAPI_PUBLIC=false``: it
describes the API and holds no data. ``/docs`` is always public (a browser
cannot send a bearer token when opening a page): it loads the description
and shows Swagger UI at once; the token goes into Swagger's Authorize button
and is sent with every "Try it out" request. With the description hidden, the
page asks for a token first. Swagger UI's files come from the
``swagger-ui-bundle-v2`` package, never from a CDN.
"""

from __future__ import annotations

import functools
import http
import re
from typing import Any, Iterable, Optional

import falcon
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from swagger_ui_bundle import swagger_ui_path

from api.auth import PUBLIC, Access, access_of, responders
from api.errors import ApiError
from api.models import TASK_ID, ErrorBody, OpenApiDocument
from api.validation import Endpoint

TAG = "docs"
SCHEMA_REF = "#/components/schemas/{model}"
_FIELD = re.compile(r"{(\w+)(?::[^}]*)?}")
PATH_SCHEMAS = {"task_id": {"type": "string", "format": "uuid", "pattern": TASK_ID.pattern}}


DESCRIPTION = """Background tasks on Dramatiq/RabbitMQ with task state in Redis.

**Authentication.** Send `Authorization: Bearer <token>` (the Authorize button, above): a service token (scopes, or a
role: read < submit < admin) or a user token (one user's own records). Fields marked `x-sensitive` are masked for
callers who may not see them.

**Errors.** Every error answers `{"error": {"status", "title", "description", "fields"}}`; `fields` names the
input that was wrong. 503 and 429 carry `Retry-After`: the request was not accepted, send it again then.

**Request ids.** Every answer carries `X-Request-ID` (yours when you send a sane one, else a new one); a task
submitted by the request keeps it in its record (`request_id`) and in the worker's log lines.

**Pagination.** Every paged list takes `limit` (page size) and `cursor` (the `next_cursor` of the previous
page; omit it for the first) and answers its items with `next_cursor`, which is `null` on the last page.
Cursors are opaque strings: pass them back unchanged. Unpaged lists (workers, schedules, knowledge bases) are
bounded by what a deployment declares.

**Idempotency.** Submissions take an `idempotency_key`: the same key within `CLAW_IDEMPOTENCY_TTL_SECONDS`
answers with the first task (and its current `state`), so a request may be re-sent safely.
"""


def build_spec(routes: Iterable[tuple[str, Any]], *, title: str, version: str) -> dict[str, Any]:
    operations = [
        (_FIELD.sub(r"{\1}", path), method, resource, getattr(resource, "endpoints", {}).get(method))
        for path, resource in routes
        for method in responders(resource)
    ]
    refs, schemas = _schemas(endpoint for *_, endpoint in operations if endpoint)
    paths: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for path, method, resource, endpoint in operations:
        operation = _operation(path, method, resource, endpoint, refs, schemas)
        if operation["operationId"] in seen:  # a resource mounted twice: the second takes its path's name
            operation["operationId"] = _path_name(method, path)
        seen.add(operation["operationId"])
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def _schemas(endpoints: Iterable[Endpoint]) -> tuple[dict, dict]:
    """JSON schemas of every model, as components; returns ({(model, mode): ref}, components)."""
    wanted: dict[tuple[type[BaseModel], str], None] = {(ErrorBody, "serialization"): None}
    for endpoint in endpoints:
        models = ((endpoint.query, "validation"), (endpoint.body, "validation"), (endpoint.response, "serialization"),
                  (endpoint.events, "serialization"))
        for model, mode in models:
            if model is not None:
                wanted[(model, mode)] = None
    refs, definitions = models_json_schema(list(wanted), ref_template=SCHEMA_REF)
    return refs, definitions.get("$defs", {})


def _operation(path: str, method: str, resource: Any, endpoint: Optional[Endpoint], refs: dict, schemas: dict) -> dict:
    access = access_of(resource, method)
    path_params = _FIELD.findall(path)
    summary = endpoint.summary if endpoint else _first_line(type(resource).__doc__) or type(resource).__name__
    description = endpoint.description if endpoint else ""
    operation: dict[str, Any] = {
        # A resource without declarations (another team's, a test's) gets a name made from its path.
        "operationId": endpoint.operation_id if endpoint and endpoint.operation_id else _path_name(method, path),
        "summary": summary,
        "tags": [endpoint.tag if endpoint else path.strip("/").split("/")[2 if path.startswith("/api/") else 0]],
        "parameters": [{"name": name, "in": "path", "required": True, "schema": PATH_SCHEMAS.get(name, {"type": "string"})}
                       for name in path_params],
    }
    errors = set(endpoint.errors if endpoint else ())
    if path_params:
        errors.add(400)
    if endpoint and endpoint.query:
        operation["parameters"] += _query_parameters(endpoint.query, refs, schemas)
        errors.add(400)
    if endpoint and endpoint.body:
        operation["requestBody"] = {"required": endpoint.body_required,
                                    "content": {falcon.MEDIA_JSON: {"schema": refs[(endpoint.body, "validation")]}}}
        errors.update((400, 413, 415, 422))
    if access is not None and not access.public:
        operation["security"] = [{"bearerAuth": []}]
        needs = f"Scope: `{access.scope}`." if access.scope else "Any valid token."
        users = "User tokens: their own user's records only." if access.users else "Not for user tokens."
        description = f"{description}\n\n{needs} {users}".strip()
        errors.update((401, 403))
    if description:
        operation["description"] = description
    error_schema = refs[(ErrorBody, "serialization")]
    operation["responses"] = {**_success(endpoint, refs), **{str(code): _error(code, error_schema) for code in sorted(errors)}}
    return operation


def _path_name(method: str, path: str) -> str:
    return f"{method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}"


def _query_parameters(model: type[BaseModel], refs: dict, schemas: dict) -> list[dict]:
    definition = schemas[refs[(model, "validation")]["$ref"].rsplit("/", 1)[1]]
    required = set(definition.get("required", ()))
    parameters = []
    for name, schema in definition["properties"].items():
        schema = _not_null(schema)
        parameter = {"name": name, "in": "query", "required": name in required, "schema": schema}
        if model.model_fields[name].description:
            parameter["description"] = model.model_fields[name].description
        parameters.append(parameter)
    return parameters


def _not_null(schema: dict) -> dict:
    """A query parameter is absent rather than null: drop the null branch of Optional[...]."""
    schema = {k: v for k, v in schema.items() if k not in ("title", "description") and not (k == "default" and v is None)}
    branches = [branch for branch in schema.get("anyOf", ()) if branch != {"type": "null"}]
    if len(branches) == 1 and len(schema["anyOf"]) == 2:
        del schema["anyOf"]
        schema.update(branches[0])
    return schema


def _success(endpoint: Optional[Endpoint], refs: dict) -> dict:
    if endpoint is None:
        return {"200": {"description": "OK"}}
    answers = {}
    for status in (endpoint.status, *endpoint.also):
        answer: dict[str, Any] = {"description": http.HTTPStatus(status).phrase}
        if endpoint.response is not None:
            answer["content"] = {endpoint.media_type: {"schema": refs[(endpoint.response, "serialization")]}}
        elif endpoint.events is not None:
            # OpenAPI 3.1 cannot type an event stream (3.2's itemSchema can): the body is text, and the
            # extension names the model of each event's data by event name.
            answer["content"] = {endpoint.media_type: {
                "schema": {"type": "string", "description": "text/event-stream: `event:`, `id:`, `data:` lines"},
                "x-event-data": refs[(endpoint.events, "serialization")],
            }}
        elif status != 204:
            schema = {"type": "object"} if endpoint.media_type == falcon.MEDIA_JSON else {"type": "string"}
            answer["content"] = {endpoint.media_type: {"schema": schema}}
        answers[str(status)] = answer
    return answers


def _error(code: int, schema: dict) -> dict:
    return {"description": http.HTTPStatus(code).phrase, "content": {falcon.MEDIA_JSON: {"schema": schema}}}


def _first_line(text: Optional[str]) -> str:
    return (text or "").strip().split("\n")[0].strip()


class OpenApiResource:
    """Public unless ``CLAW_OPENAPI_PUBLIC=false``: it describes the API and holds no data."""

    endpoints = {"GET": Endpoint("This OpenAPI document", TAG, operation_id="getOpenApi", response=OpenApiDocument)}

    def __init__(self, public: bool = True) -> None:
        # Public, or any valid token (a user token too): the document holds nobody's data.
        self.access = {"GET": PUBLIC if public else Access(None, users=True)}
        self.spec: dict[str, Any] = {}

    def publish(self, spec: dict[str, Any]) -> None:
        """Set once the whole route table (this route included) is known."""
        self.spec = spec

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.spec


DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>claw-pipeline API</title>
<link rel="icon" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<style>
  body { margin: 0; font-family: sans-serif; }
  #token-bar { display: flex; gap: .5em; align-items: center; padding: .6em 1em; background: #1b1b1b; color: #eee; }
  #token-bar[hidden] { display: none; }
  #token-bar input { flex: 1; max-width: 32em; padding: .3em; }
  #token-message { color: #f6a; }
</style>
</head>
<body>
<form id="token-bar" hidden>
  <label for="token">This server's API description needs a token (CLAW_OPENAPI_PUBLIC=false)</label>
  <input id="token" type="password" autocomplete="off" placeholder="bearer token (read role or higher)">
  <button type="submit">Load</button>
  <span id="token-message"></span>
</form>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>
const bar = document.getElementById("token-bar");
const message = document.getElementById("token-message");

// The description is public by default: the page works before any token is given, and
// Swagger UI's own Authorize button holds the token for "Try it out" (kept across reloads).
async function load(token) {
  message.textContent = "";
  const response = await fetch("/openapi.json", {headers: token ? {Authorization: "Bearer " + token} : {}});
  if (response.status === 401 || response.status === 403) {
    bar.hidden = false;
    if (token) message.textContent = "this token cannot read the API description";
    return;
  }
  if (!response.ok) { bar.hidden = false; message.textContent = response.statusText; return; }
  bar.hidden = true;
  const ui = SwaggerUIBundle({
    spec: await response.json(),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: true,
  });
  if (token) ui.preauthorizeApiKey("bearerAuth", token);
}

bar.addEventListener("submit", (event) => {
  event.preventDefault();
  load(document.getElementById("token").value.trim());
});
load("");
</script>
</body>
</html>
"""


class DocsPageResource:
    access = {"GET": PUBLIC}
    endpoints = {"GET": Endpoint("Interactive API documentation (Swagger UI)", TAG, operation_id="getDocsPage", media_type=falcon.MEDIA_HTML)}

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.text = DOCS_PAGE


#: The only files served from the Swagger UI package.
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "application/javascript",
    "favicon-32x32.png": "image/png",
}


@functools.lru_cache(maxsize=len(ASSETS))
def _asset(name: str) -> bytes:
    return (swagger_ui_path / name).read_bytes()


class DocsAssetResource:
    access = {"GET": PUBLIC}
    endpoints = {"GET": Endpoint("A Swagger UI file of the docs page", TAG, operation_id="getDocsAsset", media_type="application/octet-stream",
                                 errors=(404,))}

    async def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name not in ASSETS:
            raise ApiError(404, "Not Found", f"no asset {name!r}")
        resp.content_type = ASSETS[name]
        resp.set_header("Cache-Control", "public, max-age=86400")
        resp.data = _asset(name)

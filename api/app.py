"""The Falcon ASGI app: the route table, the middleware, the error shape and the OpenAPI document.

``create_app()`` does no I/O: the engine (and its Redis and RabbitMQ
connections) is built on the first request that needs it, so the server can
import the app before the services answer, and ``/health`` works regardless.

Middleware is the extension point for anything every request goes through
(request ids, tracing, CORS, metrics, limits, audit, auth); it runs in the order
of :func:`middleware`.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import falcon
import falcon.asgi

from api import errors
from api.audit import AuditMiddleware
from api.auth import AuthMiddleware, check_access, check_auth_config
from api.request_ids import RequestIdMiddleware
from api.resources import EngineProvider
from api.resources.docs import OpenApiResource, build_spec
from api.resources.metrics import ApiMetrics
from api.routes import Route, route_table
from api.validation import BodyLimitMiddleware, json_dumps, strict_json_loads
from pipeline.broker import resolve_policies
from pipeline.engine import Engine, get_engine
from pipeline.observability import tracing
from pipeline.queues import QueueStatsCache
from pipeline.settings import Settings, get_settings

API_TITLE = "claw-pipeline API"
API_VERSION = "1.0.0"


def create_app(
    engine: Optional[Engine] = None,
    settings: Optional[Settings] = None,
    extra_routes: Iterable[tuple[str, Any]] = (),
) -> falcon.asgi.App:
    """Build the API.

    *engine*: the engine to use (default: the process-wide one, on first use).
    *settings*: auth and limits (default: the engine's, else the process's).
    *extra_routes*: more ``(path, resource)`` pairs (tests); each resource needs
    an ``access`` entry for every responder, like the others.
    Raises ConfigError when no API token is configured and auth is not disabled,
    or a token is weak or names an unknown scope.
    """
    settings = settings or (engine.settings if engine is not None else get_settings())
    check_auth_config(settings)
    tracing.setup("api")
    resolve_policies(settings)  # imports the task modules (they feed the submit endpoints and docs), checks overrides
    provider: EngineProvider = (lambda: engine) if engine is not None else get_engine
    queue_stats = QueueStatsCache(settings)
    metrics = ApiMetrics(provider, queue_stats)
    app = falcon.asgi.App(middleware=middleware(settings, metrics, provider))
    # JSON only: a form or multipart body is a 415, never parsed into something that looks valid.
    json_handler = falcon.media.JSONHandler(dumps=json_dumps, loads=strict_json_loads)
    app.req_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: json_handler})
    app.resp_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: json_handler})
    errors.install(app)
    openapi = OpenApiResource(public=settings.openapi_public)
    routes = [*route_table(provider, settings, metrics=metrics, openapi=openapi, queue_stats=queue_stats),
              *(Route(path, resource) for path, resource in extra_routes)]
    for route in routes:
        check_access(route.path, route.resource)
        app.add_route(route.path, route.resource)
    documented = [(route.path, route.resource) for route in routes if route.documented]
    openapi.publish(build_spec(documented, title=API_TITLE, version=API_VERSION))
    return app


def middleware(settings: Settings, metrics: ApiMetrics, engine: EngineProvider) -> list[Any]:
    """Every request passes these in order (responses in reverse).

    The request id first, so every answer (a refusal too) names its request
    and every line logged for it carries the id; the request's span next
    (only when tracing is on), so what follows is inside it; CORS next (only
    with ``CLAW_CORS_ORIGINS``), so its headers are on every answer, refusals
    included, and a browser page can read why; metrics before the refusals, so
    refused requests (413, 401, 403) are counted and timed too; the body limit
    before auth, so an oversized body is refused before anything reads it; the
    audit log before auth, so it sees the refusals auth makes; auth last,
    because the Access it checks belongs to the matched resource.
    """
    cors = [cors_middleware(settings.cors_origins)] if settings.cors_origins else []
    return [RequestIdMiddleware(), *tracing.api_middleware(), *cors, metrics, BodyLimitMiddleware(settings.max_body_bytes),
            AuditMiddleware(engine), AuthMiddleware(settings)]


def cors_middleware(origins: list[str]) -> falcon.CORSMiddleware:
    """Pages of exactly these origins may call the API (with a user token in the Authorization header).

    No credentials: browsers send no cookies or HTTP auth of theirs, so the
    dashboard's session cookie is never usable from another site.
    """
    return falcon.CORSMiddleware(allow_origins=origins, allow_credentials=None,
                                 expose_headers=["Retry-After", "Location", "WWW-Authenticate", "X-Request-ID"])

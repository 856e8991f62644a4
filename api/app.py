"""The Falcon app factory: routes, auth, errors, limits, metrics and the OpenAPI document.

``create_app()`` does no I/O: the engine (and its Redis and RabbitMQ
connections) is built on the first request that needs it, so gunicorn can
import the app before the services answer, and ``/health`` works regardless.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import falcon

from api import errors
from api.auth import AuthMiddleware, check_auth_config, check_roles
from api.resources import API_PREFIX, EngineProvider
from api.resources.docs import DocsAssetResource, DocsPageResource, OpenApiResource, build_spec
from api.resources.health import HealthResource, ReadyResource
from api.dashboard import dashboard_routes
from api.resources.health_snapshot import HealthSnapshotResource
from api.resources.knowledge import (
    ConversationMessagesResource,
    KnowledgeBaseResource,
    KnowledgeBasesResource,
    KnowledgeSearchResource,
)
from api.resources.metrics import ApiMetrics, MetricsResource
from api.resources.notifications import NotificationListResource, NotificationReadResource
from api.resources.schedules import schedule_routes
from api.resources.submit import SUBMIT_ROUTES, BulkSubmitResource, SubmitResource
from api.resources.tasks import (
    DeadLetterRequeueResource,
    DeadLetterResource,
    TaskCancelResource,
    TaskEventsResource,
    TaskListResource,
    TaskRetryResource,
    TaskStatsResource,
    TaskStatusResource,
)
from api.resources.workers import WorkerCommandResource, WorkerListResource
from api.validation import BodyLimitMiddleware, strict_json_loads
from pipeline.broker import resolve_policies
from pipeline.engine import Engine, get_engine
from pipeline.queues import QueueStatsCache
from pipeline.settings import Settings, get_settings

API_TITLE = "claw-pipeline API"
API_VERSION = "1.0.0"

Route = tuple[str, Any]


def create_app(
    engine: Optional[Engine] = None,
    settings: Optional[Settings] = None,
    extra_routes: Iterable[Route] = (),
) -> falcon.App:
    """Build the API.

    *engine*: the engine to use (default: the process-wide one, on first use).
    *settings*: auth and limits (default: the engine's, else the process's).
    *extra_routes*: more ``(path, resource)`` pairs (dashboard, schedules); each
    resource needs a ``roles`` entry for every responder, like the others.
    Raises ConfigError when no API token is configured and auth is not disabled.
    """
    settings = settings or (engine.settings if engine is not None else get_settings())
    check_auth_config(settings)
    resolve_policies(settings)  # imports the task modules (they feed the submit endpoints and docs), checks overrides
    provider: EngineProvider = (lambda: engine) if engine is not None else get_engine
    queue_stats = QueueStatsCache(settings)
    metrics = ApiMetrics(provider, queue_stats)
    app = falcon.App(middleware=[metrics, BodyLimitMiddleware(settings.max_body_bytes), AuthMiddleware(settings)])
    # JSON only: a form or multipart body is a 415, never parsed into something that looks valid.
    app.req_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: falcon.media.JSONHandler(loads=strict_json_loads)})
    errors.install(app)
    openapi = OpenApiResource()
    routes = [
        *_service_routes(settings, metrics, openapi),
        *_task_routes(provider, queue_stats),
        *_domain_routes(provider),
        *schedule_routes(provider),
        *extra_routes,
    ]
    for path, resource in routes:
        check_roles(path, resource)
        app.add_route(path, resource)
    openapi.publish(build_spec(routes, title=API_TITLE, version=API_VERSION))
    # HTML pages with their own cookie session and CSRF: not part of the JSON API's document.
    for path, resource in dashboard_routes(provider):
        check_roles(path, resource)
        app.add_route(path, resource)
    return app


def _service_routes(settings: Settings, metrics: ApiMetrics, openapi: OpenApiResource) -> list[Route]:
    return [
        ("/health", HealthResource()),
        ("/ready", ReadyResource(settings)),
        ("/metrics", MetricsResource(metrics)),
        ("/openapi.json", openapi),
        ("/docs", DocsPageResource()),
        ("/docs/assets/{name}", DocsAssetResource()),
    ]


def _task_routes(engine: EngineProvider, queue_stats: QueueStatsCache) -> list[Route]:
    p = API_PREFIX
    return [
        (f"{p}/status/{{task_id}}", TaskStatusResource(engine)),
        (f"{p}/list", TaskListResource(engine)),
        (f"{p}/cancel/{{task_id}}", TaskCancelResource(engine)),
        (f"{p}/retry/{{task_id}}", TaskRetryResource(engine)),
        (f"{p}/stats", TaskStatsResource(engine, queue_stats)),
        (f"{p}/health", HealthSnapshotResource(engine)),
        (f"{p}/dead", DeadLetterResource(engine, queue_stats)),
        (f"{p}/dead/requeue", DeadLetterRequeueResource(engine)),
        (f"{p}/{{task_id}}/events", TaskEventsResource(engine)),
        (f"{p}/bulk", BulkSubmitResource(engine)),
        *[(path, SubmitResource(engine, actor)) for path, actor in SUBMIT_ROUTES.items()],
        (f"{p}/workers", WorkerListResource(engine)),
        (f"{p}/workers/pool/restart", WorkerCommandResource(
            engine, "pool_restart", "Replace worker processes (running tasks finish first)")),
        (f"{p}/workers/shutdown", WorkerCommandResource(
            engine, "shutdown", "Stop workers gracefully (running tasks finish first)")),
    ]


def _domain_routes(engine: EngineProvider) -> list[Route]:
    """Resources written with the knowledge and notifications modules."""
    return [
        ("/api/v1/knowledge", KnowledgeBasesResource()),
        ("/api/v1/knowledge/{kb_id}", KnowledgeBaseResource(engine)),
        ("/api/v1/knowledge/{kb_id}/search", KnowledgeSearchResource()),
        ("/api/v1/conversations/{conversation_id}/messages", ConversationMessagesResource()),
        ("/api/v1/notifications/{user_id}", NotificationListResource()),
        ("/api/v1/notifications/{user_id}/read", NotificationReadResource()),
    ]

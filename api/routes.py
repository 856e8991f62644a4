"""The route table: every path the API serves, in one place.

Each entry pairs a path with its resource. A resource says who may call each
method (``access``: the scope a service token needs, whether user tokens may
call it, whether it is audited; checked when the app is built: see
:mod:`api.auth`) and
what each method takes and answers (``endpoints``: see
:class:`api.validation.Endpoint`), from which the OpenAPI document is made.
A new endpoint is one line here plus its resource (and its models in
:mod:`api.models`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.audit import AuditResource
from api.dashboard import dashboard_routes
from api.resources import API_PREFIX, EngineProvider
from api.resources.docs import DocsAssetResource, DocsPageResource, OpenApiResource
from api.resources.events import TaskEventsResource
from api.resources.health import HealthResource, ReadyResource
from api.resources.health_snapshot import HealthSnapshotResource
from api.resources.knowledge import (
    ConversationMessagesResource,
    KnowledgeBaseResource,
    KnowledgeBasesResource,
    KnowledgeSearchResource,
    check_ai_submission,
)
from api.resources.metrics import ApiMetrics, MetricsResource
from api.resources.notifications import NotificationListResource, NotificationReadResource
from api.resources.schedules import PREFIX as SCHEDULES, ScheduleItemResource, ScheduleListResource
from api.resources.submit import BulkSubmitResource, SubmitResource
from api.resources.tasks import (
    DeadLetterRequeueResource,
    DeadLetterResource,
    TaskCancelResource,
    TaskListResource,
    TaskRetryResource,
    TaskStatsResource,
    TaskStatusResource,
)
from api.resources.users import UserTokenResource
from api.resources.workers import WorkerCommandResource, WorkerListResource
from api.resources.workflows import (
    PREFIX as WORKFLOWS,
    WorkflowCancelResource,
    WorkflowResource,
    WorkflowRetryResource,
    WorkflowSubmitResource,
)
from pipeline.queues import QueueStatsCache
from pipeline.settings import Settings


@dataclass(frozen=True)
class Route:
    path: str
    resource: Any
    #: In the OpenAPI document (the dashboard's HTML pages are not part of the JSON API).
    documented: bool = True


def route_table(engine: EngineProvider, settings: Settings, *, metrics: ApiMetrics, openapi: OpenApiResource,
                queue_stats: QueueStatsCache) -> list[Route]:
    p = API_PREFIX
    routes = [
        # service
        Route("/health", HealthResource()),
        Route("/ready", ReadyResource(settings)),
        Route("/metrics", MetricsResource(metrics)),
        Route("/openapi.json", openapi),
        Route("/docs", DocsPageResource()),
        Route("/docs/assets/{name}", DocsAssetResource()),
        # tasks
        Route(f"{p}/status/{{task_id}}", TaskStatusResource(engine)),
        Route(f"{p}/list", TaskListResource(engine)),
        Route(f"{p}/cancel/{{task_id}}", TaskCancelResource(engine)),
        Route(f"{p}/retry/{{task_id}}", TaskRetryResource(engine)),
        Route(f"{p}/stats", TaskStatsResource(engine, queue_stats)),
        Route(f"{p}/health", HealthSnapshotResource(engine)),
        Route(f"{p}/dead", DeadLetterResource(engine, queue_stats)),
        Route(f"{p}/dead/requeue", DeadLetterRequeueResource(engine)),
        Route(f"{p}/{{task_id}}/events", TaskEventsResource(engine, settings)),
        # submitting: one endpoint per domain task, and bulk for any
        Route(f"{p}/bulk", BulkSubmitResource(engine)),
        Route(f"{p}/ai/generate", SubmitResource(engine, "generate_ai_response", check=check_ai_submission)),
        Route(f"{p}/knowledge/vectorize", SubmitResource(engine, "vectorize_document")),
        Route(f"{p}/knowledge/update", SubmitResource(engine, "update_knowledge_base")),
        Route(f"{p}/knowledge/delete", SubmitResource(engine, "delete_knowledge_vectors")),
        Route(f"{p}/notifications/send", SubmitResource(engine, "send_notification")),
        # workers
        Route(f"{p}/workers", WorkerListResource(engine)),
        Route(f"{p}/workers/pool/restart", WorkerCommandResource(
            engine, "pool_restart", "Replace worker processes (running tasks finish first)", "restartWorkerPool")),
        Route(f"{p}/workers/shutdown", WorkerCommandResource(
            engine, "shutdown", "Stop workers gracefully (running tasks finish first)", "shutdownWorkers")),
        # workflows
        Route(WORKFLOWS, WorkflowSubmitResource(engine)),
        Route(f"{WORKFLOWS}/{{workflow_id}}", WorkflowResource(engine)),
        Route(f"{WORKFLOWS}/{{workflow_id}}/cancel", WorkflowCancelResource(engine)),
        Route(f"{WORKFLOWS}/{{workflow_id}}/retry", WorkflowRetryResource(engine)),
        # schedules
        Route(SCHEDULES, ScheduleListResource(engine)),
        Route(f"{SCHEDULES}/{{schedule_id}}", ScheduleItemResource(engine)),
        # knowledge bases, conversations, the inbox
        Route("/api/v1/knowledge", KnowledgeBasesResource()),
        Route("/api/v1/knowledge/{kb_id}", KnowledgeBaseResource(engine)),
        Route("/api/v1/knowledge/{kb_id}/search", KnowledgeSearchResource()),
        Route("/api/v1/conversations/{conversation_id}/messages", ConversationMessagesResource()),
        Route("/api/v1/notifications/{user_id}", NotificationListResource()),
        Route("/api/v1/notifications/{user_id}/read", NotificationReadResource()),
        # users and the audit log
        Route("/api/v1/auth/user-tokens", UserTokenResource(settings)),
        Route("/api/v1/audit", AuditResource(engine)),
    ]
    # The operators' dashboard: HTML pages with their own cookie session and CSRF.
    routes += [Route(path, resource, documented=False) for path, resource in dashboard_routes(engine)]
    return routes

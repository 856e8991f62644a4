"""The operators' web dashboard, served by the API under ``/dashboard``.

Server-rendered pages (Jinja2), one stylesheet and one small script, no
build step and nothing fetched from elsewhere. Visitors log in with a service
token; see :mod:`api.dashboard.sessions` for the cookie and CSRF design and
:mod:`api.dashboard.web` for how each route is guarded.
"""

from __future__ import annotations

from typing import Any, Union

from api.dashboard.audit import AuditPage
from api.dashboard.login import LoginPage, LogoutPage
from api.dashboard.overview import OverviewJson, OverviewPage
from api.dashboard.queues import QueueListPage, QueuePage
from api.dashboard.schedules import ScheduleActionPage, SchedulesPage
from api.dashboard.static_files import StaticResource
from api.dashboard.tasks import TaskActionPage, TaskJson, TaskListPage, TaskPage
from api.dashboard.web import PREFIX, Dashboard
from api.dashboard.workers import WorkerCommandPage, WorkersJson, WorkersPage
from api.dashboard.workflows import WorkflowActionPage, WorkflowPage
from api.resources import EngineProvider
from pipeline.engine import Engine


def dashboard_routes(engine: Union[Engine, EngineProvider]) -> list[tuple[str, Any]]:
    """Every dashboard route as (full path, resource), to be added with ``app.add_route``.

    *engine* is the engine, or a callable returning it (the API's lazy provider).
    """
    provider = engine if callable(engine) else (lambda: engine)
    ui = Dashboard(provider)
    overview = OverviewPage(ui)
    return [
        (PREFIX, overview),
        (PREFIX + "/", overview),
        (PREFIX + "/login", LoginPage(ui)),
        (PREFIX + "/logout", LogoutPage(ui)),
        (PREFIX + "/static/{name}", StaticResource(ui)),
        (PREFIX + "/tasks", TaskListPage(ui)),
        (PREFIX + "/tasks/{task_id}", TaskPage(ui)),
        (PREFIX + "/tasks/{task_id}/{action}", TaskActionPage(ui)),
        (PREFIX + "/workflows/{workflow_id}", WorkflowPage(ui)),
        (PREFIX + "/workflows/{workflow_id}/{action}", WorkflowActionPage(ui)),
        (PREFIX + "/queues", QueueListPage(ui)),
        (PREFIX + "/queues/{queue}", QueuePage(ui)),
        (PREFIX + "/workers", WorkersPage(ui)),
        (PREFIX + "/workers/command", WorkerCommandPage(ui)),
        (PREFIX + "/schedules", SchedulesPage(ui)),
        (PREFIX + "/schedules/{schedule_id}/{action}", ScheduleActionPage(ui)),
        (PREFIX + "/audit", AuditPage(ui)),
        (PREFIX + "/api/overview", OverviewJson(ui)),
        (PREFIX + "/api/tasks/{task_id}", TaskJson(ui)),
        (PREFIX + "/api/workers", WorkersJson(ui)),
    ]

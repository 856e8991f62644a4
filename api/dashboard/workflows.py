"""A workflow's page: state, counts, a progress bar, its tasks page by page, cancel and retry.

The page reads the workflow record (counts are kept by the store as tasks
finish) and one page of its tasks; it refreshes itself while the workflow
runs. Each task of a workflow links here from its own page.
"""

from __future__ import annotations

import falcon

from api.dashboard.web import PREFIX, Resource, control, responder
from api.resources.workflows import shown_to
from pipeline import workflow
from pipeline.errors import TaskNotFound

PAGE_SIZE = 100


class WorkflowPage(Resource):
    @responder("tasks:read")
    def on_get(self, req: falcon.Request, resp: falcon.Response, session, workflow_id: str) -> None:
        show_workflow(self.dashboard, req, resp, session, workflow_id)


def show_workflow(ui, req, resp, session, workflow_id: str, status: int = 200, problem: str = "") -> None:
    try:
        offset = max(0, int(req.get_param("offset") or 0))
    except ValueError:
        offset = 0
    try:
        record = workflow.get(workflow_id, offset=offset, limit=PAGE_SIZE, engine=ui.engine())
    except TaskNotFound:
        ui.error(req, resp, session, 404, "Workflow not found",
                 f"No workflow {workflow_id!r}: it was never submitted, or its record expired.")
        return
    ui.render(req, resp, session, "workflow.html", status=status, section="tasks", wf=shown_to(record, session.caller),
              problem=problem,
              offset=offset, page_size=PAGE_SIZE, can_cancel=record["state"] == "RUNNING",
              can_retry=record["state"] in ("FAILURE", "CANCELLED"))


class WorkflowActionPage(Resource):
    """POST cancel or retry; then back to the workflow."""

    @responder("tasks:control")
    def on_post(self, req: falcon.Request, resp: falcon.Response, session, form, workflow_id: str, action: str) -> None:
        def cancel() -> str:
            workflow.cancel(workflow_id, engine=self.dashboard.engine())
            return f"{PREFIX}/workflows/{workflow_id}?notice=cancelled"

        def retry() -> str:
            workflow.retry(workflow_id, engine=self.dashboard.engine())
            return f"{PREFIX}/workflows/{workflow_id}?notice=retried"

        control(self.dashboard, req, resp, session, "workflow", action, {"cancel": cancel, "retry": retry},
                lambda **problem: show_workflow(self.dashboard, req, resp, session, workflow_id, **problem))

"""Workflows over HTTP: submit a chain, group or chord, follow it, cancel it, retry it.

The body of ``POST /api/v1/workflows`` is the JSON description of
:mod:`pipeline.workflow.shapes`; every task is validated against its actor's
argument model before anything is enqueued (422 naming ``steps.1.kwargs.x``).
"""

from __future__ import annotations

import falcon

from api.blocking import run_blocking
from api.errors import ApiError
from api.models import (
    TASK_ID,
    WorkflowAccepted,
    WorkflowBody,
    WorkflowCancelled,
    WorkflowMembersQuery,
    WorkflowRecord,
    WorkflowRetried,
)
from api.resources import EngineProvider
from api.validation import Endpoint, read_json_object
from pipeline import workflow
from pipeline.errors import InvalidArguments
from pipeline.workflow.submission import submit_checked

TAG = "workflows"
PREFIX = "/api/v1/workflows"


def workflow_url(workflow_id: str) -> str:
    return f"{PREFIX}/{workflow_id}"


def check_workflow_id(workflow_id: str) -> str:
    if not TASK_ID.match(workflow_id):
        raise ApiError(400, "Invalid workflow id", f"{workflow_id[:80]!r} is not a workflow id",
                       fields={"workflow_id": "must be a UUID like 1b4e28ba-2fa1-11d2-883f-0016d3cca427"})
    return workflow_id.lower()


def _submit(body: dict, engine) -> tuple[dict, bool]:
    options = {name: body.pop(name) for name in ("name", "idempotency_key") if name in body}
    for name, value in options.items():
        if not isinstance(value, str) or not 0 < len(value) <= 200:
            raise InvalidArguments(f"invalid {name}", {name: "must be a string of 1 to 200 characters"})
    workflow_id, created = submit_checked(workflow.from_description(body), engine=engine, **options)
    record = workflow.get(workflow_id, limit=0, engine=engine)
    return {"workflow_id": workflow_id, "kind": record["kind"], "state": record["state"], "total": record["total"],
            "status_url": workflow_url(workflow_id)}, created


class WorkflowSubmitResource:
    roles = {"POST": "submit"}
    endpoints = {"POST": Endpoint(
        "Submit a chain, group or chord", TAG, operation_id="submitWorkflow", body=WorkflowBody, response=WorkflowAccepted, status=202,
        also=(200,), errors=(422, 503),
        description="Every task is validated against its actor's arguments before anything is enqueued. "
                    "200 when the idempotency key named an existing workflow.",
    )}

    def __init__(self, engine: EngineProvider):
        self.engine = engine

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = await read_json_object(req)
        resp.media, created = await run_blocking(_submit, body, self.engine())
        resp.status = falcon.HTTP_202 if created else falcon.HTTP_200


class WorkflowResource:
    roles = {"GET": "read"}
    endpoints = {"GET": Endpoint("A workflow: state, counts, progress, result and a page of its tasks", TAG,
                                 operation_id="getWorkflow", query=WorkflowMembersQuery, response=WorkflowRecord, errors=(400, 404))}

    def __init__(self, engine: EngineProvider):
        self.engine = engine

    async def on_get(self, req: falcon.Request, resp: falcon.Response, workflow_id: str) -> None:
        query = self.endpoints["GET"].parse_query(req)
        record = await run_blocking(workflow.get, check_workflow_id(workflow_id), offset=query.start,
                                    limit=query.limit, engine=self.engine())
        following = query.start + query.limit
        resp.media = {**record, "next_cursor": str(following) if query.limit and following < record["total"] else None}


class WorkflowCancelResource:
    roles = {"POST": "admin"}
    endpoints = {"POST": Endpoint("Cancel every task of a workflow that has not finished", TAG,
                                  operation_id="cancelWorkflow", response=WorkflowCancelled, errors=(400, 404, 409), body_required=False)}

    def __init__(self, engine: EngineProvider):
        self.engine = engine

    async def on_post(self, req: falcon.Request, resp: falcon.Response, workflow_id: str) -> None:
        resp.media = await run_blocking(workflow.cancel, check_workflow_id(workflow_id), engine=self.engine())


class WorkflowRetryResource:
    roles = {"POST": "admin"}
    endpoints = {"POST": Endpoint("Re-run the failed tasks of a workflow and what follows them", TAG,
                                  operation_id="retryWorkflow", response=WorkflowRetried, status=202, errors=(400, 404, 409), body_required=False)}

    def __init__(self, engine: EngineProvider):
        self.engine = engine

    async def on_post(self, req: falcon.Request, resp: falcon.Response, workflow_id: str) -> None:
        resp.media = await run_blocking(workflow.retry, check_workflow_id(workflow_id), engine=self.engine())
        resp.status = falcon.HTTP_202

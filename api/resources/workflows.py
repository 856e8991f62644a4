"""Workflows over HTTP: submit a chain, group or chord, follow it, cancel it, retry it.

The body of ``POST /api/v1/workflows`` is the JSON description of
:mod:`pipeline.workflow.shapes`; every task is validated against its actor's
argument model before anything is enqueued (422 naming ``steps.1.kwargs.x``).

Workflows are for service tokens: the submitting token needs the submit scope
of every actor in it, and may name the user it is for (``user_id``,
``tenant_id``), whom the workflow and all its tasks then belong to. Its tasks'
progress, errors and result are shown as the caller may see them.
"""

from __future__ import annotations

from typing import Any

import falcon

from api.auth import Access, caller_of
from api.blocking import run_blocking
from api.caller import Caller
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
from api.resources import EngineResource
from api.scopes import SUBMIT_PREFIX, submit_scopes
from api.validation import Endpoint, read_json_object
from pipeline import workflow
from pipeline.errors import InvalidArguments
from pipeline.registry import REGISTRY
from pipeline.sensitive import mask
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


def _submit(body: dict, engine, caller: Caller) -> tuple[dict, bool]:
    options = {name: body.pop(name) for name in ("name", "idempotency_key", "user_id", "tenant_id") if name in body}
    for name, value in options.items():
        if not isinstance(value, str) or not 0 < len(value) <= 200:
            raise InvalidArguments(f"invalid {name}", {name: "must be a string of 1 to 200 characters"})
    shape = workflow.from_description(body)
    refused = sorted({sig.actor for sig in shape.tasks() if not caller.has(SUBMIT_PREFIX + sig.actor)})
    if refused:
        raise ApiError(403, "Forbidden", f"token {caller.name!r} may not submit every task of this workflow",
                       fields={f"actor.{actor}": f"needs {submit_scopes(actor)}" for actor in refused})
    workflow_id, created = submit_checked(shape, engine=engine, submitted_by=caller.name, **options)
    record = workflow.get(workflow_id, limit=0, engine=engine)
    return {"workflow_id": workflow_id, "kind": record["kind"], "state": record["state"], "total": record["total"],
            "status_url": workflow_url(workflow_id)}, created


def shown_to(record: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """A workflow's page as *caller* may see it: its tasks' progress and errors, its result."""
    owner = {"user_id": record.get("user_id"), "submitted_by": record.get("submitted_by")}
    members = [caller.view({**member, **owner}) for member in record["members"]]
    for member in members:
        member.pop("user_id", None), member.pop("submitted_by", None)
    shown = {**record, "members": members}
    if not caller.sees_sensitive(owner):
        hidden = [name for actor in {m.get("actor") for m in record["members"]} if actor in REGISTRY
                  for name in REGISTRY[actor].sensitive_output]
        result = record.get("result")
        shown["result"] = [mask(r, hidden) for r in result] if isinstance(result, list) else mask(result, hidden)
    return shown


class WorkflowSubmitResource(EngineResource):
    # Any service token; it needs the submit scope of every actor in the workflow (checked in _submit).
    access = {"POST": Access(None, users=False)}
    endpoints = {"POST": Endpoint(
        "Submit a chain, group or chord", TAG, operation_id="submitWorkflow", body=WorkflowBody, response=WorkflowAccepted, status=202,
        also=(200,), errors=(422, 503),
        description="Every task is validated against its actor's arguments before anything is enqueued. "
                    "200 when the idempotency key named an existing workflow.",
    )}

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = await read_json_object(req)
        resp.media, created = await run_blocking(_submit, body, self.engine(), caller_of(req))
        resp.status = falcon.HTTP_202 if created else falcon.HTTP_200


class WorkflowResource(EngineResource):
    access = {"GET": Access("tasks:read", users=False)}
    endpoints = {"GET": Endpoint("A workflow: state, counts, progress, result and a page of its tasks", TAG,
                                 operation_id="getWorkflow", query=WorkflowMembersQuery, response=WorkflowRecord, errors=(400, 404))}

    async def on_get(self, req: falcon.Request, resp: falcon.Response, workflow_id: str) -> None:
        query = self.endpoints["GET"].parse_query(req)
        record = await run_blocking(workflow.get, check_workflow_id(workflow_id), offset=query.start,
                                    limit=query.limit, engine=self.engine())
        following = query.start + query.limit
        resp.media = {**shown_to(record, caller_of(req)),
                      "next_cursor": str(following) if query.limit and following < record["total"] else None}


class WorkflowCancelResource(EngineResource):
    access = {"POST": Access("tasks:control", users=False, audit=True)}
    endpoints = {"POST": Endpoint("Cancel every task of a workflow that has not finished", TAG,
                                  operation_id="cancelWorkflow", response=WorkflowCancelled, errors=(400, 404, 409), body_required=False)}

    async def on_post(self, req: falcon.Request, resp: falcon.Response, workflow_id: str) -> None:
        resp.media = await run_blocking(workflow.cancel, check_workflow_id(workflow_id), engine=self.engine())


class WorkflowRetryResource(EngineResource):
    access = {"POST": Access("tasks:control", users=False, audit=True)}
    endpoints = {"POST": Endpoint("Re-run the failed tasks of a workflow and what follows them", TAG,
                                  operation_id="retryWorkflow", response=WorkflowRetried, status=202, errors=(400, 404, 409), body_required=False)}

    async def on_post(self, req: falcon.Request, resp: falcon.Response, workflow_id: str) -> None:
        resp.media = await run_blocking(workflow.retry, check_workflow_id(workflow_id), engine=self.engine())
        resp.status = falcon.HTTP_202

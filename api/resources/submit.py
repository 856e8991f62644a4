"""Submitting tasks: one endpoint per domain task, and bulk submission of any task.

A submit endpoint is generic: it names an actor, and its body is that
actor's ``args_model`` plus the submission options (priority, delay_seconds
or eta, idempotency_key), flat. The actor is looked up on every request, in
the task registry and in the engine's broker, so an endpoint whose domain
module is not imported (or was imported after the engine was built) answers
503 rather than failing to mount, and works as soon as it is.
"""

from __future__ import annotations

import functools
from typing import Optional

import falcon
from pydantic import BaseModel

from api.blocking import run_blocking
from api.errors import ApiError
from api.models import OPTION_FIELDS, Accepted, BulkAccepted, BulkBody, SubmitOptions, submission_model
from api.resources import EngineProvider, status_url
from api.validation import Endpoint, operation_id
from pipeline import client
from pipeline.task import REGISTRY

TAG = "submit"

@functools.lru_cache(maxsize=None)
def _model_of(actor: str) -> type[BaseModel]:
    """Built once per actor (a declared task never changes within a process)."""
    return submission_model(REGISTRY[actor])


class SubmitResource:
    roles = {"POST": "submit"}

    def __init__(self, engine: EngineProvider, actor: str):
        self.engine = engine
        self.actor = actor

    def _model(self) -> Optional[type[BaseModel]]:
        return _model_of(self.actor) if self.actor in REGISTRY else None

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        model = self._model()
        note = "" if model else f" (not available: `{self.actor}` is not declared in this API process)"
        return {"POST": Endpoint(
            f"Submit {self.actor}{note}", TAG, operation_id=operation_id("submit", self.actor), body=model or SubmitOptions, response=Accepted, status=202,
            errors=(503,),
            description=f"The body holds `{self.actor}`'s keyword arguments and the submission options. "
                        "The same `idempotency_key` within its TTL returns the first task.",
        )}

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        engine = self.engine()
        if self._model() is None or self.actor not in engine.broker.actors:
            raise ApiError(503, "Actor not available",
                           f"{self.actor} is not declared in this API process (its task module is not imported)")
        body = await self.endpoints["POST"].parse_body(req)
        kwargs = body.model_dump(mode="json", exclude=set(OPTION_FIELDS), exclude_unset=True)
        task_id, state = await run_blocking(self._submit, engine, kwargs, body)
        resp.status = falcon.HTTP_202
        resp.media = {"task_id": task_id, "state": state, "status_url": status_url(task_id)}

    def _submit(self, engine, kwargs: dict, body) -> tuple[str, str]:
        task_id = client.submit(self.actor, kwargs=kwargs, engine=engine, **body.client_options())
        if body.idempotency_key:  # an earlier task may have been returned, in any state
            return task_id, client.get_record(task_id, engine=engine)["state"]
        return task_id, "PENDING"


class BulkSubmitResource:
    roles = {"POST": "submit"}
    endpoints = {"POST": Endpoint(
        "Submit up to 1,000 tasks of any actors at once", TAG, operation_id="submitBulk", body=BulkBody, response=BulkAccepted, status=202,
        errors=(503,),
        description="All are validated first (errors name `tasks.<index>.<field>`), recorded in one Redis "
                    "pipeline and published in one AMQP transaction: all are accepted, or none.",
    )}

    def __init__(self, engine: EngineProvider):
        self.engine = engine

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = await self.endpoints["POST"].parse_body(req)
        submissions = [
            client.Submission(
                actor=item.actor, kwargs=item.kwargs, priority=item.priority, eta=item.eta, queue=item.queue,
                delay_ms=None if item.delay_seconds is None else int(item.delay_seconds * 1000),
            )
            for item in body.tasks
        ]
        ids = await run_blocking(client.submit_many, submissions, engine=self.engine())
        resp.status = falcon.HTTP_202
        resp.media = {"task_ids": ids, "count": len(ids)}

"""Submitting tasks: one endpoint per domain task, and bulk submission of any task.

A submit endpoint is generic: it names an actor, and its body is that
actor's ``args_model`` plus the submission options (priority, delay_seconds
or eta, idempotency_key, user_id/tenant_id), flat. The actor is looked up on
every request, in the task registry and in the engine's broker, so an
endpoint whose domain module is not imported (or was imported after the
engine was built) answers 503 rather than failing to mount, and works as
soon as it is.

Who may submit: a service token with ``tasks:submit:<actor>`` (or the actor's
own scope, or ``tasks:submit:*``), for any user it names; a user token only
actors whose policy sets ``user_quota``, for its own user, at most that many
per window (429 with Retry-After beyond), at most ``CLAW_USER_MAX_PRIORITY``.
An endpoint may check the submission further (*check*: e.g. that the
conversation is the user's); the worker checks again where it cannot race.
Every task records the token's name as ``submitted_by``.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Optional

import falcon
from pydantic import BaseModel

from api.auth import Access, caller_of
from api.blocking import run_blocking
from api.caller import Caller
from api.errors import ApiError
from api.models import OPTION_FIELDS, Accepted, BulkAccepted, BulkBody, SubmitOptions, submission_model
from api.resources import EngineProvider, EngineResource, status_url
from api.scopes import SUBMIT_PREFIX, submit_scopes
from api.validation import Endpoint, operation_id
from pipeline import client
from pipeline.owners import Owner
from pipeline.task import REGISTRY, policy_of

TAG = "submit"
#: ``check(caller, kwargs, owner)`` runs in the thread pool before the submission; it raises ApiError to refuse.
SubmissionCheck = Callable[[Caller, dict, Owner], None]

@functools.lru_cache(maxsize=None)
def _model_of(actor: str) -> type[BaseModel]:
    """Built once per actor (a declared task never changes within a process)."""
    return submission_model(REGISTRY[actor])


class SubmitResource:
    def __init__(self, engine: EngineProvider, actor: str, check: Optional[SubmissionCheck] = None):
        self.engine = engine
        self.actor = actor
        self.check = check

    @property
    def access(self) -> dict[str, Access]:
        spec = REGISTRY.get(self.actor)
        return {"POST": Access(SUBMIT_PREFIX + self.actor, users=spec is not None and spec.policy.user_quota is not None)}

    def _model(self) -> Optional[type[BaseModel]]:
        return _model_of(self.actor) if self.actor in REGISTRY else None

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        model = self._model()
        note = "" if model else f" (not available: `{self.actor}` is not declared in this API process)"
        for_users = self.access["POST"].users
        return {"POST": Endpoint(
            f"Submit {self.actor}{note}", TAG, operation_id=operation_id("submit", self.actor), body=model or SubmitOptions, response=Accepted, status=202,
            errors=(503, *((404,) if self.check else ()), *((429,) if for_users else ())),
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
        options = {**body.client_options(), **self._owner_options(caller_of(req), engine, body)}
        task_id, state = await run_blocking(self._submit, engine, caller_of(req), kwargs, options)
        resp.status = falcon.HTTP_202
        resp.media = {"task_id": task_id, "state": state, "status_url": status_url(task_id)}

    def _owner_options(self, caller: Caller, engine, body) -> dict:
        """Owner, submitter and (for a user token) the capped priority."""
        if not caller.is_user:
            return {"submitted_by": caller.name}
        if body.user_id not in (None, caller.user_id) or body.tenant_id not in (None, caller.tenant_id):
            raise ApiError(403, "Forbidden", "user_id, tenant_id: a user token submits for its own user only",
                           fields={"user_id": "must be your own (or left out)"})
        cap = engine.settings.user_max_priority
        if body.priority is not None and body.priority > cap:
            raise ApiError(422, "Invalid request body", f"priority: at most {cap} for a user token (CLAW_USER_MAX_PRIORITY)",
                           fields={"priority": f"at most {cap} for a user token"})
        priority = min(cap, policy_of(engine.broker, self.actor).priority if body.priority is None else body.priority)
        return {"user_id": caller.user_id, "tenant_id": caller.tenant_id, "submitted_by": caller.name, "priority": priority}

    def _submit(self, engine, caller: Caller, kwargs: dict, options: dict) -> tuple[str, str]:
        owner = Owner(options["user_id"], options["tenant_id"], options["submitted_by"])
        if self.check is not None:
            self.check(caller, kwargs, owner)
        if caller.is_user:
            self._take_quota(engine, caller)
        task_id = client.submit(self.actor, kwargs=kwargs, engine=engine, **options)
        if options["idempotency_key"]:  # an earlier task may have been returned, in any state
            return task_id, client.get_record(task_id, engine=engine)["state"]
        return task_id, "PENDING"

    def _take_quota(self, engine, caller: Caller) -> None:
        quota = policy_of(engine.broker, self.actor).user_rate
        if quota is None:
            raise ApiError(403, "Forbidden", f"user tokens may not submit {self.actor}")
        wait_ms = engine.store.take_submit_quota(self.actor, caller.user_id, *quota)
        if wait_ms:
            raise ApiError(429, "Too Many Requests",
                           f"this user submitted {quota[0]} {self.actor} tasks in the last {quota[1] // 1000} s; "
                           f"retry in {math.ceil(wait_ms / 1000)} s", headers={"Retry-After": str(math.ceil(wait_ms / 1000))})


class BulkSubmitResource(EngineResource):
    # Any service token may call it; each task needs its actor's submit scope (checked below).
    access = {"POST": Access(None, users=False)}
    endpoints = {"POST": Endpoint(
        "Submit up to 1,000 tasks of any actors at once", TAG, operation_id="submitBulk", body=BulkBody, response=BulkAccepted, status=202,
        errors=(503,),
        description="All are validated first (errors name `tasks.<index>.<field>`), recorded in one Redis "
                    "pipeline and published in one AMQP transaction: all are accepted, or none. Each task needs "
                    "its actor's submit scope (403 naming `tasks.<index>.actor` otherwise).",
    )}

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = await self.endpoints["POST"].parse_body(req)
        caller = caller_of(req)
        refused = {f"tasks.{index}.actor": f"needs {submit_scopes(item.actor)}"
                   for index, item in enumerate(body.tasks) if not caller.has(SUBMIT_PREFIX + item.actor)}
        if refused:
            raise ApiError(403, "Forbidden", f"token {caller.name!r} may not submit every one of these tasks",
                           fields=refused)
        submissions = [
            client.Submission(
                actor=item.actor, kwargs=item.kwargs, priority=item.priority, eta=item.eta, queue=item.queue,
                delay_ms=None if item.delay_seconds is None else int(item.delay_seconds * 1000),
                user_id=item.user_id, tenant_id=item.tenant_id, submitted_by=caller.name,
            )
            for item in body.tasks
        ]
        ids = await run_blocking(client.submit_many, submissions, engine=self.engine())
        resp.status = falcon.HTTP_202
        resp.media = {"task_ids": ids, "count": len(ids)}

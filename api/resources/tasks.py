"""Tasks: status, list, cancel, retry, stats and dead letters (the event stream: :mod:`api.resources.events`).

Every read is O(1) or O(page) in Redis round trips whatever the number of
stored tasks (see :mod:`pipeline.state.store`); queue depths come from
RabbitMQ through a short cache (:class:`pipeline.queues.QueueStatsCache`).
A user token sees its own user's tasks only: the status of another's is a
404, its list and counts come from its user's own index.
"""

from __future__ import annotations

from typing import Any

import falcon

from api.async_redis import LoopRedis
from api.auth import Access, caller_of
from api.blocking import run_blocking
from api.errors import ApiError
from api.models import (
    CancelOutcome,
    DeadLetters,
    DeadQuery,
    ListQuery,
    RequeueBody,
    Requeued,
    RetryAccepted,
    StatsAnswer,
    TaskPage,
    TaskRecord,
    UserStats,
)
from api.resources import EngineProvider, EngineResource, known_actors, known_queues, queue_of, status_url
from api.validation import Endpoint, check_task_id
from pipeline import client
from pipeline.errors import BrokerUnavailable
from pipeline.dead_letters import requeue_dead
from pipeline.queues import QueueStatsCache

TAG = "tasks"


def _page(engine, query, **filters) -> tuple[list[dict], Any]:
    try:
        return engine.store.list(limit=query.limit, cursor=query.cursor, **filters)
    except ValueError as exc:
        raise ApiError(400, "Invalid query parameter", f"cursor: {exc}", fields={"cursor": str(exc)}) from None


class TaskStatusResource:
    access = {"GET": Access("tasks:read", users=True)}
    endpoints = {"GET": Endpoint("A task's record (with its result once finished)", TAG, operation_id="getTaskStatus", response=TaskRecord,
                                 errors=(400, 404))}

    def __init__(self, engine: EngineProvider):
        self.engine = engine
        self.redis = LoopRedis()

    async def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        task_id = check_task_id(task_id)
        engine = self.engine()
        caller = caller_of(req)
        record = await engine.store.get_async(self.redis.client(engine.settings.redis_url), task_id)
        if not caller.may_read(record):
            raise client.not_found(task_id)  # another user's task: as if there were none
        resp.media = caller.view(record)


class TaskListResource(EngineResource):
    access = {"GET": Access("tasks:read", users=True)}
    endpoints = {"GET": Endpoint("Tasks, newest first, filtered and paged", TAG, operation_id="listTasks", query=ListQuery, response=TaskPage,
                                 description="A user token lists its own user's tasks (user_id is set for it).")}

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = self.endpoints["GET"].parse_query(req)
        caller = caller_of(req)
        if query.since is not None and query.until is not None and query.since > query.until:
            raise ApiError(400, "Invalid query parameter", "since: must not be after until",
                           fields={"since": "must not be after until"})
        if caller.is_user and query.user_id not in (None, caller.user_id):
            raise ApiError(403, "Forbidden", "user_id: a user token lists its own user's tasks only",
                           fields={"user_id": "must be your own (or left out)"})
        user_id = caller.user_id if caller.is_user else query.user_id
        tasks, cursor = await run_blocking(_page, self.engine(), query, state=query.state, actor=query.actor,
                                           queue=query.queue, since=query.since, until=query.until, user_id=user_id)
        resp.media = {"tasks": [caller.view(task) for task in tasks], "next_cursor": cursor}


class TaskCancelResource(EngineResource):
    access = {"POST": Access("tasks:control", users=False, audit=True)}
    endpoints = {"POST": Endpoint(
        "Cancel a task: PENDING/RETRY never run, STARTED is interrupted", TAG, operation_id="cancelTask", response=CancelOutcome,
        errors=(400, 404, 409),
    )}

    async def on_post(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        resp.media = await run_blocking(client.cancel, check_task_id(task_id), engine=self.engine())


class TaskRetryResource(EngineResource):
    access = {"POST": Access("tasks:control", users=False, audit=True)}
    endpoints = {"POST": Endpoint(
        "Re-run a FAILURE or CANCELLED task as a new task", TAG, operation_id="retryTask", response=RetryAccepted, status=202,
        errors=(400, 404, 409, 503),
    )}

    async def on_post(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        original = check_task_id(task_id)
        new_id = await run_blocking(client.retry, original, engine=self.engine(), submitted_by=caller_of(req).name)
        req.context.audit = {"new_task_id": new_id}
        resp.status = falcon.HTTP_202
        resp.media = {"task_id": new_id, "state": "PENDING", "status_url": status_url(new_id), "retry_of": original}


class TaskStatsResource:
    """Counts, runtimes, throughput and queue depths.

    Four pipelined Redis round trips whatever the number of tasks; when
    RabbitMQ does not answer, the Redis half is still returned (``broker`` is
    null and ``broker_error`` says why), since that is when operators look.
    """

    access = {"GET": Access("tasks:read", users=True)}
    endpoints = {"GET": Endpoint("Counts per state, actor and queue; runtimes; throughput; queue depths", TAG, operation_id="getTaskStats",
                                 response=StatsAnswer, description="A user token gets its own user's counts per state "
                                                                   "(`UserStats`: `user_id`, `states`).")}

    def __init__(self, engine: EngineProvider, queue_stats: QueueStatsCache):
        self.engine = engine
        self.queue_stats = queue_stats

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        caller = caller_of(req)
        if caller.is_user:
            states = await run_blocking(self.engine().store.count_for_owner, caller.user_id)
            resp.media = UserStats(user_id=caller.user_id, states=states).model_dump()
            return
        resp.media = await run_blocking(self.stats)

    def stats(self) -> dict[str, Any]:
        engine = self.engine()
        actors, queues = known_actors(), known_queues(engine)
        counts = engine.store.count_by_state(actors, queues)
        runtimes = engine.store.runtimes(actors)
        broker, broker_error = {}, None
        try:
            broker = self.queue_stats.get(queues)
        except BrokerUnavailable as exc:
            broker_error = str(exc)
        return {
            "states": counts["states"],
            "actors": {
                name: {"queue": queue_of(engine, name), "states": counts["actors"][name], "runtime_ms": runtimes[name]}
                for name in actors
            },
            "queues": {name: {"states": counts["queues"][name], "broker": broker.get(name)} for name in queues},
            "workers_online": engine.workers.count(),
            "throughput": engine.store.throughput(),
            "broker_error": broker_error,
        }


class DeadLetterResource:
    access = {"GET": Access("tasks:read", users=False)}
    endpoints = {"GET": Endpoint(
        "Failed tasks (newest first), dead-letter queue depths and undecodable messages", TAG, operation_id="listDeadLetters",
        query=DeadQuery, response=DeadLetters,
    )}

    def __init__(self, engine: EngineProvider, queue_stats: QueueStatsCache):
        self.engine = engine
        self.queue_stats = queue_stats

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page = await run_blocking(self.page, self.endpoints["GET"].parse_query(req))
        caller = caller_of(req)
        page["tasks"] = [caller.view(task) for task in page["tasks"]]
        if not caller.has("tasks:sensitive"):  # the first bytes of a body nobody could decode may be anyone's data
            page["undecodable"] = [{k: v for k, v in entry.items() if k != "head"} for entry in page["undecodable"]]
        resp.media = page

    def page(self, query: DeadQuery) -> dict[str, Any]:
        engine = self.engine()
        tasks, cursor = _page(engine, query, state="FAILURE", actor=query.actor, queue=query.queue)
        queues = [query.queue] if query.queue else known_queues(engine)
        try:
            depths = {name: stats["dead_lettered"] for name, stats in self.queue_stats.get(queues).items()}
        except BrokerUnavailable:
            depths = dict.fromkeys(queues)
        return {"tasks": tasks, "next_cursor": cursor, "dead_lettered": depths, "undecodable": engine.store.undecodable()}


class DeadLetterRequeueResource(EngineResource):
    access = {"POST": Access("tasks:control", users=False, audit=True)}
    endpoints = {"POST": Endpoint(
        "Move dead-lettered messages back to their queue and their tasks back to PENDING", TAG, operation_id="requeueDeadLetters",
        body=RequeueBody, response=Requeued, errors=(503,),
        description="Tasks that were retried by hand meanwhile, or that finished otherwise, stay dead-lettered.",
    )}

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = await self.endpoints["POST"].parse_body(req)
        engine = self.engine()
        queues = known_queues(engine)
        if body.queue not in queues:
            raise ApiError(422, "Invalid request body", f"queue: unknown queue {body.queue!r}",
                           fields={"queue": f"must be one of {', '.join(queues)}"})
        requeued = await run_blocking(requeue_dead, engine, body.queue, body.task_ids)
        req.context.audit = {"queue": body.queue, "requeued": requeued}
        resp.media = {"queue": body.queue, "requeued": requeued}

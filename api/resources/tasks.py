"""Tasks: status, list, cancel, retry, stats, dead letters and the event stream.

Every read is O(1) or O(page) in Redis round trips whatever the number of
stored tasks (see :mod:`pipeline.state.store`); queue depths come from
RabbitMQ through a short cache (:class:`pipeline.queues.QueueStatsCache`).
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import falcon

from api.errors import ApiError
from api.resources import EngineProvider, known_actors, known_queues, queue_of, status_url
from api.validation import (
    CancelOutcome,
    DeadLetters,
    DeadQuery,
    Endpoint,
    ListQuery,
    RequeueBody,
    Requeued,
    RetryAccepted,
    Stats,
    TaskPage,
    TaskRecord,
    check_task_id,
)
from pipeline import client
from pipeline.errors import BrokerUnavailable
from pipeline.dead_letters import requeue_dead
from pipeline.queues import QueueStatsCache
from pipeline.state.keys import FINAL_STATES

TAG = "tasks"


def _page(engine, query, **filters) -> tuple[list[dict], Any]:
    try:
        return engine.store.list(limit=query.limit, cursor=query.cursor, **filters)
    except ValueError as exc:
        raise ApiError(400, "Invalid query parameter", f"cursor: {exc}", fields={"cursor": str(exc)}) from None


class TaskStatusResource:
    roles = {"GET": "read"}
    endpoints = {"GET": Endpoint("A task's record (with its result once finished)", TAG, response=TaskRecord,
                                 errors=(400, 404))}

    def __init__(self, engine: EngineProvider):
        self.engine = engine

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        resp.media = client.get_record(check_task_id(task_id), engine=self.engine())


class TaskListResource:
    roles = {"GET": "read"}
    endpoints = {"GET": Endpoint("Tasks, newest first, filtered and paged", TAG, query=ListQuery, response=TaskPage)}

    def __init__(self, engine: EngineProvider):
        self.engine = engine

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = self.endpoints["GET"].parse_query(req)
        if query.since is not None and query.until is not None and query.since > query.until:
            raise ApiError(400, "Invalid query parameter", "since: must not be after until",
                           fields={"since": "must not be after until"})
        tasks, cursor = _page(self.engine(), query, state=query.state, actor=query.actor, queue=query.queue,
                              since=query.since, until=query.until)
        resp.media = {"tasks": tasks, "next_cursor": cursor}


class TaskCancelResource:
    roles = {"POST": "admin"}
    endpoints = {"POST": Endpoint(
        "Cancel a task: PENDING/RETRY never run, STARTED is interrupted", TAG, response=CancelOutcome,
        errors=(400, 404, 409),
    )}

    def __init__(self, engine: EngineProvider):
        self.engine = engine

    def on_post(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        resp.media = client.cancel(check_task_id(task_id), engine=self.engine())


class TaskRetryResource:
    roles = {"POST": "admin"}
    endpoints = {"POST": Endpoint(
        "Re-run a FAILURE or CANCELLED task as a new task", TAG, response=RetryAccepted, status=202,
        errors=(400, 404, 409, 503),
    )}

    def __init__(self, engine: EngineProvider):
        self.engine = engine

    def on_post(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        original = check_task_id(task_id)
        new_id = client.retry(original, engine=self.engine())
        resp.status = falcon.HTTP_202
        resp.media = {"task_id": new_id, "state": "PENDING", "status_url": status_url(new_id), "retry_of": original}


class TaskStatsResource:
    """Counts, runtimes, throughput and queue depths.

    Four pipelined Redis round trips whatever the number of tasks; when
    RabbitMQ does not answer, the Redis half is still returned (``broker`` is
    null and ``broker_error`` says why), since that is when operators look.
    """

    roles = {"GET": "read"}
    endpoints = {"GET": Endpoint("Counts per state, actor and queue; runtimes; throughput; queue depths", TAG,
                                 response=Stats)}

    def __init__(self, engine: EngineProvider, queue_stats: QueueStatsCache):
        self.engine = engine
        self.queue_stats = queue_stats

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        engine = self.engine()
        actors, queues = known_actors(), known_queues(engine)
        counts = engine.store.count_by_state(actors, queues)
        runtimes = engine.store.runtimes(actors)
        broker, broker_error = {}, None
        try:
            broker = self.queue_stats.get(queues)
        except BrokerUnavailable as exc:
            broker_error = str(exc)
        resp.media = {
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
    roles = {"GET": "read"}
    endpoints = {"GET": Endpoint(
        "Failed tasks (newest first), dead-letter queue depths and undecodable messages", TAG,
        query=DeadQuery, response=DeadLetters,
    )}

    def __init__(self, engine: EngineProvider, queue_stats: QueueStatsCache):
        self.engine = engine
        self.queue_stats = queue_stats

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = self.endpoints["GET"].parse_query(req)
        engine = self.engine()
        tasks, cursor = _page(engine, query, state="FAILURE", actor=query.actor, queue=query.queue)
        queues = [query.queue] if query.queue else known_queues(engine)
        try:
            depths = {name: stats["dead_lettered"] for name, stats in self.queue_stats.get(queues).items()}
        except BrokerUnavailable:
            depths = dict.fromkeys(queues)
        resp.media = {"tasks": tasks, "next_cursor": cursor, "dead_lettered": depths,
                      "undecodable": engine.store.undecodable()}


class DeadLetterRequeueResource:
    roles = {"POST": "admin"}
    endpoints = {"POST": Endpoint(
        "Move dead-lettered messages back to their queue and their tasks back to PENDING", TAG,
        body=RequeueBody, response=Requeued, errors=(503,),
        description="Tasks that were retried by hand meanwhile, or that finished otherwise, stay dead-lettered.",
    )}

    def __init__(self, engine: EngineProvider):
        self.engine = engine

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = self.endpoints["POST"].parse_body(req)
        engine = self.engine()
        queues = known_queues(engine)
        if body.queue not in queues:
            raise ApiError(422, "Invalid request body", f"queue: unknown queue {body.queue!r}",
                           fields={"queue": f"must be one of {', '.join(queues)}"})
        resp.media = {"queue": body.queue, "requeued": requeue_dead(engine, body.queue, body.task_ids)}


class TaskEventsResource:
    """Server-sent events: the record, then each state/progress event until a final state.

    The stream subscribes before it reads the record, so no event can fall
    between the two; a keep-alive comment every *keepalive* seconds lets a
    gone client be noticed (the write fails and the generator is closed), and
    the stream ends after *max_seconds* anyway (EventSource reconnects), so a
    worker thread is never held forever.
    """

    roles = {"GET": "read"}
    endpoints = {"GET": Endpoint(
        "Server-sent events of one task until it finishes", TAG, media_type="text/event-stream", errors=(400, 404),
        description="Events: `record` (the full record; first and last), `state`, `progress`, `waiting`; "
                    "comments are keep-alives.",
    )}

    def __init__(self, engine: EngineProvider, keepalive: float = 15.0, max_seconds: float = 600.0):
        self.engine = engine
        self.keepalive = keepalive
        self.max_seconds = max_seconds

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        task_id = check_task_id(task_id)
        client.get_record(task_id, engine=self.engine())  # 404 before the stream starts
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        resp.stream = self.events(task_id)

    def events(self, task_id: str) -> Iterator[bytes]:
        store = self.engine().store
        pubsub = store.redis.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(store.keys.events_channel(task_id))
            pubsub.get_message(ignore_subscribe_messages=False, timeout=5)  # the subscription is live
            record = store.get(task_id)
            yield b"retry: 3000\n\n"
            yield _sse("record", record)
            if record is None or record["state"] in FINAL_STATES:
                return
            yield from self._follow(pubsub, store, task_id)
        finally:
            pubsub.close()

    def _follow(self, pubsub, store, task_id: str) -> Iterator[bytes]:
        deadline = time.monotonic() + self.max_seconds
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=min(1.0, self.keepalive))
            if message is None:
                if time.monotonic() - quiet_since >= self.keepalive:
                    quiet_since = time.monotonic()
                    record = store.get(task_id)  # pub/sub is lossy: never wait on a missed final event
                    if record is None or record["state"] in FINAL_STATES:
                        yield _sse("record", record)
                        return
                    yield b": keep-alive\n\n"
                continue
            quiet_since = time.monotonic()
            event = json.loads(message["data"])
            yield _sse(event.get("type", "message"), event)
            if event.get("type") == "state" and event.get("state") in FINAL_STATES:
                yield _sse("record", store.get(task_id))
                return


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()

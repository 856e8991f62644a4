"""``GET /api/v1/tasks/{task_id}/events``: server-sent events of one task until it finishes.

What a client reads:

* a ``record`` event (the whole record; its ``id`` is the number of state
  changes so far; with ``retry: 3000``, the reconnection delay);
* a ``state`` event per state change, with ``id: <seq>`` (1, 2, 3 ... per task),
  ``progress`` and ``waiting`` events as the worker publishes them (no id);
* a ``: keep-alive`` comment every ``CLAW_API_STREAM_KEEPALIVE_SECONDS`` (15 s)
  on a quiet stream;
* at a final state, the final ``record``; then the stream ends. It also ends
  after ``CLAW_API_STREAM_MAX_SECONDS`` and when the server stops: the
  browser's EventSource reconnects by itself.

A reconnect sends ``Last-Event-ID: <seq>``; the stream then replays every
state change after it from the record's history (pub/sub itself keeps
nothing), sends the latest progress of a running task, and goes on. The
stream subscribes before it reads the record, so nothing falls between the
two; pub/sub can still drop a message (a slow subscriber, a reconnect), so a
gap in the numbers, and every keep-alive, makes it read the history again.

Records and progress are shown as the caller may see them (see
:meth:`api.caller.Caller.view`): a user token streams its own user's tasks
only (another's is a 404 before the stream starts), and a service token
without ``tasks:sensitive`` sees the reply being written as ``***``.

A stream holds no thread: it waits on the process's one Redis subscription
(:mod:`api.streams.hub`). Each process holds at most ``CLAW_API_MAX_STREAMS``;
one more is answered 503 with Retry-After at once, never left hanging.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any, AsyncIterator, Optional

import falcon
from falcon.asgi import SSEvent

from api.auth import Access, caller_of
from api.blocking import run_blocking
from api.caller import Caller
from api.errors import ApiError
from api.models import TaskEvents
from api.resources import EngineProvider
from api.streams.hub import END, EventHub, Subscription
from api.validation import Endpoint, check_task_id, json_dumps
from pipeline import client
from pipeline.registry import REGISTRY
from pipeline.sensitive import mask
from pipeline.settings import Settings
from pipeline.state.keys import FINAL_STATES

TAG = "tasks"
RECONNECT_MS = 3000
#: Seconds a client refused by the stream cap should wait.
CAP_RETRY_AFTER_SECONDS = 5


def _json(data: Any) -> bytes:
    encoded = json_dumps(data)
    return encoded if isinstance(encoded, bytes) else encoded.encode()


def _record(record: Optional[dict], seq: int) -> SSEvent:
    return SSEvent(event="record", data=_json(record), event_id=str(seq))


def _state(event: dict) -> SSEvent:
    return SSEvent(event="state", data=_json(event), event_id=str(event["seq"]))


class TaskEventsResource:
    access = {"GET": Access("tasks:read", users=True)}
    endpoints = {"GET": Endpoint(
        "Server-sent events of one task until it finishes", TAG, operation_id="streamTaskEvents",
        media_type="text/event-stream", events=TaskEvents,
        errors=(400, 404, 503),
        description="Events: `record` (the full record; first and last), `state` (with `id`: the change's number), "
                    "`progress`, `waiting`; comments are keep-alives. Reconnect with `Last-Event-ID` to get every "
                    "state change missed meanwhile. 503 with Retry-After when the process holds its maximum of streams.",
    )}

    def __init__(self, engine: EngineProvider, settings: Settings, hub: Optional[EventHub] = None):
        self.engine = engine
        self.hub = hub or EventHub(settings.redis_url)
        self.keepalive = settings.api_stream_keepalive_seconds
        self.max_seconds = settings.api_stream_max_seconds
        self.max_streams = settings.api_max_streams

    async def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        task_id = check_task_id(task_id)
        caller = caller_of(req)
        store = self.engine().store
        if not caller.may_read(await run_blocking(store.get, task_id)):  # 404 before the stream starts
            raise client.not_found(task_id)
        self._check_cap()
        gone = req.scope.get("claw.client_gone")
        subscription = None
        if gone is not None:
            # The stream takes its place before its answer starts, with no await between the cap's check and
            # the subscription on a connected hub: requests arriving while earlier streams start see them counted.
            subscription = await self.hub.subscribe(store.keys.events_channel(task_id))
            # Resolved when the client leaves or the request ends: the stream's place is free at once, even when
            # Falcon stops iterating the stream without closing it (or never starts it).
            gone.add_done_callback(lambda _: subscription.release())
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")  # nginx: pass events on at once
        resp.sse = self.events(task_id, _last_event_id(req.get_header("Last-Event-ID")), caller=caller,
                               subscription=subscription)

    def _check_cap(self) -> None:
        if self.hub.open_streams >= self.max_streams:
            raise ApiError(503, "Too many streams",
                           f"this API process holds its maximum of {self.max_streams} open event streams "
                           "(CLAW_API_MAX_STREAMS); retry shortly", headers={"Retry-After": str(CAP_RETRY_AFTER_SECONDS)})

    async def events(self, task_id: str, last_seen: Optional[int] = None, *, caller: Caller,
                     subscription: Optional[Subscription] = None) -> AsyncIterator[SSEvent]:
        """The stream as *caller* may see it; *last_seen* is the client's Last-Event-ID; *subscription* to the
        task's channel, when the request already holds one.

        The first event carries the reconnection delay (``retry``), so that a
        stream of one event (a finished task) is one write.
        """
        first = True
        async with contextlib.aclosing(self._events(task_id, last_seen, subscription, _Shown(caller))) as events:
            async for event in events:
                if first:
                    event.retry, first = RECONNECT_MS, False
                yield event

    async def _events(self, task_id: str, last_seen: Optional[int], subscription: Optional[Subscription],
                      shown: "_Shown") -> AsyncIterator[SSEvent]:
        store = self.engine().store
        if subscription is None:
            subscription = await self.hub.subscribe(store.keys.events_channel(task_id))
        try:
            record, history = await run_blocking(store.get_with_history, task_id)
            shown.learn(record)
            if record is None or last_seen is None or last_seen > len(history):
                yield _record(shown.record(record), len(history))
                sent = len(history)
            else:  # a reconnect: the changes it missed, then where a running task stands
                for event in history[last_seen:]:
                    yield _state(event)
                sent = len(history)
                if record["state"] == "STARTED" and record.get("progress"):
                    yield SSEvent(event="progress", data=_json({"type": "progress", "progress": shown.progress(record["progress"])}))
                if record["state"] in FINAL_STATES:
                    yield _record(shown.record(record), sent)
            if record is None or record["state"] in FINAL_STATES:
                return
            async for event in self._follow(task_id, subscription, sent, shown):
                yield event
        finally:
            await subscription.close()

    async def _follow(self, task_id: str, subscription, sent: int, shown: "_Shown") -> AsyncIterator[SSEvent]:
        store = self.engine().store
        deadline = time.monotonic() + self.max_seconds
        while (remaining := deadline - time.monotonic()) > 0:
            message = await subscription.next_message(min(self.keepalive, remaining))
            if message is END:
                return
            if message is None or (event := json.loads(message)).get("type") == "state" and event.get("seq", 0) > sent + 1:
                # Quiet for a while, or a numbered change was skipped: pub/sub may have lost one.
                record, history = await run_blocking(store.get_with_history, task_id)
                for missed in history[sent:]:
                    yield _state(missed)
                sent = max(sent, len(history))
                if record is None or record["state"] in FINAL_STATES:
                    yield _record(shown.record(record), sent)
                    return
                if message is None:
                    yield SSEvent(comment="keep-alive")
                continue
            if event.get("type") == "state":
                if event.get("seq", sent + 1) <= sent:
                    continue  # already sent from the history
                sent = event.get("seq", sent)
                yield _state(event) if "seq" in event else SSEvent(event="state", data=message)
                if event.get("state") in FINAL_STATES:
                    record = await run_blocking(store.get, task_id)
                    yield _record(shown.record(record), sent)
                    return
            elif event.get("type") == "progress" and shown.masks_output:
                yield SSEvent(event="progress", data=_json({**event, "progress": shown.progress(event.get("progress"))}))
            else:
                yield SSEvent(event=event.get("type", "message"), data=message)


class _Shown:
    """What one stream's caller sees of the task: decided once, from the record's owner and actor."""

    def __init__(self, caller: Caller):
        self.caller = caller
        self.output: tuple[str, ...] = ()

    def learn(self, record: Optional[dict]) -> None:
        if record is not None and not self.caller.sees_sensitive(record):
            spec = REGISTRY.get(record.get("actor", ""))
            self.output = spec.sensitive_output if spec is not None else ()

    @property
    def masks_output(self) -> bool:
        return bool(self.output)

    def record(self, record: Optional[dict]) -> Optional[dict]:
        return self.caller.view(record)

    def progress(self, progress: Any) -> Any:
        return mask(progress, self.output)


def _last_event_id(header: Optional[str]) -> Optional[int]:
    """The state-change number a reconnecting client saw last (anything else: a fresh start)."""
    if header and header.strip().isdigit() and len(header.strip()) < 10:
        return int(header.strip())
    return None

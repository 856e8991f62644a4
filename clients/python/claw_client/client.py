"""``Client`` and ``AsyncClient``: every API operation, plus what an API description cannot say.

Every operation of the API is a method (generated, see ``generate.py``:
``get_task_status``, ``submit_generate_ai_response``, ``list_schedules``...)
returning its typed model. On top of those, both clients have:

* ``submit(actor, **arguments)`` for any actor with a submit endpoint;
* ``get``, ``cancel``, ``retry`` (short names for the task operations);
* ``list(...)``, ``dead_letters(...)``, ``notifications(...)``,
  ``conversation_messages(...)``: every item, page after page (the API's
  one pagination convention: ``limit`` + ``cursor`` -> ``next_cursor``);
* ``stream(task_id)``: the task's events as they come, resuming with
  ``Last-Event-ID`` when the connection drops or the server ends the stream,
  until the task finishes;
* ``wait(task_id, timeout=)``: the final record, from the event stream (no
  polling); ``result(task_id, timeout=)``: its result, or TaskFailed.

Requests refused with 503 or 429 are sent again after their ``Retry-After``
(exponential backoff otherwise), and so are 502/504 and lost connections when
that cannot do a thing twice: reads, and submissions, which get an idempotency
key unless you give one. Each call carries an ``X-Request-ID`` (the same over
its retries), which errors report and the server's logs show.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterator, Optional, Union

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse, connect_sse

from claw_client import _generated as models
from claw_client._generated import (
    SUBMIT_PATHS,
    Accepted,
    ConversationMessage,
    InboxItem,
    ProgressEvent,
    StateEvent,
    TaskRecord,
    WaitingEvent,
    _AsyncOperations,
    _Operations,
)
from claw_client._transport import (
    RETRY_STATUSES,
    Retries,
    encode,
    error_from,
    may_repeat,
    new_idempotency_key,
    new_request_id,
    parse,
    query_params,
)
from claw_client.errors import InvalidRequest, TaskFailed, Unavailable, WaitTimeout

__version__ = "1.0.0"
FINAL_STATES = frozenset({"SUCCESS", "FAILURE", "CANCELLED"})
#: Longest wait for the next line of an event stream: the server sends a keep-alive every 15 s.
STREAM_READ_TIMEOUT = 45.0


@dataclass(frozen=True)
class TaskEvent:
    """One event of a task's stream: ``event`` is record, state, progress or waiting; ``id`` the state change's number."""

    event: str
    id: Optional[str]
    data: Union[TaskRecord, StateEvent, ProgressEvent, WaitingEvent, None]

    @property
    def final(self) -> bool:
        """The task's last event: its final record."""
        return self.event == "record" and isinstance(self.data, TaskRecord) and self.data.state in FINAL_STATES


_EVENT_MODELS = {"state": StateEvent, "progress": ProgressEvent, "waiting": WaitingEvent}


def _event(sse: ServerSentEvent) -> TaskEvent:
    data = sse.json() if sse.data else None
    if sse.event == "record":
        parsed = TaskRecord.model_validate(data) if data is not None else None
    else:
        parsed = _EVENT_MODELS[sse.event].model_validate(data) if sse.event in _EVENT_MODELS else data
    return TaskEvent(sse.event, sse.id or None, parsed)


#: What sending a request came to: the server's response, or the error that stopped it.
_Outcome = Union[httpx.Response, httpx.TransportError]


def _answer(outcome: _Outcome) -> httpx.Response:
    """The final outcome of a call: its response, or the error it stands for raised."""
    if isinstance(outcome, httpx.TransportError):
        raise outcome
    if outcome.is_error:
        raise error_from(outcome)
    return outcome


class _Shared:
    """Settings and request building common to both clients."""

    def _configure(self, base_url: str, token: Optional[str], timeout: float, retries: Retries,
                   idempotency_keys: bool, headers: Optional[dict[str, str]]) -> dict[str, Any]:
        self.retries = retries
        self.idempotency_keys = idempotency_keys
        sent = {"User-Agent": f"claw-client/{__version__}", "Accept": "application/json", **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        return {"base_url": base_url.rstrip("/"), "headers": sent, "timeout": timeout}

    def _body(self, body: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        if body is None:
            return None
        if self.idempotency_keys and "idempotency_key" in body and body["idempotency_key"] is None:
            body = {**body, "idempotency_key": new_idempotency_key()}
        return encode(body)

    def _pause_before_resending(self, attempt: int, method: str, body: Optional[dict[str, Any]],
                                outcome: _Outcome) -> Optional[float]:
        """Seconds to wait before sending attempt *attempt* again, or None when *outcome* is the answer
        (or the error) to give: the attempts are used up, or sending again could do the thing twice."""
        if attempt + 1 >= self.retries.attempts:
            return None
        if isinstance(outcome, httpx.TransportError):
            if isinstance(outcome, httpx.ConnectError) or may_repeat(method, body, None):
                return self.retries.delay(attempt)
            return None
        if outcome.status_code in RETRY_STATUSES and may_repeat(method, body, outcome.status_code):
            return self.retries.delay(attempt, outcome)
        return None

    @staticmethod
    def _submit_method(actor: str) -> str:
        operation = "submit" + "".join(part.title() for part in actor.split("_"))
        if operation not in SUBMIT_PATHS:
            known = ", ".join(sorted(SUBMIT_PATHS))
            raise InvalidRequest(400, "Unknown actor", f"no submit endpoint for {actor!r} (have: {known}); "
                                 "use submit_bulk for other actors", fields={"actor": "no submit endpoint"})
        return "submit_" + "_".join(part for part in actor.split("_"))


class Client(_Shared, _Operations):
    """The synchronous client. ``token``: a service token or a user token (both are bearer tokens).

    Use it as a context manager, or call ``close()``.
    """

    def __init__(self, base_url: str, token: Optional[str] = None, *, timeout: float = 30.0,
                 retries: Retries = Retries(), idempotency_keys: bool = True,
                 headers: Optional[dict[str, str]] = None, transport: Optional[httpx.BaseTransport] = None):
        self.http = httpx.Client(transport=transport, **self._configure(base_url, token, timeout, retries,
                                                                         idempotency_keys, headers))

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- sending ----------------------------------------------------------------------------------

    def _call(self, method: str, path: str, operation: str, *, query: dict[str, Any],
              body: Optional[dict[str, Any]], model: Any) -> Any:
        return parse(self._send(method, path, query_params(query), self._body(body)), model)

    def _send(self, method: str, path: str, params: dict[str, Any], body: Optional[dict[str, Any]]) -> httpx.Response:
        headers = {"X-Request-ID": new_request_id()}
        attempt = 0
        while True:
            try:
                outcome: _Outcome = self.http.request(method, path, params=params, json=body, headers=headers)
            except httpx.TransportError as exc:
                outcome = exc
            if (pause := self._pause_before_resending(attempt, method, body, outcome)) is None:
                return _answer(outcome)
            time.sleep(pause)
            attempt += 1

    # -- tasks --------------------------------------------------------------------------------------

    def submit(self, actor: str, **arguments: Any) -> Accepted:
        """Submit *actor* with its keyword arguments and the options (priority, delay_seconds or eta,
        idempotency_key, queue): ``submit("send_notification", channel="system", ...)``."""
        return getattr(self, self._submit_method(actor))(**arguments)

    def get(self, task_id: str) -> TaskRecord:
        return self.get_task_status(task_id)

    def cancel(self, task_id: str) -> models.CancelOutcome:
        return self.cancel_task(task_id)

    def retry(self, task_id: str) -> models.RetryAccepted:
        return self.retry_task(task_id)

    def _every(self, fetch: Any, items: str) -> Iterator[Any]:
        """Every item of a paged list: ``fetch(cursor)`` a page at a time, until ``next_cursor`` is null."""
        cursor = None
        while True:
            page = fetch(cursor)
            yield from getattr(page, items)
            if not (cursor := page.next_cursor):
                return

    def list(self, *, page_size: int = 100, **filters: Any) -> Iterator[TaskRecord]:
        """Every task matching *filters* (state, actor, queue, since, until), newest first, a page at a time."""
        return self._every(lambda cursor: self.list_tasks(limit=page_size, cursor=cursor, **filters), "tasks")

    def dead_letters(self, *, page_size: int = 100, **filters: Any) -> Iterator[TaskRecord]:
        """Every failed task (actor, queue filters), newest first."""
        return self._every(lambda cursor: self.list_dead_letters(limit=page_size, cursor=cursor, **filters), "tasks")

    def notifications(self, user_id: str, *, page_size: int = 50, unread_only: bool = False) -> Iterator[InboxItem]:
        """Every item of a user's inbox: unread first (newest first), then read."""
        return self._every(lambda cursor: self.list_notifications(
            user_id, limit=page_size, cursor=cursor, unread_only=unread_only), "items")

    def conversation_messages(self, conversation_id: str, *, page_size: int = 50) -> Iterator[ConversationMessage]:
        """Every message of a conversation, newest page first (oldest first within a page)."""
        return self._every(lambda cursor: self.list_conversation_messages(
            conversation_id, limit=page_size, cursor=cursor), "messages")

    # -- following a task ---------------------------------------------------------------------------

    def stream(self, task_id: str, *, last_event_id: Optional[str] = None,
               deadline: Optional[float] = None) -> Iterator[TaskEvent]:
        """The task's events until its final record, across reconnections (with Last-Event-ID).

        *deadline* (``time.monotonic()``) ends the stream with WaitTimeout.
        """
        failures, last_state = 0, None
        path = f"/api/v1/tasks/{task_id}/events"
        while True:
            headers = {"Accept": "text/event-stream", "X-Request-ID": new_request_id()}
            if last_event_id is not None:
                headers["Last-Event-ID"] = last_event_id
            read = STREAM_READ_TIMEOUT if deadline is None else max(0.01, min(STREAM_READ_TIMEOUT, deadline - time.monotonic()))
            try:
                with connect_sse(self.http, "GET", path, headers=headers,
                                 timeout=httpx.Timeout(self.http.timeout.connect, read=read)) as source:
                    if source.response.is_error:
                        source.response.read()
                        error = error_from(source.response)
                        if not isinstance(error, Unavailable) or failures + 1 >= self.retries.attempts:
                            raise error
                        failures += 1
                        time.sleep(self.retries.delay(failures, source.response))
                        continue
                    for sse in source.iter_sse():
                        failures = 0
                        event = _event(sse)
                        if event.id is not None and event.event in ("state", "record"):
                            last_event_id = event.id
                        if isinstance(event.data, TaskRecord):
                            last_state = event.data.state
                        elif isinstance(event.data, StateEvent):
                            last_state = event.data.state
                        yield event
                        if event.final or (event.event == "record" and event.data is None):
                            return
                        if deadline is not None and time.monotonic() >= deadline:
                            raise WaitTimeout(task_id, 0, last_state)
            except (httpx.TransportError, httpx.StreamError) as exc:
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeout(task_id, 0, last_state) from None
                if isinstance(exc, httpx.ReadTimeout):
                    continue  # quiet past the keep-alive: reconnect and resume
                failures += 1
                if failures >= self.retries.attempts:
                    raise
                time.sleep(self.retries.delay(failures))
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(task_id, 0, last_state)
            # The server ended the stream (its maximum duration, a restart): resume where it left off.

    def wait(self, task_id: str, timeout: Optional[float] = None) -> TaskRecord:
        """The task's final record, as soon as the event stream brings it; WaitTimeout after *timeout* seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            for event in self.stream(task_id, deadline=deadline):
                if event.final:
                    return event.data  # type: ignore[return-value]
        except WaitTimeout as exc:
            raise WaitTimeout(task_id, timeout or 0, exc.state) from None
        return self.get(task_id)  # an unknown task: its 404

    def result(self, task_id: str, timeout: Optional[float] = None) -> Any:
        """The task's return value once it succeeds; TaskFailed when it fails or is cancelled."""
        record = self.wait(task_id, timeout)
        if record.state != "SUCCESS":
            raise TaskFailed(record)
        return record.result


class AsyncClient(_Shared, _AsyncOperations):
    """The asyncio client: the same methods as :class:`Client`, awaited (iterators are async)."""

    def __init__(self, base_url: str, token: Optional[str] = None, *, timeout: float = 30.0,
                 retries: Retries = Retries(), idempotency_keys: bool = True,
                 headers: Optional[dict[str, str]] = None, transport: Optional[httpx.AsyncBaseTransport] = None):
        self.http = httpx.AsyncClient(transport=transport, **self._configure(base_url, token, timeout, retries,
                                                                              idempotency_keys, headers))

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, operation: str, *, query: dict[str, Any],
                    body: Optional[dict[str, Any]], model: Any) -> Any:
        return parse(await self._send(method, path, query_params(query), self._body(body)), model)

    async def _send(self, method: str, path: str, params: dict[str, Any],
                    body: Optional[dict[str, Any]]) -> httpx.Response:
        headers = {"X-Request-ID": new_request_id()}
        attempt = 0
        while True:
            try:
                outcome: _Outcome = await self.http.request(method, path, params=params, json=body, headers=headers)
            except httpx.TransportError as exc:
                outcome = exc
            if (pause := self._pause_before_resending(attempt, method, body, outcome)) is None:
                return _answer(outcome)
            await asyncio.sleep(pause)
            attempt += 1

    async def submit(self, actor: str, **arguments: Any) -> Accepted:
        return await getattr(self, self._submit_method(actor))(**arguments)

    async def get(self, task_id: str) -> TaskRecord:
        return await self.get_task_status(task_id)

    async def cancel(self, task_id: str) -> models.CancelOutcome:
        return await self.cancel_task(task_id)

    async def retry(self, task_id: str) -> models.RetryAccepted:
        return await self.retry_task(task_id)

    async def _every(self, fetch: Any, items: str) -> AsyncIterator[Any]:
        cursor = None
        while True:
            page = await fetch(cursor)
            for item in getattr(page, items):
                yield item
            if not (cursor := page.next_cursor):
                return

    def list(self, *, page_size: int = 100, **filters: Any) -> AsyncIterator[TaskRecord]:
        return self._every(lambda cursor: self.list_tasks(limit=page_size, cursor=cursor, **filters), "tasks")

    def dead_letters(self, *, page_size: int = 100, **filters: Any) -> AsyncIterator[TaskRecord]:
        return self._every(lambda cursor: self.list_dead_letters(limit=page_size, cursor=cursor, **filters), "tasks")

    def notifications(self, user_id: str, *, page_size: int = 50, unread_only: bool = False) -> AsyncIterator[InboxItem]:
        return self._every(lambda cursor: self.list_notifications(
            user_id, limit=page_size, cursor=cursor, unread_only=unread_only), "items")

    def conversation_messages(self, conversation_id: str, *, page_size: int = 50) -> AsyncIterator[ConversationMessage]:
        return self._every(lambda cursor: self.list_conversation_messages(
            conversation_id, limit=page_size, cursor=cursor), "messages")

    async def stream(self, task_id: str, *, last_event_id: Optional[str] = None) -> AsyncIterator[TaskEvent]:
        """The task's events until its final record, across reconnections (with Last-Event-ID)."""
        failures = 0
        path = f"/api/v1/tasks/{task_id}/events"
        while True:
            headers = {"Accept": "text/event-stream", "X-Request-ID": new_request_id()}
            if last_event_id is not None:
                headers["Last-Event-ID"] = last_event_id
            try:
                async with aconnect_sse(self.http, "GET", path, headers=headers,
                                        timeout=httpx.Timeout(self.http.timeout.connect,
                                                              read=STREAM_READ_TIMEOUT)) as source:
                    if source.response.is_error:
                        await source.response.aread()
                        error = error_from(source.response)
                        if not isinstance(error, Unavailable) or failures + 1 >= self.retries.attempts:
                            raise error
                        failures += 1
                        await asyncio.sleep(self.retries.delay(failures, source.response))
                        continue
                    async for sse in source.aiter_sse():
                        failures = 0
                        event = _event(sse)
                        if event.id is not None and event.event in ("state", "record"):
                            last_event_id = event.id
                        yield event
                        if event.final or (event.event == "record" and event.data is None):
                            return
            except (httpx.TransportError, httpx.StreamError) as exc:
                if isinstance(exc, httpx.ReadTimeout):
                    continue
                failures += 1
                if failures >= self.retries.attempts:
                    raise
                await asyncio.sleep(self.retries.delay(failures))

    async def wait(self, task_id: str, timeout: Optional[float] = None) -> TaskRecord:
        """The task's final record, as soon as the event stream brings it; WaitTimeout after *timeout* seconds."""
        last: list[Optional[str]] = [None]

        async def final() -> TaskRecord:
            async for event in self.stream(task_id):
                if isinstance(event.data, (TaskRecord, StateEvent)):
                    last[0] = event.data.state
                if event.final:
                    return event.data  # type: ignore[return-value]
            return await self.get(task_id)  # an unknown task: its 404

        try:
            return await asyncio.wait_for(final(), timeout)
        except asyncio.TimeoutError:
            raise WaitTimeout(task_id, timeout or 0, last[0]) from None

    async def result(self, task_id: str, timeout: Optional[float] = None) -> Any:
        record = await self.wait(task_id, timeout)
        if record.state != "SUCCESS":
            raise TaskFailed(record)
        return record.result

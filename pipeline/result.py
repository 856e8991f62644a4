"""``AsyncResult``: a submitted task's handle, shaped like Celery's.

``task.apply_async(...)`` and ``task.delay(...)`` return one (see
:mod:`pipeline.task`); ``AsyncResult(task_id)`` makes one for an id you kept.
It reads the task's record in Redis, and ``get()`` blocks on the task's event
channel (the same Redis pub/sub the API's event stream follows), not on a
polling loop: it wakes when the task's state changes, and re-reads the record
at most every :data:`RECHECK_SECONDS` in case pub/sub dropped a message.

Differences from Celery, on purpose:

* states are the engine's: PENDING, STARTED, RETRY, SUCCESS, FAILURE and
  CANCELLED (Celery's REVOKED);
* an unknown id (never submitted, or its record expired after
  ``CLAW_RESULT_TTL_SECONDS``) raises :class:`~pipeline.errors.TaskNotFound`
  rather than reading as PENDING forever;
* ``get()`` of a failed task raises :class:`~pipeline.errors.TaskFailed`
  (the error's type and message; the original exception class lives only in
  the worker), of a cancelled one :class:`~pipeline.errors.TaskRevoked`;
* ``revoke()`` also interrupts a running task (Celery needs ``terminate=True``).
"""

from __future__ import annotations

import time
from typing import Any, Optional

from pipeline import client
from pipeline.engine import Engine, get_engine
from pipeline.errors import InvalidTransition, ResultTimeout, TaskFailed, TaskRevoked
from pipeline.state.keys import FINAL_STATES

#: Longest wait on the event channel before the record is read again (pub/sub can lose a message).
RECHECK_SECONDS = 5.0


class AsyncResult:
    def __init__(self, task_id: str, *, engine: Optional[Engine] = None):
        self.id = task_id
        self._engine = engine

    @property
    def task_id(self) -> str:
        return self.id

    @property
    def engine(self) -> Engine:
        return self._engine or get_engine()

    def record(self) -> dict:
        """The task's whole record (raises TaskNotFound)."""
        return client.get_record(self.id, engine=self.engine)

    @property
    def state(self) -> str:
        return self.record()["state"]

    status = state

    def ready(self) -> bool:
        """True once the task finished: SUCCESS, FAILURE or CANCELLED."""
        return self.state in FINAL_STATES

    def successful(self) -> bool:
        return self.state == "SUCCESS"

    def failed(self) -> bool:
        return self.state in ("FAILURE", "CANCELLED")

    @property
    def result(self) -> Any:
        """The return value once SUCCESS; the error (``{"type", "message", ...}``) once failed; else None."""
        record = self.record()
        if record["state"] == "SUCCESS":
            return record.get("result")
        return record.get("error") if record["state"] in FINAL_STATES else None

    info = result

    def get(self, timeout: Optional[float] = None, propagate: bool = True, interval: Optional[float] = None) -> Any:
        """Wait until the task finishes and return its result.

        *timeout*: seconds (None waits as long as it takes); past it,
        :class:`~pipeline.errors.ResultTimeout`. *propagate*: a FAILURE raises
        TaskFailed and a cancellation TaskRevoked; with False they return the
        error instead. *interval* is accepted for Celery's signature and not
        used: nothing polls.
        """
        record = self.wait(timeout)
        if record["state"] == "SUCCESS":
            return record.get("result")
        if propagate:
            error = TaskRevoked if record["state"] == "CANCELLED" else TaskFailed
            raise error(self.id, record["state"], record.get("error"))
        return record.get("error")

    def wait(self, timeout: Optional[float] = None) -> dict:
        """The final record, once there is one (ResultTimeout after *timeout* seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        store = self.engine.store
        pubsub = store.redis.pubsub()
        try:
            pubsub.subscribe(store.keys.events_channel(self.id))
            self._confirmed(pubsub, deadline)  # subscribed before the record is read: no change falls between
            while True:
                record = self.record()
                if record["state"] in FINAL_STATES:
                    return record
                remaining = RECHECK_SECONDS if deadline is None else min(RECHECK_SECONDS, deadline - time.monotonic())
                if remaining <= 0:
                    raise ResultTimeout(f"task {self.id} is still {record['state']} after {timeout} s")
                pubsub.get_message(ignore_subscribe_messages=True, timeout=remaining)
        finally:
            pubsub.close()

    @staticmethod
    def _confirmed(pubsub, deadline: Optional[float]) -> None:
        while True:
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            message = pubsub.get_message(timeout=wait)
            if message is not None and message["type"] == "subscribe":
                return
            if wait == 0.0:
                return  # out of time: the record read that follows decides

    def revoke(self, terminate: bool = False) -> None:
        """Cancel the task: never run if it waits, interrupted if it runs; nothing if it already finished.

        *terminate* is accepted for Celery's signature: a running task is
        interrupted either way (it stops at its next check or I/O, see
        docs/usage.md, "Cancelling").
        """
        try:
            client.cancel(self.id, engine=self.engine)
        except InvalidTransition:
            pass  # already finished: like Celery, revoking a finished task does nothing

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<AsyncResult: {self.id}>"

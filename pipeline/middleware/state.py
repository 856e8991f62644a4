"""TaskState: keeps every message's record in the state store in step with the worker.

before_process_message moves the task to STARTED (or drops a message whose
task was cancelled or already finished, or that was delivered more often
than its policy allows); after_process_message records SUCCESS, RETRY,
FAILURE or CANCELLED together with the result, in one Redis round trip.

When Redis does not answer, the worker thread waits for it instead of
running a task it cannot track: the message stays unacked, so nothing is
lost, and the state catches up as soon as Redis is back.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from dramatiq.middleware import Middleware, SkipMessage

from pipeline.context import TaskContext, set_current, peek_current
from pipeline.delivery import Delivery, delivery_of, open_delivery
from pipeline.encoder import to_json
from pipeline.observability.message import REQUEST_ID_OPTION
from pipeline.owners import Owner
from pipeline.redis_client import wait_for_redis
from pipeline.sensitive import mask
from pipeline.state import NewTask, StateStore, error_fields, exception_result, untracked, worker_identity
from pipeline.state.records import is_untracked, now_field
from pipeline.registry import REGISTRY, policy_of

logger = logging.getLogger("pipeline.state")

#: A message may be delivered this many times more than its policy's attempts
#: (a worker killed mid-task) before it is failed as poison.
LOST_DELIVERIES_TOLERATED = 1


def new_task_from_message(broker, message) -> NewTask:
    policy = policy_of(broker, message.actor_name)
    return NewTask(
        task_id=message.message_id,
        actor=message.actor_name,
        queue=message.queue_name,
        priority=message.options.get("broker_priority", policy.priority) or 0,
        max_retries=policy.max_retries,
        args=list(message.args),
        kwargs=dict(message.kwargs),
        request_id=message.options.get(REQUEST_ID_OPTION),
        owner=Owner.of_message(message),
    )


class TaskState(Middleware):
    def __init__(self, store: StateStore, results_backend):
        self.store = store
        self.results = results_backend

    def result_key(self, message) -> str:
        return self.results.build_message_key(message)

    # -- enqueue ---------------------------------------------------------------------------

    def before_enqueue(self, broker, message, delay):
        # Retries and delayed messages moving to their queue carry their
        # record already; pipeline.client writes its own in a pipeline.
        if is_untracked() or "retries" in message.options or "eta" in message.options:
            return
        wait_for_redis(lambda: self.store.record_if_missing(new_task_from_message(broker, message)), "recording a message")

    # -- processing ------------------------------------------------------------------------

    def before_process_message(self, broker, message):
        policy = policy_of(broker, message.actor_name)
        max_attempts = policy.max_retries + 1 + LOST_DELIVERIES_TOLERATED
        redelivered = bool(getattr(message, "redelivered", True))
        delivery = open_delivery(message)
        start = lambda: self.store.start(message.message_id, worker_identity(), max_attempts, redelivered, delivery.token)  # noqa: E731
        outcome, attempts = wait_for_redis(start, "starting a task")
        if outcome == "MISSING":
            self.store.record_if_missing(new_task_from_message(broker, message))
            outcome, attempts = wait_for_redis(start, "starting a task")

        if outcome == "STARTED":
            delivery.attempt, delivery.started = attempts, time.monotonic()
            set_current(TaskContext(message.message_id, message.actor_name, attempts, self.store, Owner.of_message(message)))
            return
        self._drop(message, delivery, outcome, attempts)

    def _drop(self, message, delivery: Delivery, outcome: str, attempts: int):
        """Do not run this delivery: its task is cancelled, finished, or poison."""
        delivery.dropped = True
        if outcome == "DUPLICATE":
            logger.warning("Dropping a second copy of message %s: its task is running elsewhere.", message.message_id)
        elif outcome == "CANCELLED":
            logger.info("Dropping message %s: its task was cancelled.", message.message_id)
            wait_for_redis(lambda: self.store.mark_cancelled_dropped(message.message_id), "dropping a cancelled task")
        elif outcome == "EXHAUSTED":
            logger.error("Message %s was delivered %d times without finishing; failing it.", message.message_id, attempts)
            error = {
                "type": "WorkerLost",
                "message": f"delivered {attempts} times without finishing (its worker died each time)",
            }
            self._record_failure(message, error)
            message.fail()
        elif outcome == "FAILURE":
            # Failed by the hard time limit while its worker was replaced:
            # dead-letter this redelivered copy.
            message.fail()
        raise SkipMessage(f"task is {outcome}")

    def after_process_message(self, broker, message, *, result=None, exception=None):
        delivery = delivery_of(message)
        if delivery is None or not delivery.running:
            return
        set_current(None)
        runtime_ms = int((time.monotonic() - delivery.started) * 1000)
        task_id = message.message_id
        if exception is None:
            try:
                body = to_json(result)
            except (TypeError, ValueError) as exc:
                message.fail()
                self._record_failure(message, error_fields(exc), runtime_ms)
                return
            finish = lambda: self.store.finish(  # noqa: E731
                task_id, "SUCCESS", {"finished_at": now_field(), "runtime_ms": str(runtime_ms), "result": body},
                self.result_key(message), body, runtime_ms,
            )
            wait_for_redis(finish, "recording a success")
        elif delivery.outcome == "RETRY":
            fields = {"error": to_json(error_fields(exception)), "eta": f"{delivery.retry_eta:.3f}"}
            wait_for_redis(lambda: self.store.finish(task_id, "RETRY", fields), "recording a retry")
            self._publish_retry(broker, message, delivery, exception, runtime_ms)
        elif delivery.outcome == "CANCELLED":
            fields = {
                "finished_at": now_field(),
                "runtime_ms": str(runtime_ms),
                "error": to_json({"type": "TaskCancelled", "message": "cancelled while running"}),
            }
            value = exception_result("TaskCancelled", "cancelled while running")
            wait_for_redis(lambda: self.store.finish(task_id, "CANCELLED", fields, self.result_key(message), value), "recording a cancellation")
        else:
            self._record_failure(message, error_fields(exception), runtime_ms)

    def _publish_retry(self, broker, message, delivery: Delivery, exception: BaseException, runtime_ms: int) -> None:
        """Publish the retry RetryPolicy prepared, now that the record says RETRY (a worker killed before
        this leaves the message unacked: its redelivery is the retry)."""
        retry, delay = delivery.retry_message
        try:
            with untracked():
                broker.enqueue(retry, delay=delay)
        except Exception:
            logger.exception("Could not schedule the retry of %s; failing it.", message.message_id)
            message.fail()
            self._record_failure(message, error_fields(exception), runtime_ms)

    def _record_failure(self, message, error: dict[str, Any], runtime_ms: int | None = None) -> None:
        fail = lambda: self.store.fail(message.message_id, error, self.result_key(message), runtime_ms)  # noqa: E731
        wait_for_redis(fail, "recording a failure")

    def after_skip_message(self, broker, message):
        delivery = delivery_of(message)
        if delivery is not None and delivery.running and peek_current() is not None:
            set_current(None)

    def after_nack(self, broker, message):
        """A message dead-lettered before any engine middleware saw it (its actor is unknown
        to this worker): its record must not wait as PENDING forever."""
        if delivery_of(message) is not None:
            return
        error = {"type": "ActorNotFound", "message": f"no worker knows actor {message.actor_name!r}; dead-lettered"}
        wait_for_redis(lambda: self.store.fail(message.message_id, error), "recording an unknown actor")


class QuietWorkerLog(logging.Filter):
    """Dramatiq's worker log, fitted to this engine.

    - Messages in log lines show their arguments with the fields their task
      declares sensitive masked (Dramatiq prints them whole when a task fails).
    - "was skipped" is dropped for the skips the engine makes on purpose
      (rate-limited, cancelled, already finished): the task records them.
    - "haven't added the Results middleware" is dropped: results are stored
      by TaskState through StateStoreResults, a Results subclass that
      Dramatiq's exact-type check (``type(m) is Results``) does not recognise.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if args and (delivery := delivery_of(args[0])) is not None and delivery.dropped:
            return False
        if "haven't added the Results middleware" in str(record.msg):
            return False
        if any(hasattr(arg, "actor_name") and hasattr(arg, "kwargs") for arg in args):
            record.args = tuple(_masked(arg) if hasattr(arg, "actor_name") else arg for arg in args)
        return True


def _masked(message) -> str:
    spec = REGISTRY.get(message.actor_name)
    kwargs = mask(dict(message.kwargs), spec.sensitive_arguments) if spec is not None else dict(message.kwargs)
    return f"{message.actor_name}(*{list(message.args)}, **{kwargs}) [{message.message_id}]"


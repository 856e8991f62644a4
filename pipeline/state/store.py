"""The task-state store: one Redis hash per task plus sorted-set indexes.

Dramatiq keeps only final results, keyed by actor and queue; Flower-style
operations (status by id, lists by state/actor/queue, counts, cancel, retry)
need a record per message from the moment it is enqueued. This module owns
that record. Every request-path operation here is O(1) or O(page) in Redis
round trips, whatever the number of stored tasks: counts are ZCARDs of the
indexes, lists are ZREVRANGEBYSCORE pages, lookups are pipelined HGETALLs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional

import redis

from pipeline.encoder import to_json
from pipeline.redact import redact
from pipeline.state import scripts
from pipeline.state.batching import ScriptBatcher
from pipeline.state.keys import FINAL_STATES, STATES, Keys

logger = logging.getLogger("pipeline.state")

#: Record fields holding JSON documents (decoded on read).
JSON_FIELDS = ("args", "kwargs", "error", "result", "progress", "options")
INT_FIELDS = ("priority", "attempts", "max_retries", "runtime_ms")
FLOAT_FIELDS = ("enqueued_at", "started_at", "finished_at", "eta", "cancel_requested")
#: Fields kept for the engine's own use and never shown.
PRIVATE_FIELDS = ("payload", "score", "unpublished")
#: Index entries are trimmed (by worker heartbeats) this long before their
#: record expires, so a page rarely meets an entry whose record is gone;
#: readers skip such entries anyway.
DEFAULT_EXPIRY_GRACE_SECONDS = 10


# The version (4) and variant (RFC 4122) bits of a random UUID, as uuid.uuid4() sets them.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_task_ids(count: int) -> list[str]:
    """*count* random UUIDs (version 4, the same as ``str(uuid.uuid4())``) from one read of randomness.

    uuid.uuid4() reads the system's randomness and validates every field
    once per id, which was a tenth of a 1,000-task bulk submission's CPU.
    """
    raw = os.urandom(16 * count)
    ids = []
    for start in range(0, len(raw), 16):
        text = f"{int.from_bytes(raw[start:start + 16], 'big') & _UUID4_CLEAR | _UUID4_SET:032x}"
        ids.append(f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}")
    return ids


def new_task_id() -> str:
    return new_task_ids(1)[0]


@dataclass
class NewTask:
    """What the store needs to record a task at enqueue time."""

    task_id: str
    actor: str
    queue: str
    priority: int
    max_retries: int
    args: list
    kwargs: dict
    eta: Optional[float] = None
    retry_of: Optional[str] = None
    idempotency_key: Optional[str] = None
    options: Optional[dict] = None

    def fields(self, now: float) -> dict[str, str]:
        shown_args, shown_kwargs = redact(self.args), redact(self.kwargs)
        record = {
            "task_id": self.task_id,
            "actor": self.actor,
            "queue": self.queue,
            "priority": str(self.priority),
            "max_retries": str(self.max_retries),
            "state": "PENDING",
            "attempts": "0",
            "args": to_json(shown_args),
            "kwargs": to_json(shown_kwargs),
            "enqueued_at": f"{now:.6f}",
            "score": str(int(now * 1_000_000)),
        }
        if shown_args != self.args or shown_kwargs != self.kwargs:
            # The unredacted arguments, for a manual retry of this task.
            record["payload"] = to_json({"args": self.args, "kwargs": self.kwargs})
        if self.eta is not None:
            record["eta"] = f"{self.eta:.3f}"
            record["wait_reason"] = "delay"
        if self.retry_of:
            record["retry_of"] = self.retry_of
        if self.idempotency_key:
            record["idempotency_key"] = self.idempotency_key
        if self.options:
            record["options"] = to_json(self.options)
        return record


class StateStore:
    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        result_ttl: int,
        idempotency_ttl: int = 3600,
        expiry_grace: float = DEFAULT_EXPIRY_GRACE_SECONDS,
    ):
        self.redis = client
        self.expiry_grace = expiry_grace
        self.keys = Keys(namespace)
        self.result_ttl = result_ttl
        self.idempotency_ttl = idempotency_ttl
        self._create = client.register_script(scripts.CREATE)
        self._start = client.register_script(scripts.START)
        self._finish = client.register_script(scripts.FINISH)
        self._cancel = client.register_script(scripts.CANCEL)
        self._drop_cancelled = client.register_script(scripts.DROP_CANCELLED)
        self._rate_limit = client.register_script(scripts.RATE_LIMIT)
        self._trim = client.register_script(scripts.TRIM)
        self._throughput = client.register_script(scripts.THROUGHPUT)
        self._runtimes = client.register_script(scripts.RUNTIMES)
        # recording() and _hot() call scripts by hash, without redis-py's reload-on-miss.
        for script in (scripts.CREATE, scripts.START, scripts.FINISH):
            client.script_load(script)
        self._worker_scripts = ScriptBatcher(client.connection_pool.make_connection)

    @property
    def namespace(self) -> str:
        return self.keys.prefix

    # -- enqueue -------------------------------------------------------------------------

    def record_idempotent(self, task: NewTask) -> Optional[str]:
        """Record *task* and bind its idempotency key in one step, marked unpublished.

        Returns None when recorded, or the id already bound to the key. The
        ``unpublished`` mark (cleared by :meth:`mark_published`) tells a later
        request with the same key whether the message ever reached RabbitMQ.
        """
        fields = task.fields(time.time())
        fields["unpublished"] = f"{time.time():.6f}"
        argv = [self.namespace, task.task_id, task.actor, task.queue, fields["score"], to_json(fields),
                task.idempotency_key, self.idempotency_ttl]
        bound = self._create(args=argv)
        return bound if isinstance(bound, str) else None

    def mark_published(self, task_id: str) -> None:
        self.redis.hdel(self.keys.task(task_id), "unpublished")

    def claim_unpublished(self, task_id: str) -> bool:
        """Take the job of publishing an orphaned task (only one caller gets True)."""
        return bool(self.redis.hdel(self.keys.task(task_id), "unpublished"))

    def restore_unpublished(self, task_id: str, since: float) -> None:
        self.redis.hset(self.keys.task(task_id), "unpublished", f"{since:.6f}")

    def unpublished_since(self, task_id: str) -> Optional[float]:
        value = self.redis.hget(self.keys.task(task_id), "unpublished")
        return float(value) if value else None


    def record_enqueued(self, tasks: Iterable[NewTask], now: Optional[float] = None) -> None:
        """Write PENDING records and their index entries in one pipelined round trip."""
        now = time.time() if now is None else now
        with self.redis.pipeline(transaction=False) as pipe:
            for task in tasks:
                self._create(args=self.create_args(task, now), client=pipe)
            pipe.execute()

    def record_if_missing(self, task: NewTask) -> bool:
        """Record a message enqueued outside :mod:`pipeline.client` (e.g. ``actor.send``)."""
        return bool(self._create(args=self.create_args(task, time.time())))

    def create_args(self, task: NewTask, now: float) -> list[str]:
        fields = task.fields(now)
        return [self.namespace, task.task_id, task.actor, task.queue, fields["score"], to_json(fields)]

    @contextlib.contextmanager
    def recording(self, tasks: list[NewTask]) -> Iterator[None]:
        """Record *tasks* while the body of the ``with`` block runs (the publish).

        The scripts are sent before the block and their replies read after
        it, so Redis works through them while RabbitMQ takes and confirms the
        messages, instead of one waiting for the other. Redis has the commands
        before RabbitMQ has the messages, and CREATE is create-if-missing: a
        worker that meets a message before its record (a large batch still
        being read) records it from the message, and the client's CREATE
        then leaves that record alone.
        """
        now = time.time()
        commands = [("EVALSHA", self._create.sha, 0, *self.create_args(task, now)) for task in tasks]
        pool = self.redis.connection_pool
        connection = pool.get_connection()
        published = False
        try:
            connection.send_packed_command(connection.pack_commands(commands))
            try:
                yield
                published = True
            finally:
                self._confirm_recorded(connection, tasks, now, published)
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

    def _confirm_recorded(self, connection, tasks: list[NewTask], now: float, published: bool) -> None:
        """Read recording()'s replies; record again where they say the script was missing.

        Once the messages are published they are accepted whatever Redis says:
        if Redis went away meanwhile, the records are written again, and if it
        is still away, the worker that takes each message records it.
        """
        script_missing = False
        try:
            for _ in tasks:
                try:
                    connection.read_response()
                except redis.exceptions.NoScriptError:  # Redis restarted and lost its script cache
                    script_missing = True
        except (redis.ConnectionError, redis.TimeoutError):
            if not published:
                raise
            connection.disconnect()
            script_missing = True
        if not script_missing:
            return
        try:
            self.record_enqueued(tasks, now)
        except (redis.ConnectionError, redis.TimeoutError):
            if not published:
                raise
            logger.warning("Redis went away while %d published task(s) were recorded; their worker records them.", len(tasks))

    def forget(self, task_ids: list[str], actor: str, queue: str, idempotency_key: Optional[str] = None) -> None:
        """Remove records that were never accepted (the broker refused the message), with
        their idempotency key, in one transaction: no key may outlive its record."""
        with self.redis.pipeline(transaction=True) as pipe:
            for task_id in task_ids:
                pipe.delete(self.keys.task(task_id))
                for key in (
                    self.keys.index(),
                    self.keys.index(actor=actor),
                    self.keys.index(queue=queue),
                    self.keys.index(state="PENDING"),
                    self.keys.index(state="PENDING", actor=actor),
                    self.keys.index(state="PENDING", queue=queue),
                ):
                    pipe.zrem(key, task_id)
            if idempotency_key:
                pipe.delete(self.keys.idempotency(idempotency_key))
            pipe.execute()

    # -- transitions (workers) -------------------------------------------------------------

    def start(self, task_id: str, worker: str, max_attempts: int, redelivered: bool = True) -> tuple[str, int]:
        """PENDING/RETRY/STARTED -> STARTED. Returns (outcome, attempts).

        Outcomes: STARTED; MISSING (no record); EXHAUSTED (delivered more times
        than the policy allows, e.g. a message that kills its worker); DUPLICATE
        (a second copy of a running task's message, not a redelivery); or the
        final state when the task already finished (a redelivery).
        """
        argv = [self.namespace, task_id, worker, f"{time.time():.6f}", max_attempts, "1" if redelivered else "0"]
        outcome, attempts = self._hot(self._start, argv)
        return outcome, int(attempts)

    def finish(
        self,
        task_id: str,
        state: str,
        fields: dict[str, str],
        result_key: str = "",
        result_value: str = "",
        runtime_ms: Optional[int] = None,
    ) -> str:
        """Move a non-final task to *state* with *fields*; returns the previous state.

        A task already in a final state is left alone, so a redelivered message
        can never finish twice.
        """
        argv: list[Any] = [
            self.namespace, task_id, state, f"{time.time():.6f}", self.result_ttl, self.expiry_grace,
            result_key, result_value, self.result_ttl * 1000, "" if runtime_ms is None else runtime_ms,
        ]
        for name, value in fields.items():
            argv += [name, value]
        return self._hot(self._finish, argv)

    def _hot(self, script, argv: list) -> Any:
        """Run a worker hot-path script, batched with other threads' (see ScriptBatcher).

        Going straight to a connection also skips redis-py's pool checkout,
        retry and health-check layers, which cost more CPU than the scripts
        themselves. Connection errors propagate (TaskState waits for Redis
        and retries).
        """
        try:
            return self._worker_scripts.execute("EVALSHA", script.sha, 0, *argv)
        except redis.exceptions.NoScriptError:
            self.redis.script_load(script.script)
            return self._hot(script, argv)

    def mark_cancelled_dropped(self, task_id: str) -> None:
        """A worker dropped the message of a cancelled task: start its expiry."""
        self._drop_cancelled(args=[self.namespace, task_id, f"{time.time():.6f}", self.result_ttl, self.expiry_grace])

    def reserve_rate_slot(self, actor: str, member: str, task_id: str, limit: int, window_ms: int) -> int:
        """0 when the task may start now, else milliseconds until its reserved slot."""
        return int(self._rate_limit(args=[self.namespace, actor, member, task_id, limit, window_ms]))

    def report_progress(self, task_id: str, progress: dict[str, Any]) -> None:
        body = to_json(progress)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.keys.task(task_id), "progress", body)
            pipe.publish(self.keys.events_channel(task_id), '{"type":"progress","progress":' + body + "}")
            pipe.execute()

    # -- operator actions ------------------------------------------------------------------

    def cancel(self, task_id: str, result_key: str, result_value: str) -> tuple[str, str]:
        """Returns (outcome, previous state): CANCELLED, INTERRUPTING, REFUSED or MISSING."""
        error = to_json({"type": "TaskCancelled", "message": "cancelled before it ran"})
        outcome, previous = self._cancel(
            args=[self.namespace, task_id, f"{time.time():.6f}", result_key, result_value, self.result_ttl * 1000, error]
        )
        return outcome, previous

    def claim_retry(self, original_id: str, new_id: str) -> Optional[str]:
        """Link *new_id* as the retry of *original_id*; return the earlier retry if there is one."""
        key = self.keys.task(original_id)
        if self.redis.hsetnx(key, "retried_by", new_id):
            return None
        return self.redis.hget(key, "retried_by")

    def unclaim_retry(self, original_id: str) -> None:
        self.redis.hdel(self.keys.task(original_id), "retried_by")

    def payload(self, task_id: str) -> Optional[dict]:
        """The task's arguments as submitted (the record shows them redacted)."""
        payload, args, kwargs = self.redis.hmget(self.keys.task(task_id), "payload", "args", "kwargs")
        if payload:
            return json.loads(payload)
        if args is None and kwargs is None:
            return None
        return {"args": json.loads(args or "[]"), "kwargs": json.loads(kwargs or "{}")}

    # -- queries ---------------------------------------------------------------------------

    def get(self, task_id: str) -> Optional[dict]:
        return decode_record(self.redis.hgetall(self.keys.task(task_id)))

    def get_many(self, task_ids: list[str]) -> list[Optional[dict]]:
        with self.redis.pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                pipe.hgetall(self.keys.task(task_id))
            return [decode_record(raw) for raw in pipe.execute()]

    def list(
        self,
        *,
        state: Optional[str] = None,
        actor: Optional[str] = None,
        queue: Optional[str] = None,
        since: Optional[float] = None,
        until: Optional[float] = None,
        limit: int = 50,
        cursor: Optional[str] = None,
    ) -> tuple[list[dict], Optional[str]]:
        """One page of tasks, newest first, and the cursor of the next page.

        The cursor is (score, ties): the last score seen and how many entries
        with that score were already returned, so equal timestamps never make
        a page repeat or skip a task.
        """
        key = self.keys.index(state=state, actor=actor, queue=None if actor else queue)
        high = f"{int(until * 1_000_000)}" if until is not None else "+inf"
        low = f"{int(since * 1_000_000)}" if since is not None else "-inf"
        offset = 0
        if cursor:
            cursor_score, offset = decode_cursor(cursor)
            high = str(cursor_score)
        entries = self.redis.zrevrangebyscore(key, high, low, start=offset, num=limit, withscores=True)
        records = [r for r in self.get_many([task_id for task_id, _ in entries]) if r is not None]
        if actor and queue:
            records = [r for r in records if r["queue"] == queue]
        if len(entries) < limit:
            return records, None
        last = int(entries[-1][1])
        ties = sum(1 for _, score in entries if int(score) == last)
        if cursor and last == cursor_score:
            ties += offset
        return records, encode_cursor(last, ties)

    def count_by_state(self, actors: Iterable[str], queues: Iterable[str]) -> dict[str, Any]:
        """Task counts per state, per actor and state, and per queue and state."""
        actors, queues = list(actors), list(queues)
        with self.redis.pipeline(transaction=False) as pipe:
            for state in STATES:
                pipe.zcard(self.keys.index(state=state))
            for actor in actors:
                for state in STATES:
                    pipe.zcard(self.keys.index(state=state, actor=actor))
            for queue in queues:
                for state in STATES:
                    pipe.zcard(self.keys.index(state=state, queue=queue))
            counts = iter(pipe.execute())
        per_state = {state: next(counts) for state in STATES}
        per_actor = {actor: {state: next(counts) for state in STATES} for actor in actors}
        per_queue = {queue: {state: next(counts) for state in STATES} for queue in queues}
        return {"states": per_state, "actors": per_actor, "queues": per_queue}

    def runtimes(self, actors: Iterable[str]) -> dict[str, dict[str, Optional[float]]]:
        """p50/p95 runtime (ms) per actor over its last 500 finished tasks (sorted in Redis)."""
        actors = list(actors)
        if not actors:
            return {}
        rows = self._runtimes(args=[self.namespace, *actors])
        return {
            actor: {"p50": float(p50) if p50 else None, "p95": float(p95) if p95 else None, "samples": int(n)}
            for actor, (p50, p95, n) in zip(actors, rows)
        }

    def throughput(self, now: Optional[float] = None) -> dict[str, dict[str, int]]:
        """Finished tasks per final state over the last minute and the last hour (10 s buckets)."""
        current = int((time.time() if now is None else now) // 10)
        minute, hour = self._throughput(args=[self.namespace, current])
        return {
            "last_minute": dict(zip(FINAL_STATES, map(int, minute))),
            "last_hour": dict(zip(FINAL_STATES, map(int, hour))),
        }

    def throughput_series(self, minutes: int = 60, now: Optional[float] = None) -> list[dict[str, Any]]:
        """Per-minute finished counts for charts (oldest first)."""
        current = int((time.time() if now is None else now) // 10)
        first = current - minutes * 6 + 1
        with self.redis.pipeline(transaction=False) as pipe:
            for bucket in range(first, current + 1):
                pipe.hmget(self.keys.throughput(bucket), FINAL_STATES)
            buckets = pipe.execute()
        series = []
        for minute in range(minutes):
            chunk = buckets[minute * 6 : minute * 6 + 6]
            point = {"t": (first + minute * 6) * 10}
            for i, state in enumerate(FINAL_STATES):
                point[state] = sum(int(values[i] or 0) for values in chunk)
            series.append(point)
        return series

    # -- housekeeping ----------------------------------------------------------------------

    def trim_expired(self, limit: int = 1000, now: Optional[float] = None) -> int:
        """Remove index entries of records whose result TTL has passed; returns how many."""
        return int(self._trim(args=[self.namespace, f"{time.time() if now is None else now:.6f}", limit]))

    def record_undecodable(self, body: bytes, reason: str) -> None:
        entry = to_json({"at": time.time(), "reason": reason, "size": len(body), "head": body[:512].hex()})
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.lpush(self.keys.undecodable, entry)
            pipe.ltrim(self.keys.undecodable, 0, 999)
            pipe.execute()

    def undecodable(self, limit: int = 100) -> list[dict]:
        return [json.loads(x) for x in self.redis.lrange(self.keys.undecodable, 0, limit - 1)]


def decode_record(raw: dict[str, str]) -> Optional[dict]:
    if not raw:
        return None
    record: dict[str, Any] = {k: v for k, v in raw.items() if k not in PRIVATE_FIELDS}
    for name in JSON_FIELDS:
        if name in record:
            record[name] = json.loads(record[name])
    for name in INT_FIELDS:
        if name in record:
            record[name] = int(record[name])
    for name in FLOAT_FIELDS:
        if name in record and record[name] != "":
            record[name] = float(record[name])
    return record


def encode_cursor(score: int, ties: int) -> str:
    return base64.urlsafe_b64encode(f"{score}:{ties}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """Raise ValueError for anything that is not a cursor this store made."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, ties = text.split(":")
        score_value, ties_value = int(score), int(ties)
    except Exception:
        raise ValueError("cursor is not one returned by this API") from None
    if ties_value < 0 or ties_value > 100_000:
        raise ValueError("cursor is not one returned by this API")
    return score_value, ties_value

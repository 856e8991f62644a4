"""Writing task records: created at enqueue, moved through their states by workers and operators.

Dramatiq keeps only final results, keyed by actor and queue; Flower-style
operations (status by id, lists by state/actor/queue, counts, cancel, retry)
need a record per message from the moment it is enqueued. One Redis hash per
task holds it, and sorted sets index it by state, actor and queue; every
change is one of the scripts below (see :mod:`pipeline.state.lua`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional

import redis

from pipeline.encoder import to_json
from pipeline.owners import NOBODY, Owner
from pipeline.redis_client import unavailable
from pipeline.state.keys import FINAL_STATES
from pipeline.state.lua import script
from pipeline.state.workflow_lua import WORKFLOW_LUA

logger = logging.getLogger("pipeline.state")

#: How a failure is stored in the Results backend, so ``message.get_result()`` raises ResultFailure.
RESULT_CANARY = "dramatiq.results.Result"


# -- scripts ---------------------------------------------------------------------------------

# Creates a PENDING record with its index entries unless the task already
# has one: the client and a worker that meets an unrecorded message may both
# try, in either order, and the first one wins.
# The record comes as one JSON object of strings: one argument to encode
# instead of thirty, which is most of the client's cost per task.
# With an idempotency key, the key is claimed in the same step, so no crash
# can leave a key pointing at a task that has no record.
# KEYS: task. ARGV: P, id, actor, queue, score, record_json[, idempotency_key, ttl]
# Returns 1 (created), 0 (record existed) or the id already bound to the key.
CREATE = script(r"""
local key, id, actor, queue, score = KEYS[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', key) == 1 then return 0 end
if ARGV[7] then
  local idem = idempotency_key(ARGV[7])
  local bound = redis.call('GET', idem)
  if bound then return bound end
  redis.call('SET', idem, id, 'EX', tonumber(ARGV[8]))
end
local fields, flat = cjson.decode(ARGV[6]), {}
for name, value in pairs(fields) do
  flat[#flat + 1] = name
  flat[#flat + 1] = value
end
redis.call('HSET', key, unpack(flat))
for _, k in ipairs(entry_keys(actor, queue, fields['user_id'])) do redis.call('ZADD', k, score, id) end
move(id, score, actor, queue, nil, 'PENDING')
return 1
""")

# A STARTED task met again is a redelivery when RabbitMQ says so (its worker
# died); otherwise it is a second copy of the message (a publish repeated
# after an unconfirmed first one) and must not run beside the first, unless
# it is the same delivery sent again (its first START ran, its reply was lost).
# KEYS: task. ARGV: P, id, worker, now, max_attempts, redelivered (1/0), delivery
START = script(r"""
local key, id, worker, now, max_attempts = KEYS[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local r = redis.call('HMGET', key, 'state', 'actor', 'queue', 'score', 'attempts', 'eta', 'wait_reason', 'delivery')
if not r[1] then return {'MISSING', 0} end
if FINAL[r[1]] then return {r[1], tonumber(r[5] or '0')} end
if r[1] == 'STARTED' and ARGV[7] ~= '' and r[8] == ARGV[7] then return {'STARTED', tonumber(r[5] or '0')} end
if r[1] == 'STARTED' and ARGV[6] == '0' then return {'DUPLICATE', tonumber(r[5] or '0')} end
local attempts = tonumber(r[5] or '0') + 1
if attempts > max_attempts then return {'EXHAUSTED', attempts - 1} end
redis.call('HSET', key, 'state', 'STARTED', 'started_at', now, 'worker', worker, 'attempts', attempts, 'delivery', ARGV[7])
if r[6] or r[7] then redis.call('HDEL', key, 'eta', 'wait_reason') end
move(id, r[4], r[2], r[3], r[1], 'STARTED')
event(id, 'STARTED', now)
return {'STARTED', attempts}
""")

# A task of a workflow is counted by its workflow in the same step (see
# pipeline.state.workflows); the reply then names the follow-ups that became due.
# The workflow steps are defined inside that branch: a task of no workflow pays no closure for them.
# KEYS: task. ARGV: P, id, new_state, now, ttl, grace, result_key, result_value, result_ttl_ms, runtime_ms,
# then field, value, ... (written with the new state in one HSET)
# Returns the previous state, or {previous state, due id, ...}.
FINISH = script(r"""
local key, id, new, now, ttl, grace = KEYS[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local result_key, result_value, result_ttl, runtime = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local r = redis.call('HMGET', key, 'state', 'actor', 'queue', 'score', 'workflow', 'wf_index')
if not r[1] then return 'MISSING' end
if FINAL[r[1]] then return r[1] end
local fields = {'state', new}
for i = 11, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', key, unpack(fields))
move(id, r[4], r[2], r[3], r[1], new)
local due = {}
if FINAL[new] then
  -- START already removed them from a task that ran.
  if r[1] ~= 'STARTED' then redis.call('HDEL', key, 'eta', 'wait_reason') end
  finalize(key, id, r[2], r[3], new, now, ttl, grace)
  if result_key ~= '' then
    redis.call('DEL', result_key)
    redis.call('LPUSH', result_key, result_value)
    redis.call('PEXPIRE', result_key, result_ttl)
  end
  -- RUNTIMES reads the last 500; the list is trimmed only now and then.
  if runtime ~= '' and redis.call('LPUSH', runtimes_key(r[2]), runtime) > 600 then
    redis.call('LTRIM', runtimes_key(r[2]), 0, 499)
  end
  if r[5] then
""" + WORKFLOW_LUA + r"""
    local result, err
    for i = 11, #ARGV - 1, 2 do
      if ARGV[i] == 'result' then result = ARGV[i + 1] elseif ARGV[i] == 'error' then err = ARGV[i + 1] end
    end
    due = member_final(r[5], r[6], id, new, result, err, ARGV[4], ttl, grace)
  end
end
event(id, new, ARGV[4])
if #due > 0 then return {r[1], unpack(due)} end
return r[1]
""")

# KEYS: task. ARGV: P, id, now, result_key, result_value, result_ttl_ms, error_json, ttl, grace
# Returns {outcome, previous state, due id...} (a workflow member's cancellation may make its follow-up due).
CANCEL = script(r"""
local key, id, now = KEYS[1], ARGV[2], ARGV[3]
local r = redis.call('HMGET', key, 'state', 'actor', 'queue', 'score', 'workflow', 'wf_index')
if not r[1] then return {'MISSING', ''} end
if r[1] == 'PENDING' or r[1] == 'RETRY' then
  -- No expiry yet: the message may wait in RabbitMQ for longer than the
  -- result TTL, and the record is what stops it from running. The worker
  -- that finally drops the message starts the expiry (DROP_CANCELLED).
  redis.call('HSET', key, 'state', 'CANCELLED', 'finished_at', now, 'error', ARGV[7])
  redis.call('HDEL', key, 'eta', 'wait_reason')
  move(id, r[4], r[2], r[3], r[1], 'CANCELLED')
  if ARGV[4] ~= '' then
    redis.call('DEL', ARGV[4])
    redis.call('LPUSH', ARGV[4], ARGV[5])
    redis.call('PEXPIRE', ARGV[4], ARGV[6])
  end
  event(id, 'CANCELLED', now)
  if r[5] then
""" + WORKFLOW_LUA + r"""
    return {'CANCELLED', r[1], unpack(member_final(r[5], r[6], id, 'CANCELLED', nil, ARGV[7], now,
                                                    tonumber(ARGV[8]), tonumber(ARGV[9])))}
  end
  return {'CANCELLED', r[1]}
end
if r[1] == 'STARTED' then
  redis.call('HSET', key, 'cancel_requested', now)
  redis.call('PUBLISH', cancel_channel(), id)
  return {'INTERRUPTING', r[1]}
end
return {'REFUSED', r[1]}
""")

# KEYS: task. ARGV: P, id, now, ttl, grace
DROP_CANCELLED = script(r"""
local key = KEYS[1]
local r = redis.call('HMGET', key, 'state', 'actor', 'queue')
if r[1] ~= 'CANCELLED' or redis.call('TTL', key) >= 0 then return 0 end
finalize(key, ARGV[2], r[2], r[3], 'CANCELLED', tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
return 1
""")

# A task's progress report, kept in its record and published to its event stream (a cluster's
# pipelines refuse PUBLISH, so both go in one script). KEYS: task. ARGV: P, id, progress JSON
PROGRESS = script(r"""
redis.call('HSET', KEYS[1], 'progress', ARGV[3])
redis.call('PUBLISH', events_channel(ARGV[2]), '{"type":"progress","progress":' .. ARGV[3] .. '}')
""")

# -- what a record is made of ---------------------------------------------------------------

# The version (4) and variant (RFC 4122) bits of a random UUID, as uuid.uuid4() sets them.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_task_ids(count: int) -> list[str]:
    """*count* random UUIDs (version 4, the same as ``str(uuid.uuid4())``) from one read of randomness.

    One read for the whole batch: uuid.uuid4() reads the system's randomness
    and validates every field once per id.
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
    #: As the caller gave it (the record shows it); it binds per caller and actor (:meth:`idempotency_claim`).
    idempotency_key: Optional[str] = None
    options: Optional[dict] = None
    #: The workflow this task belongs to, and its position there.
    workflow: Optional[str] = None
    wf_index: Optional[int] = None
    #: The API request that submitted it (X-Request-ID), for logs and support.
    request_id: Optional[str] = None
    owner: Owner = NOBODY

    def idempotency_claim(self) -> str:
        """The name the idempotency key is bound under (see :func:`idempotency_claim`)."""
        return idempotency_claim(self.owner.submitted_by, self.actor, self.idempotency_key or "")

    def fields(self, now: float) -> dict[str, str]:
        """The record as written: arguments as submitted (masked when shown, see :mod:`pipeline.sensitive`)."""
        record = {
            "task_id": self.task_id,
            "actor": self.actor,
            "queue": self.queue,
            "priority": str(self.priority),
            "max_retries": str(self.max_retries),
            "state": "PENDING",
            "attempts": "0",
            "args": to_json(self.args),
            "kwargs": to_json(self.kwargs),
            "enqueued_at": f"{now:.6f}",
            "score": str(int(now * 1_000_000)),
            **self.owner.fields(),
        }
        if self.eta is not None:
            record["eta"] = f"{self.eta:.3f}"
            record["wait_reason"] = "delay"
        if self.retry_of:
            record["retry_of"] = self.retry_of
        if self.idempotency_key:
            record["idempotency_key"] = self.idempotency_key
        if self.options:
            record["options"] = to_json(self.options)
        if self.workflow:
            record["workflow"] = self.workflow
            record["wf_index"] = str(self.wf_index)
        if self.request_id:
            record["request_id"] = self.request_id
        return record


def idempotency_claim(submitted_by: Optional[str], actor: str, key: str) -> str:
    """The name an idempotency key is bound under: the same key from another caller, or for
    another actor, is another submission (a token cannot find, or block, another's tasks)."""
    caller = submitted_by or ""
    return f"{len(caller)}:{caller}:{actor}:{key}"


def error_fields(exc: BaseException) -> dict[str, Any]:
    """A record's ``error`` field for *exc*."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {"type": type(exc).__name__, "message": str(exc)[:4000], "traceback": "".join(lines)[-8000:]}


def exception_result(error_type: str, message: str) -> str:
    """The Results-backend encoding of a failure, so ``message.get_result()`` raises ResultFailure."""
    return to_json({"__t": RESULT_CANARY, "exn": {"type": error_type, "msg": message}})


def now_field() -> str:
    """The current time as record fields hold it."""
    return f"{time.time():.6f}"


_local = threading.local()


@contextlib.contextmanager
def untracked() -> Iterator[None]:
    """Enqueue without the worker middleware recording the message (the caller has its record)."""
    _local.untracked = True
    try:
        yield
    finally:
        _local.untracked = False


def is_untracked() -> bool:
    return getattr(_local, "untracked", False)


class RecordWrites:
    """Writing records: a part of :class:`pipeline.state.store.StateStore` (which sets
    ``redis``, ``keys``, ``namespace``, the TTLs and the worker ScriptBatcher)."""

    def _register_record_scripts(self) -> None:
        self._create = self._register(CREATE)
        self._start = self._register(START)
        self._finish = self._register(FINISH)
        self._cancel = self._register(CANCEL)
        self._drop_cancelled = self._register(DROP_CANCELLED)
        self._progress = self._register(PROGRESS)
        # recording() and _hot() call these by hash, without redis-py's reload-on-miss.
        for registered in (self._create, self._start, self._finish):
            self.redis.script_load(registered.script)

    # -- enqueue -------------------------------------------------------------------------

    def record_idempotent(self, task: NewTask) -> Optional[str]:
        """Record *task* and bind its idempotency key in one step, marked unpublished.

        Returns None when recorded, or the id already bound to the key. The
        ``unpublished`` mark (cleared by :meth:`mark_published`) tells a later
        request with the same key whether the message ever reached RabbitMQ.
        """
        fields = task.fields(time.time())
        fields["unpublished"] = now_field()
        argv = [self.keys.of(task.task_id).prefix, task.task_id, task.actor, task.queue, fields["score"],
                to_json(fields), task.idempotency_claim(), self.idempotency_ttl]
        bound = self._create(keys=[self.keys.task(task.task_id)], args=argv)
        return bound if isinstance(bound, str) else None

    def mark_published(self, task_id: str) -> None:
        """Clear the mark (and, with replicas, wait until one has the record and its key)."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hdel(self.keys.task(task_id), "unpublished")
            self._execute_durably(pipe)

    def claim_unpublished(self, task_id: str) -> bool:
        """Take the job of publishing an orphaned task (only one caller gets True)."""
        return bool(self.redis.hdel(self.keys.task(task_id), "unpublished"))

    def restore_unpublished(self, task_id: str, since: float) -> None:
        self.redis.hset(self.keys.task(task_id), "unpublished", f"{since:.6f}")

    def record_enqueued(self, tasks: Iterable[NewTask], now: Optional[float] = None) -> None:
        """Write PENDING records and their index entries in one pipelined round trip."""
        now = time.time() if now is None else now
        with self.redis.pipeline(transaction=False) as pipe:
            for task in tasks:
                self._create(keys=[self.keys.task(task.task_id)], args=self._create_args(task, now), client=pipe)
            self._execute_durably(pipe)

    def _execute_durably(self, pipe) -> None:
        """Execute *pipe* with the replica WAIT (if any) at its end, in the same round trip."""
        wait = self.replica_wait.command()
        if wait:
            pipe.execute_command(*wait)
        replies = pipe.execute()
        if wait:
            self.replica_wait.acknowledged(replies[-1])

    def record_if_missing(self, task: NewTask) -> bool:
        """Record a message enqueued outside :mod:`pipeline.client` (e.g. ``actor.send``)."""
        return bool(self._create(keys=[self.keys.task(task.task_id)], args=self._create_args(task, time.time())))

    def _create_args(self, task: NewTask, now: float) -> list[str]:
        fields = task.fields(now)
        return [self.keys.of(task.task_id).prefix, task.task_id, task.actor, task.queue, fields["score"], to_json(fields)]

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
        if self.clustered:
            # A cluster client sends each script to its slot's node: there is no one connection
            # to stream the records on, so they are written (in one pipeline per node) first.
            self.record_enqueued(tasks, now)
            yield
            return
        sha, task_key = self._create.sha, self.keys.task
        commands = [("EVALSHA", sha, 1, task_key(task.task_id), *self._create_args(task, now)) for task in tasks]
        wait = self.replica_wait.command()
        if wait:  # answered after the publish, like the records: no round trip of its own
            commands.append(wait)
        pool = self.redis.connection_pool
        connection = pool.get_connection()
        published = False
        try:
            connection.send_packed_command(connection.pack_commands(commands))
            try:
                yield
                published = True
            finally:
                self._confirm_recorded(connection, tasks, now, published, bool(wait))
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

    def _confirm_recorded(self, connection, tasks: list[NewTask], now: float, published: bool, waited: bool) -> None:
        """Read recording()'s replies; record again where they say the script was missing.

        Once the messages are published they are accepted whatever Redis says:
        if Redis went away meanwhile (a restart, a failover), the records are
        written again, and if it is still away, the worker that takes each
        message records it.
        """
        script_missing = False
        try:
            for _ in tasks:
                try:
                    connection.read_response()
                except redis.exceptions.NoScriptError:  # Redis restarted (or failed over) without its script cache
                    script_missing = True
            if waited:
                self.replica_wait.acknowledged(connection.read_response())
        except redis.RedisError as exc:
            if not published or not unavailable(exc):
                raise
            connection.disconnect()
            script_missing = True
        if not script_missing:
            return
        try:
            self.record_enqueued(tasks, now)
        except redis.RedisError as exc:
            if not published or not unavailable(exc):
                raise
            logger.warning("Redis went away while %d published task(s) were recorded; their worker records them.", len(tasks))

    def forget(self, tasks: list[NewTask]) -> None:
        """Remove records that were never accepted (the broker refused the message), with
        their idempotency keys, in one transaction per shard: no key may outlive its record."""
        by_shard: dict[str, list[NewTask]] = {}
        for task in tasks:
            by_shard.setdefault(self.keys.of(task.task_id).prefix, []).append(task)
        for shard_tasks in by_shard.values():
            with self.redis.pipeline(transaction=True) as pipe:
                for task in shard_tasks:
                    keys = self.keys.of(task.task_id)
                    pipe.delete(keys.task(task.task_id))
                    for key in keys.indexes(task.actor, task.queue, "PENDING", task.owner.user_id):
                        pipe.zrem(key, task.task_id)
                    if task.idempotency_key:
                        pipe.delete(keys.idempotency(task.idempotency_claim()))
                pipe.execute()

    # -- transitions (workers) -------------------------------------------------------------

    def start(
        self, task_id: str, worker: str, max_attempts: int, redelivered: bool = True, delivery: str = ""
    ) -> tuple[str, int]:
        """PENDING/RETRY/STARTED -> STARTED. Returns (outcome, attempts).

        Outcomes: STARTED; MISSING (no record); EXHAUSTED (delivered more times
        than the policy allows, e.g. a message that kills its worker); DUPLICATE
        (a second copy of a running task's message, not a redelivery); or the
        final state when the task already finished (a redelivery).
        *delivery* names this delivery, so that a START sent again because its
        reply was lost (Redis went away after running it) is not taken for a
        second copy of the message.
        """
        argv = [self.keys.of(task_id).prefix, task_id, worker, now_field(), max_attempts, "1" if redelivered else "0", delivery]
        outcome, attempts = self._hot(self._start, task_id, argv)
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
            self.keys.of(task_id).prefix, task_id, state, now_field(), self.result_ttl, self.expiry_grace,
            result_key, result_value, self.result_ttl * 1000, "" if runtime_ms is None else runtime_ms,
        ]
        for name, value in fields.items():
            argv += [name, value]
        reply = self._hot(self._finish, task_id, argv, durable=True)
        if isinstance(reply, list):
            self._hand_out(reply[1:])
            return reply[0]
        return reply

    #: Called with the ids of workflow follow-ups that a transition made due
    #: (set by the engine to publish them; None: the due-set sweep does).
    follow_ups_due: Optional[Any] = None

    def _hand_out(self, due: list[str]) -> None:
        if self.follow_ups_due is not None and due:
            self.follow_ups_due(due)

    def fail(self, task_id: str, error: dict[str, Any], result_key: str = "", runtime_ms: Optional[int] = None) -> str:
        """Finish a task as FAILURE with *error* (and its failure as the Dramatiq result)."""
        fields = {"finished_at": now_field(), "error": to_json(error)}
        if runtime_ms is not None:
            fields["runtime_ms"] = str(runtime_ms)
        value = exception_result(error["type"], error["message"]) if result_key else ""
        return self.finish(task_id, "FAILURE", fields, result_key, value, runtime_ms)

    def _hot(self, script, task_id: str, argv: list, durable: bool = False) -> Any:
        """Run a worker hot-path script, batched with other threads' (see ScriptBatcher).

        Going straight to a connection also skips redis-py's pool checkout,
        retry and health-check layers, which cost more CPU than the scripts
        themselves. Connection errors propagate (TaskState waits for Redis
        and retries).
        """
        if self._worker_scripts is None:  # a cluster: each script goes to its slot's node
            return script(keys=[self.keys.task(task_id)], args=argv)
        try:
            return self._worker_scripts.execute("EVALSHA", script.sha, 1, self.keys.task(task_id), *argv, durable=durable)
        except redis.exceptions.NoScriptError:
            self.redis.script_load(script.script)
            return self._hot(script, task_id, argv, durable)

    def mark_cancelled_dropped(self, task_id: str) -> None:
        """A worker dropped the message of a cancelled task: start its expiry."""
        self._drop_cancelled(keys=[self.keys.task(task_id)],
                             args=[self.keys.of(task_id).prefix, task_id, now_field(), self.result_ttl, self.expiry_grace])

    def still_waiting(self, task_id: str) -> bool:
        """Does a message waiting in the delay queue still have a task to run?

        Not when its task was cancelled (the record then starts its expiry, as
        when a worker drops the message of a cancelled task) or has finished.
        """
        state = self.redis.hget(self.keys.task(task_id), "state")
        if state == "CANCELLED":
            self.mark_cancelled_dropped(task_id)
        return state not in FINAL_STATES

    def report_progress(self, task_id: str, progress: dict[str, Any]) -> None:
        self._progress(keys=[self.keys.task(task_id)], args=[self.keys.of(task_id).prefix, task_id, to_json(progress)])

    # -- operator actions ------------------------------------------------------------------

    def cancel(self, task_id: str, result_key: str, result_value: str) -> tuple[str, str]:
        """Returns (outcome, previous state): CANCELLED, INTERRUPTING, REFUSED or MISSING."""
        error = to_json({"type": "TaskCancelled", "message": "cancelled before it ran"})
        outcome, previous, *due = self._cancel(
            keys=[self.keys.task(task_id)],
            args=[self.keys.of(task_id).prefix, task_id, now_field(), result_key, result_value, self.result_ttl * 1000, error,
                  self.result_ttl, self.expiry_grace],
        )
        self._hand_out(due)
        return outcome, previous

    def set_payload(self, task_id: str, args: list, kwargs: dict) -> None:
        """The arguments the task runs with, when they differ from those it was recorded with (a
        workflow's follow-up gets what earlier members passed on): what a retry of it runs with."""
        self.redis.hset(self.keys.task(task_id), "payload", to_json({"args": args, "kwargs": kwargs}))

    def claim_retry(self, original_id: str, new_id: str) -> Optional[str]:
        """Link *new_id* as the retry of *original_id*; return the earlier retry if there is one."""
        key = self.keys.task(original_id)
        if self.redis.hsetnx(key, "retried_by", new_id):
            return None
        return self.redis.hget(key, "retried_by")

    def unclaim_retry(self, original_id: str) -> None:
        self.redis.hdel(self.keys.task(original_id), "retried_by")

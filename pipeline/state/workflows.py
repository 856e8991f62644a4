"""Workflow records: chains, groups and chords counted in the same step as their members' final states.

A workflow is a hash (kind, state, counters) with three companions: its
members by position (a chord's callback last), the results of members that
succeeded and the errors of those that did not. Every task of a workflow is
a normal task record carrying ``workflow`` and ``wf_index``.

Counting happens inside the scripts that give a task its final state
(FINISH, CANCEL; see :data:`MEMBER_FINAL`): a task reaches a final state once,
so it is counted once, whatever a worker does around it (retries, SIGKILL,
redelivery). The step that completes a chord's members or a chain's step
also decides the follow-up, in the same script:

* the follow-up's record was written at submission as WAITING (in no index,
  its arguments in its record); it becomes PENDING and its id goes into the
  *due* set (``Keys.follow_ups_due``);
* whoever publishes its message removes it from the due set afterwards: the
  worker that finished the member (at once), or, if that worker died in
  between, the redelivered member's worker or the due-set sweep of any
  worker (:mod:`pipeline.maintenance.follow_ups`). A message published twice
  is harmless: START drops a second copy of a task that is running or done.

A follow-up that will not run (a chain stopped, a chord's ``skip`` policy, a
cancelled workflow) goes from WAITING to CANCELLED with ``skipped`` set.
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional


from pipeline.encoder import to_json
from pipeline.owners import Owner
from pipeline.state.lua import script
from pipeline.state.workflow_lua import WORKFLOW_LUA
from pipeline.state.records import NewTask, now_field

# Cancels a running workflow: its WAITING follow-ups are skipped; its members
# are then cancelled one by one through CANCEL (which counts them).
# KEYS: workflow. ARGV: P, wf, now, ttl, grace
CANCEL_WORKFLOW = script(WORKFLOW_LUA + r"""
local wf, now, ttl, grace = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local w = redis.call('HMGET', KEYS[1], 'state', 'kind', 'members', 'callback')
if not w[1] then return 'MISSING' end
if w[1] ~= 'RUNNING' then return w[1] end
local reason = 'the workflow was cancelled'
if w[2] == 'chain' then
  for j = 0, tonumber(w[3]) - 1 do
    skip_waiting(wf, redis.call('HGET', workflow_members_key(wf), tostring(j)), reason, now, ttl, grace)
  end
elseif w[2] == 'chord' then
  skip_waiting(wf, w[4], reason, now, ttl, grace)
end
redis.call('HSET', KEYS[1], 'cancel_requested', now)
workflow_done(wf, 'CANCELLED', now, ttl, grace)
return 'RUNNING'
""")

# Re-runs the members of a finished workflow that did not succeed, each as a
# new task in its position, and re-arms what follows them: the WAITING state
# comes back to skipped follow-ups, the counters forget the replaced members.
# KEYS: workflow. ARGV: P, wf, now, then (position, old id, new id, new record JSON)...
# Returns the new ids that are due (the caller publishes them), or an error status.
RETRY_WORKFLOW = script(WORKFLOW_LUA + r"""
local wf, now = ARGV[2], ARGV[3]
local wkey, mkey = KEYS[1], workflow_members_key(wf)
local w = redis.call('HMGET', wkey, 'state', 'kind', 'members', 'callback')
if not w[1] then return {'MISSING'} end
if w[1] == 'RUNNING' or w[1] == 'SUCCESS' then return {w[1]} end
for i = 4, #ARGV, 4 do
  local r = redis.call('HMGET', task_key(ARGV[i + 1]), 'state')
  if redis.call('HGET', mkey, ARGV[i]) ~= ARGV[i + 1] or (r[1] ~= 'FAILURE' and r[1] ~= 'CANCELLED') then
    return {'CHANGED'}
  end
end
local function rearm(id)  -- a skipped follow-up waits again
  local key = task_key(id)
  local r = redis.call('HMGET', key, 'state', 'actor', 'queue', 'score', 'skipped')
  if r[1] ~= 'CANCELLED' or not r[5] then return end
  redis.call('PERSIST', key)
  redis.call('ZREM', expiry_key(), expiry_member(id, r[2], r[3], 'CANCELLED'))
  for _, k in ipairs(entry_keys(r[2], r[3], owner_of(id))) do redis.call('ZREM', k, id) end
  for _, k in ipairs(state_keys('CANCELLED', r[2], r[3], owner_of(id))) do redis.call('ZREM', k, id) end
  redis.call('HDEL', key, 'skipped', 'finished_at', 'error')
  redis.call('HSET', key, 'state', 'WAITING')
  redis.call('HINCRBY', wkey, 'cancelled', -1)
  redis.call('HDEL', workflow_errors_key(wf), redis.call('HGET', key, 'wf_index'))
end
local n, due, first = tonumber(w[3]), {}, nil
for i = 4, #ARGV, 4 do
  local index, old, new = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local state = redis.call('HGET', task_key(old), 'state')
  redis.call('HINCRBY', wkey, state == 'FAILURE' and 'failed' or 'cancelled', -1)
  redis.call('HDEL', workflow_errors_key(wf), index)
  if w[2] ~= 'chain' and tonumber(index) < n then redis.call('HINCRBY', wkey, 'members_done', -1) end
  redis.call('HSET', mkey, index, new)
  if w[2] == 'chord' and tonumber(index) == n then redis.call('HSET', wkey, 'callback', new) end
  redis.call('HSET', task_key(old), 'retried_by', new)
  local key = task_key(new)
  local flat = {}
  for name, value in pairs(cjson.decode(ARGV[i + 3])) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  redis.call('HSET', key, unpack(flat))
  redis.call('HSET', key, 'state', 'WAITING')
  if not first or tonumber(index) < first then first = tonumber(index) end
  if w[2] == 'chain' then
    -- only the retried step runs now; the ones after it wait for it again
  else
    make_due(new, now)
    due[#due + 1] = new
  end
end
if w[2] == 'chain' then
  for j = first + 1, n - 1 do rearm(redis.call('HGET', mkey, tostring(j))) end
  local step = redis.call('HGET', mkey, tostring(first))
  make_due(step, now)
  due[#due + 1] = step
elseif w[2] == 'chord' then
  rearm(w[4])
end
for _, k in ipairs(workflow_keys(wf)) do redis.call('PERSIST', k) end
redis.call('HDEL', wkey, 'finished_at', 'cancel_requested')
redis.call('HSET', wkey, 'state', 'RUNNING')
redis.call('HINCRBY', wkey, 'retries', 1)
return {'RETRIED', unpack(due)}
""")

# Seals a submitted workflow once all its tasks are recorded: its record appears and, with an
# idempotency key, the key is bound to it, in one step. Until then nothing of it is published, and
# the due-set sweep leaves its tasks alone (or forgets them if the submission never seals).
# KEYS: workflow[, idempotency key]. ARGV: record JSON, workflow id, key TTL.
# Returns the workflow already bound to the key (nothing written), or nil.
SEAL_WORKFLOW = r"""
if KEYS[2] then
  local bound = redis.call('GET', KEYS[2])
  if bound then return bound end
  redis.call('SET', KEYS[2], ARGV[2], 'EX', tonumber(ARGV[3]))
end
local flat = {}
for name, value in pairs(cjson.decode(ARGV[1])) do
  flat[#flat + 1] = name
  flat[#flat + 1] = value
end
redis.call('HSET', KEYS[1], unpack(flat))
return false
"""

# Hands out overdue follow-ups to one sweeper: their scores move to now, so
# other sweepers leave them alone for another grace period.
# KEYS: due set. ARGV: cutoff, now, limit
CLAIM_OVERDUE = r"""
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id) end
return ids
"""

_WORKFLOW_INT_FIELDS = ("members", "total", "succeeded", "failed", "cancelled", "members_done", "members_ok", "retries")


#: Tasks recorded per pipelined round trip when a workflow is submitted.
BATCH = 1000


class WorkflowRecords:
    """Workflow records: a part of :class:`pipeline.state.store.StateStore`."""

    def _register_workflow_scripts(self) -> None:
        self._seal_workflow = self._register(SEAL_WORKFLOW)
        self._cancel_workflow = self._register(CANCEL_WORKFLOW)
        self._retry_workflow = self._register(RETRY_WORKFLOW)
        self._claim_overdue = self._register(CLAIM_OVERDUE)

    # -- submission ------------------------------------------------------------------------

    def bound_workflow(self, idempotency_key: str) -> Optional[str]:
        """The workflow an idempotency key names, if it still exists."""
        bound = self.redis.get(self.keys.of_claim(idempotency_key).workflow_idempotency(idempotency_key))
        return bound if bound and self.redis.exists(self.keys.workflow(bound)) else None

    def record_workflow_tasks(self, workflow_id: str, task_ids: list[str], first: list[NewTask],
                              waiting: list[NewTask]) -> None:
        """Record every task of a workflow before anything is published, in pipelined batches: its
        positions, the tasks that run at once (PENDING and due) and the follow-ups (WAITING), all in
        the workflow's shard. The workflow is not sealed yet (see :meth:`seal_workflow`)."""
        now, due = time.time(), self.keys.of(workflow_id).follow_ups_due
        for start in range(0, len(task_ids), BATCH):
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(self.keys.workflow_members(workflow_id),
                          mapping={str(i): task_ids[i] for i in range(start, min(len(task_ids), start + BATCH))})
                batch = first[start:start + BATCH]
                for task in batch:
                    self._create(keys=[self.keys.task(task.task_id)], args=self._create_args(task, now), client=pipe)
                if batch:
                    pipe.zadd(due, {task.task_id: now for task in batch})
                for task in waiting[start:start + BATCH]:
                    pipe.hset(self.keys.task(task.task_id), mapping={**task.fields(now), "state": "WAITING"})
                self._execute_durably(pipe)

    def seal_workflow(self, workflow_id: str, fields: dict[str, str], idempotency_key: Optional[str] = None
                      ) -> Optional[str]:
        """Write the workflow's record (and bind its idempotency key) in one step, once its tasks are recorded.

        Returns None, or the id of the workflow the key was bound to meanwhile (nothing written).
        """
        record = {**fields, "state": "RUNNING", "created_at": now_field()}
        keys = [self.keys.workflow(workflow_id)]
        if idempotency_key:
            keys.append(self.keys.of(workflow_id).workflow_idempotency(idempotency_key))
        return self._seal_workflow(keys=keys, args=[to_json(record), workflow_id, self.idempotency_ttl])

    def forget_unsealed(self, workflow_id: str) -> int:
        """Remove what a submission that never sealed left (its submitter died while recording);
        none of it was published. Returns how many tasks it had recorded."""
        if self.redis.exists(self.keys.workflow(workflow_id)):
            return 0
        ids = [i for i in self.redis.hvals(self.keys.workflow_members(workflow_id))]
        records = [r for r in self.get_many(ids) if r is not None]
        self.forget([NewTask(record["task_id"], record["actor"], record["queue"], 0, 0, [], {}, owner=Owner.of_record(record))
                     for record in records])
        with self.redis.pipeline(transaction=True) as pipe:
            if ids:
                pipe.zrem(self.keys.of(workflow_id).follow_ups_due, *ids)
                pipe.delete(*(self.keys.task(i) for i in ids))
            pipe.delete(self.keys.workflow_members(workflow_id))
            pipe.execute()
        return len(records)

    def forget_workflow(self, workflow_id: str, tasks: list[NewTask], idempotency_key: Optional[str] = None) -> None:
        """Remove a workflow none of whose messages was published (RabbitMQ refused the first batch, or its
        idempotency key turned out to be bound to another workflow when it was sealed)."""
        self.forget(tasks)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.keys.of(workflow_id).follow_ups_due, *[t.task_id for t in tasks])
            pipe.delete(self.keys.workflow(workflow_id), self.keys.workflow_members(workflow_id),
                        *(self.keys.task(t.task_id) for t in tasks))
            if idempotency_key:
                pipe.delete(self.keys.of(workflow_id).workflow_idempotency(idempotency_key))
            pipe.execute()

    # -- due follow-ups --------------------------------------------------------------------

    def _by_due_set(self, task_ids: list[str]) -> dict[str, list[str]]:
        """*task_ids* grouped by the due set of their shard."""
        groups: dict[str, list[str]] = {}
        for task_id in task_ids:
            groups.setdefault(self.keys.of(task_id).follow_ups_due, []).append(task_id)
        return groups

    def follow_ups_published(self, task_ids: list[str]) -> None:
        if task_ids:
            with self.redis.pipeline(transaction=False) as pipe:
                for due, ids in self._by_due_set(task_ids).items():
                    pipe.zrem(due, *ids)
                pipe.execute()

    def claim_overdue(self, older_than: float, limit: int = 500) -> list[str]:
        """Due follow-ups left unpublished for *older_than* seconds (their publisher died); *limit* per shard."""
        now = time.time()
        with self.redis.pipeline(transaction=False) as pipe:
            for keys in self.keys.all_shards():
                self._claim_overdue(keys=[keys.follow_ups_due], args=[f"{now - older_than:.6f}", f"{now:.6f}", limit],
                                    client=pipe)
            return [task_id for ids in pipe.execute() for task_id in ids]

    def due_among(self, task_ids: list[str]) -> list[str]:
        if not task_ids:
            return []
        groups = self._by_due_set(task_ids)
        with self.redis.pipeline(transaction=False) as pipe:
            for due, ids in groups.items():
                pipe.zmscore(due, ids)
            replies = pipe.execute()
        due_ids = {task_id for ids, scores in zip(groups.values(), replies)
                   for task_id, score in zip(ids, scores) if score is not None}
        return [task_id for task_id in task_ids if task_id in due_ids]

    # -- reading ---------------------------------------------------------------------------

    def get_workflow(self, workflow_id: str) -> Optional[dict[str, Any]]:
        raw = self.redis.hgetall(self.keys.workflow(workflow_id))
        if not raw:
            return None
        record: dict[str, Any] = dict(raw)
        for name in _WORKFLOW_INT_FIELDS:
            record[name] = int(raw.get(name) or 0)
        for name in ("created_at", "finished_at", "cancel_requested"):
            if name in raw:
                record[name] = float(raw[name])
        if "description" in raw:
            record["description"] = json.loads(raw["description"])
        record["workflow_id"] = workflow_id
        return record

    def workflow_task_ids(self, workflow_id: str, start: int = 0, stop: Optional[int] = None) -> list[Optional[str]]:
        """Task ids at positions start..stop-1 (all when stop is None)."""
        key = self.keys.workflow_members(workflow_id)
        if stop is None:
            stop = int(self.redis.hlen(key))
        if stop <= start:
            return []
        return self.redis.hmget(key, [str(i) for i in range(start, stop)])

    def workflow_results(self, workflow_id: str, positions: list[int]) -> list[Any]:
        """Results of the members at *positions* (None where a member has none)."""
        if not positions:
            return []
        raw = self.redis.hmget(self.keys.workflow_results(workflow_id), [str(i) for i in positions])
        return [json.loads(value) if value is not None else None for value in raw]

    def workflow_errors(self, workflow_id: str) -> dict[int, dict]:
        raw = self.redis.hgetall(self.keys.workflow_errors(workflow_id))
        return {int(index): json.loads(value) for index, value in raw.items()}

    # -- operator actions ------------------------------------------------------------------

    def cancel_workflow(self, workflow_id: str) -> str:
        """RUNNING -> CANCELLED (its WAITING follow-ups skipped); returns the state it had."""
        return self._cancel_workflow(keys=[self.keys.workflow(workflow_id)],
                                     args=[self.keys.of(workflow_id).prefix, workflow_id, now_field(), self.result_ttl,
                                           self.expiry_grace])

    def retry_workflow(self, workflow_id: str, replacements: list[tuple[int, str, NewTask]]) -> tuple[str, list[str]]:
        """Put new tasks in the positions of members that did not succeed; returns (status, due ids).

        Status RETRIED when done; MISSING, RUNNING or SUCCESS (nothing to
        retry) or CHANGED (a member changed meanwhile) when nothing was done.
        """
        now = time.time()
        argv: list[Any] = [self.keys.of(workflow_id).prefix, workflow_id, f"{now:.6f}"]
        for index, old_id, task in replacements:
            argv += [index, old_id, task.task_id, to_json(task.fields(now))]
        reply = self._retry_workflow(keys=[self.keys.workflow(workflow_id)], args=argv)
        return reply[0], list(reply[1:])

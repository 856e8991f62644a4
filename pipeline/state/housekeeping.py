"""Changes to records outside a task's own run: expiry, repairs, dead letters, cleanup.

Used by the worker heartbeats (trimming), the maintenance jobs
(:mod:`pipeline.maintenance`) and the operators' dead-letter actions
(:mod:`pipeline.dead_letters`). None of it is on a request path except the
dead-letter actions, which touch only the tasks they are given.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterable, Optional


from pipeline.encoder import to_json
from pipeline.state.keys import STATES
from pipeline.state.lua import script

# Removes the index entries of finished tasks whose result TTL has passed (in one shard).
# KEYS: the shard's expiry set (names the shard's slot). ARGV: P, now, limit
TRIM = script(r"""
local due = redis.call('ZRANGEBYSCORE', expiry_key(), '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  -- id, actor, queue, state[, user]
  local id, actor, queue, state, owner = string.match(member, '^(.-)\31(.-)\31(.-)\31([^\31]*)\31?(.*)$')
  if id then
    for _, k in ipairs(entry_keys(actor, queue, owner)) do redis.call('ZREM', k, id) end
    for _, k in ipairs(state_keys(state, actor, queue, owner)) do redis.call('ZREM', k, id) end
  end
  redis.call('ZREM', expiry_key(), member)
end
return #due
""")

# FAILURE -> PENDING for a dead letter put back on its queue, undoing what
# FINISH did: expiry, result, error, attempts. A task that was already retried
# by hand (``retried_by``) is not reset, so requeueing its dead message can
# never run the work a second time. A workflow's task is retried through its
# workflow (which re-arms what follows it), so its dead letter stays.
# KEYS: task. ARGV: P, id, now, result_key
REQUEUE_FAILED = script(r"""
local key, id, now = KEYS[1], ARGV[2], ARGV[3]
local r = redis.call('HMGET', key, 'state', 'actor', 'queue', 'score', 'retried_by', 'error', 'workflow')
if not r[1] then return {'MISSING', ''} end
if r[1] ~= 'FAILURE' then return {r[1], ''} end
if r[5] then return {'RETRIED', ''} end
if r[7] then return {'WORKFLOW', ''} end
redis.call('PERSIST', key)
redis.call('ZREM', expiry_key(), expiry_member(id, r[2], r[3], 'FAILURE'))
redis.call('HDEL', key, 'finished_at', 'error', 'result', 'runtime_ms', 'started_at', 'worker', 'eta',
           'wait_reason', 'cancel_requested')
redis.call('HSET', key, 'state', 'PENDING', 'attempts', '0')
move(id, r[4], r[2], r[3], 'FAILURE', 'PENDING')
for _, k in ipairs(entry_keys(r[2], r[3], owner_of(id))) do redis.call('ZADD', k, r[4], id) end
if ARGV[4] ~= '' then redis.call('DEL', ARGV[4]) end
event(id, 'PENDING', now)
return {'RESET', r[6] or ''}
""")

# Removes a FAILURE record, its index entries, its expiry entry and its result.
# Any other state is left alone (the task was requeued or retried meanwhile).
# KEYS: task. ARGV: P, id, result_key
DELETE_FAILED = script(r"""
local key, id = KEYS[1], ARGV[2]
local r = redis.call('HMGET', key, 'state', 'actor', 'queue')
if r[1] ~= 'FAILURE' then return 0 end
local owner = owner_of(id)
for _, k in ipairs(state_keys('FAILURE', r[2], r[3], owner)) do redis.call('ZREM', k, id) end
for _, k in ipairs(entry_keys(r[2], r[3], owner)) do redis.call('ZREM', k, id) end
redis.call('ZREM', expiry_key(), expiry_member(id, r[2], r[3], 'FAILURE'))
redis.call('DEL', key)
if ARGV[3] ~= '' then redis.call('DEL', ARGV[3]) end
return 1
""")

# A task STARTED by a worker that is gone goes back to PENDING, marked with
# the error that says so. Only a task still STARTED by that worker is reset.
# KEYS: task. ARGV: P, id, the dead worker, now, error JSON.
# Returns its started_at and error, for LOST_AGAIN.
LOST_TO_PENDING = script(r"""
local key, id = KEYS[1], ARGV[2]
local r = redis.call('HMGET', key, 'state', 'worker', 'score', 'started_at', 'error', 'actor', 'queue')
if r[1] ~= 'STARTED' or r[2] ~= ARGV[3] then return false end
redis.call('HSET', key, 'state', 'PENDING', 'error', ARGV[5])
redis.call('HDEL', key, 'started_at', 'worker')
move(id, r[3], r[6], r[7], 'STARTED', 'PENDING')
event(id, 'PENDING', ARGV[4])
return {r[4] or '', r[5] or ''}
""")

# Undoes LOST_TO_PENDING when the message could not be published, so the
# task is found lost again by the next check.
# KEYS: task. ARGV: P, id, the dead worker, started_at, error ('' = none).
LOST_AGAIN = script(r"""
local key, id = KEYS[1], ARGV[2]
local r = redis.call('HMGET', key, 'state', 'score', 'actor', 'queue')
if r[1] ~= 'PENDING' then return 0 end
redis.call('HSET', key, 'state', 'STARTED', 'worker', ARGV[3], 'started_at', ARGV[4])
if ARGV[5] == '' then redis.call('HDEL', key, 'error') else redis.call('HSET', key, 'error', ARGV[5]) end
move(id, r[2], r[3], r[4], 'PENDING', 'STARTED')
event(id, 'STARTED', ARGV[4])  -- streams saw PENDING: they see it undone
return 1
""")

# Pops the oldest undecodable-message entries (the list is newest first) while older than the cutoff.
# KEYS: undecodable list. ARGV: cutoff.
TRIM_UNDECODABLE = r"""
local removed = 0
while true do
  local entry = redis.call('LINDEX', KEYS[1], -1)
  if not entry then break end
  local ok, decoded = pcall(cjson.decode, entry)
  if ok and type(decoded) == 'table' and tonumber(decoded['at']) and tonumber(decoded['at']) >= tonumber(ARGV[1]) then break end
  redis.call('RPOP', KEYS[1])
  removed = removed + 1
end
return removed
"""

#: Index entries are walked in pages of this many by the daily cleanup.
PAGE = 500


class Housekeeping:
    """Expiry, repairs, dead letters and cleanup: a part of :class:`pipeline.state.store.StateStore`."""

    def _register_housekeeping_scripts(self) -> None:
        self._trim = self._register(TRIM)
        self._requeue_failed = self._register(REQUEUE_FAILED)
        self._delete_failed = self._register(DELETE_FAILED)
        self._lost_to_pending = self._register(LOST_TO_PENDING)
        self._lost_again = self._register(LOST_AGAIN)
        self._trim_undecodable = self._register(TRIM_UNDECODABLE)

    # -- expiry ----------------------------------------------------------------------------

    def trim_expired(self, limit: int = 1000, now: Optional[float] = None) -> int:
        """Remove index entries of records whose result TTL has passed; returns how many (*limit* per shard)."""
        at = f"{time.time() if now is None else now:.6f}"
        with self.redis.pipeline(transaction=False) as pipe:
            for keys in self.keys.all_shards():
                self._trim(keys=[keys.expiry], args=[keys.prefix, at, limit], client=pipe)
            return sum(map(int, pipe.execute()))

    # -- undecodable messages --------------------------------------------------------------

    def record_undecodable(self, body: bytes, reason: str) -> None:
        entry = to_json({"at": time.time(), "reason": reason, "size": len(body), "head": body[:512].hex()})
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.lpush(self.keys.undecodable, entry)
            pipe.ltrim(self.keys.undecodable, 0, 999)
            pipe.execute()

    def undecodable(self, limit: int = 100) -> list[dict]:
        return [json.loads(x) for x in self.redis.lrange(self.keys.undecodable, 0, limit - 1)]

    def trim_undecodable(self, cutoff: float) -> int:
        """Drop undecodable-message entries older than *cutoff*; returns how many."""
        return int(self._trim_undecodable(keys=[self.keys.undecodable], args=[repr(cutoff)]))

    # -- dead letters ----------------------------------------------------------------------

    def requeue_failed(self, task_id: str, result_key: str) -> tuple[str, str]:
        """FAILURE -> PENDING for a dead letter being put back (see REQUEUE_FAILED).

        Returns (RESET | MISSING | RETRIED | the state it is in, the error it had).
        """
        outcome, error = self._requeue_failed(keys=[self.keys.task(task_id)],
                                              args=[self.keys.of(task_id).prefix, task_id, f"{time.time():.6f}", result_key])
        return outcome, error

    def delete_failed(self, task_id: str, result_key: str) -> bool:
        """Remove a FAILURE record with its index entries and result; False if it is in another state."""
        return bool(self._delete_failed(keys=[self.keys.task(task_id)], args=[self.keys.of(task_id).prefix, task_id, result_key]))

    # -- lost tasks ------------------------------------------------------------------------

    def requeue_lost(self, task_id: str, worker: str, error: dict[str, Any]) -> Optional[tuple[str, str]]:
        """STARTED by *worker* (gone) -> PENDING, marked with *error*.

        Returns what :meth:`restore_lost` needs to undo it, or None when the
        task moved on (redelivered or finished) since it was read.
        """
        previous = self._lost_to_pending(keys=[self.keys.task(task_id)],
                                         args=[self.keys.of(task_id).prefix, task_id, worker, f"{time.time():.6f}", to_json(error)])
        return tuple(previous) if previous else None

    def restore_lost(self, task_id: str, worker: str, previous: tuple[str, str]) -> None:
        """Undo :meth:`requeue_lost` (its message could not be published)."""
        self._lost_again(keys=[self.keys.task(task_id)], args=[self.keys.of(task_id).prefix, task_id, worker, *previous])

    def still_started_by(self, task_id: str, worker: Optional[str]) -> bool:
        """Whether the task is still STARTED by *worker* (not redelivered or finished since)."""
        state, current = self.redis.hmget(self.keys.task(task_id), "state", "worker")
        return state == "STARTED" and current == worker

    # -- daily cleanup ---------------------------------------------------------------------

    def remove_orphaned_entries(self, actors: Iterable[str], queues: Iterable[str]) -> int:
        """Drop index entries whose record is gone: from every index of that state, and from the users' indexes."""
        actors, queues = list(actors), list(queues)
        removed = 0
        for keys in self.keys.all_shards():
            for state in STATES:
                removed += self._drop_orphans(keys.index_state(state), lambda gone, keys=keys, state=state:
                                              self._remove_from_indexes(keys, gone, state, actors, queues))
            prefix = keys.index_owner("")
            # The users' indexes are found by SCAN: the cleanup is not a request path.
            for name in self.redis.scan_iter(match=keys.index_owner_pattern, count=1000):
                user_indexes = (name, *(keys.index_owner_state(name[len(prefix):], state) for state in STATES))
                removed += self._drop_orphans(name, lambda gone, names=user_indexes: self._zrem_all(names, gone))
        return removed

    def _drop_orphans(self, index: str, remove: Callable[[list[str]], None]) -> int:
        """Page through *index* and hand the ids whose record is gone to *remove*; returns how many.

        Entries are paged by rank; removing some of a page moves later ones up
        by that many, which the next offset accounts for. An entry missed
        because a concurrent trim shifted the ranks is caught by the next run.
        """
        removed, offset = 0, 0
        while ids := self.redis.zrange(index, offset, offset + PAGE - 1):
            with self.redis.pipeline(transaction=False) as pipe:
                for task_id in ids:
                    pipe.exists(self.keys.task(task_id))
                gone = [task_id for task_id, exists in zip(ids, pipe.execute()) if not exists]
            if gone:
                remove(gone)
                removed += len(gone)
            offset += len(ids) - len(gone)
        return removed

    def _zrem_all(self, names: Iterable[str], ids: list[str]) -> None:
        with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.zrem(name, *ids)
            pipe.execute()

    def _remove_from_indexes(self, keys, ids: list[str], state: str, actors: list[str], queues: list[str]) -> None:
        """The record (and with it the actor and queue) is gone, so remove from every index (of its
        shard, *keys*) it could be in."""
        names = [keys.index_all, keys.index_state(state)]
        for actor in actors:
            names += [keys.index_actor(actor), keys.index_state_actor(state, actor)]
        for queue in queues:
            names += [keys.index_queue(queue), keys.index_state_queue(state, queue)]
        self._zrem_all(names, ids)

    def remove_old_buckets(self, oldest_read: int) -> int:
        """Throughput buckets older than *oldest_read* (normally they expire by themselves).

        A SCAN: this is the daily cleanup, bounded by the data, not a request path.
        """
        old = []
        for keys in self.keys.all_shards():
            prefix = keys.throughput("")
            for name in self.redis.scan_iter(match=keys.throughput_pattern, count=1000):
                suffix = name[len(prefix):]
                if suffix.isdigit() and int(suffix) < oldest_read:
                    old.append(name)
        for start in range(0, len(old), PAGE):
            self.redis.delete(*old[start : start + PAGE])
        return len(old)

    # -- health snapshot and alerts --------------------------------------------------------

    def save_health_snapshot(self, snapshot: dict[str, Any]) -> None:
        self.redis.set(self.keys.health_snapshot, json.dumps(snapshot, default=str))

    def health_snapshot(self) -> Optional[dict[str, Any]]:
        raw = self.redis.get(self.keys.health_snapshot)
        return json.loads(raw) if raw is not None else None

    def claim_alerts(self, problems: list[str], now: float, repeat_seconds: int) -> list[bool]:
        """For each problem, whether it is new: not alerted within *repeat_seconds* (it is claimed for that long)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for problem in problems:
                pipe.set(self.keys.health_alerted(problem), f"{now:.0f}", nx=True, ex=repeat_seconds)
            return [bool(claimed) for claimed in pipe.execute()]

    def release_alerts(self, problems: list[str]) -> None:
        """Let *problems* be alerted again at the next check (their alert was not sent)."""
        if problems:
            self.redis.delete(*(self.keys.health_alerted(problem) for problem in problems))

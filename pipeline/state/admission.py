"""Rate limits and fair share: which waiting task of an actor may start now.

RabbitMQ hands a worker messages in queue order (by priority, then first in
first out); it cannot say "the next start goes to the user who has waited
longest". So a rate-limited actor's messages still wait in RabbitMQ (hopping
through the delay queue, :mod:`pipeline.holds`) while the decision of which
task starts is made here, in one script per delivery:

* **Windows.** A sliding window of starts per actor (the global cap) and one
  per key (a user, a conversation): a start is allowed while both have room.
* **Fair share.** Each key with waiting tasks takes turns (start-time fair
  queueing with equal shares, i.e. weighted round robin with weight 1): the
  key whose turn comes first (lowest virtual time) goes next, a key that
  starts waiting joins the current round instead of the end of the queue, and
  a key at its own limit lets the others go. Priority still comes first: a
  key is ranked by its most urgent waiting task.
* **Who is here.** Only the worker holding a message can start its task. A
  message that arrives when there is room starts unless tasks ranked before it
  (other keys whose turn comes first, earlier tasks of its own key) have a
  message due back now, within a grace, to take that room; one whose message
  is not due soon does not hold the others up (a start is never wasted
  waiting for it).
* **When to come back.** A task that must wait is told when its turn should
  come: the n-th free start, counting the keys ahead of it in this round and
  whole rounds for the tasks ahead of it in its own key, under both windows.
  The record shows it as ``eta`` (``wait_reason: rate_limit``), the message
  comes back then, and the decision is made again (a new key may have taken
  the turn; the estimate is then refreshed).

A message whose worker dies is redelivered by RabbitMQ with the same due
time; its task keeps its place. A waiting entry whose message has not come
back long after it was due (the message was purged) is dropped, so it never
holds others up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


from pipeline.state.lua import script

#: A key whose next waiting message is due back within this many ms of now
#: is taken to be here to use its turn.
GRACE_MS = 1000
#: The shortest wait a task is given (so that a task put back never spins).
MIN_WAIT_MS = 20
#: How many keys ranked before its own a task looks at (a task behind more
#: keys than this waits: so many keys are not all absent).
SCAN_KEYS = 256

# KEYS: task. ARGV: P, actor, id, key, priority, global_limit, global_window_ms, key_limit, key_window_ms,
# now_ms ('' = Redis TIME), stale_ms, redelivered (1/0)
# A limit of 0 means none. Returns {'RUN'}, {'PASS'} (not this limiter's to decide: the task is
# finished, or this is a second copy of a running task) or {'WAIT', wait_ms, eta_ms}.
_DECIDE = r"""
local actor, id, k, prio = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local glimit, gwindow, klimit, kwindow = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local now = tonumber(ARGV[10])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local stale, redelivered = tonumber(ARGV[11]), ARGV[12] == '1'
local GRACE, MIN_WAIT, SCAN = """ + f"{GRACE_MS}, {MIN_WAIT_MS}, {SCAN_KEYS}" + r"""
-- Scores put a priority level before anything else (9 - priority, so 9 comes first).
local LEVEL = 1e13
local queue_keys, clock = fair_keys(actor), fair_clock(actor)

local function tag_of(key) return tonumber(redis.call('GET', fair_tag(actor, key)) or '0') end
local function keep(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end

-- A key's place in the turns: its most urgent task's priority level, then its virtual time.
local function rerank(key)
  local head = redis.call('ZRANGE', fair_waiting(actor, key), 0, 0, 'WITHSCORES')
  if #head == 0 then
    redis.call('ZREM', queue_keys, key)
  else
    redis.call('ZADD', queue_keys, math.floor(tonumber(head[2]) / LEVEL) * LEVEL + tag_of(key), key)
  end
end

local function forget(key, member)
  redis.call('ZREM', fair_waiting(actor, key), member)
  redis.call('ZREM', fair_due(actor, key), member)
  rerank(key)
end

-- Will *key* use a turn now? It has room in its own window and a message due back about now.
local function here(key)
  if klimit > 0 and redis.call('ZCOUNT', rate_limit_of(actor, key), '(' .. (now - kwindow), '+inf') >= klimit then
    return false
  end
  local dues = fair_due(actor, key)
  for _, lost in ipairs(redis.call('ZRANGEBYSCORE', dues, '-inf', now - stale, 'LIMIT', 0, 10)) do
    forget(key, lost)
  end
  return redis.call('ZCOUNT', dues, now - GRACE, now + GRACE) > 0
end

-- When the m-th start from now may come under limit/window, if starts come as fast as allowed
-- (log: the starts in the current window).
local function slot(log, limit, window, m)
  if limit <= 0 then return now end
  local n = redis.call('ZCARD', log)
  local idx, rounds = n + m - 1 - limit, 0
  if idx < 0 then return now end
  if idx >= n then
    rounds = math.floor((idx - n) / limit) + 1
    idx = idx - rounds * limit
  end
  local base = now
  if idx >= 0 then
    base = math.max(now, tonumber(redis.call('ZRANGE', log, idx, idx, 'WITHSCORES')[2]) + window)
  end
  return base + rounds * window
end

local state = STATE
local waiting = fair_waiting(actor, k)
if state and (FINAL[state] or (state == 'STARTED' and not redelivered)) then
  if redis.call('ZSCORE', waiting, id) then forget(k, id) end
  return {'PASS'}
end

local level = 9 - prio
if not redis.call('ZSCORE', waiting, id) then
  if redis.call('ZCARD', waiting) == 0 then
    -- A key that starts waiting joins the current round: that of the waiting keys furthest
    -- behind at its priority (the round of the last turn taken when none is waiting).
    -- A key keeps a later round it had already reached (leaving and coming back gains nothing).
    local round = tonumber(redis.call('GET', clock) or '0')
    local first = redis.call('ZRANGEBYSCORE', queue_keys, level * LEVEL, '(' .. ((level + 1) * LEVEL),
                             'WITHSCORES', 'LIMIT', 0, 1)
    if #first > 0 then round = math.min(round, tonumber(first[2]) - level * LEVEL) end
    if tag_of(k) < round then redis.call('SET', fair_tag(actor, k), round) end
  end
  redis.call('ZADD', waiting, level * LEVEL + now, id)
  rerank(k)
end

local glog, klog = rate_limit_key(actor), rate_limit_of(actor, k)
local gfree, kfree = math.huge, math.huge  -- no limit: room for all
if glimit > 0 then
  redis.call('ZREMRANGEBYSCORE', glog, '-inf', now - gwindow)
  gfree = glimit - redis.call('ZCARD', glog)
end
if klimit > 0 then
  redis.call('ZREMRANGEBYSCORE', klog, '-inf', now - kwindow)
  kfree = klimit - redis.call('ZCARD', klog)
end

-- The keys whose turn comes before this task's: ranked by their most urgent task's priority,
-- then virtual time (ties in name order). This task's own key is ranked by its own priority.
local mine = level * LEVEL + tag_of(k)
local own_rank = tonumber(redis.call('ZSCORE', queue_keys, k)) == mine
local ahead
if own_rank then
  ahead = redis.call('ZRANGE', queue_keys, 0, SCAN - 1)
else
  ahead = redis.call('ZRANGEBYSCORE', queue_keys, '-inf', '(' .. mine, 'LIMIT', 0, SCAN)
end

local admitted = gfree > 0 and kfree > 0
local taken = 0
if admitted then
  -- Within a key, tasks go in order (priority, then arrival): those before this one that are here go first.
  local dues = fair_due(actor, k)
  for _, other in ipairs(redis.call('ZRANGE', waiting, 0, SCAN - 1)) do
    if other == id then break end
    local due = tonumber(redis.call('ZSCORE', dues, other))
    if due and due < now - stale then
      forget(k, other)
    elseif due and math.abs(due - now) <= GRACE then
      taken = taken + 1
    end
  end
  admitted = taken < gfree and taken < kfree
end
if admitted and glimit > 0 then
  -- The free starts go to the keys ranked first that are here to take them.
  for _, other in ipairs(ahead) do
    if other == k then
      if own_rank then break end
    elseif here(other) then
      taken = taken + 1
      if taken >= gfree then admitted = false break end
    end
  end
end

if admitted then
  local member = id .. '@' .. now  -- one entry per start, even of the same task
  -- A window's starts are trimmed by time above; the expiry only clears the windows of idle actors and keys.
  if glimit > 0 then
    redis.call('ZADD', glog, now, member)
    redis.call('PEXPIRE', glog, math.max(gwindow * 2, 60000))
  end
  if klimit > 0 then
    redis.call('ZADD', klog, now, member)
    redis.call('PEXPIRE', klog, math.max(kwindow * 2, 60000))
  end
  -- This key's turn is used: the round moves on to its virtual time, the key's next turn is one later.
  local tag = tag_of(k)
  if tag > tonumber(redis.call('GET', clock) or '0') then redis.call('SET', clock, tag) end
  redis.call('SET', fair_tag(actor, k), tag + 1)
  keep(clock, stale * 2)
  keep(fair_tag(actor, k), stale * 2)
  forget(k, id)
  return {'RUN'}
end

local keys_ahead
if own_rank then
  keys_ahead = redis.call('ZRANK', queue_keys, k) or 0
else
  keys_ahead = redis.call('ZCOUNT', queue_keys, '-inf', '(' .. mine) - 1
end
local rounds_ahead = redis.call('ZRANK', waiting, id) or 0
local eta = math.max(slot(glog, glimit, gwindow, rounds_ahead * redis.call('ZCARD', queue_keys) + keys_ahead + 1),
                     slot(klog, klimit, kwindow, rounds_ahead + 1), now + MIN_WAIT)
redis.call('ZADD', fair_due(actor, k), eta, id)
local life = eta - now + stale * 2
for _, key in ipairs({waiting, fair_due(actor, k), fair_tag(actor, k), queue_keys, clock}) do keep(key, life) end
"""
# A task told to wait shows when its turn should come; one redelivered after its worker died waits
# again, as PENDING. (In ADMIT with the decision, or on its own with shards: see Admission.admit.)
_MARK_WAITING = r"""
if state then
  local at = string.format('%.3f', eta / 1000)
  if state == 'STARTED' then
    local r = redis.call('HMGET', tkey, 'actor', 'queue', 'score')
    redis.call('HSET', tkey, 'state', 'PENDING')
    move(id, r[3], r[1], r[2], 'STARTED', 'PENDING')
    event(id, 'PENDING', string.format('%.6f', now / 1000))
  end
  redis.call('HSET', tkey, 'eta', at, 'wait_reason', 'rate_limit')
  redis.call('PUBLISH', events_channel(id), '{"type":"waiting","reason":"rate_limit","eta":' .. at .. '}')
end
"""
ADMIT = script("local tkey = KEYS[1]\n" + _DECIDE.replace("STATE", "redis.call('HGET', tkey, 'state')")
               + _MARK_WAITING + "return {'WAIT', eta - now, eta}")
# With shards the task's record and the actor's windows are in different slots: the decision runs
# on the windows' slot with the state read beforehand (ARGV[13], '' = no record), then MARK_WAITING
# on the task's. KEYS: the actor's fair_keys (names the slot).
ADMIT_SHARED = script(_DECIDE.replace("STATE", "ARGV[13] ~= '' and ARGV[13] or nil") + "return {'WAIT', eta - now, eta}")
# KEYS: task. ARGV: P, id, state, eta_ms, now_ms
MARK_WAITING = script("local tkey, id, state, eta, now = KEYS[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])\n"
                      + _MARK_WAITING)


@dataclass(frozen=True)
class Limits:
    """An actor's limits as :func:`Admission.admit` takes them; 0 means none."""

    global_limit: int = 0
    global_window_ms: int = 0
    key_limit: int = 0
    key_window_ms: int = 0


@dataclass(frozen=True)
class Decision:
    """RUN (start now), WAIT (come back in ``wait_ms``) or PASS (not the limiter's to decide)."""

    outcome: str
    wait_ms: int = 0
    eta_ms: int = 0


class Admission:
    """Admitting rate-limited tasks: a part of :class:`pipeline.state.store.StateStore`."""

    def _register_admission_scripts(self) -> None:
        self._admit = self._register(ADMIT)
        self._admit_shared = self._register(ADMIT_SHARED)
        self._mark_waiting = self._register(MARK_WAITING)

    def admit(
        self,
        actor: str,
        task_id: str,
        key: str,
        priority: int,
        limits: Limits,
        *,
        stale_ms: int,
        redelivered: bool = False,
        now_ms: Optional[int] = None,
    ) -> Decision:
        """May *task_id* (of *key*, at *priority*) start now? See the module's docstring.

        *stale_ms*: a waiting message this long overdue is taken to be gone.
        *now_ms* replaces Redis's clock (tests drive a simulated one).
        """
        argv = [
            self.keys.of(task_id).prefix, actor, task_id, key, priority,
            limits.global_limit, limits.global_window_ms, limits.key_limit, limits.key_window_ms,
            "" if now_ms is None else now_ms, stale_ms, "1" if redelivered else "0",
        ]
        if self.keys.shards == 1:
            reply = self._hot(self._admit, task_id, argv)
        else:
            reply = self._admit_sharded(actor, task_id, argv)
        outcome = reply[0]
        if outcome == "WAIT":
            return Decision("WAIT", int(reply[1]), int(reply[2]))
        return Decision(outcome)

    def _admit_sharded(self, actor: str, task_id: str, argv: list) -> list:
        """ADMIT in two steps, each on one slot: the decision on the actor's windows, then the task's
        record. The state may change in between (a cancel): the decision is then one made a moment
        early, which START and the stale-entry cleanup already handle (see the module's docstring)."""
        state = self.redis.hget(self.keys.task(task_id), "state") or ""
        reply = self._admit_shared(keys=[self.keys.fair_keys(actor)], args=[*argv, state])
        if reply[0] == "WAIT" and state:
            self._mark_waiting(keys=[self.keys.task(task_id)],
                               args=[self.keys.of(task_id).prefix, task_id, state, reply[2], int(reply[2]) - int(reply[1])])
        return reply

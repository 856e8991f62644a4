"""Lua scripts for state transitions.

Each transition changes a task's record, moves it between the state indexes
and publishes an event in one atomic script: a worker that dies mid-update
leaves either the old state or the new one, never half of each, and the
counts (ZCARD of the indexes) can never drift from the records.

Scores are carried as strings read from the record, because Lua numbers
print with 14 significant digits and would corrupt microsecond scores.
Scripts build key names from the namespace, so they suit a single Redis
server (or a cluster with one hash slot per namespace), not a sharded one.
"""

PRELUDE = r"""
local P = ARGV[1]
local FINAL = {SUCCESS=true, FAILURE=true, CANCELLED=true}

local function state_keys(state, actor, queue)
  return {P..':i:s:'..state, P..':i:sa:'..state..':'..actor, P..':i:sq:'..state..':'..queue}
end

local function move(id, score, actor, queue, from, to)
  if from and from ~= '' then
    for _, k in ipairs(state_keys(from, actor, queue)) do redis.call('ZREM', k, id) end
  end
  for _, k in ipairs(state_keys(to, actor, queue)) do redis.call('ZADD', k, score, id) end
end

local function event(id, state, now)
  redis.call('PUBLISH', P..':ev:'..id, '{"type":"state","state":"'..state..'","at":'..now..'}')
end

-- A finished record lives result_ttl (+ grace so index entries are trimmed
-- before the hash disappears); its index entries are removed by TRIM.
local function finalize(id, actor, queue, state, now, ttl, grace)
  redis.call('EXPIRE', P..':t:'..id, math.floor(ttl + grace))
  redis.call('ZADD', P..':exp', now + ttl, id..'\31'..actor..'\31'..queue..'\31'..state)
  local bucket = P..':tp:'..math.floor(now / 10)
  if redis.call('HINCRBY', bucket, state, 1) == 1 then redis.call('EXPIRE', bucket, 3700) end
end

-- One HSET for the new state and the field/value pairs from ARGV[first] on.
local function set_state(key, state, first)
  local fields = {'state', state}
  for i = first, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', key, unpack(fields))
end
"""

# Creates a PENDING record with its index entries unless the task already
# has one: the client and a worker that meets an unrecorded message may both
# try, in either order, and the first one wins.
# The record comes as one JSON object of strings: one argument to encode
# instead of thirty, which is most of the client's cost per task.
# With an idempotency key, the key is claimed in the same step, so no crash
# can leave a key pointing at a task that has no record.
# ARGV: P, id, actor, queue, score, record_json[, idempotency_key, ttl]
# Returns 1 (created), 0 (record existed) or the id already bound to the key.
CREATE = PRELUDE + r"""
local id, actor, queue, score = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local key = P..':t:'..id
if redis.call('EXISTS', key) == 1 then return 0 end
if ARGV[7] then
  local bound = redis.call('GET', P..':idem:'..ARGV[7])
  if bound then return bound end
  redis.call('SET', P..':idem:'..ARGV[7], id, 'EX', tonumber(ARGV[8]))
end
local flat = {}
for name, value in pairs(cjson.decode(ARGV[6])) do
  flat[#flat + 1] = name
  flat[#flat + 1] = value
end
redis.call('HSET', key, unpack(flat))
redis.call('ZADD', P..':i:all', score, id)
redis.call('ZADD', P..':i:a:'..actor, score, id)
redis.call('ZADD', P..':i:q:'..queue, score, id)
move(id, score, actor, queue, nil, 'PENDING')
return 1
"""

# A STARTED task met again is a redelivery when RabbitMQ says so (its worker
# died); otherwise it is a second copy of the message (a publish repeated
# after an unconfirmed first one) and must not run beside the first.
# ARGV: P, id, worker, now, max_attempts, redelivered (1/0)
START = PRELUDE + r"""
local id, worker, now, max_attempts = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local key = P..':t:'..id
local r = redis.call('HMGET', key, 'state', 'actor', 'queue', 'score', 'attempts', 'eta', 'wait_reason')
if not r[1] then return {'MISSING', 0} end
if FINAL[r[1]] then return {r[1], tonumber(r[5] or '0')} end
if r[1] == 'STARTED' and ARGV[6] == '0' then return {'DUPLICATE', tonumber(r[5] or '0')} end
local attempts = tonumber(r[5] or '0') + 1
if attempts > max_attempts then return {'EXHAUSTED', attempts - 1} end
redis.call('HSET', key, 'state', 'STARTED', 'started_at', now, 'worker', worker, 'attempts', attempts)
if r[6] or r[7] then redis.call('HDEL', key, 'eta', 'wait_reason') end
move(id, r[4], r[2], r[3], r[1], 'STARTED')
event(id, 'STARTED', now)
return {'STARTED', attempts}
"""

# ARGV: P, id, new_state, now, ttl, grace, result_key, result_value, result_ttl_ms, runtime_ms, field, value, ...
FINISH = PRELUDE + r"""
local id, new, now, ttl, grace = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local result_key, result_value, result_ttl, runtime = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local key = P..':t:'..id
local r = redis.call('HMGET', key, 'state', 'actor', 'queue', 'score')
if not r[1] then return 'MISSING' end
if FINAL[r[1]] then return r[1] end
set_state(key, new, 11)
move(id, r[4], r[2], r[3], r[1], new)
if FINAL[new] then
  -- START already removed them from a task that ran.
  if r[1] ~= 'STARTED' then redis.call('HDEL', key, 'eta', 'wait_reason') end
  finalize(id, r[2], r[3], new, now, ttl, grace)
  if result_key ~= '' then
    redis.call('DEL', result_key)
    redis.call('LPUSH', result_key, result_value)
    redis.call('PEXPIRE', result_key, result_ttl)
  end
  -- RUNTIMES reads the last 500; the list is trimmed only now and then.
  if runtime ~= '' and redis.call('LPUSH', P..':rt:'..r[2], runtime) > 600 then
    redis.call('LTRIM', P..':rt:'..r[2], 0, 499)
  end
end
event(id, new, ARGV[4])
return r[1]
"""

# ARGV: P, id, now, result_key, result_value, result_ttl_ms, error_json
CANCEL = PRELUDE + r"""
local id, now = ARGV[2], ARGV[3]
local key = P..':t:'..id
local r = redis.call('HMGET', key, 'state', 'actor', 'queue', 'score')
if not r[1] then return {'MISSING', ''} end
if r[1] == 'PENDING' or r[1] == 'RETRY' then
  -- No expiry yet: the message may wait in RabbitMQ for longer than the
  -- result TTL, and the record is what stops it from running. The worker
  -- that finally drops the message starts the expiry (DROP_CANCELLED).
  redis.call('HSET', key, 'state', 'CANCELLED', 'finished_at', now, 'error', ARGV[7])
  redis.call('HDEL', key, 'eta', 'wait_reason')
  move(id, r[4], r[2], r[3], r[1], 'CANCELLED')
  redis.call('DEL', ARGV[4])
  redis.call('LPUSH', ARGV[4], ARGV[5])
  redis.call('PEXPIRE', ARGV[4], ARGV[6])
  event(id, 'CANCELLED', now)
  return {'CANCELLED', r[1]}
end
if r[1] == 'STARTED' then
  redis.call('HSET', key, 'cancel_requested', now)
  redis.call('PUBLISH', P..':cancel', id)
  return {'INTERRUPTING', r[1]}
end
return {'REFUSED', r[1]}
"""

# ARGV: P, id, now, ttl, grace
DROP_CANCELLED = PRELUDE + r"""
local key = P..':t:'..ARGV[2]
local r = redis.call('HMGET', key, 'state', 'actor', 'queue')
if r[1] ~= 'CANCELLED' or redis.call('TTL', key) >= 0 then return 0 end
finalize(ARGV[2], r[2], r[3], 'CANCELLED', tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
return 1
"""

# Sliding-window rate limit with reservations: each waiting message books
# the exact future slot at which it may start, so waiters are admitted in
# order instead of all waking at once and re-queueing each other.
# ARGV: P, actor, member, task_id, limit, window_ms
RATE_LIMIT = PRELUDE + r"""
local key = P..':rl:'..ARGV[2]
local member, id, limit, window = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local mine = redis.call('ZSCORE', key, member)
local slot
if mine then
  slot = tonumber(mine)
  if slot <= now + 20 then return 0 end
else
  local n = redis.call('ZCARD', key)
  if n < limit then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window * 2)
    return 0
  end
  local e = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
  slot = tonumber(e[2]) + window
  redis.call('ZADD', key, slot, member)
  redis.call('PEXPIRE', key, slot - now + window * 2)
end
local tkey = P..':t:'..id
local state = redis.call('HGET', tkey, 'state')
if state == 'PENDING' or state == 'RETRY' then
  redis.call('HSET', tkey, 'eta', string.format('%.3f', slot / 1000), 'wait_reason', 'rate_limit')
  redis.call('PUBLISH', P..':ev:'..id, '{"type":"waiting","reason":"rate_limit","eta":'..string.format('%.3f', slot / 1000)..'}')
end
return slot - now
"""

# ARGV: P, now, limit
TRIM = PRELUDE + r"""
local due = redis.call('ZRANGEBYSCORE', P..':exp', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  local id, actor, queue, state = string.match(member, '^(.-)\31(.-)\31(.-)\31(.-)$')
  if id then
    redis.call('ZREM', P..':i:all', id)
    redis.call('ZREM', P..':i:a:'..actor, id)
    redis.call('ZREM', P..':i:q:'..queue, id)
    for _, k in ipairs(state_keys(state, actor, queue)) do redis.call('ZREM', k, id) end
  end
  redis.call('ZREM', P..':exp', member)
end
return #due
"""

# Finished counts per final state over the last minute (6 buckets of 10 s) and
# hour (360), summed in Redis: one reply instead of 360.
# ARGV: P, current_bucket
THROUGHPUT = r"""
local P, current = ARGV[1], tonumber(ARGV[2])
local states = {'SUCCESS', 'FAILURE', 'CANCELLED'}
local minute, hour = {0, 0, 0}, {0, 0, 0}
for age = 0, 359 do
  local values = redis.call('HMGET', P..':tp:'..(current - age), unpack(states))
  for i = 1, 3 do
    local n = tonumber(values[i] or '0') or 0
    hour[i] = hour[i] + n
    if age < 6 then minute[i] = minute[i] + n end
  end
end
return {minute, hour}
"""

# p50 / p95 / sample count of each actor's last 500 runtimes (ms), sorted in Redis.
# ARGV: P, actor, actor, ...
RUNTIMES = r"""
local P = ARGV[1]
local out = {}
for i = 2, #ARGV do
  local samples = redis.call('LRANGE', P..':rt:'..ARGV[i], 0, 499)
  local n = #samples
  if n == 0 then
    out[#out + 1] = {'', '', 0}
  else
    for j = 1, n do samples[j] = tonumber(samples[j]) end
    table.sort(samples)
    local function at(q) return samples[math.min(n, math.floor(q * (n - 1) + 0.5) + 1)] end
    out[#out + 1] = {tostring(at(0.5)), tostring(at(0.95)), n}
  end
end
return out
"""

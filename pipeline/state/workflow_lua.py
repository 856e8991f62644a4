"""The Lua steps that count a workflow's tasks, shared by the scripts that finish tasks
(:mod:`pipeline.state.records`) and those that cancel and retry workflows
(:mod:`pipeline.state.workflows`, whose docstring explains the design)."""

WORKFLOW_LUA = r"""
local function now_score()
  local t = redis.call('TIME')
  return t[1] .. string.format('%06d', tonumber(t[2]))
end

local function workflow_keys(wf)
  return {workflow_key(wf), workflow_members_key(wf), workflow_results_key(wf), workflow_errors_key(wf)}
end

local function workflow_done(wf, state, now, ttl, grace)
  redis.call('HSET', workflow_key(wf), 'state', state, 'finished_at', now)
  for _, k in ipairs(workflow_keys(wf)) do redis.call('EXPIRE', k, math.floor(ttl + grace)) end
end

-- A write to a result/error hash of a finished workflow gets the workflow's remaining TTL.
local function workflow_hset(wf, running, key, field, value)
  redis.call('HSET', key, field, value)
  if not running then
    local left = redis.call('PTTL', workflow_key(wf))
    if left > 0 then redis.call('PEXPIRE', key, left) end
  end
end

local function short_error(err)
  if not err then return nil end
  local ok, e = pcall(cjson.decode, err)
  if not ok or type(e) ~= 'table' then return err end
  return cjson.encode({type = e['type'], message = e['message']})
end

-- WAITING -> PENDING: listed, and its id put in the due set until its message is published.
local function make_due(id, now)
  if not id then return false end
  local key = task_key(id)
  local r = redis.call('HMGET', key, 'state', 'actor', 'queue')
  if r[1] ~= 'WAITING' then return false end
  local score = now_score()
  redis.call('HSET', key, 'state', 'PENDING', 'enqueued_at', now, 'score', score)
  for _, k in ipairs(entry_keys(r[2], r[3], owner_of(id))) do redis.call('ZADD', k, score, id) end
  move(id, score, r[2], r[3], nil, 'PENDING')
  redis.call('ZADD', follow_ups_due_key(), now, id)
  event(id, 'PENDING', now)
  return true
end

-- WAITING -> CANCELLED (skipped: it will never run), listed and expiring like any final task.
local function skip_waiting(wf, id, reason, now, ttl, grace)
  if not id then return false end
  local key = task_key(id)
  local r = redis.call('HMGET', key, 'state', 'actor', 'queue', 'score')
  if r[1] ~= 'WAITING' then return false end
  redis.call('HSET', key, 'state', 'CANCELLED', 'finished_at', now, 'skipped', '1',
             'error', cjson.encode({type = 'WorkflowSkipped', message = reason}))
  for _, k in ipairs(entry_keys(r[2], r[3], owner_of(id))) do redis.call('ZADD', k, r[4], id) end
  move(id, r[4], r[2], r[3], nil, 'CANCELLED')
  finalize(key, id, r[2], r[3], 'CANCELLED', now, ttl, grace)
  event(id, 'CANCELLED', now)
  redis.call('HINCRBY', workflow_key(wf), 'cancelled', 1)
  return true
end

-- A task of workflow wf (at position index) reached a final state: count it,
-- keep its result or error, and decide what follows. Returns the ids that became due.
local function member_final(wf, index, id, state, result, err, now, ttl, grace)
  local wkey = workflow_key(wf)
  local w = redis.call('HMGET', wkey, 'kind', 'state', 'members', 'policy', 'callback')
  if not w[1] then return {} end
  local mkey = workflow_members_key(wf)
  if redis.call('HGET', mkey, index) ~= id then return {} end  -- replaced by a retry of the workflow
  local running, n, i = w[2] == 'RUNNING', tonumber(w[3]), tonumber(index)
  local counter = 'cancelled'
  if state == 'SUCCESS' then counter = 'succeeded' elseif state == 'FAILURE' then counter = 'failed' end
  redis.call('HINCRBY', wkey, counter, 1)
  if state == 'SUCCESS' then
    workflow_hset(wf, running, workflow_results_key(wf), index, result or 'null')
  else
    workflow_hset(wf, running, workflow_errors_key(wf), index,
                  short_error(err) or cjson.encode({type = state, message = ''}))
  end
  local due = {}
  if w[1] == 'chain' then
    if not running then return due end
    if state == 'SUCCESS' and i + 1 < n then
      local next_id = redis.call('HGET', mkey, tostring(i + 1))
      if make_due(next_id, now) then due[1] = next_id end
    elseif state == 'SUCCESS' then
      workflow_done(wf, 'SUCCESS', now, ttl, grace)
    else
      for j = i + 1, n - 1 do
        skip_waiting(wf, redis.call('HGET', mkey, tostring(j)), 'the chain stopped: step '..i..' ended '..state,
                     now, ttl, grace)
      end
      workflow_done(wf, state, now, ttl, grace)
    end
    return due
  end
  if i == n then  -- a chord's callback
    if running then workflow_done(wf, state, now, ttl, grace) end
    return due
  end
  local done = redis.call('HINCRBY', wkey, 'members_done', 1)
  local ok = tonumber(redis.call('HGET', wkey, 'members_ok') or '0')
  if state == 'SUCCESS' then ok = redis.call('HINCRBY', wkey, 'members_ok', 1) end
  if done < n or not running then return due end
  if w[1] == 'group' then
    local failed = tonumber(redis.call('HGET', wkey, 'failed') or '0')
    local final = 'SUCCESS'
    if failed > 0 then final = 'FAILURE' elseif ok < n then final = 'CANCELLED' end
    workflow_done(wf, final, now, ttl, grace)
  elseif ok == n or w[4] == 'run_with_summary' then
    if make_due(w[5], now) then due[1] = w[5] end
  else
    skip_waiting(wf, w[5], (n - ok)..' of '..n..' members did not succeed (policy: skip)', now, ttl, grace)
    workflow_done(wf, 'FAILURE', now, ttl, grace)
  end
  return due
end
"""


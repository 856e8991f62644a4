"""The prelude every state-store script starts with: key names from :class:`Keys`, shared steps.

Each script changes a task's record, moves it between the state indexes and
publishes an event in one atomic step: a worker that dies mid-update leaves
either the old state or the new one, never half of each, and the counts
(ZCARD of the indexes) can never drift from the records.

Key names: a script gets the task's own key as ``KEYS[1]`` and its shard's
prefix (see :mod:`pipeline.state.keys`; the namespace with one shard) as
``ARGV[1]``; every other name (indexes by the record's state, actor and
queue, which only the script knows) comes from a Lua function generated here
by calling the :class:`Keys` method with placeholders. No script spells a key.
A name outside the shards (the cancel channel, an actor's rate-limit
windows) is built from the namespace, which the prelude reads off the prefix.

Scores are carried as strings read from the record, because Lua numbers
print with 14 significant digits and would corrupt microsecond scores.
"""

from __future__ import annotations

import re

from pipeline.state.keys import FINAL_STATES, ShardKeys

#: Lua function name -> (Keys attribute, its parameters; none for a property).
KEY_FUNCTIONS = {
    "task_key": ("task", ("id",)),
    "index_all": ("index_all", None),
    "index_actor": ("index_actor", ("actor",)),
    "index_queue": ("index_queue", ("queue",)),
    "index_state": ("index_state", ("state",)),
    "index_state_actor": ("index_state_actor", ("state", "actor")),
    "index_state_queue": ("index_state_queue", ("state", "queue")),
    "index_owner": ("index_owner", ("user",)),
    "index_owner_state": ("index_owner_state", ("user", "state")),
    "expiry_key": ("expiry", None),
    "idempotency_key": ("idempotency", ("key",)),
    "runtimes_key": ("runtimes", ("actor",)),
    "throughput_key": ("throughput", ("bucket",)),
    "rate_limit_key": ("rate_limit", ("actor",)),
    "rate_limit_of": ("rate_limit_of", ("actor", "key")),
    "fair_keys": ("fair_keys", ("actor",)),
    "fair_waiting": ("fair_waiting", ("actor", "key")),
    "fair_due": ("fair_due", ("actor", "key")),
    "fair_tag": ("fair_tag", ("actor", "key")),
    "fair_clock": ("fair_clock", ("actor",)),
    "events_channel": ("events_channel", ("id",)),
    "cancel_channel": ("cancel_channel", None),
    "workflow_key": ("workflow", ("wf",)),
    "workflow_members_key": ("workflow_members", ("wf",)),
    "workflow_results_key": ("workflow_results", ("wf",)),
    "workflow_errors_key": ("workflow_errors", ("wf",)),
    "follow_ups_due_key": ("follow_ups_due", None),
}

_MARK = "\x00{}\x00"
_MARKED = re.compile("\x00([A-Za-z]+)\x00")


def key_function(lua_name: str, attribute: str, params: tuple[str, ...] | None) -> str:
    """``local function <lua_name>(params) return <the name Keys.<attribute> builds> end``."""
    keys = ShardKeys(_MARK.format("NS"), _MARK.format("P"))
    value = getattr(keys, attribute)
    text = value(*(_MARK.format(p) for p in params)) if params is not None else value
    parts = _MARKED.split(text)  # literal, placeholder, literal, ...
    literals = parts[::2]
    if any("'" in literal or "\\" in literal or "\x00" in literal for literal in literals):
        raise ValueError(f"Keys.{attribute} holds a character the generated Lua cannot carry")
    pieces = [f"'{part}'" if i % 2 == 0 else part for i, part in enumerate(parts) if part]
    return f"local function {lua_name}({', '.join(params or ())}) return {'..'.join(pieces)} end"


#: The parts a script may start with, in an order where each comes after what it uses.
PARTS: dict[str, str] = {
    # A shard's prefix is "{<namespace>:s<nn>}" and the shared names' "{<namespace>}";
    # with one shard both are the namespace itself.
    "NS": r"local NS = (string.gsub(P, '^({.*):s%d%d}$', '%1}'))",
    "FINAL": "local FINAL = {" + ", ".join(f"{state}=true" for state in FINAL_STATES) + "}",
    **{name: key_function(name, attribute, params) for name, (attribute, params) in KEY_FUNCTIONS.items()},
    "owner_of": r"""
-- The user a task is for ('' for nobody's), read from its record: every
-- script that moves or finishes a task keeps the user's indexes in step
-- without having to pass the owner along.
local function owner_of(id)
  return redis.call('HGET', task_key(id), 'user_id') or ''
end""",
    "entry_keys": r"""
-- The indexes listing a task whatever its state (+ its user's, if it has one).
local function entry_keys(actor, queue, owner)
  local keys = {index_all(), index_actor(actor), index_queue(queue)}
  if owner and owner ~= '' then keys[#keys + 1] = index_owner(owner) end
  return keys
end""",
    "state_keys": r"""
-- The indexes of one state (+ its user's, if it has one).
local function state_keys(state, actor, queue, owner)
  local keys = {index_state(state), index_state_actor(state, actor), index_state_queue(state, queue)}
  if owner and owner ~= '' then keys[#keys + 1] = index_owner_state(owner, state) end
  return keys
end""",
    "move": r"""
local function move(id, score, actor, queue, from, to)
  local owner = owner_of(id)
  if from and from ~= '' then
    for _, k in ipairs(state_keys(from, actor, queue, owner)) do redis.call('ZREM', k, id) end
  end
  for _, k in ipairs(state_keys(to, actor, queue, owner)) do redis.call('ZADD', k, score, id) end
end""",
    "event": r"""
-- Each state change is numbered (seq) and kept in the record's history
-- ("STATE@at STATE@at ..."), so an event stream that reconnects with
-- Last-Event-ID = seq replays exactly the changes it missed.
local function event(id, state, now)
  local key = task_key(id)
  local seq = redis.call('HINCRBY', key, 'seq', 1)
  local past = redis.call('HGET', key, 'history')
  redis.call('HSET', key, 'history', (past and past..' ' or '')..state..'@'..now)
  redis.call('PUBLISH', events_channel(id), '{"type":"state","state":"'..state..'","at":'..now..',"seq":'..seq..'}')
end""",
    "expiry_member": r"""
-- The expiry entry of a finished task names everything TRIM needs to find its index entries
-- (the record may be gone by then): id, actor, queue, state and, for a user's task, the user.
local function expiry_member(id, actor, queue, state)
  local member, owner = id..'\31'..actor..'\31'..queue..'\31'..state, owner_of(id)
  if owner ~= '' then member = member..'\31'..owner end
  return member
end""",
    "finalize": r"""
-- A finished record lives result_ttl (+ grace so index entries are trimmed
-- before the hash disappears); its index entries are removed by TRIM.
local function finalize(key, id, actor, queue, state, now, ttl, grace)
  redis.call('EXPIRE', key, math.floor(ttl + grace))
  redis.call('ZADD', expiry_key(), now + ttl, expiry_member(id, actor, queue, state))
  local bucket = throughput_key(math.floor(now / 10))
  if redis.call('HINCRBY', bucket, state, 1) == 1 then redis.call('EXPIRE', bucket, 3700) end
end""",
}
#: Every part: what a script sees at most (and what tests evaluate key functions with).
PRELUDE = "\n".join(["local P = ARGV[1]", *PARTS.values()])
#: Between a script's prelude and its body.
BODY_MARK = "-- body"


def script(body: str) -> str:
    """A store script: the parts of the prelude *body* uses (directly or through another part), then *body*.

    Only those: Redis runs a script's whole text on every call, and each
    ``local function`` it defines costs a closure per call on the hot path.
    """
    needed: set[str] = set()
    pending = [body]
    while pending:
        text = pending.pop()
        for name, code in PARTS.items():
            if name not in needed and re.search(rf"\b{name}\b", text):
                needed.add(name)
                pending.append(code)
    parts = [code for name, code in PARTS.items() if name in needed]
    return "\n".join(["local P = ARGV[1]", *parts, BODY_MARK, body])

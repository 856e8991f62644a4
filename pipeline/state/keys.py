"""Every Redis key and channel name the engine uses, and the task states.

Python code names keys with the methods of :class:`Keys`; the Lua scripts of
the store get theirs from the same methods (:mod:`pipeline.state.lua` turns
each one into a Lua function, with the shard's prefix passed in as ``ARGV[1]``),
so a change of layout here reaches both, and no script spells a key by hand.

Shards. A task's record and everything a script changes with it (its index
entries, the expiry set, the idempotency key bound to it, the throughput and
runtime counters it adds to, its workflow's record and the workflow's other
members) live under one *shard prefix*, so that every script touches one
Redis Cluster slot: with one shard (a single server, the default) the prefix
is the namespace itself and the names are those of every earlier version;
with N shards (Redis Cluster: 16) shard n's prefix is the hash tag
``{<namespace>:s<nn>}``. Which shard a task is in follows from its id (see
:func:`shard_of`), so a status lookup is still one key; counts sum the shards
and lists merge the shards' pages (:mod:`pipeline.state.queries`). Everything
else (rate-limit windows, workers, the audit stream, the scheduler, inboxes,
dashboard sessions) is *shared*: named under the namespace, which with shards
is the hash tag ``{<namespace>}``, so the scripts and transactions that touch
several of those names stay on one slot too.
"""

from __future__ import annotations

import string
import zlib
from functools import cached_property

from pipeline.redis_url import SHARD_COUNTS

STATES = ("PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "CANCELLED")
FINAL_STATES = ("SUCCESS", "FAILURE", "CANCELLED")
UNFINISHED_STATES = ("PENDING", "STARTED", "RETRY")
#: A workflow's follow-up (a chain's later step, a chord's callback) from its
#: submission until it is due: its record exists, in no index, and no message
#: has been published for it (see :mod:`pipeline.state.workflows`).
WAITING = "WAITING"
WORKFLOW_KINDS = ("chain", "group", "chord")
WORKFLOW_STATES = ("RUNNING", "SUCCESS", "FAILURE", "CANCELLED")
_HEX = frozenset(string.hexdigits)


def shard_of(task_id: str, shards: int) -> int:
    """The shard of a task (or workflow) id: its last character, read as a hex digit
    (a random UUID's last digit is uniform), or its code point for an id that ends otherwise."""
    if shards == 1:
        return 0
    last = task_id[-1:] or "0"
    return (int(last, 16) if last in _HEX else ord(last)) % shards


def id_in_shard(task_id: str, shard: int) -> str:
    """*task_id* (a UUID) with its last digit set so that it falls in *shard* (still a valid UUID4:
    the last digit is random). Used for the ids a workflow creates in its own shard."""
    return f"{task_id[:-1]}{shard:x}"


def shard_of_claim(claim: str, shards: int) -> int:
    """The shard an idempotency claim (a caller's key) is bound in: a task or workflow created
    under the claim is given an id in that shard, so the claim and the record change in one step."""
    return zlib.crc32(claim.encode()) % shards


def slot_guard(key: str) -> str:
    """A name in the slot of *key* (a hash-tagged name) that is never written. A script that also
    declares it never runs while its slot is being moved between cluster nodes (Redis answers
    TRYAGAIN to a multi-key command missing a key there, and the client tries again), so it cannot
    write half its keys on the old node and half on the new one."""
    return f"{key[:key.index('}') + 1]}:slot-guard"


def shared_namespace(settings) -> str:
    """The namespace that components keeping only shared names (inboxes, schedules, notification
    dedup, the worker registry) are given: *settings*' namespace, as a hash tag with shards."""
    return Keys(settings.namespace, settings.shards).shared


class Keys:
    """Key names under one namespace (``settings.namespace``; tests use their own).

    With more than one shard, the names a task's scripts touch belong to a
    shard: :meth:`of` (by task or workflow id) and :meth:`shard` (by number)
    give that shard's Keys, and the names taking an id route by it. A name of
    no particular shard (an index, the expiry set) asked of the namespace's
    Keys raises, so no caller can read one shard believing it read them all.
    """

    def __init__(self, namespace: str, shards: int = 1):
        if shards not in SHARD_COUNTS:
            raise ValueError(f"shards must be one of {', '.join(map(str, SHARD_COUNTS))}")
        self.prefix = namespace
        self.namespace = namespace
        self.shards = shards
        #: The prefix of the names outside the shards.
        self.shared = namespace if shards == 1 else f"{{{namespace}}}"

    @cached_property
    def _shard_keys(self) -> tuple["Keys", ...]:
        if self.shards == 1:
            return (self,)
        return tuple(ShardKeys(self.shared, f"{{{self.namespace}:s{n:02d}}}") for n in range(self.shards))

    def shard(self, number: int) -> "Keys":
        """The names of shard *number* (the namespace's own with one shard)."""
        return self._shard_keys[number]

    def all_shards(self) -> tuple["Keys", ...]:
        return self._shard_keys

    def of(self, task_id: str) -> "Keys":
        """The names of the shard *task_id* (a task's or a workflow's id) is in."""
        if self.shards == 1:
            return self
        return self._shard_keys[shard_of(task_id, self.shards)]

    def of_claim(self, claim: str) -> "Keys":
        """The names of the shard an idempotency claim is bound in (see :func:`shard_of_claim`)."""
        return self._shard_keys[shard_of_claim(claim, self.shards)]

    def id_for_claim(self, task_id: str, claim: str) -> str:
        """*task_id* moved into the shard of *claim* (itself with one shard)."""
        return task_id if self.shards == 1 else id_in_shard(task_id, shard_of_claim(claim, self.shards))

    def id_beside(self, task_id: str, other_id: str) -> str:
        """*task_id* moved into the shard of *other_id* (a workflow's member beside its workflow)."""
        return task_id if self.shards == 1 else id_in_shard(task_id, shard_of(other_id, self.shards))

    @property
    def local(self) -> str:
        """The prefix of names that belong to a shard: this Keys' own when it names one shard."""
        if self.shards > 1:
            raise TypeError("a sharded store has this name once per shard: use keys.shard(n) or keys.of(task_id)")
        return self.prefix

    # -- task records ----------------------------------------------------------------------

    def task(self, task_id: str) -> str:
        return f"{self.of(task_id).prefix}:t:{task_id}"

    def index(self, state: str | None = None, actor: str | None = None, queue: str | None = None) -> str:
        """The sorted set (score = enqueue time in µs) holding tasks matching the filter.

        An actor has one queue, so actor+queue is the actor index; every other
        combination has its own set, which keeps filtered listing O(log N + page).
        """
        if state and actor:
            return self.index_state_actor(state, actor)
        if state and queue:
            return self.index_state_queue(state, queue)
        if state:
            return self.index_state(state)
        if actor:
            return self.index_actor(actor)
        if queue:
            return self.index_queue(queue)
        return self.index_all

    @property
    def index_all(self) -> str:
        return f"{self.local}:i:all"

    def index_actor(self, actor: str) -> str:
        return f"{self.local}:i:a:{actor}"

    def index_queue(self, queue: str) -> str:
        return f"{self.local}:i:q:{queue}"

    def index_state(self, state: str) -> str:
        return f"{self.local}:i:s:{state}"

    def index_state_actor(self, state: str, actor: str) -> str:
        return f"{self.local}:i:sa:{state}:{actor}"

    def index_state_queue(self, state: str, queue: str) -> str:
        return f"{self.local}:i:sq:{state}:{queue}"

    def index_owner(self, user_id: str) -> str:
        """One user's tasks (score = enqueue time in µs): what a user token lists, O(log N + page)."""
        return f"{self.local}:i:u:{user_id}"

    def index_owner_state(self, user_id: str, state: str) -> str:
        """One user's tasks in one state: a user's counts are ZCARDs, and filtered lists pages."""
        return f"{self.local}:i:us:{state}:{user_id}"

    @property
    def index_owner_pattern(self) -> str:
        """A SCAN pattern matching every user's index (for the daily cleanup only)."""
        return self.index_owner("*")

    def indexes(self, actor: str, queue: str, state: str, user_id: str | None = None) -> list[str]:
        """The indexes a task of *actor* on *queue* in *state* (of *user_id*, if any) is listed in."""
        names = [self.index_all, self.index_actor(actor), self.index_queue(queue), self.index_state(state),
                 self.index_state_actor(state, actor), self.index_state_queue(state, queue)]
        if user_id:
            names += [self.index_owner(user_id), self.index_owner_state(user_id, state)]
        return names

    @property
    def expiry(self) -> str:
        """Sorted set of finished tasks by the time their index entries are due to go."""
        return f"{self.local}:exp"

    def idempotency(self, key: str) -> str:
        """*key* is scoped to its caller and actor (see :meth:`pipeline.state.records.NewTask.idempotency_claim`)."""
        return f"{self.local}:idem:{key}"

    def submit_quota(self, actor: str, user_id: str) -> str:
        """Sorted set of one user's recent submissions of *actor* (user tokens' quota)."""
        return f"{self.shared}:quota:{actor}:{user_id}"

    # -- audit -----------------------------------------------------------------------------

    @property
    def audit(self) -> str:
        """The audit stream (a Redis stream, capped): admin actions and failed authentications."""
        return f"{self.shared}:audit"

    def runtimes(self, actor: str) -> str:
        return f"{self.local}:rt:{actor}"

    def throughput(self, bucket: int | str) -> str:
        return f"{self.local}:tp:{bucket}"

    @property
    def throughput_pattern(self) -> str:
        """A SCAN pattern matching every throughput bucket (for the daily cleanup only)."""
        return self.throughput("*")

    @property
    def undecodable(self) -> str:
        return f"{self.shared}:undecodable"

    # -- rate limits and fair share (pipeline.state.admission) ------------------------------

    def rate_limit(self, actor: str) -> str:
        """Sorted set of an actor's starts in its current window (all keys)."""
        return f"{self.shared}:rl:{actor}"

    def rate_limit_of(self, actor: str, key: str) -> str:
        """Sorted set of one key's starts of *actor* in its current window."""
        return f"{self.shared}:rl:{actor}:k:{key}"

    def fair_keys(self, actor: str) -> str:
        """Sorted set of the keys with tasks waiting for *actor*, in the order their turns come."""
        return f"{self.shared}:fq:{actor}"

    def fair_waiting(self, actor: str, key: str) -> str:
        """Sorted set of one key's waiting tasks, by priority then arrival."""
        return f"{self.shared}:fq:{actor}:w:{key}"

    def fair_due(self, actor: str, key: str) -> str:
        """Sorted set of one key's waiting tasks, by when each message is due back."""
        return f"{self.shared}:fq:{actor}:d:{key}"

    def fair_tag(self, actor: str, key: str) -> str:
        """A key's virtual time: the round in which its next turn comes."""
        return f"{self.shared}:fq:{actor}:t:{key}"

    def fair_clock(self, actor: str) -> str:
        """The actor's virtual time: the round of the last turn taken."""
        return f"{self.shared}:fq:{actor}:v"

    @property
    def results_namespace(self) -> str:
        """Prefix of Dramatiq's Results keys (the backend adds md5 of queue, actor and id)."""
        return f"{self.shared}:results"

    @property
    def cancel_channel(self) -> str:
        return f"{self.shared}:cancel"

    def events_channel(self, task_id: str) -> str:
        return f"{self.of(task_id).prefix}:ev:{task_id}"

    # -- workflows -------------------------------------------------------------------------

    def workflow(self, workflow_id: str) -> str:
        """A workflow's record (hash): kind, state, counters."""
        return f"{self.of(workflow_id).prefix}:wf:{workflow_id}"

    def workflow_members(self, workflow_id: str) -> str:
        """Hash: position -> task id of every task of a workflow (a chord's callback last)."""
        return f"{self.of(workflow_id).prefix}:wf:{workflow_id}:m"

    def workflow_results(self, workflow_id: str) -> str:
        """Hash: position -> result (JSON) of each member that succeeded."""
        return f"{self.of(workflow_id).prefix}:wf:{workflow_id}:r"

    def workflow_errors(self, workflow_id: str) -> str:
        """Hash: position -> error (type and message, JSON) of each member that did not succeed."""
        return f"{self.of(workflow_id).prefix}:wf:{workflow_id}:e"

    def workflow_idempotency(self, key: str) -> str:
        return f"{self.local}:wf:idem:{key}"

    @property
    def follow_ups_due(self) -> str:
        """Sorted set (score = when it became due) of tasks whose message is still to be published."""
        return f"{self.local}:wf:due"

    # -- workers ---------------------------------------------------------------------------

    def worker(self, worker_id: str) -> str:
        return f"{self.shared}:w:{worker_id}"

    @property
    def workers(self) -> str:
        return f"{self.shared}:workers"

    @property
    def control_channel(self) -> str:
        return f"{self.shared}:ctl"

    # -- maintenance -----------------------------------------------------------------------

    @property
    def health_snapshot(self) -> str:
        return f"{self.shared}:health:snapshot"

    def health_alerted(self, problem: str) -> str:
        return f"{self.shared}:health:alerted:{problem}"

    # -- scheduler -------------------------------------------------------------------------

    @property
    def schedules(self) -> str:
        return f"{self.shared}:sched:defs"

    def schedule_runs(self, schedule_id: str) -> str:
        return f"{self.shared}:sched:run:{schedule_id}"

    def schedule_claim(self, fire_key: str) -> str:
        return f"{self.shared}:sched:claim:{fire_key}"

    @property
    def scheduler_leader(self) -> str:
        return f"{self.shared}:sched:leader"

    # -- notifications ---------------------------------------------------------------------

    def notification_sent(self, token: str) -> str:
        return f"{self.shared}:notify:dedup:{token}"

    def inbox(self, user_id: str) -> list[str]:
        """A user's inbox: items (hash), unread and read (sorted sets), read-at times (hash)."""
        base = f"{self.shared}:notify:inbox:{user_id}"
        return [f"{base}:items", f"{base}:unread", f"{base}:read", f"{base}:readat"]

    # -- dashboard -------------------------------------------------------------------------

    @property
    def dashboard_secret(self) -> str:
        return f"{self.shared}:dashboard:secret"

    def dashboard_revoked(self, nonce: str) -> str:
        """Set at logout; the session with this nonce is refused until it would have expired."""
        return f"{self.shared}:dashboard:revoked:{nonce}"

    def dashboard_login_failures(self, address: str) -> str:
        """Failed logins from one client address in the current window."""
        return f"{self.shared}:dashboard:login-failures:{address}"


class ShardKeys(Keys):
    """One shard's names: its prefix is the shard's hash tag; names outside shards stay the namespace's."""

    def __init__(self, shared: str, prefix: str):
        super().__init__(shared)
        self.prefix = prefix

"""Every Redis key and channel name the engine uses, and the task states.

Python code names keys with the methods of :class:`Keys`; the Lua scripts of
the store get theirs from the same methods (:mod:`pipeline.state.lua` turns
each one into a Lua function, with the namespace passed in as ``ARGV[1]``),
so a change of layout here (for example hash tags for Redis Cluster) reaches
both, and no script spells a key by hand.
"""

from __future__ import annotations

STATES = ("PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "CANCELLED")
FINAL_STATES = ("SUCCESS", "FAILURE", "CANCELLED")
UNFINISHED_STATES = ("PENDING", "STARTED", "RETRY")
#: A workflow's follow-up (a chain's later step, a chord's callback) from its
#: submission until it is due: its record exists, in no index, and no message
#: has been published for it (see :mod:`pipeline.state.workflows`).
WAITING = "WAITING"
WORKFLOW_KINDS = ("chain", "group", "chord")
WORKFLOW_STATES = ("RUNNING", "SUCCESS", "FAILURE", "CANCELLED")


class Keys:
    """Key names under one namespace (``settings.namespace``; tests use their own)."""

    def __init__(self, namespace: str):
        self.prefix = namespace

    # -- task records ----------------------------------------------------------------------

    def task(self, task_id: str) -> str:
        return f"{self.prefix}:t:{task_id}"

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
        return f"{self.prefix}:i:all"

    def index_actor(self, actor: str) -> str:
        return f"{self.prefix}:i:a:{actor}"

    def index_queue(self, queue: str) -> str:
        return f"{self.prefix}:i:q:{queue}"

    def index_state(self, state: str) -> str:
        return f"{self.prefix}:i:s:{state}"

    def index_state_actor(self, state: str, actor: str) -> str:
        return f"{self.prefix}:i:sa:{state}:{actor}"

    def index_state_queue(self, state: str, queue: str) -> str:
        return f"{self.prefix}:i:sq:{state}:{queue}"

    def index_owner(self, user_id: str) -> str:
        """One user's tasks (score = enqueue time in µs): what a user token lists, O(log N + page)."""
        return f"{self.prefix}:i:u:{user_id}"

    def index_owner_state(self, user_id: str, state: str) -> str:
        """One user's tasks in one state: a user's counts are ZCARDs, and filtered lists pages."""
        return f"{self.prefix}:i:us:{state}:{user_id}"

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
        return f"{self.prefix}:exp"

    def idempotency(self, key: str) -> str:
        """*key* is scoped to its caller and actor (see :meth:`pipeline.state.records.NewTask.idempotency_claim`)."""
        return f"{self.prefix}:idem:{key}"

    def submit_quota(self, actor: str, user_id: str) -> str:
        """Sorted set of one user's recent submissions of *actor* (user tokens' quota)."""
        return f"{self.prefix}:quota:{actor}:{user_id}"

    # -- audit -----------------------------------------------------------------------------

    @property
    def audit(self) -> str:
        """The audit stream (a Redis stream, capped): admin actions and failed authentications."""
        return f"{self.prefix}:audit"

    def runtimes(self, actor: str) -> str:
        return f"{self.prefix}:rt:{actor}"

    def throughput(self, bucket: int | str) -> str:
        return f"{self.prefix}:tp:{bucket}"

    @property
    def throughput_pattern(self) -> str:
        """A SCAN pattern matching every throughput bucket (for the daily cleanup only)."""
        return self.throughput("*")

    @property
    def undecodable(self) -> str:
        return f"{self.prefix}:undecodable"

    # -- rate limits and fair share (pipeline.state.admission) ------------------------------

    def rate_limit(self, actor: str) -> str:
        """Sorted set of an actor's starts in its current window (all keys)."""
        return f"{self.prefix}:rl:{actor}"

    def rate_limit_of(self, actor: str, key: str) -> str:
        """Sorted set of one key's starts of *actor* in its current window."""
        return f"{self.prefix}:rl:{actor}:k:{key}"

    def fair_keys(self, actor: str) -> str:
        """Sorted set of the keys with tasks waiting for *actor*, in the order their turns come."""
        return f"{self.prefix}:fq:{actor}"

    def fair_waiting(self, actor: str, key: str) -> str:
        """Sorted set of one key's waiting tasks, by priority then arrival."""
        return f"{self.prefix}:fq:{actor}:w:{key}"

    def fair_due(self, actor: str, key: str) -> str:
        """Sorted set of one key's waiting tasks, by when each message is due back."""
        return f"{self.prefix}:fq:{actor}:d:{key}"

    def fair_tag(self, actor: str, key: str) -> str:
        """A key's virtual time: the round in which its next turn comes."""
        return f"{self.prefix}:fq:{actor}:t:{key}"

    def fair_clock(self, actor: str) -> str:
        """The actor's virtual time: the round of the last turn taken."""
        return f"{self.prefix}:fq:{actor}:v"

    @property
    def results_namespace(self) -> str:
        """Prefix of Dramatiq's Results keys (the backend adds md5 of queue, actor and id)."""
        return f"{self.prefix}:results"

    @property
    def cancel_channel(self) -> str:
        return f"{self.prefix}:cancel"

    def events_channel(self, task_id: str) -> str:
        return f"{self.prefix}:ev:{task_id}"

    # -- workflows -------------------------------------------------------------------------

    def workflow(self, workflow_id: str) -> str:
        """A workflow's record (hash): kind, state, counters."""
        return f"{self.prefix}:wf:{workflow_id}"

    def workflow_members(self, workflow_id: str) -> str:
        """Hash: position -> task id of every task of a workflow (a chord's callback last)."""
        return f"{self.prefix}:wf:{workflow_id}:m"

    def workflow_results(self, workflow_id: str) -> str:
        """Hash: position -> result (JSON) of each member that succeeded."""
        return f"{self.prefix}:wf:{workflow_id}:r"

    def workflow_errors(self, workflow_id: str) -> str:
        """Hash: position -> error (type and message, JSON) of each member that did not succeed."""
        return f"{self.prefix}:wf:{workflow_id}:e"

    def workflow_idempotency(self, key: str) -> str:
        return f"{self.prefix}:wf:idem:{key}"

    @property
    def follow_ups_due(self) -> str:
        """Sorted set (score = when it became due) of tasks whose message is still to be published."""
        return f"{self.prefix}:wf:due"

    # -- workers ---------------------------------------------------------------------------

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:w:{worker_id}"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    @property
    def control_channel(self) -> str:
        return f"{self.prefix}:ctl"

    # -- maintenance -----------------------------------------------------------------------

    @property
    def health_snapshot(self) -> str:
        return f"{self.prefix}:health:snapshot"

    def health_alerted(self, problem: str) -> str:
        return f"{self.prefix}:health:alerted:{problem}"

    # -- scheduler -------------------------------------------------------------------------

    @property
    def schedules(self) -> str:
        return f"{self.prefix}:sched:defs"

    def schedule_runs(self, schedule_id: str) -> str:
        return f"{self.prefix}:sched:run:{schedule_id}"

    def schedule_claim(self, fire_key: str) -> str:
        return f"{self.prefix}:sched:claim:{fire_key}"

    @property
    def scheduler_leader(self) -> str:
        return f"{self.prefix}:sched:leader"

    # -- notifications ---------------------------------------------------------------------

    def notification_sent(self, token: str) -> str:
        return f"{self.prefix}:notify:dedup:{token}"

    def inbox(self, user_id: str) -> list[str]:
        """A user's inbox: items (hash), unread and read (sorted sets), read-at times (hash)."""
        base = f"{self.prefix}:notify:inbox:{user_id}"
        return [f"{base}:items", f"{base}:unread", f"{base}:read", f"{base}:readat"]

    # -- dashboard -------------------------------------------------------------------------

    @property
    def dashboard_secret(self) -> str:
        return f"{self.prefix}:dashboard:secret"

    def dashboard_revoked(self, nonce: str) -> str:
        """Set at logout; the session with this nonce is refused until it would have expired."""
        return f"{self.prefix}:dashboard:revoked:{nonce}"

    def dashboard_login_failures(self, address: str) -> str:
        """Failed logins from one client address in the current window."""
        return f"{self.prefix}:dashboard:login-failures:{address}"

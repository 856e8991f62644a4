"""The task-state store: one Redis hash per task plus sorted-set indexes.

:class:`StateStore` is one object with seven parts, one file each:
writing records (:mod:`.records`), reading them (:mod:`.queries`),
housekeeping (:mod:`.housekeeping`), admitting rate-limited tasks
(:mod:`.admission`), workflows (:mod:`.workflows`), users' submission quotas
(:mod:`.quotas`) and the audit log (:mod:`.audit`); worker heartbeats are
:mod:`.workers`. Key names come from :class:`~pipeline.state.keys.Keys` only.
"""

from __future__ import annotations

import redis
import redis.cluster

from pipeline.state.admission import Admission
from pipeline.state.audit import DEFAULT_MAX_ENTRIES, Audit
from pipeline.state.batching import ScriptBatcher
from pipeline.state.housekeeping import Housekeeping
from pipeline.state.keys import Keys, slot_guard
from pipeline.state.queries import RecordQueries
from pipeline.state.quotas import SubmitQuotas
from pipeline.state.records import RecordWrites
from pipeline.state.replicas import ReplicaWait
from pipeline.state.workflows import WorkflowRecords

#: Index entries are trimmed (by worker heartbeats) this long before their
#: record expires, so a page rarely meets an entry whose record is gone;
#: readers skip such entries anyway.
DEFAULT_EXPIRY_GRACE_SECONDS = 10


class SlotGuarded:
    """A cluster's script, called with its slot's :func:`~pipeline.state.keys.slot_guard` as one more
    key: while that slot moves to another node the script waits (TRYAGAIN) instead of running with
    its keys split between two nodes. (Its other keys are computed inside, so Redis cannot check them.)"""

    def __init__(self, registered) -> None:
        self._registered = registered
        self.script, self.sha = registered.script, registered.sha

    def __call__(self, keys=(), args=(), client=None):
        return self._registered(keys=[*keys, slot_guard(keys[0])], args=args, client=client)


class StateStore(RecordWrites, RecordQueries, Housekeeping, Admission, WorkflowRecords, SubmitQuotas, Audit):
    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        result_ttl: int,
        idempotency_ttl: int = 3600,
        expiry_grace: float = DEFAULT_EXPIRY_GRACE_SECONDS,
        replica_wait: ReplicaWait | None = None,
        audit_max_entries: int = DEFAULT_MAX_ENTRIES,
        shards: int = 1,
    ):
        self.redis = client
        #: A Redis Cluster client: each command goes to its slot's node (see :mod:`.keys` for the shards).
        self.clustered = isinstance(client, redis.cluster.RedisCluster)
        #: Which writes wait for replicas, and how long (see :mod:`.replicas`).
        self.replica_wait = replica_wait or ReplicaWait()
        self.keys = Keys(namespace, shards)
        self.result_ttl = result_ttl
        self.idempotency_ttl = idempotency_ttl
        self.expiry_grace = expiry_grace
        self.audit_max_entries = audit_max_entries
        self._register_record_scripts()
        self._register_query_scripts()
        self._register_housekeeping_scripts()
        self._register_admission_scripts()
        self._register_workflow_scripts()
        self._register_quota_scripts()
        # On a cluster each script goes to its slot's node: the workers' threads share no one connection.
        self._worker_scripts = None if self.clustered else ScriptBatcher(client.connection_pool.make_connection,
                                                                         self.replica_wait)

    def _register(self, source: str):
        """A script of the store. On a cluster it starts with a shebang: Redis (7+) then refuses any
        key the script touches outside its declared keys' slot (CROSSSLOT), where a script without
        one would touch a key of another slot on the same node and corrupt it when the slot moves.
        A cluster's pipelines do not load the scripts they run, so there each is loaded (on every
        master) here."""
        if not self.clustered:
            return self.redis.register_script(source)
        registered = self.redis.register_script(f"#!lua\n{source}")
        self.redis.script_load(registered.script)
        return SlotGuarded(registered)

    @property
    def namespace(self) -> str:
        return self.keys.namespace

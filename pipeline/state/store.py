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

from pipeline.state.admission import Admission
from pipeline.state.audit import DEFAULT_MAX_ENTRIES, Audit
from pipeline.state.batching import ScriptBatcher
from pipeline.state.housekeeping import Housekeeping
from pipeline.state.keys import Keys
from pipeline.state.queries import RecordQueries
from pipeline.state.quotas import SubmitQuotas
from pipeline.state.records import RecordWrites
from pipeline.state.replicas import ReplicaWait
from pipeline.state.workflows import WorkflowRecords

#: Index entries are trimmed (by worker heartbeats) this long before their
#: record expires, so a page rarely meets an entry whose record is gone;
#: readers skip such entries anyway.
DEFAULT_EXPIRY_GRACE_SECONDS = 10


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
    ):
        self.redis = client
        #: Which writes wait for replicas, and how long (see :mod:`.replicas`).
        self.replica_wait = replica_wait or ReplicaWait()
        self.keys = Keys(namespace)
        self.result_ttl = result_ttl
        self.idempotency_ttl = idempotency_ttl
        self.expiry_grace = expiry_grace
        self.audit_max_entries = audit_max_entries
        self._register_record_scripts(client)
        self._register_query_scripts(client)
        self._register_housekeeping_scripts(client)
        self._register_admission_scripts(client)
        self._register_workflow_scripts(client)
        self._register_quota_scripts(client)
        self._worker_scripts = ScriptBatcher(client.connection_pool.make_connection, self.replica_wait)

    @property
    def namespace(self) -> str:
        return self.keys.prefix

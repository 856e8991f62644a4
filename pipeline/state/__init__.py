"""The only code that knows Redis key names and writes task records.

* :mod:`.keys` — every key and channel name (:class:`Keys`) and the task states;
* :mod:`.lua` — the prelude of every script: key names from :class:`Keys`, shared steps;
* :mod:`.records` — creating records and moving them through their states;
* :mod:`.queries` — lookups, pages, counts, runtimes, throughput;
* :mod:`.housekeeping` — expiry, dead-letter resets and deletes, lost-task repair, cleanup;
* :mod:`.admission` — rate limits and fair share: which waiting task starts next;
* :mod:`.workflows` — chains, groups and chords, counted as their tasks finish;
* :mod:`.quotas` — how many tasks a user token may submit per window;
* :mod:`.audit` — the audit log (a capped stream);
* :mod:`.workers` — worker heartbeats and the control channel;
* :mod:`.store` — :class:`StateStore`, the seven parts as one object;
* :mod:`.batching` — the worker threads' shared Redis round trips.
"""

from pipeline.state.keys import FINAL_STATES, STATES, UNFINISHED_STATES, WAITING, Keys
from pipeline.state.records import (
    NewTask, error_fields, exception_result, idempotency_claim, new_task_id, new_task_ids, untracked,
)
from pipeline.state.store import StateStore
from pipeline.state.workers import WorkerRegistry, worker_identity

__all__ = [
    "FINAL_STATES", "STATES", "UNFINISHED_STATES", "WAITING", "Keys", "NewTask", "StateStore", "WorkerRegistry",
    "error_fields", "exception_result", "idempotency_claim", "new_task_id", "new_task_ids", "untracked", "worker_identity",
]

"""Periodic maintenance, the work of the maintenance actors (:mod:`pipeline.actors.maintenance`).

* :mod:`.health` — what ``check_task_health`` checks, repairs, records and alerts;
* :mod:`.cleanup` — what ``cleanup_expired_results`` removes;
* :mod:`.config` — the health check's thresholds and alert target (``CLAW_HEALTH_*``).

The scheduler only decides when they run (:mod:`scheduler.builtin`).
"""

"""The scheduler: Celery Beat / RedBeat's replacement on APScheduler 3 and Redis.

* :mod:`scheduler.store` — schedule definitions and run state in Redis, validated on write;
* :mod:`scheduler.triggers` — cron (with cron's day-of-week meaning) and interval triggers;
* :mod:`scheduler.leader` — the Redis leader lock: one replica fires, the others stand by;
* :mod:`scheduler.runner` — ``run_scheduler()``, the process;
* :mod:`scheduler.builtin` — the built-in maintenance schedules (their work: :mod:`pipeline.maintenance`);
* :mod:`scheduler.cli` — ``claw-pipeline scheduler`` and ``claw-pipeline schedules ...``.
"""

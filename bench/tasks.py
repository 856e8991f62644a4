"""The claw-pipeline side of the benchmark: a no-op task with the engine's defaults.

Loaded by the benchmark's worker through CLAW_TASK_MODULES. Everything the
engine does by default stays on: state records, results, retries, time
limits, heartbeats, recycling every CLAW_MAX_TASKS_PER_CHILD tasks.
"""

from pipeline.task import task


@task(queue="bench_claw")
def bench_noop(i: int = 0):
    return None

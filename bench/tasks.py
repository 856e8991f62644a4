"""The claw-pipeline side of the benchmark: a no-op task with the engine's defaults.

Loaded by the benchmark's worker through CLAW_TASK_MODULES. Everything the
engine does by default stays on: state records, results, retries, time
limits, heartbeats, recycling (CLAW_MAX_TASKS_PER_CHILD, CLAW_MAX_MEMORY_PER_CHILD_MIB).
"""

from pipeline.task import task


@task(queue="bench_claw")
def bench_noop(i: int = 0):
    return None

"""What a workflow costs: a group of N no-op members against the same N tasks submitted in bulk.

Both run on a Redis server of this benchmark's own (started here on a free
port, stopped at the end), so ``INFO commandstats`` before and after counts
exactly their commands, not the machine's other traffic. Alternated in every
repetition:

- *bulk*: ``client.submit_many`` in batches of 1,000, drained by the worker;
- *group*: ``workflow.group([...]).submit()`` of the same N members, drained,
  its record counted to the end (state SUCCESS, succeeded == N, checked).

Measured: submit time, time to the last member's final state, and Redis calls
and Redis CPU (commandstats ``usec``) per member. Prints a table with the
ratios and writes ``bench/results/workflows.md``.

    python -m bench.workflows [--n 10000] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from bench.common import BROKER_URL, QUEUE_PREFIX, ROOT, clean_run, console, namespace, purge_queues, stop, summary
from bench.systems import PROCESSES, THREADS

BATCH = 1000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="members per group (and tasks per bulk run)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


class PrivateRedis:
    """redis-server on a free port, no persistence, data in a temporary directory."""

    def __init__(self) -> None:
        from tests.conftest import free_port

        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="bench-wf-redis-")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.directory], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = redis.Redis.from_url(self.url, decode_responses=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the benchmark's redis-server did not start")

    def commandstats(self) -> tuple[int, int]:
        """(calls, usec) over every command so far."""
        stats = self.client.info("commandstats")
        return sum(v["calls"] for v in stats.values()), sum(v["usec"] for v in stats.values())

    def stop(self) -> None:
        self.client.close()
        stop(self.process, timeout=10)


def run(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from pipeline import client, workflow
    from pipeline.engine import make_engine
    from pipeline.settings import load_settings

    server = PrivateRedis()
    ns = namespace("wf")
    settings = load_settings(namespace=ns, queue_prefix=QUEUE_PREFIX, task_modules=["bench.tasks"],
                             broker_url=BROKER_URL, redis_url=server.url)
    engine = make_engine(settings)
    env = {**os.environ, "CLAW_NAMESPACE": ns, "CLAW_QUEUE_PREFIX": QUEUE_PREFIX, "CLAW_TASK_MODULES": "bench.tasks",
           "CLAW_BROKER_URL": BROKER_URL, "CLAW_REDIS_URL": server.url, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "worker", "-p", str(PROCESSES), "-t", str(THREADS),
                               "-Q", "bench_claw"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    samples: dict[str, dict[str, list[float]]] = {k: {"submit": [], "total": [], "calls": [], "usec": []}
                                                  for k in ("bulk", "group")}
    try:
        while not engine.workers.list():
            time.sleep(0.2)
        for rep in range(1, args.reps + 1):
            for kind in ("bulk", "group"):
                purge_queues(QUEUE_PREFIX + "bench_claw")
                calls0, usec0 = server.commandstats()
                started = time.perf_counter()
                if kind == "bulk":
                    before = _succeeded(engine)
                    for start in range(0, args.n, BATCH):
                        client.submit_many([{"actor": "bench_noop", "kwargs": {"i": i}}
                                            for i in range(start, min(args.n, start + BATCH))], engine=engine)
                    submitted = time.perf_counter()
                    while _succeeded(engine) - before < args.n:
                        time.sleep(0.2)
                else:
                    shape = workflow.group([workflow.signature("bench_noop", i=i) for i in range(args.n)])
                    workflow_id = shape.submit(engine=engine)
                    submitted = time.perf_counter()
                    while (state := engine.store.get_workflow(workflow_id))["state"] == "RUNNING":
                        time.sleep(0.2)
                    if state["state"] != "SUCCESS" or state["succeeded"] != args.n:
                        raise RuntimeError(f"group ended {state['state']} with {state['succeeded']} of {args.n}")
                finished = time.perf_counter()
                calls1, usec1 = server.commandstats()
                sample = samples[kind]
                sample["submit"].append(submitted - started)
                sample["total"].append(finished - started)
                sample["calls"].append((calls1 - calls0) / args.n)
                sample["usec"].append((usec1 - usec0) / args.n)
                console.log(f"rep {rep} {kind}: submit {submitted - started:.2f} s, all final {finished - started:.2f} s, "
                            f"{(calls1 - calls0) / args.n:.1f} Redis calls and {(usec1 - usec0) / args.n:.1f} µs per task")
    finally:
        stop(worker)
        engine.close()
        server.stop()
        clean_run()
    result = {kind: {name: summary(values) for name, values in parts.items()} for kind, parts in samples.items()}
    _report(args, result)
    return result


def _succeeded(engine) -> int:
    return engine.store.count_by_state(["bench_noop"], [])["actors"]["bench_noop"]["SUCCESS"]


def _report(args: argparse.Namespace, result: dict) -> None:
    lines = [
        f"# Workflows: a group of {args.n:,} no-op members against the same tasks in bulk",
        "",
        f"{args.reps} reps, medians (min-max); {PROCESSES} worker processes x {THREADS} threads; a Redis of the "
        "benchmark's own (commandstats count only this run). The machine is shared with other sessions: compare the "
        "two rows, not absolute times.",
        "",
        "| | submit (s) | all final (s) | Redis calls per task | Redis µs per task |",
        "|---|---|---|---|---|",
    ]
    for kind in ("bulk", "group"):
        r = result[kind]
        lines.append(f"| {kind} | {_cell(r['submit'], 2)} | {_cell(r['total'], 2)} | {_cell(r['calls'], 2)} | "
                     f"{_cell(r['usec'], 1)} |")
    g, b = result["group"], result["bulk"]
    lines += ["", "| ratio group / bulk | value |", "|---|---|",
              f"| all final | {g['total']['median'] / b['total']['median']:.2f} |",
              f"| Redis calls per task | {g['calls']['median'] / b['calls']['median']:.2f} |",
              f"| Redis µs per task | {g['usec']['median'] / b['usec']['median']:.2f} |"]
    text = "\n".join(lines) + "\n"
    console.print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "workflows.md").write_text(text, encoding="utf-8")


def _cell(values: dict, digits: int) -> str:
    return f"{values['median']:.{digits}f} ({values['min']:.{digits}f}-{values['max']:.{digits}f})"


if __name__ == "__main__":
    run()

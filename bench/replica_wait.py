"""What waiting for a Redis replica costs: the same engine on one master, with and without WAIT.

A local master + replica + 3 Sentinels (started here, on free ports, and
stopped at the end) serves two engines, alternated in every repetition:

- *no wait*: ``redis://`` straight to the master (what a one-server deployment runs);
- *WAIT 1*: the Sentinel URL, so submissions and final states wait for the replica.

Both write to a master that has a replica attached, so the difference is the
WAIT itself. Measured: one-at-a-time submission latency (p50/p99), a bulk
submission of 1,000 tasks, and queued-then-drained throughput with one worker
supervisor (its CPU per message included). Prints a table with the ratios and
writes ``bench/results/replica-wait.md``.

    python -m bench.replica_wait [--n 5000] [--reps 3] [--latency 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import BROKER_URL, QUEUE_PREFIX, ROOT, clean_run, console, namespace, summary
from bench.systems import Claw, measure_throughput

# The test suite's launcher of local clustered services (free ports, data under /tmp, stopped by PID).
from tests.ha.servers import SentinelGroup

BULK = 1000


class ClawOn(Claw):
    """claw-pipeline on a Redis URL of its own (one namespace per variant)."""

    def __init__(self, label: str, redis_url: str) -> None:
        from pipeline.engine import make_engine
        from pipeline.settings import load_settings

        self.name = label
        self.namespace = namespace(f"wait-{label.split()[0].lower()}")
        self.env = {**os.environ, "CLAW_NAMESPACE": self.namespace, "CLAW_QUEUE_PREFIX": QUEUE_PREFIX,
                    "CLAW_TASK_MODULES": "bench.tasks", "CLAW_BROKER_URL": BROKER_URL, "CLAW_REDIS_URL": redis_url,
                    "PYTHONPATH": str(ROOT)}
        self.engine = make_engine(load_settings(namespace=self.namespace, queue_prefix=QUEUE_PREFIX,
                                                task_modules=["bench.tasks"], broker_url=BROKER_URL, redis_url=redis_url))

    def submit_latency(self, count: int) -> dict[str, float]:
        from pipeline import client

        samples = []
        for i in range(count):
            started = time.perf_counter()
            client.submit("bench_noop", kwargs={"i": i}, engine=self.engine)
            samples.append(time.perf_counter() - started)
        samples.sort()
        return {"p50_ms": samples[len(samples) // 2] * 1000, "p99_ms": samples[int(len(samples) * 0.99)] * 1000}

    def bulk_seconds(self, times: int = 5) -> float:
        from pipeline import client

        samples = []
        for _ in range(times):
            started = time.perf_counter()
            client.submit_many([{"actor": "bench_noop", "kwargs": {"i": i}} for i in range(BULK)], engine=self.engine)
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)


def measure(args: argparse.Namespace, group: SentinelGroup) -> dict[str, dict[str, list[float]]]:
    master = group.master()
    variants = [ClawOn("no wait", f"redis://127.0.0.1:{master.port}/0"), ClawOn("WAIT 1", group.url)]
    assert variants[0].engine.store.replica_wait.command() is None and variants[1].engine.store.replica_wait.command()
    samples: dict[str, dict[str, list[float]]] = {v.name: {} for v in variants}
    for rep in range(args.reps):
        for variant in variants if rep % 2 == 0 else reversed(variants):
            console.log(f"rep {rep + 1}/{args.reps}: {variant.name}")
            row = {**variant.submit_latency(args.latency), "bulk_1000_ms": variant.bulk_seconds() * 1000}
            row.update(measure_throughput(variant, args.n))
            for key, value in row.items():
                samples[variant.name].setdefault(key, []).append(value)
    for variant in variants:
        if variant.engine.store.replica_wait.shortfalls:
            raise RuntimeError(f"{variant.name}: the replica missed {variant.engine.store.replica_wait.shortfalls} WAITs")
        variant.cleanup()
    return samples


ROWS = [
    ("submit, one at a time: p50 (ms)", "p50_ms", "lower"),
    ("submit, one at a time: p99 (ms)", "p99_ms", "lower"),
    (f"bulk submit of {BULK} (ms)", "bulk_1000_ms", "lower"),
    ("enqueue, one at a time (msg/s)", "enqueue", "higher"),
    ("queued then drained, 1 worker x 2 processes x 8 threads (msg/s)", "process", "higher"),
    ("worker CPU per message (µs)", "process_cpu_workers", "lower"),
    ("Redis CPU per message, every redis-server on the machine (µs)", "process_cpu_Redis", "lower"),
]


def render(samples: dict, args: argparse.Namespace) -> str:
    base, waited = samples["no wait"], samples["WAIT 1"]
    lines = [
        "# Cost of waiting for a Redis replica (WAIT 1)",
        "",
        f"`python -m bench.replica_wait --n {args.n} --reps {args.reps} --latency {args.latency}` on "
        f"{time.strftime('%Y-%m-%d %H:%M')}; medians of {args.reps} alternated runs (min-max), one master with one "
        "replica on this machine (loopback), shared with other sessions' work.",
        "",
        "| measure | no wait | WAIT 1 | WAIT 1 / no wait |",
        "|---|---|---|---|",
    ]
    for title, key, _ in ROWS:
        if key not in base:
            continue
        a, b = summary(base[key]), summary(waited[key])
        lines.append(f"| {title} | {a['median']:.2f} ({a['min']:.2f}-{a['max']:.2f}) | "
                     f"{b['median']:.2f} ({b['min']:.2f}-{b['max']:.2f}) | {b['median'] / a['median']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="tasks per throughput run")
    parser.add_argument("--reps", type=int, default=3, help="alternated repetitions")
    parser.add_argument("--latency", type=int, default=500, help="one-at-a-time submissions per run")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "replica-wait.md"))
    args = parser.parse_args(argv)
    group = SentinelGroup(Path(tempfile.mkdtemp(prefix="claw-bench-sentinel-"))).start()
    try:
        text = render(measure(args, group), args)
    finally:
        group.stop()
        clean_run()
    console.print(text)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
